"""Approval integrity under real concurrency: edits racing decisions, requests and resubmits.

Threads released together by a barrier (``tests.support.run_together``), each with its own
connection. Every writer locks the contract row first, so each race has a winner and a loser,
and each round ends in one of the states the rules allow, whichever won: never a contract
approved on content its approvers did not see, never a 500 or a deadlock, and nothing for
``check_consistency`` to report. A small stagger, alternating sides, lets either side win some
rounds while the two still overlap.
"""

import time
from collections import Counter
from decimal import Decimal

import pytest
from rest_framework.exceptions import PermissionDenied

from approvals.consistency import consistency_check
from approvals.lifecycle import contract_create, contract_update
from approvals.models import ApprovalStatus, InstanceStatus, WorkflowInstance
from approvals.orchestrator import approval_act, workflow_resubmit
from audit.models import AuditLog
from config.exceptions import Conflict
from contracts.models import ContractStatus
from tests.factories import UserFactory, UserRoleFactory
from tests.support import run_together
from workflows.services import definition_create

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 10
# Per round: which call starts late (0 the first, 1 the second) and by how many seconds.
STAGGER = ((0, 0.0), (1, 0.01), (0, 0.01), (1, 0.25), (0, 0.25))


def staggered(round_number: int, first, second):
    """The two calls, one of them started a little later (which one, and by how much, varies
    with the round)."""
    late, pause = STAGGER[round_number % len(STAGGER)]

    def delayed(call):
        def run():
            time.sleep(pause)
            return call()

        return run

    return (delayed(first), second) if late == 0 else (first, delayed(second))


def holder(tenant, *roles):
    user = UserFactory(tenant=tenant)
    for role in roles:
        UserRoleFactory(user=user, role=role)
    return user


def stage(name, sequence, approvers, **fields):
    return {"stage_name": name, "sequence": sequence, "approvers": approvers, **fields}


def define(tenant, stages):
    admin = UserFactory(tenant=tenant, is_tenant_admin=True)
    return definition_create(tenant=tenant, created_by=admin, name="Integrity", stages=stages)


def new_contract(tenant, creator, round_number):
    return contract_create(
        tenant=tenant,
        created_by=creator,
        title=f"Race {round_number}",
        contract_type="MSA",
        value=Decimal("1000.00"),
        text="Original text.",
    )


def act(tenant, contract, actor, action="approve", **extra):
    return approval_act(tenant=tenant, contract_id=contract.pk, actor=actor, action=action, **extra)


def refused(result) -> str | None:
    """The loser's refusal: its status code and code; anything else fails the test."""
    kind, value = result
    if kind == "ok":
        return None
    assert isinstance(value, Conflict | PermissionDenied), repr(value)
    return f"{value.status_code} {value.get_codes()}"


def race_approval_and_edit(tenant, contract, approver, editor, round_number, **changes):
    """``approver`` approves while ``editor`` edits the contract, staggered by the round; the
    refusals of both (None for the one that went through)."""
    results = run_together(
        *staggered(
            round_number,
            lambda: act(tenant, contract, approver),
            lambda: contract_update(
                tenant=tenant, contract_id=contract.pk, updated_by=editor, **changes
            ),
        )
    )
    return tuple(map(refused, results))


def assert_consistent(tenant) -> None:
    assert consistency_check(tenant_id=tenant.pk).violations == []


def assert_not_approved_on_stale_content(contract) -> None:
    """An approved contract's live approvals were all made on its current revision."""
    if contract.status != ContractStatus.APPROVED:
        return
    instance = contract.workflow_instances.get(status=InstanceStatus.COMPLETED)
    revisions = set(
        instance.approvals.filter(status=ApprovalStatus.APPROVED).values_list("revision", flat=True)
    )
    assert revisions == {contract.revision}, (revisions, contract.revision)


# --- a PATCH racing the approval of the last stage --------------------------------------------


