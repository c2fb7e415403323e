"""Concurrent decisions on real PostgreSQL: threads released together by a barrier.

Each thread has its own database connection (Django connections are per thread) and closes it
when done. The orchestrator serializes decisions on one workflow by locking the instance row (a
start locks the contract row); these tests check that nothing double-advances and that every
loser of a race gets a clean 409.
"""

from decimal import Decimal

import pytest
from rest_framework.exceptions import ValidationError

from approvals.lifecycle import contract_create
from approvals.models import (
    ApprovalStatus,
    InstanceStatus,
    StageStatus,
    WorkflowInstance,
    WorkflowStage,
    WorkflowStageApproval,
)
from approvals.orchestrator import approval_act, workflow_cancel, workflow_start
from audit.models import AuditLog
from config.exceptions import Conflict
from contracts.models import ContractStatus
from tests.factories import ContractFactory, UserFactory, UserRoleFactory
from tests.support import run_together
from workflows.models import WorkflowDefinition, WorkflowDefinitionVersion
from workflows.services import definition_create, definition_update

pytestmark = pytest.mark.django_db(transaction=True)


def outcomes(results) -> list[str]:
    """'ok', 'conflict', or the unexpected exception's repr (which fails the comparisons)."""
    named = []
    for kind, value in results:
        if kind == "ok":
            named.append("ok")
        elif isinstance(value, Conflict):
            assert value.status_code == 409
            named.append("conflict")
        else:
            named.append(repr(value))
    return named


def holder(tenant, role):
    return UserRoleFactory(user=UserFactory(tenant=tenant), role=role).user


def define(tenant, stages, **fields):
    admin = UserFactory(tenant=tenant, is_tenant_admin=True)
    return definition_create(
        tenant=tenant,
        created_by=admin,
        name=fields.pop("name", "Concurrent"),
        stages=stages,
        **fields,
    )


def stage(name, sequence, approvers, approval_type="all"):
    return {
        "stage_name": name,
        "sequence": sequence,
        "approvers": approvers,
        "approval_type": approval_type,
    }


def new_contract(tenant, **fields):
    """Created through the service, so the matching workflow starts as in production."""
    creator = UserFactory(tenant=tenant)
    return contract_create(
        tenant=tenant,
        created_by=creator,
        title=fields.pop("title", "Contract"),
        contract_type="MSA",
        value=Decimal("1000.00"),
        **fields,
    )


def approve(tenant, contract, actor, action="approve", **extra):
    return lambda: approval_act(
        tenant=tenant, contract_id=contract.pk, actor=actor, action=action, **extra
    )


def audit_count(action, **filters) -> int:
    return AuditLog.objects.filter(action=action, **filters).count()


def instance_of(contract) -> WorkflowInstance:
    return WorkflowInstance.objects.get(contract=contract)


# --- (a) many approvers of an `any` stage -----------------------------------------------------


@pytest.mark.parametrize(
    "shared_role", [False, True], ids=["eight-roles", "one-role-eight-holders"]
)
def test_any_stage_with_eight_racing_approvers_advances_once(tenant, shared_role):
    n = 8
    roles = ["legal"] * n if shared_role else [f"role{i}" for i in range(n)]
    approvers = [holder(tenant, role) for role in roles]
    define(
        tenant,
        [
            stage("Any", 1, sorted(set(roles)), approval_type="any"),
            stage("Next", 2, ["ceo", "cfo"]),
        ],
    )
    contract = new_contract(tenant)
    instance = instance_of(contract)
    first = WorkflowStage.objects.get(instance=instance, sequence=1)
    second = WorkflowStage.objects.get(instance=instance, sequence=2)
    assert WorkflowStageApproval.objects.filter(stage=first).count() == len(set(roles))

    results = run_together(*(approve(tenant, contract, actor) for actor in approvers))

    assert sorted(outcomes(results)) == ["conflict"] * (n - 1) + ["ok"]
    rows = list(WorkflowStageApproval.objects.filter(stage=first))
    statuses = sorted(row.status for row in rows)
    assert statuses == [ApprovalStatus.APPROVED] + [ApprovalStatus.SKIPPED] * (len(rows) - 1)
    (winner_row,) = [row for row in rows if row.status == ApprovalStatus.APPROVED]
    winner = next(
        actor for (kind, _), actor in zip(results, approvers, strict=True) if kind == "ok"
    )
    assert winner_row.decided_by_id == winner.pk
    # The next stage's approvals exist exactly once, and every transition was written once.
    assert sorted(
        WorkflowStageApproval.objects.filter(stage=second).values_list("approver", flat=True)
    ) == ["ceo", "cfo"]
    assert WorkflowStageApproval.objects.filter(instance=instance).count() == len(rows) + 2
    assert audit_count("stage_completed", resource_id=str(first.pk)) == 1
    assert audit_count("stage_started", resource_id=str(second.pk)) == 1
    assert audit_count("approval_approved") == 1
    assert audit_count("approval_skipped") == len(rows) - 1
    instance.refresh_from_db()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (instance.status, instance.current_sequence) == (InstanceStatus.ACTIVE, 2)
    assert (first.status, second.status) == (StageStatus.APPROVED, StageStatus.PENDING)


