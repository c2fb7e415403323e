"""Which SLA a stage gets: pure Python over a tenant's rules, calendar and defaults (no queries).

``approvals.selectors.sla_policy_for`` loads an ``SLAPolicy`` in one query; the orchestrator asks
it for every stage it opens, so a transition costs that one query however many stages open.

Precedence for the hours: the stage's own ``sla_hours`` (wall-clock), else the most specific
active rule (contract type + stage name > stage name > contract type > any), counted in business
hours when that rule says so, else the tenant's default (wall-clock). Whatever gave the hours, the
most specific rule is recorded on the stage: its escalation applies when the approval breaches.
Matching ignores case and surrounding spaces.

The reminder instant is the same function applied to ``reminder_percent`` of the hours on the
same clock, so for a business-hours rule it is when that share of the *business* hours has
elapsed (exact, not an approximation, for the calendar in force when the stage started).
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from approvals.sla.calendar import WorkingCalendar, compute_due_at

logger = logging.getLogger(__name__)

ANY_LABEL_TYPE = "Any type"
ANY_LABEL_STAGE = "Any stage"


def _key(value: str | None) -> str | None:
    return None if value is None else value.strip().lower()


@dataclass(frozen=True)
class RuleRef:
    """What the due-date computation needs of an ``SLARule``."""

    id: object
    contract_type: str | None
    stage_name: str | None
    sla_hours: int
    business_hours_only: bool = False
    created_at: datetime | None = None

    @property
    def specificity(self) -> int:
        """3: type and stage, 2: stage only, 1: type only, 0: any."""
        return 2 * (self.stage_name is not None) + (self.contract_type is not None)


def most_specific_rule(
    rules: list[RuleRef], *, contract_type: str | None, stage_name: str | None
) -> RuleRef | None:
    """The matching rule of highest specificity; ties (case variants) go to the oldest."""
    wanted_type, wanted_stage = _key(contract_type), _key(stage_name)
    matching = [
        rule
        for rule in rules
        if (rule.contract_type is None or _key(rule.contract_type) == wanted_type)
        and (rule.stage_name is None or _key(rule.stage_name) == wanted_stage)
    ]
    if not matching:
        return None
    return min(
        matching,
        key=lambda rule: (-rule.specificity, rule.created_at or datetime.max, str(rule.id)),
    )


def rule_display_name(
    *,
    contract_type: str | None,
    stage_name: str | None,
    sla_hours: int,
    business_hours_only: bool = False,
) -> str:
    """``"MSA · Legal Review · 48h"``, ``"Any type · Any stage · 24 business h"``."""
    hours = f"{sla_hours} business h" if business_hours_only else f"{sla_hours}h"
    return " · ".join(
        (
            (contract_type or "").strip() or ANY_LABEL_TYPE,
            (stage_name or "").strip() or ANY_LABEL_STAGE,
            hours,
        )
    )


@dataclass(frozen=True)
class SLAPlan:
    due_at: datetime | None
    remind_at: datetime | None
    rule_id: object | None


@dataclass(frozen=True)
class SLAPolicy:
    rules: tuple[RuleRef, ...]
    calendar: WorkingCalendar
    default_sla_hours: int | None
    reminder_percent: int | None

    def plan(
        self,
        *,
        contract_type: str | None,
        stage_name: str,
        stage_sla_hours: int | None,
        start: datetime,
    ) -> SLAPlan:
        rule = most_specific_rule(
            list(self.rules), contract_type=contract_type, stage_name=stage_name
        )
        rule_id = rule.id if rule is not None else None
        business = False
        if stage_sla_hours is not None:
            hours = stage_sla_hours
        elif rule is not None:
            hours, business = rule.sla_hours, rule.business_hours_only
        else:
            hours = self.default_sla_hours
        if hours is None:
            return SLAPlan(due_at=None, remind_at=None, rule_id=rule_id)
        due_at = self._when(start, Decimal(hours), business)
        remind_at = None
        if self.reminder_percent is not None:
            share = Decimal(hours) * Decimal(self.reminder_percent) / Decimal(100)
            remind_at = self._when(start, share, business)
        return SLAPlan(due_at=due_at, remind_at=remind_at, rule_id=rule_id)

    def _when(self, start: datetime, hours: Decimal, business: bool) -> datetime:
        try:
            return compute_due_at(
                start, hours, business_hours_only=business, calendar=self.calendar
            )
        except ValueError:
            # Only a calendar with (almost) no working time for ten years gets here; a stage
            # must still start, so it gets the wall-clock deadline and the problem is logged.
            logger.warning(
                "business-hours SLA impossible on the tenant calendar; using wall-clock hours",
                extra={"hours": str(hours), "timezone": self.calendar.timezone},
            )
            return compute_due_at(start, hours)
