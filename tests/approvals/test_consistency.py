"""The consistency check is silent on every state the API produces: every path, at every step,
edits, resets, requests for changes and amendments included.
"""

import pytest

from approvals.models import WorkflowInstance, WorkflowStage, WorkflowStageApproval
from contracts.models import Contract
from tests.fixtures import assert_consistent
from tests.fixtures import consistency_act as act
from tests.fixtures import consistency_create as create
from tests.fixtures import consistency_patch as patch

# The check reads every tenant's rows, as ``check_consistency`` does in its bypass, and the
# hand-made corruptions are an operator's edits behind the services' back.
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.rls_bypass("the consistency check and hand-made corruption span tenants"),
]


# --- every path through the API leaves a consistent state, at every step -----------------------


def test_sequential_all_any_all_to_completion(clients, definitions):
    contract_id = create(clients)
    assert_consistent()
    act(clients["legal"], contract_id)
    assert_consistent()
    act(clients["cfo"], contract_id)  # "any": the finance row is skipped
    assert_consistent()
    assert act(clients["ceo"], contract_id)["status"] == "completed"
    assert_consistent()


def test_parallel_quorum_and_optional_rejection(clients, definitions, people):
    contract_id = create(clients, "PAR")
    assert_consistent()
    act(clients["security"], contract_id)  # quorum: 1 of 2
    assert_consistent()
    act(clients["legal"], contract_id)
    act(clients["named"], contract_id)  # Legal settled, Security still open
    assert_consistent()
    status = act(clients["privacy"], contract_id)  # quorum reached: risk skipped, Ops opens
    assert status["current_stage"] == 2
    assert_consistent()
    status = act(clients["finance"], contract_id, "reject")  # optional: the workflow goes on
    assert status["current_stage"] == 3
    assert_consistent()
    assert act(clients["ceo"], contract_id)["status"] == "completed"
    assert_consistent()


def test_quorum_out_of_reach_rejects_the_workflow(clients, definitions):
    contract_id = create(clients, "PAR")
    act(clients["security"], contract_id, "reject")
    assert_consistent()
    assert act(clients["privacy"], contract_id, "reject")["status"] == "rejected"
    assert_consistent()


def test_delegation_chain(clients, definitions, people):
    contract_id = create(clients)
    act(clients["legal"], contract_id, "delegate", delegate_to=str(people["stand_in"].pk))
    assert_consistent()
    second = str(people["second_stand_in"].pk)
    act(clients["stand_in"], contract_id, "delegate", delegate_to=second)
    assert_consistent()
    assert act(clients["second_stand_in"], contract_id)["current_stage"] == 2
    assert_consistent()


def test_rejection_then_restart(clients, definitions):
    contract_id = create(clients)
    act(clients["legal"], contract_id)
    assert act(clients["cfo"], contract_id, "reject")["status"] == "rejected"
    assert_consistent()
    response = clients["requester"].post(f"/api/contracts/{contract_id}/workflow/start/")
    assert response.status_code == 201, response.json()
    assert_consistent()


def test_cancel_and_no_match(clients, definitions):
    contract_id = create(clients)
    act(clients["legal"], contract_id)
    response = clients["requester"].post(f"/api/contracts/{contract_id}/workflow/cancel/")
    assert response.status_code == 200, response.json()
    create(clients, "NONE")  # no definition matches: a draft without a workflow
    assert_consistent()


# --- approval integrity: edits, resets, requests for changes, amendments ----------------------


def post(clients, contract_id, path, body=None, expect=200) -> dict:
    response = clients["requester"].post(
        f"/api/contracts/{contract_id}/{path}/", body or {}, format="json"
    )
    assert response.status_code == expect, response.json()
    return response.json()


def approvals_of(contract_id, stage_name) -> list[tuple[str, str, int | None]]:
    return sorted(
        WorkflowStageApproval.objects.filter(
            contract_id=contract_id, stage__stage_name=stage_name
        ).values_list("approver", "status", "revision")
    )