# --- (b) approve racing delegate on the same row ----------------------------------------------


def test_approve_racing_delegate_on_the_same_row(tenant):
    approver, delegator = holder(tenant, "legal"), holder(tenant, "legal")
    stand_in = UserFactory(tenant=tenant)
    define(tenant, [stage("Legal", 1, ["legal"]), stage("Exec", 2, ["ceo"])])
    for round_number in range(6):
        contract = new_contract(tenant, title=f"Race {round_number}")
        instance = instance_of(contract)
        results = run_together(
            approve(tenant, contract, approver),
            approve(tenant, contract, delegator, "delegate", delegate_to=stand_in),
        )
        named = outcomes(results)
        assert sorted(named) == ["conflict", "ok"], named
        approve_won = named[0] == "ok"

        instance.refresh_from_db()
        legal_rows = list(
            WorkflowStageApproval.objects.filter(instance=instance, stage__sequence=1).order_by(
                "created_at"
            )
        )
        exec_rows = WorkflowStageApproval.objects.filter(instance=instance, stage__sequence=2)
        decisions = AuditLog.objects.filter(
            action__in=["approval_approved", "approval_delegated"],
            resource_id__in=[str(row.pk) for row in legal_rows],
        )
        assert decisions.count() == 1
        if approve_won:
            assert [(row.status, row.decided_by_id) for row in legal_rows] == [
                (ApprovalStatus.APPROVED, approver.pk)
            ]
            assert instance.current_sequence == 2
            assert list(exec_rows.values_list("status", flat=True)) == [ApprovalStatus.PENDING]
        else:
            assert [(row.status, row.assigned_to_id) for row in legal_rows] == [
                (ApprovalStatus.DELEGATED, None),
                (ApprovalStatus.PENDING, stand_in.pk),
            ]
            assert legal_rows[0].delegated_to_id == stand_in.pk
            assert legal_rows[1].delegated_from_id == legal_rows[0].pk
            assert instance.current_sequence == 1
            assert not exec_rows.exists()
            # The delegate can finish the stage; the losers still cannot.
            approval_act(tenant=tenant, contract_id=contract.pk, actor=stand_in, action="approve")
            instance.refresh_from_db()
            assert instance.current_sequence == 2


# --- (c) two starts racing on one contract ----------------------------------------------------


@pytest.mark.parametrize("explicit", [True, False], ids=["explicit-definition", "match-engine"])
def test_two_starts_racing_create_one_instance(tenant, explicit):
    holder(tenant, "legal")
    definition = define(
        tenant,
        [stage("Legal", 1, ["legal", "finance"]), stage("Exec", 2, ["ceo"])],
        trigger_conditions={"title": "Start me"},
    )
    contract = ContractFactory(created_by=UserFactory(tenant=tenant), title="Start me")
    assert contract.status == ContractStatus.DRAFT
    # Naming a definition (and starting another's contract) takes `workflows.manage`.
    starters = [UserFactory(tenant=tenant, is_tenant_admin=True) for _ in range(2)]

    results = run_together(
        *(
            lambda starter=starter: workflow_start(
                contract=contract, started_by=starter, definition=definition if explicit else None
            )
            for starter in starters
        )
    )

    assert sorted(outcomes(results)) == ["conflict", "ok"]
    (instance,) = WorkflowInstance.objects.filter(contract=contract)
    assert instance.status == InstanceStatus.ACTIVE
    assert WorkflowStage.objects.filter(instance=instance).count() == 2
    assert sorted(
        WorkflowStageApproval.objects.filter(instance=instance).values_list("approver", flat=True)
    ) == ["finance", "legal"]
    assert audit_count("workflow_started") == 1
    assert audit_count("stage_started") == 1
    contract.refresh_from_db()
    assert contract.status == ContractStatus.IN_REVIEW


