"""Writes for SLA configuration (rules, holidays, the tenant calendar) and the SLA check.

Each configuration write is one transaction that validates (400 through DRF's ValidationError,
shared by the API and the admin) and writes its audit row. ``sla_check_breaches`` is the one
breach check, used by ``manage.py check_sla_breaches`` and the API alike.
"""

import contextvars
import functools
import logging
import threading
from datetime import datetime, time

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from approvals.assignment import covers_apply_due
from approvals.models import MAX_SLA_HOURS, Holiday, SLARule, SLASettings
from approvals.selectors import sla_calendar
from approvals.sla import check as sla_check
from approvals.sla.calendar import WorkingCalendar
from approvals.sla.rules import rule_display_name
from audit.services import audit_record, diff_fields
from config.exceptions import clash_is_invalid
from core.context import current_request_context
from tenancy.models import Tenant, validate_timezone
from workflows.stages import ROLE_SLUG_PATTERN

logger = logging.getLogger(__name__)

# Per sort, hash or materialized step of the SLA check's statements, and only as much as the run's
# rows take: 100,000 breaches in one session sort ~140 MB of notifications into key order and
# materialize ~100 MB of messages (sla_check); within this, neither goes to temporary files.
CHECK_WORK_MEM = "256MB"

RULE_FIELDS = (
    "name",
    "contract_type",
    "stage_name",
    "sla_hours",
    "escalation_enabled",
    "escalate_to_role",
    "business_hours_only",
    "is_active",
)
SETTINGS_FIELDS = (
    "timezone",
    "working_days",
    "day_start",
    "day_end",
    "default_sla_hours",
    "reminder_percent",
)


# --- SLA rules ---------------------------------------------------------------------------------


def _bumps_sla_config(service):
    """Bump the tenant's ``sla_config_version`` with the change, in the same transaction.

    The orchestrator caches each tenant's SLA policy under that version (see
    ``approvals.selectors.sla_policy_cached``), so every change must bump it.
    """

    @functools.wraps(service)
    def run(**kwargs):
        result = service(**kwargs)
        target = kwargs.get("tenant") or kwargs.get("rule") or kwargs.get("holiday")
        tenant_id = target.pk if isinstance(target, Tenant) else target.tenant_id
        Tenant.objects.filter(pk=tenant_id).update(sla_config_version=F("sla_config_version") + 1)
        if isinstance(target, Tenant):  # the caller's object may key the cache next
            target.refresh_from_db(fields=["sla_config_version"])
        return result

    return run


def _optional_text(value, field: str, max_length: int) -> str | None:
    """Null, or trimmed text; blank means "any" (null) too."""
    if value is None:
        return None
    value = str(value).strip()
    if len(value) > max_length:
        raise ValidationError({field: [f"At most {max_length} characters."]})
    return value or None


def _validated_rule(fields: dict) -> dict:
    """Normalize and check a complete set of rule fields (400 naming the field)."""
    errors: dict[str, list[str]] = {}
    fields["contract_type"] = _optional_text(fields.get("contract_type"), "contract_type", 50)
    fields["stage_name"] = _optional_text(fields.get("stage_name"), "stage_name", 100)
    hours = fields.get("sla_hours")
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= MAX_SLA_HOURS:
        errors["sla_hours"] = [f"A whole number of hours from 1 to {MAX_SLA_HOURS}."]
    role = fields.get("escalate_to_role")
    if role is not None:
        role = str(role).strip().lower() or None
        if role is not None and not ROLE_SLUG_PATTERN.match(role):
            errors["escalate_to_role"] = [
                "A role slug: lower-case letters, digits, - and _ (at most 50)."
            ]
    fields["escalate_to_role"] = role
    if fields.get("escalation_enabled") and role is None:
        errors.setdefault("escalate_to_role", ["Required when escalation_enabled is true."])
    name = _optional_text(fields.get("name"), "name", 200)
    fields["auto_named"] = name is None
    if errors:
        raise ValidationError(errors)
    fields["name"] = name or rule_display_name(
        contract_type=fields["contract_type"],
        stage_name=fields["stage_name"],
        sla_hours=hours,
        business_hours_only=bool(fields.get("business_hours_only")),
    )
    return fields


def _rule_snapshot(rule: SLARule) -> dict:
    return {field: getattr(rule, field) for field in RULE_FIELDS}


_CLASH_MESSAGE = "An active SLA rule for this contract type and stage already exists."


