"""A reset never moves a workflow past its current stage.

A stage can hold decisions ahead of the current one: a later stage an earlier reset kept settled
(its own policy did not fire), or the stage that requested changes when an edit meanwhile
re-opened an earlier one. Re-opening such a stage sends it back to ``waiting`` behind the stage
still open; it used to make the workflow jump to it, leaving the earlier stage pending for
nobody to decide, and the contract was then approved without it.
"""

from decimal import Decimal

import pytest

from approvals.consistency import consistency_check
from approvals.lifecycle import contract_create, contract_update
from approvals.models import ApprovalStatus, WorkflowInstance
from approvals.orchestrator import approval_act, workflow_resubmit
from contracts.models import ContractStatus
from tests.factories import UserFactory, UserRoleFactory
from workflows.services import definition_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(tenant):
    made = {"creator": UserFactory(tenant=tenant)}
    for role in ("legal", "finance", "cfo", "ceo"):
        made[role] = UserRoleFactory(user=UserFactory(tenant=tenant), role=role).user
    return made


def define(tenant, stages):
    admin = UserFactory(tenant=tenant, is_tenant_admin=True)
    definition_create(tenant=tenant, created_by=admin, name="Flow", stages=stages)


def start(tenant, people):
    return contract_create(
        tenant=tenant,
        created_by=people["creator"],
        title="MSA",
        contract_type="MSA",
        value=Decimal("1000.00"),
    )


def act(tenant, contract, user, action="approve", **extra):
    approval_act(tenant=tenant, contract_id=contract.pk, actor=user, action=action, **extra)


def edit(tenant, contract, people, **fields):
    contract_update(tenant=tenant, contract_id=contract.pk, updated_by=people["creator"], **fields)


def state(contract) -> tuple:
    instance = WorkflowInstance.objects.get(contract=contract)
    stages = dict(instance.stages.values_list("stage_name", "status"))
    return instance.current_sequence, stages


def assert_consistent() -> None:
    assert consistency_check().violations == []


def test_an_edit_re_opening_only_a_kept_later_stage_stays_at_the_current_one(tenant, people):
    define(
        tenant,
        [
            {
                "stage_name": "Legal",
                "sequence": 1,
                "approvers": ["legal"],
                "reset_on_change": ["value"],
            },
            {
                "stage_name": "Finance",
                "sequence": 2,
                "approvers": ["finance"],
                "reset_on_change": ["title"],
            },
            {"stage_name": "Exec", "sequence": 3, "approvers": ["ceo"]},
        ],
    )
    contract = start(tenant, people)
    act(tenant, contract, people["legal"])
    act(tenant, contract, people["finance"])
    edit(tenant, contract, people, value=Decimal("2000.00"))  # Legal re-opens, Finance kept
    assert state(contract) == (1, {"Legal": "pending", "Finance": "approved", "Exec": "waiting"})
    edit(tenant, contract, people, title="MSA v2")  # only Finance's policy fires
    assert state(contract) == (1, {"Legal": "pending", "Finance": "waiting", "Exec": "waiting"})
    assert_consistent()
    act(tenant, contract, people["legal"])
    assert state(contract) == (2, {"Legal": "approved", "Finance": "pending", "Exec": "waiting"})
    act(tenant, contract, people["finance"])
    act(tenant, contract, people["ceo"])
    contract.refresh_from_db()
    assert contract.status == ContractStatus.APPROVED
    approved = contract.approvals.filter(status=ApprovalStatus.APPROVED)
    assert set(approved.values_list("revision", flat=True)) == {3}
    assert_consistent()


def test_resubmit_after_an_edit_re_opened_an_earlier_stage(tenant, people):
    define(
        tenant,
        [
            {"stage_name": "Legal", "sequence": 1, "approvers": ["legal"]},
            {
                "stage_name": "Final",
                "sequence": 2,
                "approvers": ["finance", "cfo"],
                "reset_on_change": "never",
            },
        ],
    )
    contract = start(tenant, people)
    act(tenant, contract, people["legal"])
    act(tenant, contract, people["finance"])
    act(tenant, contract, people["cfo"], "request_changes", comments="Cap the liability.")
    edit(tenant, contract, people, text="Liability capped.")  # Legal re-opens; Final waits
    assert state(contract) == (1, {"Legal": "pending", "Final": "waiting"})
    assert_consistent()
    # The requesting stage re-opens on resubmit: behind Legal, not in its place.
    workflow_resubmit(tenant=tenant, contract_id=contract.pk, actor=people["creator"])
    assert state(contract) == (1, {"Legal": "pending", "Final": "waiting"})
    assert_consistent()
    act(tenant, contract, people["legal"])
    act(tenant, contract, people["finance"])
    act(tenant, contract, people["cfo"])
    contract.refresh_from_db()
    assert contract.status == ContractStatus.APPROVED
    approved = contract.approvals.filter(status=ApprovalStatus.APPROVED)
    assert sorted(approved.values_list("approver", "revision")) == [
        ("cfo", 2),
        ("finance", 2),
        ("legal", 2),
    ]
    assert_consistent()
