"""Writes for workflow definitions. Every change is validated, versioned and audited."""

from django.db import transaction
from rest_framework.exceptions import ValidationError

from audit.services import audit_record, diff_fields
from config.exceptions import clash_is_invalid
from tenancy.models import Tenant
from tenancy.quotas import lock_tenant, quota_guard
from workflows.models import WorkflowDefinition, WorkflowDefinitionVersion, WorkflowStageDefinition
from workflows.rules import RuleValidationError, parse_rules
from workflows.stages import validate_stages

DEFINITION_FIELDS = (
    "name",
    "description",
    "trigger_conditions",
    "priority",
    "is_active",
    "distinct_approvers",
    "signers",
    "signing_order",
)


def validated_trigger_conditions(conditions) -> dict:
    """The rule, checked against the allow-list; a 400 naming the offending key otherwise."""
    try:
        parse_rules(conditions)
    except RuleValidationError as exc:
        raise ValidationError(
            {"trigger_conditions": [f"{exc.path}: {exc.message}" if exc.path else exc.message]}
        ) from exc
    return conditions


def _snapshot(definition: WorkflowDefinition, stages: list[dict]) -> dict:
    return {
        "name": definition.name,
        "description": definition.description,
        "trigger_conditions": definition.trigger_conditions,
        "priority": definition.priority,
        "distinct_approvers": definition.distinct_approvers,
        "signers": definition.signers,
        "signing_order": definition.signing_order,
        "stages": stages,
    }


def _write_stages(definition: WorkflowDefinition, stages: list[dict]) -> None:
    definition.stages.all().delete()
    WorkflowStageDefinition.objects.bulk_create(
        WorkflowStageDefinition(definition=definition, **stage) for stage in stages
    )
    WorkflowDefinitionVersion.objects.create(
        tenant_id=definition.tenant_id,
        definition=definition,
        version=definition.version,
        snapshot=_snapshot(definition, stages),
    )


def _save_unique(definition: WorkflowDefinition, **kwargs) -> None:
    with clash_is_invalid({"name": ["A workflow definition with this name already exists."]}):
        definition.save(**kwargs)


def _check_active_quota(*, tenant: Tenant, definition: WorkflowDefinition) -> None:
    """One more active definition (``definition``, not active before): within the quota?"""
    others = WorkflowDefinition.objects.for_tenant(tenant).exclude(pk=definition.pk)
    quota_guard("active_workflow_definitions", tenant=tenant, rows=others.filter(is_active=True))


@transaction.atomic
def definition_create(
    *,
    tenant: Tenant,
    created_by,
    name: str,
    stages: list[dict],
    trigger_conditions: dict | None = None,
    description: str = "",
    priority: int = 0,
    is_active: bool = True,
    distinct_approvers: bool = True,
    signers: list[dict] | None = None,
    signing_order: str = "parallel",
) -> WorkflowDefinition:
    conditions = validated_trigger_conditions(
        {} if trigger_conditions is None else trigger_conditions
    )
    stages = validate_stages(stages, tenant=tenant)
    definition = WorkflowDefinition(
        tenant=tenant,
        created_by=created_by,
        name=name,
        description=description,
        trigger_conditions=conditions,
        priority=priority,
        is_active=is_active,
        distinct_approvers=distinct_approvers,
        signers=signers or [],
        signing_order=signing_order,
    )
    if is_active:
        _check_active_quota(tenant=tenant, definition=definition)
    _save_unique(definition)
    _write_stages(definition, stages)
    audit_record(
        action="workflow_definition_created",
        tenant=tenant,
        actor=created_by,
        resource=definition,
        changes={key: [None, value] for key, value in _snapshot(definition, stages).items()},
    )
    return definition


def current_stages(definition: WorkflowDefinition) -> list[dict]:
    return [
        {
            "stage_name": stage.stage_name,
            "sequence": stage.sequence,
            "approvers": list(stage.approvers),
            "approval_type": stage.approval_type,
            "min_approvals": stage.min_approvals,
            "sla_hours": stage.sla_hours,
            "is_required": stage.is_required,
            "reset_on_change": stage.reset_on_change,
        }
        for stage in definition.stages.all()
    ]


@transaction.atomic
def definition_update(*, definition_id, tenant: Tenant, updated_by, **fields) -> WorkflowDefinition:
    """Apply a (partial) edit. Any change bumps ``version``; running instances keep theirs."""
    if fields.get("is_active"):
        lock_tenant(tenant)  # before the definition's row: the lock order of every quota check
    definition = (
        WorkflowDefinition.objects.for_tenant(tenant).select_for_update().get(pk=definition_id)
    )
    before_stages = current_stages(definition)
    before = _snapshot(definition, before_stages) | {"is_active": definition.is_active}
    if "trigger_conditions" in fields:
        fields["trigger_conditions"] = validated_trigger_conditions(fields["trigger_conditions"])
    stages = before_stages
    if "stages" in fields:
        stages = validate_stages(fields.pop("stages"), tenant=tenant)
    for field, value in fields.items():
        if field not in DEFINITION_FIELDS:
            raise TypeError(f"definition_update() got an unexpected field {field!r}")
        setattr(definition, field, value)
    after = _snapshot(definition, stages) | {"is_active": definition.is_active}
    changes = diff_fields(before, after)
    if not changes:
        return definition
    if "is_active" in changes and definition.is_active:
        _check_active_quota(tenant=tenant, definition=definition)
    definition.version += 1
    _save_unique(definition)
    _write_stages(definition, stages)
    audit_record(
        action="workflow_definition_updated",
        tenant=tenant,
        actor=updated_by,
        resource=definition,
        changes=changes | {"version": [definition.version - 1, definition.version]},
    )
    return definition


@transaction.atomic
def definition_delete(*, definition_id, tenant: Tenant, deleted_by) -> bool:
    """Delete, or only deactivate when instances reference it (their history must stay).

    Returns True when the row was really deleted.
    """
    definition = (
        WorkflowDefinition.objects.for_tenant(tenant).select_for_update().get(pk=definition_id)
    )
    has_instances = definition.instances.exists()
    audit_record(
        action="workflow_definition_deleted",
        tenant=tenant,
        actor=deleted_by,
        resource=definition,
        changes={"is_active": [definition.is_active, False]}
        | ({} if has_instances else {"name": [definition.name, None]}),
    )
    if has_instances:
        if definition.is_active:
            definition.is_active = False
            definition.save(update_fields=["is_active", "updated_at"])
        return False
    definition.delete()
    return True