def test_patch_racing_the_last_approval(tenant):
    """Default policy ("any"): the edit re-opens every stage, so an approval that lost the race
    finds its stage reset (403: its approver has nothing at the re-opened first stage)."""
    legal, ceo = holder(tenant, "legal"), holder(tenant, "ceo")
    creator = UserFactory(tenant=tenant)
    define(tenant, [stage("Legal", 1, ["legal"]), stage("Exec", 2, ["ceo"])])
    seen = Counter()
    for round_number in range(ROUNDS):
        contract = new_contract(tenant, creator, round_number)
        act(tenant, contract, legal)
        approve, edit = race_approval_and_edit(
            tenant, contract, ceo, creator, round_number, text="Edited."
        )
        contract.refresh_from_db()
        instance = WorkflowInstance.objects.get(contract=contract)
        if edit is not None:  # (i) the approval won
            assert approve is None
            assert edit == "409 contract_locked"
            assert (contract.status, contract.revision) == (ContractStatus.APPROVED, 1)
            seen["approval won, edit 409"] += 1
        else:  # (ii) the edit won: everything re-opened, the approval refused
            assert approve == "403 permission_denied", approve
            assert (contract.status, contract.revision) == (ContractStatus.IN_REVIEW, 2)
            assert (instance.status, instance.current_sequence) == (InstanceStatus.ACTIVE, 1)
            assert sorted(instance.approvals.values_list("approver", "status", "revision")) == [
                ("ceo", ApprovalStatus.SUPERSEDED, None),
                ("legal", ApprovalStatus.PENDING, None),
                ("legal", ApprovalStatus.SUPERSEDED, 1),
            ]
            seen["edit won, approval 403"] += 1
        assert_not_approved_on_stale_content(contract)
        assert_consistent(tenant)
    print(f"patch vs last approval (reset any): {dict(seen)}")
    assert set(seen) == {"approval won, edit 409", "edit won, approval 403"}


def test_patch_racing_the_last_approval_of_someone_eligible_at_the_reset_stage(tenant):
    """The last stage's approver also holds the first stage's role: when the edit wins, their
    approval lands on the re-opened first stage, on the new revision, while the earlier
    decisions are superseded (and the workflow is not approved)."""
    legal = holder(tenant, "legal")
    both = holder(tenant, "legal", "ceo")
    creator = UserFactory(tenant=tenant)
    define(tenant, [stage("Legal", 1, ["legal"]), stage("Exec", 2, ["ceo"])])
    seen = Counter()
    for round_number in range(ROUNDS):
        contract = new_contract(tenant, creator, round_number)
        act(tenant, contract, legal)
        approve, edit = race_approval_and_edit(
            tenant, contract, both, creator, round_number, title="Edited"
        )
        assert approve is None, approve
        contract.refresh_from_db()
        instance = WorkflowInstance.objects.get(contract=contract)
        rows = sorted(instance.approvals.values_list("approver", "status", "revision"))
        if edit is not None:
            assert edit == "409 contract_locked"
            assert (contract.status, contract.revision) == (ContractStatus.APPROVED, 1)
            assert rows == [("ceo", "approved", 1), ("legal", "approved", 1)]
            seen["approval won, edit 409"] += 1
        else:
            assert (contract.status, contract.revision) == (ContractStatus.IN_REVIEW, 2)
            assert rows == [
                ("ceo", ApprovalStatus.PENDING, None),
                ("ceo", ApprovalStatus.SUPERSEDED, None),
                ("legal", ApprovalStatus.APPROVED, 2),
                ("legal", ApprovalStatus.SUPERSEDED, 1),
            ]
            assert instance.current_sequence == 2
            # Distinct approvers: the one who just approved Legal cannot also sign off Exec.
            with pytest.raises(PermissionDenied):
                act(tenant, contract, both)
            seen["edit won, approval on the new revision"] += 1
        assert_not_approved_on_stale_content(contract)
        assert_consistent(tenant)
    print(f"patch vs last approval (approver of both): {dict(seen)}")
    assert set(seen) == {"approval won, edit 409", "edit won, approval on the new revision"}


