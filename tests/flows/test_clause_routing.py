"""Routing on clause deviations, end to end through the API.

A tenant keeps a clause library; a contract's text is checked when the contract is created (before
the match engine runs) and whenever its text or type changes while it is a draft. The result is
stored on the contract (`clause_findings`, `has_blocking_findings`), and an ordinary trigger rule
`{"has_blocking_findings": true}` sends deviating contracts to a legal stage.
"""

import pytest

from approvals.models import WorkflowStageApproval
from audit.models import AuditLog
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CONTRACTS = "/api/contracts/"
CLAUSES = "/api/admin/clauses/"

LEGAL_DEVIATION = {
    "name": "Legal deviation review",
    "trigger_conditions": {"has_blocking_findings": True},
    "stages": [
        {"stage_name": "Legal Review", "sequence": 1, "approvers": ["legal"], "sla_hours": 48}
    ],
    "priority": 1000,
}
STANDARD = {
    "name": "Standard approval",
    "trigger_conditions": {"contract_type__in": ["MSA", "SOW"]},
    "stages": [{"stage_name": "Manager", "sequence": 1, "approvers": ["manager"], "sla_hours": 24}],
    "priority": 10,
}
UNLIMITED_LIABILITY = {
    "name": "Unlimited liability",
    "category": "liability",
    "kind": "prohibited",
    "patterns": ["unlimited liability", "liability shall be unlimited"],
    "severity": "blocking",
    "guidance": "Cap liability at 12 months of fees.",
}
AUTO_RENEWAL = {
    "name": "Auto-renewal",
    "kind": "prohibited",
    "patterns": ["renews automatically"],
    "severity": "warning",
}
GOVERNING_LAW = {
    "name": "Governing law",
    "contract_types": ["MSA"],
    "kind": "required",
    "patterns": ["governing law"],
    "severity": "blocking",
}

CLEAN_TEXT = "Liability is capped at the fees paid. The governing law is New York."
DEVIATING_TEXT = "The Supplier accepts UNLIMITED\nliability. The governing law is New York."


@pytest.fixture
def requester(tenant, api_client_for):
    return api_client_for(UserFactory(tenant=tenant))


@pytest.fixture
def library(admin_client):
    """The two definitions and three clause rules, created through the API."""
    created = {}
    for body in (LEGAL_DEVIATION, STANDARD):
        response = admin_client.post("/api/workflows/config/", body, format="json")
        assert response.status_code == 201, response.content
        created[body["name"]] = response.json()
    for body in (UNLIMITED_LIABILITY, AUTO_RENEWAL, GOVERNING_LAW):
        response = admin_client.post(CLAUSES, body, format="json")
        assert response.status_code == 201, response.content
        created[body["name"]] = response.json()
    return created


