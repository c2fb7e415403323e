"""docs/api.md "Approval integrity" through the API: revisions and the revision each decision was
made on, re-routing on an edit, amendments.
"""

import hashlib
import json
from datetime import datetime

import pytest

from approvals.models import WorkflowInstance
from contracts.models import BUSINESS_FIELDS, ContractRevision
from notifications.models import Notification
from tests.factories import UserFactory
from tests.fixtures import api_stage as stage
from tests.fixtures import api_start as start
from tests.fixtures import (
    approved,
    audit,
    contract_status,
    create_contract,
    error_code,
    open_instances,
    patch,
    post,
    rows_of,
    stage_statuses,
    status_of,
)
from tests.fixtures import integrity_define as define

pytestmark = pytest.mark.django_db


# --- revisions -----------------------------------------------------------------------------


def canonical_hash(content: dict) -> str:
    """SHA-256 of the canonical JSON, as docs/api.md and contracts.revisions define it."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_revisions_hashes_and_the_revision_each_decision_was_made_on(
    admin_client, requester_client, requester, role_holder, api_client_for, other_tenant
):
    legal, finance = role_holder("legal"), role_holder("finance")
    define(
        admin_client,
        [
            stage("Legal", 1, ["legal"], reset_on_change=["value"]),
            stage("Finance", 2, ["finance"]),
        ],
    )
    contract = create_contract(
        requester_client,
        title="Überseevertrag — Lieferung",
        value=600000,
        start_date="2026-01-01",
        end_date="2026-12-31",
        text="Liability is capped.",
        metadata={"po": "PO-1", "nested": {"b": 1, "a": [True, None]}},
    )
    assert contract["revision"] == 1
    assert contract["content_hash"] == canonical_hash({f: contract[f] for f in BUSINESS_FIELDS})
    status = status_of(requester_client, contract["id"])
    assert {row["revision"] for row in rows_of(status, "Legal")} == {None}

    status = approved(api_client_for(legal), contract["id"])
    assert [row["revision"] for row in rows_of(status, "Legal")] == [1]
    assert [row["revision"] for row in rows_of(status, "Finance")] == [None]

    url = f"/api/contracts/{contract['id']}/"
    assert patch(requester_client, contract["id"], title="Renamed").json()["revision"] == 2
    # The same content sent another way is no change at all.
    for same in ({"value": "600000.00"}, {"value": 600000}, {"value": "600000"}):
        response = patch(requester_client, contract["id"], **same, metadata=contract["metadata"])
        assert response.status_code == 200, response.json()
        assert response.json()["revision"] == 2
    response = patch(requester_client, contract["id"], text="Liability is unlimited.", region="EU")
    assert response.json()["revision"] == 3
    status = approved(api_client_for(finance), contract["id"])
    assert status["status"] == "completed"  # Legal's policy ignores text: its decision stands
    assert [row["revision"] for row in rows_of(status, "Legal")] == [1]
    assert [row["revision"] for row in rows_of(status, "Finance")] == [3]

    response = requester_client.get(f"{url}revisions/")
    assert response.status_code == 200, response.json()
    page = response.json()
    assert set(page) == {"count", "next", "previous", "results"}
    assert page["count"] == 3
    assert [item["revision"] for item in page["results"]] == [3, 2, 1]
    assert [item["changed_fields"] for item in page["results"]] == [
        ["region", "text"],
        ["title"],
        [],
    ]
    for item in page["results"]:
        assert set(item) == {
            "revision",
            "content_hash",
            "changed_fields",
            "created_by",
            "created_at",
        }
        assert item["created_by"]["id"] == str(requester.pk)
        assert datetime.fromisoformat(item["created_at"]).tzinfo is not None
    assert len({item["content_hash"] for item in page["results"]}) == 3
    detail = requester_client.get(url).json()
    assert (detail["revision"], detail["content_hash"]) == (3, page["results"][0]["content_hash"])
    assert detail["content_hash"] == canonical_hash({f: detail[f] for f in BUSINESS_FIELDS})
    assert page["results"][-1]["content_hash"] == contract["content_hash"]
    for revision in ContractRevision.objects.filter(contract_id=contract["id"]):
        assert canonical_hash(revision.content) == revision.content_hash

    paged = requester_client.get(f"{url}revisions/", {"page_size": 1}).json()
    assert (paged["count"], len(paged["results"]), paged["next"] is not None) == (3, 1, True)
    stranger = api_client_for(UserFactory(tenant=other_tenant))
    assert error_code(stranger.get(f"{url}revisions/"), 404)


# --- re-routing ----------------------------------------------------------------------------


def test_an_edit_under_review_reroutes_between_value_bands(
    admin_client, requester_client, role_holder, api_client_for
):
    legal = role_holder("legal")
    standard = define(
        admin_client,
        [stage("Legal", 1, ["legal"]), stage("Finance", 2, ["finance"])],
        {"value__lt": 500000, "contract_type": "MSA"},
        name="Standard",
    )
    high = define(
        admin_client,
        [stage("Legal", 1, ["legal"]), stage("Finance", 2, ["finance"]), stage("CEO", 3, ["ceo"])],
        {"value__gte": 500000, "contract_type": "MSA"},
        name="High value",
    )
    contract = create_contract(requester_client, value="400000")
    first = contract["workflow"]
    assert first["definition"]["id"] == standard["id"]
    approved(api_client_for(legal), contract["id"])

    response = patch(requester_client, contract["id"], value="600000")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["revision"]) == ("in_review", 2)
    second = body["workflow"]
    assert second["id"] != first["id"]
    assert (second["definition"]["id"], second["status"], second["current_stage"]) == (
        high["id"],
        "active",
        1,
    )
    assert WorkflowInstance.objects.get(pk=first["id"]).status == "cancelled"
    (rerouted,) = audit("workflow_rerouted")
    assert rerouted.resource_id == first["id"]
    assert rerouted.changes["reason"] == [None, "rerouted"]
    assert rerouted.changes["status"] == ["active", "cancelled"]
    assert rerouted.changes["to_definition"] == [None, high["id"]]
    # The contract stays in review (under the new workflow); it never was cancelled.
    assert rerouted.changes["contract_status"] == ["in_review", "in_review"]
    status = status_of(requester_client, contract["id"])
    assert status["id"] == second["id"]
    assert stage_statuses(status) == {"Legal": "pending", "Finance": "waiting", "CEO": "waiting"}
    # Legal's decision was on the old route: they hear it no longer counts.
    (reset,) = Notification.objects.filter(notification_type="approval_reset")
    assert (reset.recipient_id, reset.payload["reason"]) == (legal.pk, "rerouted")

    response = patch(requester_client, contract["id"], value="400000")
    third = response.json()["workflow"]
    assert (third["definition"]["id"], third["status"]) == (standard["id"], "active")
    assert WorkflowInstance.objects.get(pk=second["id"]).status == "cancelled"
    assert len(audit("workflow_rerouted")) == 2

    # Nothing matches an NDA: the contract is a draft again, with no open workflow.
    response = patch(requester_client, contract["id"], contract_type="NDA")
    body = response.json()
    assert (body["status"], body["revision"]) == ("draft", 4)
    assert (body["workflow"]["id"], body["workflow"]["status"]) == (third["id"], "cancelled")
    assert open_instances(contract["id"]) == 0
    last = audit("workflow_rerouted")[-1].changes
    assert (last["to_definition"], last["contract_status"]) == (
        [None, None],
        ["in_review", "draft"],
    )
    assert WorkflowInstance.objects.filter(contract_id=contract["id"]).count() == 3
    assert error_code(start(requester_client, contract["id"]), 400)


# --- amendments ----------------------------------------------------------------------------


def test_amend_an_approved_contract(
    admin_client, requester_client, role_holder, api_client_for, tenant, capable
):
    legal = api_client_for(role_holder("legal"))
    define(admin_client, [stage("Legal", 1, ["legal"])], {"contract_type": "MSA"})
    contract = create_contract(requester_client)
    draft = create_contract(requester_client, contract_type="NDA")
    for target in (contract, draft):  # in review, draft
        body = error_code(post(requester_client, target["id"], "amend", value="1"), 409)
        assert body["code"] == "contract_not_approved"
    first = approved(legal, contract["id"])
    assert first["status"] == "completed"
    amend_url = f"/api/contracts/{contract['id']}/amend/"
    colleague = api_client_for(UserFactory(tenant=tenant))
    assert error_code(colleague.post(amend_url, {"value": "1"}, format="json"), 403)
    body = error_code(requester_client.post(amend_url, {"value": 600000}, format="json"), 400)
    assert body["fields"]
    assert contract_status(requester_client, contract["id"]) == "approved"

    response = requester_client.post(amend_url, {"value": "650000"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["revision"], body["value"]) == ("in_review", 2, "650000.00")
    assert body["workflow"]["id"] != first["id"]
    assert (body["workflow"]["status"], body["workflow"]["current_stage"]) == ("active", 1)
    assert WorkflowInstance.objects.get(pk=first["id"]).status == "completed"
    (amended,) = audit("contract_amended")
    assert amended.resource_id == contract["id"]
    assert amended.changes["value"] == ["600000.00", "650000.00"]
    assert amended.changes["revision"] == [1, 2]
    assert amended.changes["content_hash"] == [contract["content_hash"], body["content_hash"]]

    assert approved(legal, contract["id"])["status"] == "completed"
    # `contracts.manage` amends too; nothing matches an NDA: a draft.
    response = capable("contracts.manage").post(amend_url, {"contract_type": "NDA"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["revision"]) == ("draft", 3)
    assert open_instances(contract["id"]) == 0
    assert list(
        WorkflowInstance.objects.filter(contract_id=contract["id"]).values_list("status", flat=True)
    ) == ["completed", "completed"]
    assert len(audit("contract_amended")) == 2
    revisions = requester_client.get(f"/api/contracts/{contract['id']}/revisions/").json()
    assert [item["changed_fields"] for item in revisions["results"]] == [
        ["contract_type"],
        ["value"],
        [],
    ]
