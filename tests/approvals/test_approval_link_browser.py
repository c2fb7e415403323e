"""Decide from e-mail in a real browser (Chromium through Playwright) against a live server."""

import pytest

from approvals.models import ApprovalStatus, WorkflowStageApproval
from tests.browser import DESKTOP, PHONE, csp_violations, horizontal_overflow
from tests.fixtures import contract_for_review, emailed_links

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def waiting(tenant, role_holder):
    """(contract, the legal approver's link URL path)."""
    legal = role_holder("legal")
    contract = contract_for_review(tenant, title="Master services agreement with Globex")
    return contract, emailed_links()[legal.email]


def row_status(contract) -> str:
    return WorkflowStageApproval.objects.get(contract=contract, stage__sequence=1).status


@pytest.mark.parametrize(("viewport", "name"), [(PHONE, "phone"), (DESKTOP, "desktop")])
def test_the_page_shows_the_contract_and_changes_nothing(
    live_server, open_page, screenshot, waiting, viewport, name
):
    contract, link = waiting
    page = open_page(viewport)
    refused = csp_violations(page)

    response = page.goto(f"{live_server.url}{link}")

    assert response.status == 200
    heading = page.get_by_role("heading", level=1)
    assert heading.inner_text() == contract.title
    assert page.get_by_text("125,000.50 EUR").is_visible()
    assert page.get_by_text("Globex Corporation").is_visible()
    assert page.get_by_label("Comment").is_visible()
    for label in ("Approve", "Request changes", "Reject"):
        assert page.get_by_role("button", name=label).is_visible()
    screenshot(page, f"links-confirm-{name}")
    assert horizontal_overflow(page) == 0
    assert refused == []  # the stylesheet is let in
    assert row_status(contract) == ApprovalStatus.PENDING


def test_the_form_works_from_the_keyboard(live_server, open_page, waiting):
    contract, link = waiting
    page = open_page(PHONE)
    page.goto(f"{live_server.url}{link}")

    page.get_by_label("Comment").focus()
    page.keyboard.type("Looks good.")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Approve"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # a visible focus ring
    page.keyboard.press("Enter")

    page.get_by_text("Decision recorded").wait_for()
    assert row_status(contract) == ApprovalStatus.APPROVED


def test_reject_without_a_comment_is_refused_with_a_visible_message(
    live_server, open_page, screenshot, waiting
):
    contract, link = waiting
    page = open_page(PHONE)
    page.goto(f"{live_server.url}{link}")

    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Reject").click()

    assert navigation.value.status == 400
    alert = page.get_by_role("alert")
    assert "a comment is required to reject" in alert.inner_text()
    assert alert.is_visible()
    screenshot(page, "links-reject-refused-phone")
    assert row_status(contract) == ApprovalStatus.PENDING


def test_approve_then_the_used_link_shows_the_410_page(live_server, open_page, screenshot, waiting):
    contract, link = waiting
    page = open_page(PHONE)
    page.goto(f"{live_server.url}{link}")

    page.get_by_label("Comment").fill("Fine by legal.")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Approve").click()

    assert navigation.value.status == 200
    assert "You approved" in page.get_by_role("heading", level=1).inner_text()
    screenshot(page, "links-done-phone")
    assert row_status(contract) == ApprovalStatus.APPROVED

    for viewport, name in ((PHONE, "phone"), (DESKTOP, "desktop")):
        later = open_page(viewport)
        response = later.goto(f"{live_server.url}{link}")
        assert response.status == 410
        assert later.get_by_role("heading", level=1).inner_text() == "This link was already used"
        screenshot(later, f"links-used-{name}")
        assert horizontal_overflow(later) == 0
