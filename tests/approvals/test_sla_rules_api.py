"""SLA configuration over the API (rules, holidays, calendar) and the due dates it produces."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.models import SLARule, SLASettings, WorkflowStage
from approvals.services import holiday_create, sla_rule_create, sla_settings_update
from audit.models import AuditLog
from tests.factories import UserFactory, UserRoleFactory
from tests.fixtures import define, freeze, pending_approvals, stage, start

pytestmark = pytest.mark.django_db

RULES = "/api/admin/sla-rules/"
HOLIDAYS = "/api/admin/sla-holidays/"
CALENDAR = "/api/admin/sla-calendar/"
FRIDAY_3PM_UTC = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)


@pytest.fixture
def sla_admin(tenant):
    """A plain member whose role grants `sla.manage` (and nothing else)."""
    user = UserFactory(tenant=tenant)
    UserRoleFactory(user=user, role="sla-desk", permissions=["sla.manage"])
    return user


@pytest.fixture
def sla_client(api_client_for, sla_admin):
    return api_client_for(sla_admin)


# --- rules: CRUD, names, validation, audit -------------------------------------------------


def test_create_generates_a_readable_name_and_audits(sla_client, tenant, sla_admin):
    response = sla_client.post(
        RULES,
        {"contract_type": "MSA", "stage_name": "Legal Review", "sla_hours": 48},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "MSA · Legal Review · 48h"
    assert (body["escalation_enabled"], body["escalate_to_role"]) == (False, None)
    assert (body["business_hours_only"], body["is_active"]) == (False, True)
    audit = AuditLog.objects.get(action="sla_rule_created", resource_id=body["id"])
    assert audit.actor_id == sla_admin.pk
    assert audit.tenant_id == tenant.pk
    assert audit.changes["sla_hours"] == [None, 48]

    catch_all = sla_client.post(RULES, {"sla_hours": 24}, format="json").json()
    assert catch_all["name"] == "Any type · Any stage · 24h"
    assert (catch_all["contract_type"], catch_all["stage_name"]) == (None, None)


def test_generated_name_follows_edits_until_one_is_given(sla_client):
    rule = sla_client.post(RULES, {"stage_name": "Finance", "sla_hours": 24}, format="json")
    url = f"{RULES}{rule.json()['id']}/"

    edited = sla_client.patch(url, {"sla_hours": 12, "business_hours_only": True}, format="json")
    assert edited.json()["name"] == "Any type · Finance · 12 business h"

    named = sla_client.patch(url, {"name": "Finance turnaround"}, format="json")
    assert named.json()["name"] == "Finance turnaround"
    assert sla_client.patch(url, {"sla_hours": 6}, format="json").json()["name"] == (
        "Finance turnaround"
    )

    back = sla_client.patch(url, {"name": ""}, format="json")
    assert back.json()["name"] == "Any type · Finance · 6 business h"


def test_update_is_audited_with_the_diff(sla_client, sla_admin):
    rule_id = sla_client.post(RULES, {"sla_hours": 24}, format="json").json()["id"]
    response = sla_client.put(
        f"{RULES}{rule_id}/",
        {"sla_hours": 36, "escalation_enabled": True, "escalate_to_role": "Legal-Lead"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["escalate_to_role"] == "legal-lead"
    audit = AuditLog.objects.get(action="sla_rule_updated", resource_id=rule_id)
    assert audit.changes["sla_hours"] == [24, 36]
    assert audit.changes["escalation_enabled"] == [False, True]
    assert audit.changes["escalate_to_role"] == [None, "legal-lead"]
    assert audit.actor_id == sla_admin.pk


def test_delete_is_audited(sla_client, tenant):
    rule_id = sla_client.post(RULES, {"sla_hours": 24}, format="json").json()["id"]
    assert sla_client.delete(f"{RULES}{rule_id}/").status_code == 204
    assert not SLARule.objects.filter(pk=rule_id).exists()
    audit = AuditLog.objects.get(action="sla_rule_deleted", resource_id=rule_id)
    assert audit.changes["sla_hours"] == [24, None]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sla_hours": 0}, "sla_hours"),
        ({"sla_hours": 8761}, "sla_hours"),
        ({"sla_hours": -5}, "sla_hours"),
        ({"sla_hours": "many"}, "sla_hours"),
        ({"sla_hours": 1.5}, "sla_hours"),
        ({}, "sla_hours"),
        ({"sla_hours": 8, "escalate_to_role": "Legal Lead!"}, "escalate_to_role"),
        ({"sla_hours": 8, "escalate_to_role": "-legal"}, "escalate_to_role"),
        ({"sla_hours": 8, "escalate_to_role": "x" * 51}, "escalate_to_role"),
        ({"sla_hours": 8, "escalation_enabled": True}, "escalate_to_role"),
        ({"sla_hours": 8, "escalation_enabled": True, "escalate_to_role": ""}, "escalate_to_role"),
        ({"sla_hours": 8, "contract_type": "x" * 51}, "contract_type"),
        ({"sla_hours": 8, "stage_name": "x" * 101}, "stage_name"),
        ({"sla_hours": 8, "is_active": None}, "is_active"),
        ({"sla_hours": 8, "business_hours_only": "sometimes"}, "business_hours_only"),
    ],
)
def test_invalid_rules_are_400_naming_the_field(sla_client, body, field):
    response = sla_client.post(RULES, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert not SLARule.objects.exists()


def test_one_active_rule_per_type_and_stage(sla_client):
    first = sla_client.post(
        RULES, {"contract_type": "MSA", "stage_name": "Legal", "sla_hours": 8}, format="json"
    )
    assert first.status_code == 201
    clash = sla_client.post(
        RULES, {"contract_type": "msa", "stage_name": " LEGAL ", "sla_hours": 9}, format="json"
    )
    assert clash.status_code == 400
    assert "already exists" in clash.json()["fields"]["non_field_errors"][0]
    # Two "any" rules clash too; an inactive one does not.
    assert sla_client.post(RULES, {"sla_hours": 8}, format="json").status_code == 201
    assert sla_client.post(RULES, {"sla_hours": 9}, format="json").status_code == 400
    inactive = sla_client.post(RULES, {"sla_hours": 9, "is_active": False}, format="json")
    assert inactive.status_code == 201
    # Re-activating the inactive one would clash.
    url = f"{RULES}{inactive.json()['id']}/"
    assert sla_client.patch(url, {"is_active": True}, format="json").status_code == 400
    assert SLARule.objects.filter(is_active=True).count() == 2


def test_rules_need_sla_manage(api_client_for, tenant, user):
    client = api_client_for(user)
    assert client.get(RULES).status_code == 403
    assert client.post(RULES, {"sla_hours": 8}, format="json").status_code == 403
    assert client.get(CALENDAR).status_code == 403
    assert client.get(HOLIDAYS).status_code == 403
    assert client.get("/api/admin/sla-breaches/").status_code == 403
    assert client.post("/api/admin/sla-breaches/check_breaches/").status_code == 403


def test_rule_list_filters(sla_client):
    for body in (
        {"contract_type": "MSA", "sla_hours": 8},
        {"stage_name": "Legal", "sla_hours": 8, "is_active": False},
        {"sla_hours": 8},
    ):
        assert sla_client.post(RULES, body, format="json").status_code == 201

    def names(**query):
        return sorted(r["name"] for r in sla_client.get(RULES, query).json()["results"])

    assert names(contract_type="msa") == ["MSA · Any stage · 8h"]
    assert names(is_active="false") == ["Any type · Legal · 8h"]
    assert len(names()) == 3


# --- holidays --------------------------------------------------------------------------------


def test_holidays_crud_and_duplicates(sla_client, tenant):
    created = sla_client.post(HOLIDAYS, {"date": "2026-12-25", "name": "Christmas"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["date"] == "2026-12-25"
    duplicate = sla_client.post(HOLIDAYS, {"date": "2026-12-25", "name": "Xmas"}, format="json")
    assert duplicate.status_code == 400
    assert "date" in duplicate.json()["fields"]
    assert (
        sla_client.post(HOLIDAYS, {"date": "2026-13-01", "name": "x"}, format="json").status_code
        == 400
    )
    assert sla_client.post(HOLIDAYS, {"date": "2026-12-26"}, format="json").status_code == 400

    url = f"{HOLIDAYS}{created.json()['id']}/"
    assert sla_client.patch(url, {"name": "Christmas Day"}, format="json").json()["name"] == (
        "Christmas Day"
    )
    assert sla_client.delete(url).status_code == 204
    actions = set(AuditLog.objects.filter(tenant=tenant).values_list("action", flat=True))
    assert {"sla_holiday_created", "sla_holiday_updated", "sla_holiday_deleted"} <= actions


# --- the calendar ------------------------------------------------------------------------------


def test_calendar_defaults_then_put_and_patch(sla_client, tenant):
    body = sla_client.get(CALENDAR).json()
    assert body == {
        "timezone": "UTC",
        "working_days": [0, 1, 2, 3, 4],
        "day_start": "09:00:00",
        "day_end": "17:00:00",
        "default_sla_hours": 72,
        "reminder_percent": 75,
    }
    assert not SLASettings.objects.exists()  # reading does not create the row

    new = {
        "timezone": "Asia/Tokyo",
        "working_days": [6, 0, 1, 2, 3],
        "day_start": "08:30",
        "day_end": "18:00",
        "default_sla_hours": None,
        "reminder_percent": 50,
    }
    response = sla_client.put(CALENDAR, new, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["working_days"] == [0, 1, 2, 3, 6]
    assert response.json()["day_start"] == "08:30:00"
    tenant.refresh_from_db()
    assert tenant.timezone == "Asia/Tokyo"

    patched = sla_client.patch(CALENDAR, {"reminder_percent": 80}, format="json")
    assert patched.json()["reminder_percent"] == 80
    assert patched.json()["timezone"] == "Asia/Tokyo"
    assert AuditLog.objects.filter(action="sla_settings_updated").count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"working_days": []}, "working_days"),
        ({"working_days": [7]}, "working_days"),
        ({"working_days": [1, 1]}, "working_days"),
        ({"day_start": "18:00", "day_end": "09:00"}, "day_end"),
        ({"day_start": "25:00"}, "day_start"),
        ({"default_sla_hours": 0}, "default_sla_hours"),
        ({"reminder_percent": 100}, "reminder_percent"),
        ({"reminder_percent": "most"}, "reminder_percent"),
    ],
)
def test_invalid_calendar_is_400(sla_client, body, field):
    response = sla_client.patch(CALENDAR, body, format="json")
    assert response.status_code == 400, response.content
    assert any(key.startswith(field) for key in response.json()["fields"])
    assert not SLASettings.objects.exists()


def test_put_needs_every_field(sla_client):
    response = sla_client.put(CALENDAR, {"reminder_percent": 60}, format="json")
    assert response.status_code == 400
    assert "working_days" in response.json()["fields"]


# --- due dates through the orchestrator ----------------------------------------------------


def test_business_hours_rule_from_a_friday_afternoon_start(monkeypatch, tenant, tenant_admin):
    """Friday 15:00 + 4 business hours = Monday 11:00 (Friday 2 h, Monday 2 h)."""
    sla_rule_create(
        tenant=tenant,
        created_by=tenant_admin,
        stage_name="Legal Review",
        sla_hours=4,
        business_hours_only=True,
    )
    define(tenant, [stage("Legal Review", ["legal"])])
    freeze(monkeypatch, FRIDAY_3PM_UTC)

    contract = start(tenant)

    [approval] = pending_approvals(contract)
    assert approval.due_at == datetime(2026, 3, 9, 11, 0, tzinfo=UTC)
    assert approval.remind_at == datetime(2026, 3, 9, 10, 0, tzinfo=UTC)  # 75% = 3 business h
    stage_row = WorkflowStage.objects.get(instance__contract=contract)
    assert stage_row.due_at == approval.due_at
    assert stage_row.sla_rule.stage_name == "Legal Review"


def test_business_hours_use_the_tenant_zone_days_and_holidays(monkeypatch, tenant, tenant_admin):
    """New York, Mon-Thu 10:00-16:00, with Monday a holiday."""
    sla_settings_update(
        tenant=tenant,
        updated_by=tenant_admin,
        timezone="America/New_York",
        working_days=[0, 1, 2, 3],
        day_start=time(10),
        day_end=time(16),
    )
    holiday_create(tenant=tenant, created_by=tenant_admin, date=date(2026, 3, 9), name="Closed")
    sla_rule_create(tenant=tenant, created_by=tenant_admin, sla_hours=8, business_hours_only=True)
    define(tenant, [stage("Review", ["legal"])])
    freeze(monkeypatch, FRIDAY_3PM_UTC)  # Friday 10:00 in New York: not a working day

    [approval] = pending_approvals(start(tenant))

    # Tuesday 10:00-16:00 EDT... (DST starts Sunday 8 March) = 6 h, Wednesday 10:00-12:00 = 2 h.
    assert approval.due_at == datetime(2026, 3, 11, 16, 0, tzinfo=UTC)  # 12:00 EDT


@pytest.mark.parametrize(
    ("contract_type", "stage_name", "expected_hours"),
    [
        ("MSA", "Legal Review", 1),  # type + stage
        ("NDA", "Legal Review", 2),  # stage
        ("MSA", "Finance", 3),  # type
        ("NDA", "Finance", 4),  # any
    ],
)
def test_rule_precedence_through_the_orchestrator(
    tenant, tenant_admin, contract_type, stage_name, expected_hours
):
    for hours, fields in [
        (1, {"contract_type": "MSA", "stage_name": "Legal Review"}),
        (2, {"stage_name": "Legal Review"}),
        (3, {"contract_type": "MSA"}),
        (4, {}),
    ]:
        sla_rule_create(tenant=tenant, created_by=tenant_admin, sla_hours=hours, **fields)
    define(tenant, [stage(stage_name, ["legal"])], contract_type=contract_type)

    [approval] = pending_approvals(start(tenant, contract_type=contract_type))

    assert approval.due_at - approval.created_at == timedelta(hours=expected_hours)


def test_stage_hours_beat_rules_and_the_default_applies_last(tenant, tenant_admin):
    sla_rule_create(tenant=tenant, created_by=tenant_admin, stage_name="Legal", sla_hours=5)
    sla_settings_update(tenant=tenant, updated_by=tenant_admin, default_sla_hours=7)
    define(
        tenant,
        [stage("Legal", ["legal"], sla_hours=48), stage("Other", ["finance"], sequence=1)],
    )
    approvals = {a.stage.stage_name: a for a in pending_approvals(start(tenant))}
    legal, other = approvals["Legal"], approvals["Other"]
    assert legal.due_at - legal.created_at == timedelta(hours=48)
    assert other.due_at - other.created_at == timedelta(hours=7)
    assert legal.stage.sla_rule is not None
    assert other.stage.sla_rule is None


def test_inactive_rules_are_ignored(tenant, tenant_admin):
    sla_rule_create(tenant=tenant, created_by=tenant_admin, sla_hours=5, is_active=False)
    define(tenant, [stage("Legal", ["legal"])])
    [approval] = pending_approvals(start(tenant))
    assert approval.due_at - approval.created_at == timedelta(hours=72)  # the default
    assert approval.stage.sla_rule is None


@pytest.mark.parametrize("stages", [1, 6])
def test_sla_loading_is_one_query_per_transition(tenant, tenant_admin, stages):
    """Rules, calendar and holidays for all the stages a transition opens: one query."""
    sla_rule_create(tenant=tenant, created_by=tenant_admin, sla_hours=5, business_hours_only=True)
    sla_rule_create(tenant=tenant, created_by=tenant_admin, stage_name="S0", sla_hours=6)
    holiday_create(tenant=tenant, created_by=tenant_admin, date=date(2030, 1, 1), name="NY")
    define(tenant, [stage(f"S{n}", ["legal"]) for n in range(stages)])

    with CaptureQueriesContext(connection) as queries:
        contract = start(tenant)

    sla_queries = [q for q in queries.captured_queries if "approvals_slarule" in q["sql"]]
    assert len(sla_queries) == 1
    assert "approvals_holiday" in sla_queries[0]["sql"]
    assert len(pending_approvals(contract)) == stages
