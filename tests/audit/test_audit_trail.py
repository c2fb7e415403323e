"""Every endpoint that changes something writes its audit rows: the table of cases, request by
request (actor, tenant, changes, request id, IP address, user agent).
"""

import uuid

import pytest
from rest_framework.test import APIClient

from approvals.models import WorkflowStage, WorkflowStageApproval
from audit.models import AuditLog
from core import rls
from tests.fixtures import (
    CLIENT_IP,
    USER_AGENT,
    Case,
    Row,
    Scene,
    _after_start,
    _approval,
    _instance,
    _resolve,
    _response_id,
    _stage,
    approve_any_skipping_the_other,
    approve_last_stage,
    approve_opening_next_stage,
    contract_create_starting_workflow,
    contract_update,
    definition_delete,
    definition_update,
    delegate,
    failed_login,
    failed_login_unknown_email,
    logout,
    register,
    reject,
    role_assign,
    role_revoke,
    token_login,
    user_create,
    workflow_start,
)
from tests.fixtures import audit_cancel as cancel
from tests.fixtures import audit_contract_create as contract_create
from tests.fixtures import audit_definition_create as definition_create

pytestmark = pytest.mark.django_db


# --- the table ---------------------------------------------------------------------------------


CASES = [
    Case(
        "register",
        register,
        201,
        [
            Row(
                "user_registered",
                "user",
                lambda scene, response: response.json()["user"]["id"],
                actor=lambda scene, response: response.json()["user"]["id"],
                changes={
                    "email": [None, "founder@audit.example"],
                    "tenant": [None, "Audited Inc"],
                },
                exact=True,
                tenant=lambda scene, response: response.json()["tenant"]["id"],
            )
        ],
    ),
    Case(
        "token login",
        token_login,
        200,
        [
            Row(
                "login",
                "user",
                lambda scene, response: str(scene.requester.pk),
                actor=lambda scene, response: scene.requester,
                exact=True,
            )
        ],
    ),
    Case(
        "failed login",
        failed_login,
        401,
        [
            Row(
                "login_failed",
                "user",
                lambda scene, response: str(scene.requester.pk),
                actor=None,
                changes=lambda scene, response: {"email": [None, scene.requester.email]},
                exact=True,
            )
        ],
    ),
    Case(
        "failed login, unknown email",
        failed_login_unknown_email,
        401,
        [
            Row(
                "login_failed",
                "user",
                "",
                actor=None,
                changes={"email": [None, "nobody@nowhere.example"]},
                exact=True,
                tenant=None,
            )
        ],
    ),
    Case(
        "logout",
        logout,
        205,
        [Row("logout", "user", lambda scene, response: str(scene.requester.pk), exact=True)],
    ),
    Case(
        "user create",
        user_create,
        201,
        [
            Row(
                "user_created",
                "user",
                _response_id,
                changes={
                    "email": [None, "new.hire@audit.example"],
                    "full_name": [None, "New Hire"],
                },
                exact=True,
            )
        ],
    ),
    Case(
        "role assign",
        role_assign,
        201,
        [
            Row(
                "role_assigned",
                "userrole",
                _response_id,
                changes=lambda scene, response: {
                    "user": [None, str(scene.requester.pk)],
                    "role": [None, "procurement"],
                    "permissions": [None, ["audit.view"]],
                    "expires_at": [None, None],
                },
                exact=True,
            )
        ],
    ),
    Case(
        "role revoke",
        role_revoke,
        204,
        [
            Row(
                "role_revoked",
                "userrole",
                lambda scene, response: str(scene.saved["assignment"].pk),
                changes=lambda scene, response: {
                    "user": [str(scene.requester.pk), None],
                    "role": ["procurement", None],
                    "permissions": [[], None],
                },
                exact=True,
            )
        ],
    ),
    Case(
        "contract create",
        contract_create,
        201,
        [
            Row(
                "contract_created",
                "contract",
                _response_id,
                changes={
                    "title": [None, "Plain NDA"],
                    "contract_type": [None, "NDA"],
                    "value": [None, "1000.00"],
                    "counterparty": [None, "Initech"],
                },
            )
        ],
    ),
    Case(
        "contract create starting its workflow",
        contract_create_starting_workflow,
        201,
        [
            Row(
                "contract_created",
                "contract",
                _response_id,
                changes={"title": [None, "Audited MSA"]},
            ),
            Row(
                "workflow_started",
                "workflowinstance",
                lambda scene, response: response.json()["workflow"]["id"],
                changes=lambda scene, response: {
                    "status": [None, "active"],
                    "contract": [None, response.json()["id"]],
                },
            ),
            Row(
                "stage_started",
                "workflowstage",
                lambda scene, response: str(
                    WorkflowStage.objects.get(instance_id=response.json()["workflow"]["id"]).pk
                ),
                changes={"status": ["waiting", "pending"], "stage_name": [None, "Legal"]},
            ),
        ],
    ),
    Case(
        "contract update",
        contract_update,
        200,
        [
            Row(
                "contract_updated",
                "contract",
                lambda scene, response: str(scene.saved["contract"].pk),
                changes=lambda scene, response: {
                    "title": ["Before", "After"],
                    "revision": [1, 2],
                    "content_hash": [scene.saved["hash_before"], response.json()["content_hash"]],
                },
                exact=True,
            )
        ],
    ),
    Case(
        "workflow definition create",
        definition_create,
        201,
        [
            Row(
                "workflow_definition_created",
                "workflowdefinition",
                _response_id,
                changes={
                    "name": [None, "Created through the API"],
                    "trigger_conditions": [None, {"contract_type": "SOW"}],
                    "priority": [None, 0],
                },
            )
        ],
    ),
    Case(
        "workflow definition update",
        definition_update,
        200,
        [
            Row(
                "workflow_definition_updated",
                "workflowdefinition",
                lambda scene, response: str(scene.saved["definition"].pk),
                changes={"priority": [0, 7], "version": [1, 2]},
                exact=True,
            )
        ],
    ),
    Case(
        "workflow definition delete",
        definition_delete,
        204,
        [
            Row(
                "workflow_definition_deleted",
                "workflowdefinition",
                lambda scene, response: str(scene.saved["definition"].pk),
                changes={"is_active": [True, False], "name": ["Doomed", None]},
                exact=True,
            )
        ],
    ),
    Case(
        "workflow start",
        workflow_start,
        201,
        [
            Row(
                "workflow_started",
                "workflowinstance",
                _after_start,
                changes=lambda scene, response: {
                    "status": [None, "active"],
                    "contract": [None, str(scene.saved["contract"].pk)],
                    "version": [None, 1],
                },
            ),
            Row(
                "stage_started",
                "workflowstage",
                _stage(1),
                changes={"status": ["waiting", "pending"], "stage_name": [None, "Legal"]},
            ),
        ],
    ),
    Case(
        "approve, completing the workflow",
        approve_last_stage,
        200,
        [
            Row(
                "approval_approved",
                "workflowstageapproval",
                _approval("legal"),
                changes=lambda scene, response: {
                    "status": ["pending", "approved"],
                    "stage_name": [None, "Legal"],
                    "comments": [None, "Fine"],
                    "revision": [None, 1],
                    "content_hash": [None, scene.saved["contract"].content_hash],
                },
                exact=True,
            ),
            Row(
                "stage_completed",
                "workflowstage",
                _stage(1),
                changes={"status": ["pending", "approved"]},
            ),
            Row(
                "workflow_completed",
                "workflowinstance",
                _instance,
                changes={
                    "status": ["active", "completed"],
                    "contract_status": ["in_review", "approved"],
                },
                exact=True,
            ),
        ],
    ),
    Case(
        "approve, opening the next stage",
        approve_opening_next_stage,
        200,
        [
            Row("approval_approved", "workflowstageapproval", _approval("legal")),
            Row(
                "stage_completed",
                "workflowstage",
                _stage(1),
                changes={"status": ["pending", "approved"]},
            ),
            Row(
                "stage_started",
                "workflowstage",
                _stage(2),
                changes={"status": ["waiting", "pending"], "stage_name": [None, "Finance"]},
            ),
        ],
    ),
    Case(
        "approve an `any` stage, skipping the other approver",
        approve_any_skipping_the_other,
        200,
        [
            Row("approval_approved", "workflowstageapproval", _approval("legal")),
            Row(
                "approval_skipped",
                "workflowstageapproval",
                _approval("finance"),
                changes={"status": ["pending", "skipped"]},
                exact=True,
            ),
            Row("stage_completed", "workflowstage", _stage(1)),
            Row("workflow_completed", "workflowinstance", _instance),
        ],
    ),
    Case(
        "reject",
        reject,
        200,
        [
            Row(
                "approval_rejected",
                "workflowstageapproval",
                _approval("legal"),
                changes={
                    "status": ["pending", "rejected"],
                    "comments": [None, "Liability uncapped"],
                },
            ),
            Row(
                "stage_completed",
                "workflowstage",
                _stage(1),
                changes={"status": ["pending", "rejected"]},
            ),
            Row(
                "approval_cancelled",
                "workflowstageapproval",
                _approval("finance"),
                changes={"status": ["pending", "cancelled"]},
            ),
            Row(
                "workflow_rejected",
                "workflowinstance",
                _instance,
                changes={
                    "status": ["active", "rejected"],
                    "contract_status": ["in_review", "rejected"],
                },
                exact=True,
            ),
        ],
    ),
    Case(
        "delegate",
        delegate,
        200,
        [
            Row(
                "approval_delegated",
                "workflowstageapproval",
                _approval("legal"),
                changes=lambda scene, response: {
                    "status": ["pending", "delegated"],
                    "delegated_to": [None, str(scene.saved["stand_in"].pk)],
                    "new_approval": [
                        None,
                        str(WorkflowStageApproval.objects.get(delegated_from__isnull=False).pk),
                    ],
                },
                exact=True,
            )
        ],
    ),
    Case(
        "cancel",
        cancel,
        200,
        [
            Row(
                "approval_cancelled",
                "workflowstageapproval",
                _approval("legal"),
                changes={"status": ["pending", "cancelled"]},
            ),
            Row(
                "workflow_cancelled",
                "workflowinstance",
                _instance,
                changes={
                    "status": ["active", "cancelled"],
                    "contract_status": ["in_review", "cancelled"],
                    "reason": [None, "Deal fell through"],
                },
                exact=True,
            ),
        ],
    ),
]