def sla_rule_validate(*, tenant_id, rule_id=None, **fields) -> dict:
    """Normalized complete rule fields, or a 400: also for an active rule whose (type, stage)
    another active rule of the tenant already has (case-insensitively). The admin uses this."""
    values = _validated_rule(fields)
    if values.get("is_active", True):
        rules = SLARule.objects.filter(tenant_id=tenant_id, is_active=True).exclude(pk=rule_id)
        for field in ("contract_type", "stage_name"):
            value = values[field]
            rules = rules.filter(
                **{f"{field}__isnull": True} if value is None else {f"{field}__iexact": value}
            )
        if rules.exists():
            raise ValidationError({"non_field_errors": [_CLASH_MESSAGE]})
    return values


def _save_rule(rule: SLARule) -> None:
    """Save; the unique index still turns a concurrent clash into a 400, not a 500."""
    with clash_is_invalid({"non_field_errors": [_CLASH_MESSAGE]}):
        rule.save()


@transaction.atomic
@_bumps_sla_config
def sla_rule_create(*, tenant: Tenant, created_by, **fields) -> SLARule:
    defaults = {
        "name": None,
        "contract_type": None,
        "stage_name": None,
        "escalation_enabled": False,
        "escalate_to_role": None,
        "business_hours_only": False,
        "is_active": True,
    }
    values = sla_rule_validate(tenant_id=tenant.pk, **(defaults | fields))
    rule = SLARule(tenant=tenant, created_by=created_by, **values)
    _save_rule(rule)
    audit_record(
        action="sla_rule_created",
        tenant=tenant,
        actor=created_by,
        resource=rule,
        changes={field: [None, value] for field, value in _rule_snapshot(rule).items()},
    )
    return rule


@transaction.atomic
@_bumps_sla_config
def sla_rule_update(*, rule_id, tenant: Tenant, updated_by, **fields) -> SLARule:
    """A (partial) edit. An auto-generated name follows the edit unless a name is given."""
    rule = SLARule.objects.for_tenant(tenant).select_for_update().get(pk=rule_id)
    before = _rule_snapshot(rule)
    current = dict(before)
    if rule.auto_named:
        current["name"] = None
    if "name" in fields and fields["name"] is not None and not str(fields["name"]).strip():
        fields["name"] = None  # blank: back to a generated name
    values = sla_rule_validate(tenant_id=tenant.pk, rule_id=rule.pk, **(current | fields))
    for field, value in values.items():
        setattr(rule, field, value)
    _save_rule(rule)
    changes = diff_fields(before, _rule_snapshot(rule))
    if changes:
        audit_record(
            action="sla_rule_updated",
            tenant=tenant,
            actor=updated_by,
            resource=rule,
            changes=changes,
        )
    return rule


@transaction.atomic
@_bumps_sla_config
def sla_rule_delete(*, rule: SLARule, deleted_by) -> None:
    """Delete; stages it governs keep their due dates but lose its escalation."""
    snapshot = _rule_snapshot(rule)
    resource_id = str(rule.pk)
    rule.delete()
    audit_record(
        action="sla_rule_deleted",
        tenant=rule.tenant_id,
        actor=deleted_by,
        resource_type="slarule",
        resource_id=resource_id,
        changes={field: [value, None] for field, value in snapshot.items()},
    )


# --- holidays ----------------------------------------------------------------------------------


_HOLIDAY_TAKEN = {"date": ["This date is already a holiday."]}


def holiday_validate(*, tenant_id, date, holiday_id=None) -> None:
    """400 when the tenant already has a holiday on ``date`` (the admin uses this too)."""
    if Holiday.objects.filter(tenant_id=tenant_id, date=date).exclude(pk=holiday_id).exists():
        raise ValidationError(_HOLIDAY_TAKEN)


def _save_holiday(holiday: Holiday) -> None:
    holiday_validate(tenant_id=holiday.tenant_id, date=holiday.date, holiday_id=holiday.pk)
    with clash_is_invalid(_HOLIDAY_TAKEN):  # a concurrent write took the date first
        holiday.save()


@transaction.atomic
@_bumps_sla_config
def holiday_create(*, tenant: Tenant, created_by, date, name: str) -> Holiday:
    holiday = Holiday(tenant=tenant, date=date, name=name.strip())
    _save_holiday(holiday)
    audit_record(
        action="sla_holiday_created",
        tenant=tenant,
        actor=created_by,
        resource=holiday,
        changes={"date": [None, date.isoformat()], "name": [None, holiday.name]},
    )
    return holiday


