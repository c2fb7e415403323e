"""Who may decide, checked by the service itself (the API tests check the same through HTTP):
four-eyes (the contract's creator never decides it) and role expiry judged at decision time."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied

from approvals.lifecycle import contract_create
from approvals.models import WorkflowStageApproval
from approvals.orchestrator import approval_act
from audit.models import AuditLog
from tests.factories import UserFactory, UserRoleFactory
from workflows.services import definition_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def define(tenant, tenant_admin):
    def make(approvers):
        return definition_create(
            tenant=tenant,
            created_by=tenant_admin,
            name="Guarded",
            trigger_conditions={"contract_type": "GUARD"},
            stages=[{"stage_name": "Review", "sequence": 1, "approvers": approvers}],
        )

    return make


def start(tenant, creator):
    contract = contract_create(
        tenant=tenant, created_by=creator, title="Guarded", contract_type="GUARD"
    )
    assert contract.status == "in_review"
    return contract


def nothing_decided(contract) -> bool:
    rows = WorkflowStageApproval.objects.filter(contract=contract)
    return set(rows.values_list("status", flat=True)) == {"pending"} and not (
        AuditLog.objects.filter(contract=contract.pk, action__startswith="approval_").exists()
    )


@pytest.mark.parametrize("action", ["approve", "reject", "request_changes", "delegate"])
def test_the_creator_never_acts_on_their_own_contract(tenant, define, action):
    creator = UserRoleFactory(user=UserFactory(tenant=tenant), role="legal").user
    define(["legal", f"user:{creator.pk}"])  # holder of the role *and* the named approver
    contract = start(tenant, creator)

    with pytest.raises(PermissionDenied, match="creator may not approve"):
        approval_act(
            tenant=tenant,
            contract_id=contract.pk,
            actor=creator,
            action=action,
            comments="mine",
            delegate_to=UserFactory(tenant=tenant),
        )

    assert nothing_decided(contract)


def test_a_role_expiring_after_the_stage_opened_no_longer_decides(tenant, define, monkeypatch):
    """The role is judged when the decision is made, not when the approval was assigned: at its
    expiry instant it is already expired (``expires_at > now`` holds a role)."""
    decision_at = timezone.now() + timedelta(hours=2)
    lapsing = UserRoleFactory(
        user=UserFactory(tenant=tenant), role="legal", expires_at=decision_at
    ).user
    lasting = UserRoleFactory(
        user=UserFactory(tenant=tenant),
        role="legal",
        expires_at=decision_at + timedelta(microseconds=1),
    ).user
    define(["legal"])
    contract = start(tenant, UserFactory(tenant=tenant))  # both held the role then
    monkeypatch.setattr(timezone, "now", lambda: decision_at)

    with pytest.raises(PermissionDenied, match="not an eligible approver"):
        approval_act(tenant=tenant, contract_id=contract.pk, actor=lapsing, action="approve")
    assert nothing_decided(contract)

    approval_act(tenant=tenant, contract_id=contract.pk, actor=lasting, action="approve")
    row = WorkflowStageApproval.objects.get(contract=contract)
    assert (row.status, row.decided_by) == ("approved", lasting)