def _send(scene: Scene, caller, method, url, body, request_id: str):
    client = scene.client_for(caller) if caller is not None else APIClient()
    response = getattr(client, method)(
        url,
        body,
        format="json",
        HTTP_X_REQUEST_ID=request_id,
        HTTP_USER_AGENT=USER_AGENT,
        REMOTE_ADDR=CLIENT_IP,
    )
    return response


# A request may write to a new tenant (registration) or the platform (an unknown e-mail's login).
EVERY_AUDIT_ROW = "every audit row, in whichever tenant or the platform the request wrote it"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_endpoint_writes_its_audit_rows(scene, case):
    request_id = f"req-{uuid.uuid4().hex}"
    caller, method, url, body = case.arrange(scene)
    with rls.bypass(EVERY_AUDIT_ROW):
        rows_before = AuditLog.objects.count()

    response = _send(scene, caller, method, url, body, request_id)

    assert response.status_code == case.status, response.content
    assert response["X-Request-ID"] == request_id
    with rls.bypass(EVERY_AUDIT_ROW):
        written = list(AuditLog.objects.filter(request_id=request_id))
        # Everything the request wrote carries its id, and it wrote exactly the expected actions.
        assert AuditLog.objects.count() - rows_before == len(written)
    assert sorted(row.action for row in written) == sorted(row.action for row in case.rows)

    for expected in case.rows:
        resource_id = _resolve(expected.resource_id, scene, response)
        matches = [
            row
            for row in written
            if row.action == expected.action
            and row.resource_type == expected.resource_type
            and row.resource_id == resource_id
        ]
        assert len(matches) == 1, (
            expected,
            [(r.action, r.resource_type, r.resource_id) for r in written],
        )
        row = matches[0]

        actor = caller if expected.actor == "caller" else _resolve(expected.actor, scene, response)
        expected_actor_id = str(getattr(actor, "pk", actor)) if actor is not None else None
        assert (str(row.actor_id) if row.actor_id else None) == expected_actor_id
        tenant = (
            scene.tenant.pk
            if expected.tenant == "scene"
            else _resolve(expected.tenant, scene, response)
        )
        assert (str(row.tenant_id) if row.tenant_id else None) == (str(tenant) if tenant else None)

        changes = _resolve(expected.changes, scene, response)
        if expected.exact:
            assert row.changes == changes
        else:
            assert {key: row.changes.get(key) for key in changes} == changes

        assert row.ip_address == CLIENT_IP
        assert row.user_agent == USER_AGENT
        assert row.request_id == request_id

    for row in written:  # every row, expected or not in detail: {field: [old, new]}
        assert isinstance(row.changes, dict)
        assert all(isinstance(pair, list) and len(pair) == 2 for pair in row.changes.values())
        # Rows about a contract, its workflow, stages or approvals carry it; no other row does.
        if row.resource_type in ABOUT_A_CONTRACT:
            assert str(row.contract) == _case_contract(scene, response), row.action
        else:
            assert row.contract is None, row.action


ABOUT_A_CONTRACT = {"contract", "workflowinstance", "workflowstage", "workflowstageapproval"}


def _case_contract(scene, response) -> str:
    """The contract a case acts on: arranged beforehand, else the one the request created."""
    contract = scene.saved.get("contract")
    return str(contract.pk) if contract is not None else response.json()["id"]


def test_the_table_covers_every_action_the_existing_endpoints_write():
    """The table is the contract: these actions (docs/api.md, "Audit log") appear."""
    covered = {row.action for case in CASES for row in case.rows}
    assert covered >= {
        "user_registered",
        "user_created",
        "login",
        "login_failed",
        "logout",
        "role_assigned",
        "role_revoked",
        "contract_created",
        "contract_updated",
        "workflow_definition_created",
        "workflow_definition_updated",
        "workflow_definition_deleted",
        "workflow_started",
        "stage_started",
        "stage_completed",
        "approval_approved",
        "approval_rejected",
        "approval_delegated",
        "approval_skipped",
        "workflow_completed",
        "workflow_rejected",
        "workflow_cancelled",
    }