# --- (d) both approvers of an `all` stage at once ---------------------------------------------


def test_all_stage_with_two_roles_approved_at_once_completes_once(tenant):
    legal, finance = holder(tenant, "legal"), holder(tenant, "finance")
    define(tenant, [stage("Joint", 1, ["legal", "finance"]), stage("Exec", 2, ["ceo", "cfo"])])
    for round_number in range(4):
        contract = new_contract(tenant, title=f"Joint {round_number}")
        instance = instance_of(contract)
        joint = WorkflowStage.objects.get(instance=instance, sequence=1)
        exec_stage = WorkflowStage.objects.get(instance=instance, sequence=2)

        results = run_together(approve(tenant, contract, legal), approve(tenant, contract, finance))

        assert outcomes(results) == ["ok", "ok"]
        assert sorted(joint.approvals.values_list("status", flat=True)) == [
            ApprovalStatus.APPROVED,
            ApprovalStatus.APPROVED,
        ]
        assert audit_count("stage_completed", resource_id=str(joint.pk)) == 1
        assert audit_count("stage_started", resource_id=str(exec_stage.pk)) == 1
        assert sorted(exec_stage.approvals.values_list("approver", flat=True)) == ["ceo", "cfo"]
        instance.refresh_from_db()
        joint.refresh_from_db()
        assert instance.current_sequence == 2
        assert joint.status == StageStatus.APPROVED


# --- approve racing cancel --------------------------------------------------------------------


def test_approve_racing_cancel_leaves_a_cancelled_consistent_workflow(tenant):
    legal = holder(tenant, "legal")
    define(tenant, [stage("Legal", 1, ["legal"]), stage("Exec", 2, ["ceo"])])
    for round_number in range(4):
        contract = new_contract(tenant, title=f"Cancel {round_number}")
        results = run_together(
            approve(tenant, contract, legal),
            lambda contract=contract: workflow_cancel(
                tenant=tenant, contract_id=contract.pk, actor=contract.created_by
            ),
        )
        named = outcomes(results)
        assert named[1] == "ok", named  # the cancel always finds an active workflow
        assert named[0] in ("ok", "conflict"), named
        instance = instance_of(contract)
        assert instance.status == InstanceStatus.CANCELLED
        assert not instance.approvals.filter(status=ApprovalStatus.PENDING).exists()
        assert not instance.stages.filter(
            status__in=[StageStatus.PENDING, StageStatus.WAITING]
        ).exists()
        contract.refresh_from_db()
        assert contract.status == ContractStatus.CANCELLED
        assert audit_count("workflow_cancelled", resource_id=str(instance.pk)) == 1


# --- definitions ------------------------------------------------------------------------------


def test_racing_edits_of_one_definition_each_get_their_own_version(tenant):
    definition = define(tenant, [stage("Legal", 1, ["legal"])])
    editors = [UserFactory(tenant=tenant, is_tenant_admin=True) for _ in range(4)]

    results = run_together(
        *(
            lambda index=index, editor=editor: definition_update(
                definition_id=definition.pk, tenant=tenant, updated_by=editor, priority=index + 1
            )
            for index, editor in enumerate(editors)
        )
    )

    assert outcomes(results) == ["ok"] * 4
    definition.refresh_from_db()
    assert definition.version == 5
    assert sorted(
        WorkflowDefinitionVersion.objects.filter(definition=definition).values_list(
            "version", flat=True
        )
    ) == [1, 2, 3, 4, 5]
    updates = AuditLog.objects.filter(
        action="workflow_definition_updated", resource_id=str(definition.pk)
    )
    assert sorted(row.changes["version"][1] for row in updates) == [2, 3, 4, 5]


def test_racing_creates_with_one_name_give_one_definition_and_a_400(tenant):
    admins = [UserFactory(tenant=tenant, is_tenant_admin=True) for _ in range(2)]

    results = run_together(
        *(
            lambda admin=admin: definition_create(
                tenant=tenant,
                created_by=admin,
                name="Same name",
                stages=[stage("Legal", 1, ["legal"])],
            )
            for admin in admins
        )
    )

    kinds = sorted(kind for kind, _ in results)
    assert kinds == ["error", "ok"]
    (error,) = [value for kind, value in results if kind == "error"]
    assert isinstance(error, ValidationError), repr(error)
    assert "name" in error.detail
    assert WorkflowDefinition.objects.filter(tenant=tenant, name="Same name").count() == 1
    assert WorkflowDefinitionVersion.objects.count() == 1