@transaction.atomic
@_bumps_sla_config
def holiday_update(*, holiday_id, tenant: Tenant, updated_by, **fields) -> Holiday:
    holiday = Holiday.objects.for_tenant(tenant).select_for_update().get(pk=holiday_id)
    before = {"date": holiday.date, "name": holiday.name}
    if "date" in fields:
        holiday.date = fields["date"]
    if "name" in fields:
        holiday.name = fields["name"].strip()
    _save_holiday(holiday)
    changes = diff_fields(before, {"date": holiday.date, "name": holiday.name})
    if changes:
        audit_record(
            action="sla_holiday_updated",
            tenant=tenant,
            actor=updated_by,
            resource=holiday,
            changes=changes,
        )
    return holiday


@transaction.atomic
@_bumps_sla_config
def holiday_delete(*, holiday: Holiday, deleted_by) -> None:
    resource_id, before = str(holiday.pk), {"date": holiday.date, "name": holiday.name}
    holiday.delete()
    audit_record(
        action="sla_holiday_deleted",
        tenant=holiday.tenant_id,
        actor=deleted_by,
        resource_type="holiday",
        resource_id=resource_id,
        changes={"date": [before["date"].isoformat(), None], "name": [before["name"], None]},
    )


# --- the tenant's calendar and defaults --------------------------------------------------------


def validated_calendar(
    *, timezone_name: str, working_days, day_start: time, day_end: time
) -> WorkingCalendar:
    """The calendar these values make, or a 400 naming the field."""
    errors: dict[str, list[str]] = {}
    try:
        validate_timezone(timezone_name)
    except Exception:
        errors["timezone"] = [f"'{str(timezone_name)[:64]}' is not a known IANA time zone."]
    days = list(working_days)
    if not days:
        errors["working_days"] = ["At least one working day."]
    elif any(isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in days):
        errors["working_days"] = ["Weekday numbers from 0 (Monday) to 6 (Sunday)."]
    elif len(set(days)) != len(days):
        errors["working_days"] = ["Each day once."]
    if day_end <= day_start:
        errors["day_end"] = ["Must be after day_start (windows across midnight are not supported)."]
    if errors:
        raise ValidationError(errors)
    return WorkingCalendar(
        timezone=timezone_name, working_days=days, day_start=day_start, day_end=day_end
    )


