"""Reads about workflow instances and approvals, tenant-scoped, with their joins done here."""

import uuid
from datetime import date, timedelta
from time import monotonic

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import JSONObject
from django.utils.dateparse import parse_datetime

from approvals.models import (
    ApprovalStatus,
    Holiday,
    InstanceStatus,
    SLABreach,
    SLARule,
    SLASettings,
    WorkflowInstance,
    WorkflowStage,
    WorkflowStageApproval,
)
from approvals.sla.calendar import WorkingCalendar
from approvals.sla.rules import RuleRef, SLAPolicy
from contracts.models import Contract
from core.sql import Prepared, models_from_row, one_to_many, prefetched, sql
from tenancy.eligibility import approval_eligible_q
from tenancy.models import Tenant
from workflows.models import WorkflowDefinitionVersion


def instances_newest_first() -> Prefetch:
    """Prefetch for a contract's instances (the first is its active or last workflow)."""
    return Prefetch(
        "workflow_instances",
        queryset=WorkflowInstance.objects.select_related("definition_version").order_by(
            "-started_at"
        ),
        to_attr="instances_newest_first",
    )


def contract_list(*, tenant: Tenant) -> QuerySet[Contract]:
    """The tenant's contracts as the API shows them, each with its workflow summary's rows."""
    return (
        Contract.objects.for_tenant(tenant)
        .select_related("created_by")
        .prefetch_related(instances_newest_first())
    )


def workflow_instance_latest(*, tenant, contract_id) -> WorkflowInstance | None:
    """The contract's active or most recent instance with its definition version, its stages
    (``instance.stages.all()``, by sequence and name) and each stage's approvals
    (``stage.approvals.all()``, by creation), as ``prefetch_related`` would leave them: two
    prepared queries.

    Raw SQL because every decision answers with this read (the workflow status document): the
    ORM's three queries, their compilation and the prefetching were half of an approve request's
    time, more than the decision itself (``bench/bench_load.py --profile approve``).
    """
    found = _LATEST_INSTANCE.fetchone(
        {"contract": contract_id, "tenant": getattr(tenant, "pk", tenant)}
    )
    if found is None:
        return None
    instance, instance.definition_version = models_from_row(
        found, WorkflowInstance, WorkflowDefinitionVersion
    )
    rows = _STAGES_WITH_APPROVALS.fetchall({"instance": instance.pk})
    stages = []
    for stage, _, approvals in one_to_many(rows, WorkflowStage, WorkflowStageApproval):
        stage.instance = instance
        for approval, _ in approvals:
            approval.stage = stage
        prefetched(stage, "approvals", [approval for approval, _ in approvals])
        stages.append(stage)
    prefetched(instance, "stages", stages)
    return instance


_LATEST_INSTANCE = Prepared(
    sql(
        """SELECT {i:columns}, {v:columns}
             FROM {i} JOIN {v} ON {v.pk} = {i.definition_version}
            WHERE {i.contract} = %(contract)s AND {i.tenant} = %(tenant)s
            ORDER BY {i.started_at} DESC LIMIT 1""",
        i=WorkflowInstance,
        v=WorkflowDefinitionVersion,
    )
)
# A row's instance is its stage's: naming it lets even a plan made for small tables read the
# rows by the instance's index (``core.sql.Prepared`` keeps a connection's first plan).
_STAGES_WITH_APPROVALS = Prepared(
    sql(
        """SELECT {s:columns}, {a:columns}
             FROM {s} LEFT JOIN {a} ON {a.stage} = {s.pk} AND {a.instance} = %(instance)s
            WHERE {s.instance} = %(instance)s
            ORDER BY {s.sequence}, {s.stage_name}, {s.pk}, {a.created_at}, {a.pk}""",
        s=WorkflowStage,
        a=WorkflowStageApproval,
    )
)


def _actionable_q(user) -> Q:
    """Pending rows the user may decide now: those they may act on (``approval_eligible_q``),
    not while the contract is back with its requester, and not on a workflow whose definition
    wants distinct approvers when they already decided one of its rows."""
    decided_here = WorkflowStageApproval.objects.filter(
        instance=OuterRef("instance"),
        decided_by=user,
        status__in=(ApprovalStatus.APPROVED, ApprovalStatus.REJECTED),
    )
    return (
        approval_eligible_q(user)
        & Q(instance__status=InstanceStatus.ACTIVE)
        & ~(Q(instance__distinct_approvers=True) & Exists(decided_here))
    )


# The approval lists show the contract's summary and the stage's name: the contract's text (up to
# 2,000,000 characters), its JSON columns and the approval's SLA metadata stay in the database.
_LIST_DEFERRED = ("contract__text", "contract__clause_findings", "contract__metadata", "metadata")


def approval_list_for_user(*, user) -> QuerySet[WorkflowStageApproval]:
    """Approvals the user may act on (pending, theirs or their roles') or has acted on."""
    visible = (Q(status=ApprovalStatus.PENDING) & _actionable_q(user)) | Q(decided_by=user)
    return (
        WorkflowStageApproval.objects.for_tenant(user.tenant_id)
        .filter(visible)
        .select_related("stage", "contract")
        .defer(*_LIST_DEFERRED)
        .order_by("due_at", "created_at", "id")
    )


