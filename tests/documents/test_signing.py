"""Signing after approval: requests, links, the signing page, completion, decline, void."""

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from audit.models import AuditLog
from core.public_pages import CONTENT_SECURITY_POLICY
from documents.models import Document, RequestStatus, SignatureRequest, Signer
from documents.sealing import verify_pdf
from documents.selectors import document_read
from notifications.models import Notification
from tests.factories import UserFactory
from tests.fixtures import OUTSIDER, SIGNING_LINK, pdf_text, run_worker

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _locmem_email(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def links() -> dict[str, str]:
    """The signing token last mailed to each address."""
    found = {}
    for message in mail.outbox:
        match = SIGNING_LINK.search(message.body)
        if match:
            found[message.to[0]] = match.group(1)
    return found


def request_signatures(client, contract_id, signers, order="parallel"):
    return client.post(
        f"/api/contracts/{contract_id}/signature-requests/",
        {"signers": signers, "order": order, "message": "Please sign by Friday."},
        format="json",
    )


@pytest.fixture
def browser_client():
    """A plain HTML client (form posts), as a signer's browser."""
    return Client()


def sign(client, token, **form):
    return client.post(f"/sign/{token}/", form, HTTP_USER_AGENT="TestBrowser/1.0")


@pytest.fixture
def member(tenant):
    return UserFactory(tenant=tenant, full_name="Mia Member")


def test_parallel_signers_a_member_and_an_outsider_complete_the_contract(
    browser_client, clients, people, member, approved_contract
):
    contract_id = approved_contract["id"]
    response = request_signatures(
        clients["requester"], contract_id, [{"user": str(member.pk)}, OUTSIDER]
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["order"], body["revision"]) == ("pending", "parallel", 1)
    assert [(s["name"], s["status"]) for s in body["signers"]] == [
        ("Mia Member", "waiting"),
        ("Olga Outside", "waiting"),
    ]
    assert Notification.objects.filter(
        recipient=member, notification_type="signature_requested"
    ).exists()
    run_worker()  # the certificate and both links
    tokens = links()
    assert set(tokens) == {member.email, OUTSIDER["email"]}
    # Only the token's SHA-256 is stored.
    assert not Signer.objects.filter(token_sha256__in=list(tokens.values())).exists()

    page = browser_client.get(f"/sign/{tokens[OUTSIDER['email']]}/")
    assert page.status_code == 200
    assert "Clause 1: payment within 30 days." in page.content.decode()
    assert (
        sign(
            browser_client, tokens[OUTSIDER["email"]], consent="on", full_name="Olga Outside"
        ).status_code
        == 200
    )
    detail = clients["requester"].get(f"/api/contracts/{contract_id}/").json()
    assert detail["status"] == "approved"  # one signer still to go
    assert (
        sign(
            browser_client, tokens[member.email], consent="on", full_name="Mia  Member"
        ).status_code
        == 200
    )

    detail = clients["requester"].get(f"/api/contracts/{contract_id}/").json()
    assert detail["status"] == "signed"
    [listed] = (
        clients["requester"]
        .get(f"/api/contracts/{contract_id}/signature-requests/")
        .json()["results"]
    )
    assert listed["status"] == "completed"
    assert all(s["status"] == "signed" and s["signed_at"] for s in listed["signers"])
    assert Notification.objects.filter(
        recipient=people["requester"], notification_type="signature_completed"
    ).exists()
    actions = list(AuditLog.objects.values_list("action", flat=True))
    for action in ("signature_requested", "signature_viewed", "signed", "signature_completed"):
        assert action in actions
    signed_row = AuditLog.objects.filter(action="signed").first()
    assert (signed_row.ip_address, signed_row.user_agent) == ("127.0.0.1", "TestBrowser/1.0")

    run_worker()
    document = Document.objects.get(kind="signed_contract")
    data = document_read(document=document)
    assert verify_pdf(data).valid
    text = " ".join(pdf_text(data).split())
    for expected in (
        "Clause 1: payment within 30 days.",
        "Signatures",
        "Mia Member",
        "Olga Outside",
        "Certificate of completion",
        "IP address: 127.0.0.1",
        "User agent: TestBrowser/1.0",
    ):
        assert expected in text, expected
    viewed = Signer.objects.get(email=OUTSIDER["email"])
    assert f"Document shown (SHA-256): {viewed.document_sha256}" in text


def test_sequential_signers_get_their_link_one_after_another(
    browser_client, clients, member, approved_contract
):
    contract_id = approved_contract["id"]
    response = request_signatures(
        clients["requester"], contract_id, [OUTSIDER, {"user": str(member.pk)}], "sequential"
    )
    assert response.status_code == 201, response.json()
    run_worker()
    assert set(links()) == {OUTSIDER["email"]}
    sign(browser_client, links()[OUTSIDER["email"]], consent="on", full_name="Olga Outside")
    run_worker()
    assert set(links()) == {OUTSIDER["email"], member.email}
    sign(browser_client, links()[member.email], consent="on", full_name="Mia Member")
    assert SignatureRequest.objects.get().status == RequestStatus.COMPLETED


def test_signing_needs_consent_and_a_name_and_a_link_works_once(
    browser_client, clients, approved_contract
):
    request_signatures(clients["requester"], approved_contract["id"], [OUTSIDER])
    run_worker()
    token = links()[OUTSIDER["email"]]
    refused = sign(browser_client, token, full_name="Olga Outside")
    assert refused.status_code == 400
    assert "Tick the box" in refused.content.decode()
    assert sign(browser_client, token, consent="on", full_name="   ").status_code == 400
    assert Signer.objects.get().status == "sent"
    # The value reads as on the approval pages (contracts.models.amount_text).
    assert "<dd>125,000.00 USD</dd>" in browser_client.get(f"/sign/{token}/").content.decode()
    signed = sign(browser_client, token, consent="on", full_name="  Olga   Outside ")
    assert signed.status_code == 200
    assert "Thank you, Olga Outside." in signed.content.decode()
    again = browser_client.get(f"/sign/{token}/")
    assert again.status_code == 410
    assert "already signed" in again.content.decode()
    assert sign(browser_client, token, consent="on", full_name="Olga").status_code == 410
    assert browser_client.get("/sign/not-a-token/").status_code == 410
    assert browser_client.get(f"/sign/{token[:32]}{'x' * 43}/").status_code == 410


def test_signing_pages_load_only_the_services_stylesheet_and_are_never_stored(
    browser_client, clients, approved_contract
):
    request_signatures(clients["requester"], approved_contract["id"], [OUTSIDER])
    run_worker()
    live = browser_client.get(f"/sign/{links()[OUTSIDER['email']]}/")
    dead = browser_client.get("/sign/not-a-token/")

    for response, status in ((live, 200), (dead, 410)):
        assert response.status_code == status
        assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "no-store" in response["Cache-Control"]
        assert response["X-Robots-Tag"] == "noindex, nofollow"
        page = response.content.decode()
        assert '<link rel="stylesheet" href="/static/core/public.css">' in page
        assert "<style" not in page
        assert "style=" not in page
        assert "<script" not in page


def test_a_decline_closes_the_request_and_tells_the_creator(
    browser_client, clients, people, member, approved_contract
):
    request_signatures(
        clients["requester"], approved_contract["id"], [OUTSIDER, {"user": str(member.pk)}]
    )
    run_worker()
    tokens = links()
    without_reason = sign(browser_client, tokens[OUTSIDER["email"]], decline="1", reason=" ")
    assert without_reason.status_code == 400
    assert (
        sign(
            browser_client, tokens[OUTSIDER["email"]], decline="1", reason="Wrong entity"
        ).status_code
        == 200
    )
    request = SignatureRequest.objects.get()
    assert request.status == RequestStatus.DECLINED
    declined = Notification.objects.get(notification_type="signature_declined")
    assert declined.recipient == people["requester"]
    assert AuditLog.objects.get(action="signature_declined").changes["reason"] == [
        None,
        "Wrong entity",
    ]
    other = browser_client.get(f"/sign/{tokens[member.email]}/")
    assert other.status_code == 410
    assert "declined" in other.content.decode()
    contract = clients["requester"].get(f"/api/contracts/{approved_contract['id']}/").json()
    assert contract["status"] == "approved"


def test_an_expired_link_is_dead_and_the_worker_expires_the_request(
    browser_client, clients, approved_contract
):
    request_signatures(clients["requester"], approved_contract["id"], [OUTSIDER])
    run_worker()
    SignatureRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    page = browser_client.get(f"/sign/{links()[OUTSIDER['email']]}/")
    assert page.status_code == 410
    assert "expired" in page.content.decode()
    run_worker()
    assert SignatureRequest.objects.get().status == RequestStatus.EXPIRED


def test_amending_the_contract_during_signing_voids_the_request_and_tells_signers(
    browser_client, clients, approved_contract
):
    contract_id = approved_contract["id"]
    request_signatures(clients["requester"], contract_id, [OUTSIDER])
    run_worker()
    token = links()[OUTSIDER["email"]]
    response = clients["requester"].post(
        f"/api/contracts/{contract_id}/amend/", {"value": "130000"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert SignatureRequest.objects.get().status == RequestStatus.VOIDED
    assert browser_client.get(f"/sign/{token}/").status_code == 410
    run_worker()
    assert any("withdrawn" in message.subject for message in mail.outbox)


def test_voiding_through_the_api(browser_client, clients, approved_contract):
    contract_id = approved_contract["id"]
    created = request_signatures(clients["requester"], contract_id, [OUTSIDER]).json()
    run_worker()
    url = f"/api/contracts/{contract_id}/signature-requests/{created['id']}/void/"
    assert clients["legal"].post(url).status_code == 403
    response = clients["requester"].post(url)
    assert response.status_code == 200
    assert response.json()["status"] == "voided"
    assert clients["requester"].post(url).status_code == 409
    assert browser_client.get(f"/sign/{links()[OUTSIDER['email']]}/").status_code == 410


def test_requests_are_refused_unless_approved_and_valid(
    clients, definition, member, other_tenant, api_client_for, approved_contract, settings
):
    contract_id = approved_contract["id"]
    base = f"/api/contracts/{contract_id}/signature-requests/"
    bad_bodies = [
        {"signers": []},
        {"signers": [{"name": "No Mail"}]},
        {"signers": [{"user": str(member.pk), "email": "x@example.com"}]},
        {"signers": [{"user": "00000000-0000-0000-0000-000000000001"}]},
        {"signers": [OUTSIDER, {**OUTSIDER, "name": "Twin"}]},
        {"signers": [OUTSIDER], "order": "random"},
        {"signers": [OUTSIDER] * 21},
    ]
    for body in bad_bodies:
        assert clients["requester"].post(base, body, format="json").status_code == 400, body
    outsider = api_client_for(UserFactory(tenant=other_tenant))
    assert outsider.post(base, {"signers": [OUTSIDER]}, format="json").status_code == 404
    assert outsider.get(base).status_code == 404
    foreign_member = UserFactory(tenant=other_tenant)
    response = clients["requester"].post(
        base, {"signers": [{"user": str(foreign_member.pk)}]}, format="json"
    )
    assert response.status_code == 400
    assert clients["legal"].post(base, {"signers": [OUTSIDER]}, format="json").status_code == 403

    assert (
        clients["requester"].post(base, {"signers": [OUTSIDER]}, format="json").status_code == 201
    )
    again = clients["requester"].post(base, {"signers": [OUTSIDER]}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "signature_request_open")

    draft = (
        clients["requester"]
        .post("/api/contracts/", {"title": "NDA", "contract_type": "NDA"}, format="json")
        .json()
    )
    refused = clients["requester"].post(
        f"/api/contracts/{draft['id']}/signature-requests/", {"signers": [OUTSIDER]}, format="json"
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "contract_not_approved")


def test_open_requests_have_a_quota(clients, approved_contract, settings):
    settings.QUOTA_OPEN_SIGNATURE_REQUESTS = 0
    response = request_signatures(clients["requester"], approved_contract["id"], [OUTSIDER])
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["quota"]) == (
        "quota_exceeded",
        "open_signature_requests",
    )


def test_a_definition_naming_signers_requests_them_when_the_workflow_completes(
    admin_client, clients, people, role_holder, tenant
):
    signatory = role_holder("signatory")
    definition = {
        "name": "Approve then sign",
        "trigger_conditions": {"contract_type": "SOW"},
        "stages": [{"stage_name": "Legal Review", "sequence": 1, "approvers": ["legal"]}],
        "signers": [{"role": "signatory"}, OUTSIDER],
        "signing_order": "sequential",
    }
    response = admin_client.post("/api/workflows/config/", definition, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["signers"] == [{"role": "signatory"}, OUTSIDER]
    bad = {**definition, "name": "Bad", "signers": [{"role": "x", "email": "a@b.example"}]}
    assert admin_client.post("/api/workflows/config/", bad, format="json").status_code == 400

    contract = (
        clients["requester"]
        .post("/api/contracts/", {"title": "SOW 7", "contract_type": "SOW"}, format="json")
        .json()
    )
    clients["legal"].post(
        f"/api/contracts/{contract['id']}/approve/", {"action": "approve"}, format="json"
    )
    [created] = (
        clients["requester"]
        .get(f"/api/contracts/{contract['id']}/signature-requests/")
        .json()["results"]
    )
    assert created["order"] == "sequential"
    assert [signer["email"] for signer in created["signers"]] == [
        signatory.email,
        OUTSIDER["email"],
    ]
    run_worker()
    assert set(links()) == {signatory.email}