def test_patch_racing_the_last_approval_when_no_policy_fires(tenant):
    """Policies that ignore the text: the edit resets nothing, so whichever wins, the approval
    stands; it is made on the new revision when the edit went first."""
    legal, ceo = holder(tenant, "legal"), holder(tenant, "ceo")
    creator = UserFactory(tenant=tenant)
    define(
        tenant,
        [
            stage("Legal", 1, ["legal"], reset_on_change=["value"]),
            stage("Exec", 2, ["ceo"], reset_on_change="never"),
        ],
    )
    seen = Counter()
    for round_number in range(ROUNDS):
        contract = new_contract(tenant, creator, round_number)
        act(tenant, contract, legal)
        approve, edit = race_approval_and_edit(
            tenant, contract, ceo, creator, round_number, text="Edited."
        )
        assert approve is None, approve
        contract.refresh_from_db()
        assert contract.status == ContractStatus.APPROVED
        exec_row = contract.approvals.get(approver="ceo")
        if edit is not None:
            assert edit == "409 contract_locked"
            assert contract.revision == exec_row.revision == 1
            seen["approval won, edit 409"] += 1
        else:
            assert contract.revision == exec_row.revision == 2
            seen["edit won, approval on the new revision"] += 1
        assert_consistent(tenant)
    print(f"patch vs last approval (no policy fires): {dict(seen)}")
    assert set(seen) == {"approval won, edit 409", "edit won, approval on the new revision"}


def test_patch_racing_the_last_approval_through_the_api(tenant, api_client_for):
    legal, ceo = holder(tenant, "legal"), holder(tenant, "ceo")
    creator = UserFactory(tenant=tenant)
    define(tenant, [stage("Legal", 1, ["legal"]), stage("Exec", 2, ["ceo"])])
    seen = Counter()
    for round_number in range(ROUNDS):
        contract = new_contract(tenant, creator, round_number)
        act(tenant, contract, legal)
        url = f"/api/contracts/{contract.pk}/"
        approver, editor = api_client_for(ceo), api_client_for(creator)
        results = run_together(
            *staggered(
                round_number,
                lambda url=url, client=approver: client.post(
                    f"{url}approve/", {"action": "approve"}
                ),
                lambda url=url, client=editor: client.patch(
                    url, {"text": "Edited."}, format="json"
                ),
            )
        )
        assert [kind for kind, _ in results] == ["ok", "ok"], results
        approve, edit = (response for _, response in results)
        contract.refresh_from_db()
        if edit.status_code == 409:
            assert edit.json()["code"] == "contract_locked"
            assert approve.status_code == 200, approve.json()
            assert approve.json()["status"] == "completed"
            assert (contract.status, contract.revision) == (ContractStatus.APPROVED, 1)
            seen["approval won, edit 409"] += 1
        else:
            assert edit.status_code == 200, edit.json()
            assert (edit.json()["status"], edit.json()["revision"]) == ("in_review", 2)
            assert approve.status_code == 403, approve.json()
            assert (contract.status, contract.revision) == (ContractStatus.IN_REVIEW, 2)
            seen["edit won, approval 403"] += 1
        assert_not_approved_on_stale_content(contract)
        assert_consistent(tenant)
    print(f"patch vs last approval (API): {dict(seen)}")
    assert set(seen) == {"approval won, edit 409", "edit won, approval 403"}


# --- request changes racing an approval of the same stage -------------------------------------


