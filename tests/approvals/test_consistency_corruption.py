"""The consistency check is loud on hand-made corruption, of running and of sent-back workflows."""

import uuid

import pytest
from django.utils import timezone

from approvals.consistency import consistency_check
from approvals.models import WorkflowInstance, WorkflowStage, WorkflowStageApproval
from contracts.models import Contract, ContractRevision
from tests.factories import ContractFactory, TenantFactory, UserFactory
from tests.fixtures import _row, assert_consistent
from tests.fixtures import consistency_act as act
from tests.fixtures import consistency_create as create
from tests.fixtures import consistency_patch as patch

# The check reads every tenant's rows, as ``check_consistency`` does in its bypass, and the
# hand-made corruptions are an operator's edits behind the services' back.
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.rls_bypass("the consistency check and hand-made corruption span tenants"),
]


def codes(tenant_id=None) -> set[str]:
    return {violation.code for violation in consistency_check(tenant_id=tenant_id).violations}


# --- hand-made corruption is reported ---------------------------------------------------------


def _stage(instance, sequence) -> WorkflowStage:
    return instance.stages.get(sequence=sequence)


def _copy(row: WorkflowStageApproval, **changes) -> None:
    row.pk = uuid.uuid4()
    for name, value in changes.items():
        setattr(row, name, value)
    row.save(force_insert=True)


def _finish_half_way(instance) -> None:
    """The instance row says completed; nothing else was written."""
    WorkflowInstance.objects.filter(pk=instance.pk).update(
        status="completed", current_sequence=None, completed_at=timezone.now()
    )


