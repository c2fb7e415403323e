"""The signing page in a real browser: the document shows, consent is required, signing works."""

import pytest
from django.core import mail

from documents.models import SignatureRequest
from tests.browser import DESKTOP, PHONE, csp_violations, horizontal_overflow
from tests.fixtures import OUTSIDER, SIGNING_LINK, run_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _locmem_email(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def test_a_signer_reads_cannot_sign_without_consent_then_signs(
    live_server, open_page, screenshot, clients, approved_contract
):
    response = clients["requester"].post(
        f"/api/contracts/{approved_contract['id']}/signature-requests/",
        {"signers": [OUTSIDER], "message": "Please sign by Friday."},
        format="json",
    )
    assert response.status_code == 201
    run_worker()
    [token] = [
        SIGNING_LINK.search(m.body).group(1) for m in mail.outbox if SIGNING_LINK.search(m.body)
    ]
    url = f"{live_server.url}/sign/{token}/"

    desktop = open_page(DESKTOP)
    desktop.goto(url)
    assert desktop.get_by_role("heading", name="Please sign: Zürich MSA").is_visible()
    screenshot(desktop, "documents-sign-desktop")

    page = open_page(PHONE)
    refused = csp_violations(page)
    page.goto(url)
    assert "Clause 1: payment within 30 days." in page.locator("#contract-text").inner_text()
    assert page.get_by_role("link", name="Open the document as a PDF").is_visible()
    assert horizontal_overflow(page) == 0
    screenshot(page, "documents-sign-phone")

    page.get_by_label("Your full name").fill("Olga Outside")
    page.get_by_role("button", name="Sign the document").click()
    assert page.get_by_role("alert").inner_text().strip().startswith("Tick the box")
    assert SignatureRequest.objects.get().status == "pending"
    screenshot(page, "documents-sign-phone-refused")

    page.get_by_label("I agree to sign this document electronically").check()
    page.get_by_label("Your full name").fill("Olga Outside")
    page.get_by_role("button", name="Sign the document").click()
    assert page.get_by_role("heading", name="Signed: Zürich MSA").is_visible()
    assert page.get_by_text("Thank you, Olga Outside.").is_visible()
    screenshot(page, "documents-sign-phone-done")
    page.set_viewport_size(DESKTOP)
    screenshot(page, "documents-sign-desktop-done")
    assert SignatureRequest.objects.get().status == "completed"
    assert refused == []

    for viewport, name in ((PHONE, "phone"), (DESKTOP, "desktop")):
        later = open_page(viewport)
        assert later.goto(url).status == 410
        assert later.get_by_role("heading", name="This link no longer works").is_visible()
        assert horizontal_overflow(later) == 0
        screenshot(later, f"documents-sign-{name}-closed")