@transaction.atomic
@_bumps_sla_config
def sla_settings_update(*, tenant: Tenant, updated_by, **fields) -> SLASettings:
    """Create or (partially) update the tenant's calendar and defaults; ``timezone`` is the
    tenant's own time zone (the calendar's)."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    settings = SLASettings.objects.filter(tenant=tenant).first() or SLASettings(tenant=tenant)
    before = sla_calendar(settings=settings, tenant=tenant)
    values = before | fields
    validated_calendar(
        timezone_name=values["timezone"],
        working_days=values["working_days"],
        day_start=values["day_start"],
        day_end=values["day_end"],
    )
    errors = {}
    for field, low, high in (("default_sla_hours", 1, MAX_SLA_HOURS), ("reminder_percent", 1, 99)):
        value = values[field]
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
        ):
            errors[field] = [f"Empty, or a whole number from {low} to {high}."]
    if errors:
        raise ValidationError(errors)
    if values["timezone"] != tenant.timezone:
        tenant.timezone = values["timezone"]
        tenant.save(update_fields=["timezone"])
    settings.working_days = sorted(values["working_days"])
    for field in ("day_start", "day_end", "default_sla_hours", "reminder_percent"):
        setattr(settings, field, values[field])
    settings.save()
    changes = diff_fields(before, sla_calendar(settings=settings, tenant=tenant))
    if changes:
        audit_record(
            action="sla_settings_updated",
            tenant=tenant,
            actor=updated_by,
            resource=settings,
            changes=changes,
        )
    return settings


# --- the check ---------------------------------------------------------------------------------


def sla_check_breaches(
    *,
    tenant=None,
    now: datetime | None = None,
    dry_run: bool = False,
    actor=None,
    jobs: int = 1,
) -> sla_check.SLACheckResult:
    """Find new breaches and due reminders and act on them, set-based (see ``sla_check``).

    ``tenant`` (a Tenant or its id) limits the run to one tenant; None checks every tenant.
    Returns ``checked`` (pending approvals found past due and not yet marked), ``breached``
    (breaches this run recorded), ``escalated`` (of those, the ones escalated) and ``reminded``
    (approvals reminded), with the same per tenant. A dry run writes nothing and reports what a
    run would do now. Idempotent, and safe to run concurrently with itself: each breach and each
    reminder is acted on by exactly one run.

    ``jobs > 1`` (every tenant, outside any transaction) splits the tenants with work into that
    many groups of similar size and checks them at once, each group in its own database session
    and transaction: the same statements per group, groups sharing no rows. One query more, and
    none of the check's own when it finds no tenant with work (a run with nothing due).
    """
    now = now or timezone.now()
    tenant_ids = None if tenant is None else [getattr(tenant, "pk", tenant)]
    if dry_run:
        result = _run_statements([sla_check.dry_run_statement(tenant_ids=tenant_ids, now=now)])
        return result
    # Windows that have started hand their rows to the covers first: reminders and breaches
    # then go to whoever holds the row now.
    covers_apply_due(tenant_ids=tenant_ids, now=now)
    context, actor_id = current_request_context(), getattr(actor, "pk", actor)
    groups = [tenant_ids]
    if jobs > 1 and tenant_ids is None and not connection.in_atomic_block:
        # Raw SQL: the SLA check's statements are set-based (bench/bench_sla.py).
        with connection.cursor() as cursor:
            cursor.execute(*sla_check.workload_statement(now=now))
            groups = sla_check.balanced_groups(cursor.fetchall(), jobs)
        if not groups:  # nothing due: the statements would scan the due rows again to find nothing
            return sla_check.SLACheckResult()
    if len(groups) == 1:
        result = _check_group(groups[0], now, actor_id, context)
    else:
        result = _check_in_parallel(groups, now, actor_id, context)
    if result.breached or result.reminded:
        logger.info(
            "sla check",
            extra={"tenant_id": str(tenant_ids[0]) if tenant_ids else "", **result.as_dict()},
        )
    return result


def _check_group(tenant_ids, now, actor_id, context) -> sla_check.SLACheckResult:
    return _run_statements(
        [
            sla_check.breach_statement(
                tenant_ids=tenant_ids, now=now, actor_id=actor_id, context=context
            ),
            sla_check.reminder_statement(tenant_ids=tenant_ids, now=now),
        ]
    )


def _run_statements(statements) -> sla_check.SLACheckResult:
    """The statements in one transaction; their ``(kind, tenant_id, count)`` rows, added up."""
    result = sla_check.SLACheckResult()
    with transaction.atomic(), connection.cursor() as cursor:
        # For this transaction only (set_config's true). The statements hash, sort and
        # materialize the run's rows (CHECK_WORK_MEM); room in memory keeps that off temporary
        # files. No JIT: the planner prices these statements far above jit_above_cost even when
        # they find nothing (it cannot see that breached rows are already marked), and compiling
        # them would cost a run with nothing to do seconds, where executing them takes
        # milliseconds. Raw SQL: the settings, then the set-based statements (bench/bench_sla.py).
        cursor.execute(
            "SELECT set_config('work_mem', %s, true), set_config('jit', 'off', true)",
            [CHECK_WORK_MEM],
        )
        for sql, params in statements:
            cursor.execute(sql, params)
            for kind, row_tenant_id, count in cursor.fetchall():
                result.add(row_tenant_id, kind, count)
    return result


def _check_in_parallel(groups, now, actor_id, context) -> sla_check.SLACheckResult:
    """One thread (so one connection and transaction) per group; the first error is raised
    once all are done (the other groups' work stays committed: the next run redoes the rest)."""
    results: list = [None] * len(groups)

    def work(index: int, tenant_ids) -> None:
        try:
            results[index] = _check_group(tenant_ids, now, actor_id, context)
        except BaseException as exc:  # re-raised in the caller's thread below
            results[index] = exc
        finally:
            connection.close()

    threads = [
        # Each thread runs in a copy of the caller's context: its RLS scope (core.rls) and
        # request context come along.
        threading.Thread(
            target=contextvars.copy_context().run,
            args=(work, index, group),
            name=f"sla-check-{index}",
        )
        for index, group in enumerate(groups)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = sla_check.SLACheckResult()
    for outcome in results:
        if isinstance(outcome, BaseException):
            raise outcome
        total.merge(outcome)
    return total