def test_resets_keep_what_their_policy_keeps_and_stay_consistent(clients, reset_definitions):
    contract_id = create(clients, "RST")
    act(clients["legal"], contract_id)
    patch(clients, contract_id, text="Clause 1 reworded")  # no policy fires on the text
    assert approvals_of(contract_id, "Legal") == [("legal", "approved", 1)]
    assert_consistent()
    act(clients["cfo"], contract_id)
    act(clients["ceo"], contract_id)  # Board half decided
    assert_consistent()
    # The value re-opens Legal; Finance ("never") stays approved although it comes later, Board
    # (["title"]) goes back to waiting keeping the CEO's decision, its pending row superseded.
    patch(clients, contract_id, value="2500.00")
    stages = dict(
        WorkflowStage.objects.filter(instance__contract_id=contract_id).values_list(
            "stage_name", "status"
        )
    )
    assert stages == {"Legal": "pending", "Finance": "approved", "Board": "waiting"}
    assert approvals_of(contract_id, "Board") == [
        ("ceo", "approved", 2),
        ("risk", "superseded", None),
    ]
    assert_consistent()
    act(clients["legal"], contract_id)  # on revision 3; Board re-opens with only risk to ask
    assert approvals_of(contract_id, "Board") == [
        ("ceo", "approved", 2),
        ("risk", "pending", None),
        ("risk", "superseded", None),
    ]
    assert_consistent()
    assert act(clients["risk"], contract_id)["status"] == "completed"
    assert_consistent()  # Finance and the CEO decided on older revisions their policies accept
    # An amendment to no match leaves a draft after the completed workflow.
    amended = post(clients, contract_id, "amend", {"contract_type": "NONE"})
    assert amended["status"] == "draft"
    assert_consistent()


def test_request_changes_edits_and_resubmit_stay_consistent(clients, reset_definitions):
    contract_id = create(clients)
    act(clients["legal"], contract_id)
    act(clients["finance"], contract_id, "request_changes", comments="Cap the liability.")
    assert Contract.objects.get(pk=contract_id).status == "changes_requested"
    assert_consistent()
    act(clients["cfo"], contract_id, expect=409)  # nobody decides meanwhile
    patch(clients, contract_id, text="Liability capped")  # "any": Legal re-opens at once
    assert approvals_of(contract_id, "Legal Review") == [
        ("legal", "pending", None),
        ("legal", "superseded", 1),
    ]
    assert_consistent()
    post(clients, contract_id, "resubmit")
    assert_consistent()
    act(clients["legal"], contract_id)
    act(clients["cfo"], contract_id, "request_changes", comments="And the term.")
    assert_consistent()
    post(clients, contract_id, "resubmit")  # nothing changed: the requesting stage re-opens
    assert_consistent()
    act(clients["cfo"], contract_id)
    assert act(clients["ceo"], contract_id)["status"] == "completed"
    assert_consistent()
    post(clients, contract_id, "amend", {"text": "Amended"})  # a new review of revision 3
    assert_consistent()
    act(clients["legal"], contract_id)
    act(clients["finance"], contract_id)
    assert act(clients["ceo"], contract_id)["status"] == "completed"
    assert_consistent()


def test_reroutes_delegations_and_restarts_stay_consistent(clients, reset_definitions, people):
    contract_id = create(clients)
    act(clients["legal"], contract_id)
    patch(clients, contract_id, value="2000000.00")  # BIG now matches: re-routed
    assert WorkflowInstance.objects.filter(contract_id=contract_id).count() == 2
    assert_consistent()
    patch(clients, contract_id, value="10.00")  # back to SEQ
    act(clients["legal"], contract_id, "delegate", delegate_to=str(people["stand_in"].pk))
    act(clients["stand_in"], contract_id)
    act(clients["finance"], contract_id)
    patch(clients, contract_id, title="MSA v2")  # everything re-opens: the delegation's too
    assert_consistent()
    patch(clients, contract_id, contract_type="NONE")  # re-routed to nothing: a draft
    assert Contract.objects.get(pk=contract_id).status == "draft"
    assert_consistent()
    patch(clients, contract_id, contract_type="SEQ")
    post(clients, contract_id, "workflow/start", expect=201)
    act(clients["legal"], contract_id, "reject")
    assert_consistent()
    post(clients, contract_id, "workflow/start", expect=201)
    post(clients, contract_id, "workflow/cancel")
    assert_consistent()