@pytest.mark.parametrize("approval_type", ["any", "all"])
def test_request_changes_racing_an_approval_of_the_same_stage(tenant, approval_type):
    """The last stage has two approvers; one approves while the other sends the contract back.

    ``any``: whichever is first settles it (the approval completes the workflow, the request
    is then 409; or the request wins and the approval is 409). ``all``: an approval first
    leaves the stage open, so the request then succeeds too.
    """
    legal, finance, cfo = holder(tenant, "legal"), holder(tenant, "finance"), holder(tenant, "cfo")
    creator = UserFactory(tenant=tenant)
    define(
        tenant,
        [
            stage("Legal", 1, ["legal"]),
            stage("Final", 2, ["finance", "cfo"], approval_type=approval_type),
        ],
    )
    seen = Counter()
    for round_number in range(ROUNDS):
        contract = new_contract(tenant, creator, round_number)
        act(tenant, contract, legal)
        results = run_together(
            *staggered(
                round_number,
                lambda contract=contract: act(tenant, contract, cfo),
                lambda contract=contract: act(
                    tenant, contract, finance, "request_changes", comments="Fix clause 4."
                ),
            )
        )
        approve, request = map(refused, results)
        contract.refresh_from_db()
        instance = WorkflowInstance.objects.get(contract=contract)
        cfo_row = contract.approvals.get(approver="cfo")
        if request is not None:  # the approval settled the "any" stage first
            assert approval_type == "any"
            assert approve is None
            assert request == "409 workflow_not_active"
            assert contract.status == ContractStatus.APPROVED
            seen["approval won, request 409"] += 1
        elif approve is not None:  # the request won: nobody decides until resubmitted
            assert approve == "409 changes_requested"
            assert contract.status == ContractStatus.CHANGES_REQUESTED
            assert cfo_row.status == ApprovalStatus.PENDING
            seen["request won, approval 409"] += 1
        else:  # "all": the approval, then the request on the stage still open
            assert approval_type == "all"
            assert contract.status == ContractStatus.CHANGES_REQUESTED
            assert (cfo_row.status, cfo_row.revision) == (ApprovalStatus.APPROVED, 1)
            seen["approval, then request"] += 1
        assert_consistent(tenant)
        if contract.status == ContractStatus.CHANGES_REQUESTED:
            assert instance.status == InstanceStatus.CHANGES_REQUESTED
            # Resubmitted unchanged: the requesting stage re-opens (its decisions superseded)
            # and both approvers of the last stage decide again.
            workflow_resubmit(tenant=tenant, contract_id=contract.pk, actor=creator)
            act(tenant, contract, cfo)
            if approval_type == "all":
                act(tenant, contract, finance)
            contract.refresh_from_db()
            assert contract.status == ContractStatus.APPROVED
            assert_not_approved_on_stale_content(contract)
            assert_consistent(tenant)
    print(f"request changes vs approve ({approval_type}): {dict(seen)}")
    expected = {"any": "approval won, request 409", "all": "approval, then request"}
    assert set(seen) == {expected[approval_type], "request won, approval 409"}


# --- resubmit racing a PATCH -------------------------------------------------------------------


def test_resubmit_racing_a_patch(tenant):
    """Both succeed in either order (an edit is accepted while changes are requested) and end
    in the same state: the text change re-opened Legal, on revision 2, the workflow active."""
    legal, finance, cfo = holder(tenant, "legal"), holder(tenant, "finance"), holder(tenant, "cfo")
    creator = UserFactory(tenant=tenant)
    define(
        tenant,
        [
            stage("Legal", 1, ["legal"]),
            stage("Final", 2, ["finance", "cfo"], approval_type="any"),
        ],
    )
    seen = Counter()
    for round_number in range(ROUNDS):
        contract = new_contract(tenant, creator, round_number)
        act(tenant, contract, legal)
        act(tenant, contract, finance, "request_changes", comments="Fix clause 4.")
        results = run_together(
            *staggered(
                round_number,
                lambda contract=contract: workflow_resubmit(
                    tenant=tenant, contract_id=contract.pk, actor=creator
                ),
                lambda contract=contract: contract_update(
                    tenant=tenant, contract_id=contract.pk, updated_by=creator, text="Fixed."
                ),
            )
        )
        assert [refused(result) for result in results] == [None, None]
        contract.refresh_from_db()
        instance = WorkflowInstance.objects.get(contract=contract)
        assert (contract.status, contract.revision) == (ContractStatus.IN_REVIEW, 2)
        assert (instance.status, instance.current_sequence) == (InstanceStatus.ACTIVE, 1)
        assert instance.changes_requested_stage_id is None
        legal_rows = contract.approvals.filter(approver="legal")
        assert sorted(legal_rows.values_list("status", "revision")) == [
            (ApprovalStatus.PENDING, None),
            (ApprovalStatus.SUPERSEDED, 1),
        ]
        assert (
            not contract.approvals.filter(stage__stage_name="Final")
            .exclude(status=ApprovalStatus.SUPERSEDED)
            .exists()
        )
        assert_consistent(tenant)
        # Which went first shows in the audit trail: the revision the resubmission saw.
        resubmitted = AuditLog.objects.get(
            action="workflow_resubmitted", resource_id=str(instance.pk)
        )
        edit_first = resubmitted.changes["revision"] == [1, 2]
        seen["edit first" if edit_first else "resubmit first"] += 1
        act(tenant, contract, legal)
        act(tenant, contract, cfo)
        contract.refresh_from_db()
        assert contract.status == ContractStatus.APPROVED
        assert_not_approved_on_stale_content(contract)
        assert_consistent(tenant)
    print(f"resubmit vs patch: {dict(seen)}")
    assert set(seen) == {"edit first", "resubmit first"}
