"""The consistency check: silent on every state the API produces, loud on hand-made corruption."""

import io
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from approvals.consistency import consistency_check
from approvals.models import WorkflowInstance, WorkflowStage, WorkflowStageApproval
from contracts.models import Contract, ContractRevision
from tests.factories import ContractFactory, TenantFactory, UserFactory

# The check reads every tenant's rows, as ``check_consistency`` does in its bypass, and the
# hand-made corruptions are an operator's edits behind the services' back.
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.rls_bypass("the consistency check and hand-made corruption span tenants"),
]

SEQUENTIAL = [  # all -> any -> all, as the example workflow of docs/api.md
    {"stage_name": "Legal Review", "sequence": 1, "approvers": ["legal"], "approval_type": "all"},
    {
        "stage_name": "Finance Approval",
        "sequence": 2,
        "approvers": ["finance", "cfo"],
        "approval_type": "any",
    },
    {"stage_name": "Executive Sign-Off", "sequence": 3, "approvers": ["ceo"]},
]


def parallel_stages(named_user) -> list[dict]:
    """Two parallel stages (one with a named approver, one quorum), an optional one, a last one."""
    return [
        {"stage_name": "Legal", "sequence": 1, "approvers": ["legal", f"user:{named_user.pk}"]},
        {
            "stage_name": "Security",
            "sequence": 1,
            "approvers": ["security", "privacy", "risk"],
            "approval_type": "quorum",
            "min_approvals": 2,
        },
        {"stage_name": "Ops", "sequence": 2, "approvers": ["finance"], "is_required": False},
        {
            "stage_name": "Sign-off",
            "sequence": 3,
            "approvers": ["ceo", "cfo"],
            "approval_type": "any",
        },
    ]


@pytest.fixture
def people(tenant, role_holder):
    roles = ["legal", "finance", "cfo", "ceo", "security", "privacy", "risk"]
    return {
        "requester": UserFactory(tenant=tenant),
        "named": UserFactory(tenant=tenant),
        "stand_in": UserFactory(tenant=tenant),
        "second_stand_in": UserFactory(tenant=tenant),
        **{role: role_holder(role) for role in roles},
    }


@pytest.fixture
def clients(api_client_for, people):
    return {name: api_client_for(user) for name, user in people.items()}


@pytest.fixture
def definitions(admin_client, people):
    """A definition per contract type: SEQ (sequential), PAR (parallel, quorum, optional)."""
    for contract_type, stages in (("SEQ", SEQUENTIAL), ("PAR", parallel_stages(people["named"]))):
        body = {
            "name": f"{contract_type} flow",
            "trigger_conditions": {"contract_type": contract_type},
            "stages": stages,
            "priority": 10,
            "is_active": True,
        }
        response = admin_client.post("/api/workflows/config/", body, format="json")
        assert response.status_code == 201, response.json()


def create(clients, contract_type="SEQ") -> str:
    body = {"title": "MSA", "contract_type": contract_type, "value": "1000.00"}
    response = clients["requester"].post("/api/contracts/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == ("in_review" if contract_type != "NONE" else "draft")
    return response.json()["id"]


def act(client, contract_id, action="approve", expect=200, **extra) -> dict:
    response = client.post(
        f"/api/contracts/{contract_id}/approve/", {"action": action, **extra}, format="json"
    )
    assert response.status_code == expect, response.json()
    return response.json()


def assert_consistent(tenant_id=None) -> None:
    assert consistency_check(tenant_id=tenant_id).violations == []


def codes(tenant_id=None) -> set[str]:
    return {violation.code for violation in consistency_check(tenant_id=tenant_id).violations}


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


# --- hand-made corruption is reported ---------------------------------------------------------


@pytest.fixture
def at_finance(clients, definitions):
    """A SEQ workflow whose "any" stage 2 is open: finance and cfo rows pending."""
    contract_id = create(clients)
    act(clients["legal"], contract_id)
    return WorkflowInstance.objects.get(contract_id=contract_id)


def _row(instance, approver) -> WorkflowStageApproval:
    return instance.approvals.get(approver=approver, status="pending")


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


# --- the command ------------------------------------------------------------------------------


def run(*args) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("check_consistency", *args, stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    return 0, out.getvalue()


def test_command_clean_exits_0(at_finance):
    status, output = run()
    assert status == 0
    assert output == (
        "Consistency check (all tenants): 0 violation(s) in 1 contract(s), 1 workflow(s), "
        "1 active\n"
    )


def test_command_lists_violations_and_exits_1(at_finance, tenant):
    _row(at_finance, "finance").delete()
    status, output = run()
    assert status == 1
    first, summary = output.splitlines()
    assert first.startswith(
        f"missing_approval: tenant {tenant.slug} contract {at_finance.contract_id} "
        f'workflow {at_finance.pk}: stage "Finance Approval": approver finance has 0 live row(s)'
    )
    assert summary == (
        "Consistency check (all tenants): 1 violation(s) in 1 contract(s), 1 workflow(s), 1 active"
    )


def test_command_tenant_option(at_finance, tenant, other_tenant):
    ContractFactory(created_by=UserFactory(tenant=other_tenant), status="approved")
    assert run()[0] == 1
    status, output = run("--tenant", tenant.slug)
    assert status == 0
    assert output.startswith(f"Consistency check (tenant {tenant.slug}): 0 violation(s)")
    status, output = run("--tenant", str(other_tenant.pk))
    assert status == 1
    assert output.startswith("contract_status_mismatch: ")


def test_command_unknown_tenant():
    with pytest.raises(CommandError, match="No tenant"):
        call_command("check_consistency", "--tenant", "nobody")


# --- approval integrity: edits, resets, requests for changes, amendments ----------------------

RESET_STAGES = [  # reset policies: a field list, "never", another list
    {"stage_name": "Legal", "sequence": 1, "approvers": ["legal"], "reset_on_change": ["value"]},
    {
        "stage_name": "Finance",
        "sequence": 2,
        "approvers": ["finance", "cfo"],
        "approval_type": "any",
        "reset_on_change": "never",
    },
    {
        "stage_name": "Board",
        "sequence": 3,
        "approvers": ["ceo", "risk"],
        "reset_on_change": ["title"],
    },
]


@pytest.fixture
def reset_definitions(admin_client, definitions):
    """RST: per-stage reset policies; BIG: what a SEQ contract of a million or more goes to."""
    for name, conditions, stages, priority in (
        ("RST flow", {"contract_type": "RST"}, RESET_STAGES, 10),
        ("BIG flow", {"contract_type": "SEQ", "value__gte": 1000000}, SEQUENTIAL[:1], 20),
    ):
        body = {
            "name": name,
            "trigger_conditions": conditions,
            "stages": stages,
            "priority": priority,
            "is_active": True,
        }
        response = admin_client.post("/api/workflows/config/", body, format="json")
        assert response.status_code == 201, response.json()


def patch(clients, contract_id, **fields) -> dict:
    response = clients["requester"].patch(f"/api/contracts/{contract_id}/", fields, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


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