CORRUPTIONS = {
    "pending row deleted": (
        lambda i: _row(i, "finance").delete(),
        {"missing_approval"},
    ),
    "duplicate pending row": (lambda i: _copy(_row(i, "cfo")), {"duplicate_approval"}),
    "decided row left without settling its stage": (
        lambda i: WorkflowStageApproval.objects.filter(pk=_row(i, "cfo").pk).update(
            status="approved"
        ),
        {"stage_should_have_settled"},
    ),
    "row in a stage not yet opened": (
        lambda i: _copy(_row(i, "cfo"), stage=_stage(i, 3), approver="ceo", role="ceo"),
        {"approval_in_unopened_stage"},
    ),
    "row skipped in an open stage": (
        lambda i: WorkflowStageApproval.objects.filter(pk=_row(i, "cfo").pk).update(
            status="skipped"
        ),
        {"closed_approval_in_open_stage"},
    ),
    "later stage opened early without rows": (
        lambda i: WorkflowStage.objects.filter(pk=_stage(i, 3).pk).update(status="pending"),
        {"stage_out_of_order", "missing_approval"},
    ),
    "current stage settled but the workflow not advanced": (
        lambda i: WorkflowStage.objects.filter(pk=_stage(i, 2).pk).update(status="approved"),
        {"current_stage_not_open", "pending_approval_in_settled_stage"},
    ),
    "required stage rejected in an active workflow": (
        lambda i: WorkflowStage.objects.filter(pk=_stage(i, 1).pk).update(status="rejected"),
        {"stage_out_of_order"},
    ),
    "instance finished, nothing else": (
        _finish_half_way,
        {"pending_approval_in_finished_workflow", "stage_out_of_order", "contract_status_mismatch"},
    ),
    "contract status out of step": (
        lambda i: Contract.objects.filter(pk=i.contract_id).update(status="approved"),
        {"contract_status_mismatch"},
    ),
    "approval row of another tenant": (
        lambda i: WorkflowStageApproval.objects.filter(pk=_row(i, "cfo").pk).update(
            tenant=TenantFactory()
        ),
        {"tenant_mismatch"},
    ),
    "stage row of another tenant": (
        lambda i: WorkflowStage.objects.filter(pk=_stage(i, 3).pk).update(tenant=TenantFactory()),
        {"tenant_mismatch"},
    ),
    "approval row pointing at another workflow": (
        lambda i: WorkflowStageApproval.objects.filter(pk=_row(i, "cfo").pk).update(
            instance=WorkflowInstance.objects.exclude(pk=i.pk).first()
        ),
        {"approval_link_mismatch"},
    ),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corruption_is_reported(at_finance, clients, corruption):
    create(clients)  # a healthy neighbour: its workflow is never reported
    assert_consistent()
    corrupt, expected = CORRUPTIONS[corruption]
    corrupt(at_finance)
    report = consistency_check()
    assert {violation.code for violation in report.violations} == expected
    assert {violation.contract_id for violation in report.violations} == {at_finance.contract_id}


def test_pending_row_in_a_completed_workflow(clients, definitions):
    contract_id = create(clients)
    for role in ("legal", "finance", "ceo"):
        act(clients[role], contract_id)
    instance = WorkflowInstance.objects.get(contract_id=contract_id, status="completed")
    instance.approvals.filter(approver="ceo").update(status="pending")
    assert codes() == {"pending_approval_in_finished_workflow"}


def test_delegation_without_successor(clients, definitions, people):
    contract_id = create(clients)
    act(clients["legal"], contract_id, "delegate", delegate_to=str(people["stand_in"].pk))
    WorkflowStageApproval.objects.filter(delegated_from__isnull=False).delete()
    assert codes() == {"delegation_broken", "missing_approval"}


def test_contract_in_review_without_a_workflow(clients, definitions):
    contract_id = create(clients, "NONE")
    Contract.objects.filter(pk=contract_id).update(status="in_review")
    [violation] = consistency_check().violations
    assert violation.code == "contract_status_mismatch"
    assert "no workflow" in violation.detail


def test_tenant_filter(at_finance, tenant, other_tenant):
    ContractFactory(created_by=UserFactory(tenant=other_tenant), status="in_review")
    assert codes(tenant.pk) == set()
    assert codes(other_tenant.pk) == {"contract_status_mismatch"}
    # A cross-tenant row is reported under both tenants.
    WorkflowStageApproval.objects.filter(pk=_row(at_finance, "cfo").pk).update(tenant=other_tenant)
    assert codes(tenant.pk) == {"tenant_mismatch"}
    assert codes(other_tenant.pk) == {"contract_status_mismatch", "tenant_mismatch"}


# --- approval integrity: hand-made corruption -------------------------------------------------


def _complete(clients, contract_type="SEQ") -> WorkflowInstance:
    contract_id = create(clients, contract_type)
    approvers = (
        ("legal", "cfo", "ceo") if contract_type == "SEQ" else ("legal", "cfo", "ceo", "risk")
    )
    for role in approvers:
        act(clients[role], contract_id)
    return WorkflowInstance.objects.get(contract_id=contract_id, status="completed")


def _edit_behind_the_services_back(contract_id, *changed: str) -> None:
    """A new revision changing ``changed``, with no re-review: what the lock prevents."""
    contract = Contract.objects.get(pk=contract_id)
    ContractRevision.objects.create(
        tenant_id=contract.tenant_id,
        contract=contract,
        number=contract.revision + 1,
        content_hash="0" * 64,
        content={},
        changed_fields=list(changed),
    )
    Contract.objects.filter(pk=contract_id).update(revision=contract.revision + 1)


@pytest.mark.parametrize(
    ("changed", "stale_stages"),
    [
        (("text",), set()),  # Legal: ["value"], Finance: never, Board: ["title"]
        (("title",), {"Board"}),
        (("value", "title"), {"Legal", "Board"}),
    ],
)
def test_approval_on_stale_revision_follows_the_stage_policies(
    clients, reset_definitions, changed, stale_stages
):
    instance = _complete(clients, "RST")
    _complete(clients, "RST")  # a healthy neighbour
    _edit_behind_the_services_back(instance.contract_id, *changed)
    violations = consistency_check().violations
    assert {violation.code for violation in violations} <= {"approval_on_stale_revision"}
    assert {violation.contract_id for violation in violations} <= {instance.contract_id}
    flagged = {violation.detail.split('"')[1] for violation in violations}
    assert flagged == stale_stages
    board = [violation for violation in violations if '"Board"' in violation.detail]
    assert len(board) == (2 if "Board" in stale_stages else 0)  # the CEO's and risk's


def test_approval_on_stale_revision_under_the_default_policy(clients, definitions):
    instance = _complete(clients)
    _edit_behind_the_services_back(instance.contract_id, "metadata")
    _edit_behind_the_services_back(instance.contract_id)  # and an edit changing nothing
    violations = consistency_check().violations
    assert [violation.code for violation in violations] == ["approval_on_stale_revision"] * 3
    assert "decided on revision 1; the contract is approved at revision 3, and metadata" in (
        violations[0].detail
    )
    # Only an approved contract is held to it: in review, the reset is the orchestrator's job.
    Contract.objects.filter(pk=instance.contract_id).update(status="draft")
    assert "approval_on_stale_revision" not in codes()


def test_approval_on_stale_revision_ignores_optional_stages(clients, definitions, people):
    contract_id = create(clients, "PAR")
    for role in ("security", "legal", "named", "privacy", "finance", "ceo"):
        act(clients[role], contract_id)
    assert Contract.objects.get(pk=contract_id).status == "approved"
    WorkflowStageApproval.objects.filter(contract_id=contract_id).exclude(
        stage__stage_name="Ops"
    ).update(revision=2)
    _edit_behind_the_services_back(contract_id, "text")
    assert_consistent()  # only the optional Ops approval is older


def test_approver_decided_twice(clients, definitions, people):
    instance = _complete(clients)
    instance.approvals.filter(approver="ceo").update(decided_by=people["legal"])
    [violation] = consistency_check().violations
    assert violation.code == "approver_decided_twice"
    assert violation.detail.startswith(f"user {people['legal'].pk} decided 2 approvals")
    # A superseded decision does not count, nor an instance that allows one person twice.
    instance.approvals.filter(approver="ceo").update(status="superseded")
    assert "approver_decided_twice" not in codes()
    instance.approvals.filter(approver="ceo").update(status="rejected")
    WorkflowInstance.objects.filter(pk=instance.pk).update(distinct_approvers=False)
    assert "approver_decided_twice" not in codes()


@pytest.fixture
def requested(clients, definitions):
    """A SEQ workflow sent back for changes from its "any" stage 2."""
    contract_id = create(clients)
    act(clients["legal"], contract_id)
    act(clients["finance"], contract_id, "request_changes", comments="Fix it.")
    instance = WorkflowInstance.objects.get(contract_id=contract_id)
    assert instance.status == "changes_requested"
    return instance


NEW_STATE_CORRUPTIONS = {
    "superseded row is not live": (
        lambda i: i.approvals.filter(approver="cfo").update(status="superseded"),
        {"missing_approval"},
    ),
    "contract in review while changes are requested": (
        lambda i: Contract.objects.filter(pk=i.contract_id).update(status="in_review"),
        {"contract_status_mismatch"},
    ),
    "changes requested on a settled stage": (
        lambda i: WorkflowStage.objects.filter(pk=_stage(i, 2).pk).update(status="approved"),
        {"current_stage_not_open", "pending_approval_in_settled_stage"},
    ),
    "decided row in a stage never opened": (
        lambda i: _copy(
            _row(i, "cfo"), stage=_stage(i, 3), approver="ceo", role="ceo", status="approved"
        ),
        {"approval_in_unopened_stage"},
    ),
    "later stage settled without a reset": (
        lambda i: WorkflowStage.objects.filter(pk=_stage(i, 3).pk).update(status="approved"),
        {"stage_out_of_order"},
    ),
}


@pytest.mark.parametrize("corruption", list(NEW_STATE_CORRUPTIONS))
def test_corruption_of_a_workflow_sent_back_is_reported(requested, corruption):
    assert_consistent()
    corrupt, expected = NEW_STATE_CORRUPTIONS[corruption]
    corrupt(requested)
    report = consistency_check()
    assert {violation.code for violation in report.violations} == expected
    assert {violation.contract_id for violation in report.violations} == {requested.contract_id}


def test_a_reset_leaves_no_pending_row_in_a_waiting_stage(clients, reset_definitions):
    contract_id = create(clients, "RST")
    for role in ("legal", "cfo", "ceo"):
        act(clients[role], contract_id)
    patch(clients, contract_id, value="2500.00")  # Board waits again, keeping the CEO's decision
    assert_consistent()
    WorkflowStageApproval.objects.filter(
        contract_id=contract_id, approver="risk", status="superseded"
    ).update(status="pending")
    assert codes() == {"approval_in_unopened_stage"}