def create(client, **fields) -> dict:
    body = {"title": "Supply MSA", "contract_type": "MSA", "value": "1000.00", **fields}
    response = client.post(CONTRACTS, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def routed_to(contract: dict) -> str | None:
    workflow = contract["workflow"]
    return workflow["definition"]["name"] if workflow else None


def test_blocking_deviation_goes_to_the_legal_definition(requester, library):
    contract = create(requester, text=DEVIATING_TEXT)

    assert contract["status"] == "in_review"
    assert routed_to(contract) == "Legal deviation review"
    assert contract["has_blocking_findings"] is True
    findings = contract["clause_findings"]
    assert {key: value for key, value in findings.items() if key != "checked_at"} == {
        "valid": False,
        "blocking": 1,
        "warnings": 0,
        "info": 0,
        "missing_required": [],
        "prohibited_found": ["Unlimited liability"],
    }
    assert findings["checked_at"]
    approval = WorkflowStageApproval.objects.get(contract_id=contract["id"])
    assert approval.approver == "legal"


def test_clean_contract_goes_to_the_normal_definition(requester, library):
    contract = create(requester, text=CLEAN_TEXT)

    assert routed_to(contract) == "Standard approval"
    assert contract["has_blocking_findings"] is False
    assert contract["clause_findings"]["valid"] is True
    assert contract["clause_findings"]["blocking"] == 0


def test_a_warning_alone_does_not_route_to_legal(requester, library):
    contract = create(requester, text=CLEAN_TEXT + " This agreement renews automatically.")

    assert routed_to(contract) == "Standard approval"
    assert contract["has_blocking_findings"] is False
    assert contract["clause_findings"]["warnings"] == 1
    assert contract["clause_findings"]["prohibited_found"] == ["Auto-renewal"]


def test_missing_required_blocking_clause_routes_to_legal(requester, library):
    contract = create(requester, text="Liability is capped at the fees paid.")

    assert routed_to(contract) == "Legal deviation review"
    assert contract["clause_findings"]["missing_required"] == ["Governing law"]


def test_type_specific_rule_does_not_apply_to_other_types(requester, library):
    """Governing law is required for MSAs only: the same text as an SOW is clean."""
    contract = create(requester, contract_type="SOW", text="Liability is capped.")

    assert routed_to(contract) == "Standard approval"
    assert contract["clause_findings"]["missing_required"] == []


def test_stored_findings_are_readable_and_read_only(requester, library):
    contract = create(requester, contract_type="NDA", text=CLEAN_TEXT)
    url = f"{CONTRACTS}{contract['id']}/"

    patched = requester.patch(
        url,
        {"has_blocking_findings": True, "clause_findings": {"valid": False}, "title": "Renamed"},
        format="json",
    )

    assert patched.status_code == 200, patched.content
    assert patched.json()["has_blocking_findings"] is False
    assert patched.json()["clause_findings"] == contract["clause_findings"]
    assert requester.get(url).json()["clause_findings"] == contract["clause_findings"]


def test_patching_the_text_of_a_draft_revalidates(requester, library):
    # An NDA matches no definition, so it stays a draft and may be edited.
    contract = create(requester, contract_type="NDA", text=CLEAN_TEXT)
    assert contract["status"] == "draft"
    assert contract["has_blocking_findings"] is False
    url = f"{CONTRACTS}{contract['id']}/"

    patched = requester.patch(url, {"text": DEVIATING_TEXT}, format="json")

    assert patched.status_code == 200, patched.content
    body = patched.json()
    assert body["has_blocking_findings"] is True
    assert body["clause_findings"]["prohibited_found"] == ["Unlimited liability"]
    assert body["clause_findings"]["checked_at"] >= contract["clause_findings"]["checked_at"]
    entry = AuditLog.objects.filter(action="contract_updated").latest("created_at")
    assert entry.changes["has_blocking_findings"] == [False, True]
    assert "text_sha256" in entry.changes
    assert body["status"] == "draft"  # an edit does not start a workflow by itself

    # Starting the workflow now runs the match engine on the stored result.
    started = requester.post(f"{url}workflow/start/", {}, format="json")
    assert started.status_code == 201, started.content
    assert started.json()["definition"]["name"] == "Legal deviation review"


def test_patching_back_to_clean_text_clears_the_flag(requester, library):
    draft = create(requester, contract_type="NDA", text=CLEAN_TEXT)
    url = f"{CONTRACTS}{draft['id']}/"

    deviating = requester.patch(url, {"text": DEVIATING_TEXT}, format="json").json()
    cleared = requester.patch(url, {"text": CLEAN_TEXT}, format="json").json()

    assert deviating["has_blocking_findings"] is True
    assert cleared["has_blocking_findings"] is False
    assert cleared["clause_findings"]["valid"] is True
    assert cleared["clause_findings"]["prohibited_found"] == []


def test_changing_the_contract_type_revalidates(requester, library):
    """Governing law is required for MSAs: turning an NDA without it into an MSA is blocking."""
    contract = create(requester, contract_type="NDA", text="Liability is capped.")
    assert contract["has_blocking_findings"] is False
    url = f"{CONTRACTS}{contract['id']}/"

    # Renaming leaves the stored result alone.
    renamed = requester.patch(url, {"title": "Renamed"}, format="json").json()
    assert renamed["clause_findings"] == contract["clause_findings"]

    # Another type: another playbook. The engine now picks the legal definition on start.
    retyped = requester.patch(url, {"contract_type": "MSA"}, format="json").json()
    assert retyped["has_blocking_findings"] is True
    assert retyped["clause_findings"]["missing_required"] == ["Governing law"]


def test_an_edit_in_review_that_adds_a_blocking_clause_reroutes_to_legal(requester, library):
    """The edit makes a new revision; the match engine now picks the legal definition, so the
    standard workflow is cancelled (``workflow_rerouted``) and the legal one starts."""
    contract = create(requester, text=CLEAN_TEXT)
    assert routed_to(contract) == "Standard approval"

    response = requester.patch(
        f"{CONTRACTS}{contract['id']}/", {"text": DEVIATING_TEXT}, format="json"
    )

    assert response.status_code == 200, response.content
    edited = response.json()
    assert (edited["status"], edited["revision"]) == ("in_review", 2)
    assert edited["has_blocking_findings"] is True
    assert routed_to(edited) == "Legal deviation review"
    rerouted = AuditLog.objects.get(action="workflow_rerouted")
    assert rerouted.changes["reason"] == [None, "rerouted"]
    assert rerouted.changes["status"] == ["active", "cancelled"]


def test_preview_match_agrees_with_create(requester, library):
    """The flag in preview-match routes exactly as the stored flag does on create."""
    blocking = requester.post(
        "/api/workflows/config/preview-match/",
        {"contract_type": "MSA", "has_blocking_findings": True},
        format="json",
    ).json()
    contract = create(requester, text=DEVIATING_TEXT)
    assert blocking["matched"]["name"] == routed_to(contract)


def test_contracts_can_be_listed_by_the_flag(requester, library):
    deviating = create(requester, text=DEVIATING_TEXT)
    clean = create(requester, text=CLEAN_TEXT)

    flagged = requester.get(CONTRACTS, {"has_blocking_findings": "true"}).json()["results"]
    unflagged = requester.get(CONTRACTS, {"has_blocking_findings": "false"}).json()["results"]

    assert [row["id"] for row in flagged] == [deviating["id"]]
    assert [row["id"] for row in unflagged] == [clean["id"]]


def test_rule_changes_do_not_rewrite_stored_results(requester, admin_client, library):
    """The stored summary is the check at `checked_at`; validate-clauses gives the live answer."""
    contract = create(requester, contract_type="NDA", text=DEVIATING_TEXT)
    rule_id = library["Unlimited liability"]["id"]

    admin_client.patch(f"{CLAUSES}{rule_id}/", {"severity": "info"}, format="json")

    stored = requester.get(f"{CONTRACTS}{contract['id']}/").json()
    live = requester.post(
        "/api/contracts/validate-clauses/", {"contract": contract["id"]}, format="json"
    ).json()
    assert stored["has_blocking_findings"] is True
    assert live["has_blocking_findings"] is False
    assert [finding["severity"] for finding in live["findings"]] == ["info"]