def approval_pending_for_user(*, user) -> QuerySet[WorkflowStageApproval]:
    return (
        WorkflowStageApproval.objects.for_tenant(user.tenant_id)
        .filter(Q(status=ApprovalStatus.PENDING) & _actionable_q(user))
        .select_related("stage", "contract")
        .defer(*_LIST_DEFERRED)
        .order_by("due_at", "created_at", "id")
    )


# --- SLA ---------------------------------------------------------------------------------------


_POLICY_TTL_SECONDS = 300
_POLICY_CACHE_SIZE = 10_000
_policy_cache: dict = {}


def sla_policy_cached(*, tenant: Tenant, since: date) -> SLAPolicy:
    """``sla_policy_for``, cached in the process under the tenant's ``sla_config_version``.

    Every SLA configuration service bumps that version in the same transaction, and the tenant
    object comes with the request (the JWT user is loaded with it), so a change is seen by the
    next request in every process at no query cost. The TTL is a backstop for edits made
    behind the services' back (raw SQL, a time zone changed in the platform admin).
    """
    key = (tenant.pk, tenant.sla_config_version, since)
    cached = _policy_cache.get(key)
    if cached is not None and cached[1] > monotonic():
        return cached[0]
    policy = sla_policy_for(tenant_id=tenant.pk, since=since)
    if len(_policy_cache) >= _POLICY_CACHE_SIZE:
        _policy_cache.clear()
    _policy_cache[key] = (policy, monotonic() + _POLICY_TTL_SECONDS)
    return policy


def sla_policy_for(*, tenant_id, since: date) -> SLAPolicy:
    """The tenant's active rules, calendar, holidays from ``since`` on and defaults: one query.

    A tenant without an ``SLASettings`` row gets the model defaults.
    """
    rules = SLARule.objects.filter(tenant_id=OuterRef("pk"), is_active=True).values(
        json=JSONObject(
            id="id",
            contract_type="contract_type",
            stage_name="stage_name",
            sla_hours="sla_hours",
            business_hours_only="business_hours_only",
            created_at="created_at",
        )
    )
    # A day early: holidays are *local* dates, and the local date may be the UTC date's eve.
    holidays = Holiday.objects.filter(
        tenant_id=OuterRef("pk"), date__gte=since - timedelta(days=1)
    ).values("date")
    tenant = (
        Tenant.objects.filter(pk=tenant_id)
        .select_related("sla_settings")
        .annotate(sla_rules=ArraySubquery(rules), sla_holidays=ArraySubquery(holidays))
        .get()
    )
    return build_sla_policy(tenant, tenant.sla_rules, tenant.sla_holidays)


def build_sla_policy(tenant: Tenant, rules: list[dict], holidays: list) -> SLAPolicy:
    settings = _settings_or_defaults(tenant)
    return SLAPolicy(
        rules=tuple(
            RuleRef(
                id=uuid.UUID(str(rule["id"])),
                contract_type=rule["contract_type"],
                stage_name=rule["stage_name"],
                sla_hours=rule["sla_hours"],
                business_hours_only=rule["business_hours_only"],
                created_at=parse_datetime(rule["created_at"]) if rule["created_at"] else None,
            )
            for rule in rules
        ),
        calendar=WorkingCalendar(
            timezone=tenant.timezone,
            working_days=frozenset(settings.working_days),
            day_start=settings.day_start,
            day_end=settings.day_end,
            holidays=frozenset(holidays),
        ),
        default_sla_hours=settings.default_sla_hours,
        reminder_percent=settings.reminder_percent,
    )


def _settings_or_defaults(tenant: Tenant) -> SLASettings:
    try:
        return tenant.sla_settings
    except SLASettings.DoesNotExist:
        return SLASettings(tenant=tenant)


def sla_settings_for(*, tenant: Tenant) -> SLASettings:
    """The tenant's settings row, or an unsaved one holding the defaults."""
    return SLASettings.objects.filter(tenant=tenant).first() or SLASettings(tenant=tenant)


def sla_calendar(*, settings: SLASettings, tenant: Tenant) -> dict:
    """The tenant's working calendar and SLA defaults as the API shows them and the audit trail
    records their changes: the time zone is the tenant's, the rest the settings row's."""
    return {
        "timezone": tenant.timezone,
        "working_days": sorted(settings.working_days),
        "day_start": settings.day_start,
        "day_end": settings.day_end,
        "default_sla_hours": settings.default_sla_hours,
        "reminder_percent": settings.reminder_percent,
    }


def sla_rule_list(*, tenant) -> QuerySet[SLARule]:
    return SLARule.objects.for_tenant(tenant).order_by("created_at", "id")


def holiday_list(*, tenant) -> QuerySet[Holiday]:
    return Holiday.objects.for_tenant(tenant).order_by("date")


def sla_breach_list(*, tenant) -> QuerySet[SLABreach]:
    return SLABreach.objects.for_tenant(tenant).order_by("-breached_at", "id")
