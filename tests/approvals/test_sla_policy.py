"""approvals.sla.rules: which hours, clock and rule a stage gets (pure, no database)."""

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest

from approvals.sla.calendar import WorkingCalendar
from approvals.sla.check import balanced_groups
from approvals.sla.rules import RuleRef, SLAPolicy, most_specific_rule, rule_display_name

START = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)  # a Friday, 15:00 UTC


def rule(contract_type=None, stage_name=None, hours=10, business=False, age=0):
    return RuleRef(
        id=uuid.uuid4(),
        contract_type=contract_type,
        stage_name=stage_name,
        sla_hours=hours,
        business_hours_only=business,
        created_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=age),
    )


def policy(*rules, default=72, reminder=75, holidays=()):
    return SLAPolicy(
        rules=tuple(rules),
        calendar=WorkingCalendar(timezone="UTC", holidays=frozenset(holidays)),
        default_sla_hours=default,
        reminder_percent=reminder,
    )


ANY = rule()
TYPE = rule(contract_type="MSA")
STAGE = rule(stage_name="Legal Review")
BOTH = rule(contract_type="MSA", stage_name="Legal Review")
ALL_FOUR = [ANY, TYPE, STAGE, BOTH]


@pytest.mark.parametrize(
    ("rules", "contract_type", "stage_name", "expected"),
    [
        (ALL_FOUR, "MSA", "Legal Review", BOTH),
        ([ANY, TYPE, STAGE], "MSA", "Legal Review", STAGE),  # stage beats type
        ([ANY, TYPE], "MSA", "Legal Review", TYPE),
        ([ANY], "MSA", "Legal Review", ANY),
        (ALL_FOUR, "NDA", "Legal Review", STAGE),
        (ALL_FOUR, "MSA", "Finance", TYPE),
        (ALL_FOUR, "NDA", "Finance", ANY),
        ([TYPE, STAGE, BOTH], "NDA", "Finance", None),
        (ALL_FOUR, "msa", "  legal review ", BOTH),  # case and spaces do not matter
    ],
)
def test_most_specific_rule_precedence(rules, contract_type, stage_name, expected):
    assert most_specific_rule(rules, contract_type=contract_type, stage_name=stage_name) == expected


def test_precedence_does_not_depend_on_order():
    for rotation in range(4):
        rules = ALL_FOUR[rotation:] + ALL_FOUR[:rotation]
        found = most_specific_rule(rules, contract_type="MSA", stage_name="Legal Review")
        assert found == BOTH


def test_ties_go_to_the_oldest_rule():
    older, newer = rule(stage_name="Review", age=0), rule(stage_name="REVIEW", age=5)
    assert most_specific_rule([newer, older], contract_type="X", stage_name="review") == older


def test_stage_hours_win_and_are_wall_clock_but_the_rule_is_recorded():
    business = rule(stage_name="Legal Review", hours=10, business=True)
    plan = policy(business).plan(
        contract_type="MSA", stage_name="Legal Review", stage_sla_hours=48, start=START
    )
    assert plan.due_at == START + timedelta(hours=48)
    assert plan.rule_id == business.id  # its escalation applies


def test_rule_hours_with_business_hours_skip_the_weekend():
    plan = policy(rule(hours=4, business=True)).plan(
        contract_type="MSA", stage_name="Review", stage_sla_hours=None, start=START
    )
    # Friday 15:00-17:00 is 2 h, Monday 09:00-11:00 the other 2.
    assert plan.due_at == datetime(2026, 3, 9, 11, 0, tzinfo=UTC)
    # 75% of 4 business hours = 3 h: Friday's 2, then Monday 09:00-10:00.
    assert plan.remind_at == datetime(2026, 3, 9, 10, 0, tzinfo=UTC)


def test_business_hours_skip_holidays():
    plan = policy(rule(hours=4, business=True), holidays=[date(2026, 3, 9)]).plan(
        contract_type="MSA", stage_name="Review", stage_sla_hours=None, start=START
    )
    assert plan.due_at == datetime(2026, 3, 10, 11, 0, tzinfo=UTC)


def test_wall_clock_rule_and_reminder_share():
    plan = policy(rule(hours=8), reminder=50).plan(
        contract_type="MSA", stage_name="Review", stage_sla_hours=None, start=START
    )
    assert plan.due_at == START + timedelta(hours=8)
    assert plan.remind_at == START + timedelta(hours=4)


def test_tenant_default_when_no_rule_matches():
    plan = policy(TYPE, default=24).plan(
        contract_type="NDA", stage_name="Review", stage_sla_hours=None, start=START
    )
    assert (plan.due_at, plan.rule_id) == (START + timedelta(hours=24), None)


def test_no_default_and_no_rule_means_no_sla():
    plan = policy(default=None).plan(
        contract_type="NDA", stage_name="Review", stage_sla_hours=None, start=START
    )
    assert (plan.due_at, plan.remind_at) == (None, None)


def test_reminders_off():
    plan = policy(reminder=None).plan(
        contract_type="NDA", stage_name="Review", stage_sla_hours=5, start=START
    )
    assert plan.due_at == START + timedelta(hours=5)
    assert plan.remind_at is None


def test_business_hours_in_a_far_zone_across_dst():
    """Auckland, the Friday before DST ends (2026-04-05): local hours, real elapsed time."""
    calendar = WorkingCalendar(timezone="Pacific/Auckland", day_start=time(9), day_end=time(17))
    sla = SLAPolicy(
        rules=(rule(hours=8, business=True),),
        calendar=calendar,
        default_sla_hours=None,
        reminder_percent=75,
    )
    friday_4pm_local = datetime(2026, 4, 3, 3, 0, tzinfo=UTC)  # 16:00 NZDT (+13)
    plan = sla.plan(contract_type="X", stage_name="Y", stage_sla_hours=None, start=friday_4pm_local)
    # 1 h on Friday, 7 h on Monday 6 April from 09:00 NZST (+12): 16:00 local = 04:00 UTC.
    assert plan.due_at == datetime(2026, 4, 6, 4, 0, tzinfo=UTC)
    assert plan.due_at > plan.remind_at > friday_4pm_local


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"contract_type": "MSA", "stage_name": "Legal Review", "sla_hours": 48},
            "MSA · Legal Review · 48h",
        ),
        (
            {"contract_type": None, "stage_name": None, "sla_hours": 24},
            "Any type · Any stage · 24h",
        ),
        (
            {
                "contract_type": "NDA",
                "stage_name": None,
                "sla_hours": 8,
                "business_hours_only": True,
            },
            "NDA · Any stage · 8 business h",
        ),
    ],
)
def test_rule_display_name(fields, expected):
    assert rule_display_name(**fields) == expected


@pytest.mark.parametrize(
    ("workload", "jobs", "expected"),
    [
        ([("a", 10), ("b", 9), ("c", 1)], 2, [["a"], ["b", "c"]]),
        ([("a", 10), ("a", 5), ("b", 9), ("c", 7)], 2, [["a"], ["b", "c"]]),  # a: 15 in all
        ([("a", 3)], 4, [["a"]]),
        ([], 2, []),
        ([("a", 1), ("b", 1), ("c", 1)], 1, [["a", "b", "c"]]),
    ],
)
def test_balanced_groups(workload, jobs, expected):
    groups = balanced_groups(workload, jobs)
    assert sorted(sorted(group) for group in groups) == sorted(expected)
