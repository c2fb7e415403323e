"""Decide from e-mail (docs/approvers.md): the personal link's page.

Every test goes through the real page (Django's test client, CSRF enforced where it matters) on
real PostgreSQL under row-level security; links come from the e-mails the worker renders.
"""

import hashlib
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from approvals.link_services import approval_link_issue
from approvals.models import ApprovalLink, ApprovalStatus, WorkflowStageApproval
from audit.models import AuditLog
from contracts.models import Contract
from tenancy.models import UserRole
from tests.factories import TenantFactory, UserFactory, UserRoleFactory
from tests.fixtures import PUBLIC, contract_for_review, emailed_links

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _public_base_url(settings):
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.FRONTEND_URL = ""


@pytest.fixture
def browser_client():
    return Client()


@pytest.fixture
def legal(role_holder):
    return role_holder("legal")


@pytest.fixture
def contract(tenant, legal):
    return contract_for_review(tenant)


@pytest.fixture
def link(contract, legal):
    return emailed_links()[legal.email]


def pending_row(contract) -> WorkflowStageApproval:
    return WorkflowStageApproval.objects.get(contract=contract, stage__sequence=1)


def decide(client, link, action, comments=""):
    return client.post(link, {"action": action, "comments": comments})


# --- the page ----------------------------------------------------------------------------------


def test_the_email_carries_a_personal_link_and_stores_only_its_hash(contract, legal, link):
    token = link.split("/")[2]
    stored = ApprovalLink.objects.get(user=legal)

    assert stored.approval_id == pending_row(contract).pk
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert not ApprovalLink.objects.filter(token_hash=token).exists()
    assert stored.expires_at - stored.created_at == timedelta(hours=72)


def test_get_shows_the_contract_and_changes_nothing(browser_client, contract, legal, link):
    audit_rows = AuditLog.objects.count()

    for _ in range(3):  # a mail scanner, a preview, the person
        response = browser_client.get(link)
        assert response.status_code == 200

    page = response.content.decode()
    for text in ("Supply agreement", "125,000.50 EUR", "Globex Corporation", "Legal Review"):
        assert text in page
    assert legal.full_name in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert response["Cache-Control"].startswith("max-age=0")
    assert "default-src 'none'" in response["Content-Security-Policy"]
    assert "style-src 'self'" in response["Content-Security-Policy"]
    assert '<link rel="stylesheet" href="/static/core/public.css">' in page
    assert "<style" not in page
    assert "style=" not in page
    assert pending_row(contract).status == ApprovalStatus.PENDING
    assert ApprovalLink.objects.get(user=legal).used_at is None
    assert AuditLog.objects.count() == audit_rows


def test_approve_decides_as_the_links_person_through_the_orchestrator(
    browser_client, contract, legal, link
):
    response = decide(browser_client, link, "approve")

    assert response.status_code == 200
    assert "You approved" in response.content.decode()
    row = pending_row(contract)
    assert (row.status, row.decided_by_id) == (ApprovalStatus.APPROVED, legal.pk)
    audit = AuditLog.objects.get(action="approval_approved", resource_id=str(row.pk))
    assert audit.actor_id == legal.pk
    assert audit.changes["via"] == [None, "email_link"]
    # The workflow moved on exactly as through the API: finance's stage opened.
    assert WorkflowStageApproval.objects.get(contract=contract, stage__sequence=2).status == (
        ApprovalStatus.PENDING
    )


def test_a_used_link_is_dead(browser_client, contract, link):
    assert decide(browser_client, link, "approve").status_code == 200

    again = decide(browser_client, link, "reject", "changed my mind")
    page = browser_client.get(link)

    assert again.status_code == 410
    assert page.status_code == 410
    assert "already used" in page.content.decode()
    assert pending_row(contract).status == ApprovalStatus.APPROVED


@pytest.mark.parametrize("action", ["reject", "request_changes"])
def test_reject_and_request_changes_need_a_comment(browser_client, contract, link, action):
    refused = decide(browser_client, link, action, "   ")

    assert refused.status_code == 400
    assert "a comment is required" in refused.content.decode()
    assert 'aria-invalid="true"' in refused.content.decode()
    assert pending_row(contract).status == ApprovalStatus.PENDING

    done = decide(browser_client, link, action, "The liability cap is missing.")

    assert done.status_code == 200
    contract.refresh_from_db()
    expected = "rejected" if action == "reject" else "changes_requested"
    assert contract.status == expected


@pytest.mark.parametrize("action", ["", "delegate", "approve; drop table", "x" * 500])
def test_an_unknown_action_is_a_400_page(browser_client, contract, link, action):
    response = decide(browser_client, link, action, "note")

    assert response.status_code == 400
    assert "Choose approve, reject or request changes" in response.content.decode()
    assert pending_row(contract).status == ApprovalStatus.PENDING


def test_a_comment_over_the_limit_is_a_400_page(browser_client, contract, link):
    response = decide(browser_client, link, "approve", "x" * 5001)

    assert response.status_code == 400
    assert pending_row(contract).status == ApprovalStatus.PENDING


def test_the_form_is_csrf_protected(contract, link):
    strict = Client(enforce_csrf_checks=True)

    forged = strict.post(link, {"action": "approve"})

    assert forged.status_code == 403
    assert pending_row(contract).status == ApprovalStatus.PENDING
    page = strict.get(link)
    token = page.cookies["csrftoken"].value
    assert strict.post(link, {"action": "approve", "csrfmiddlewaretoken": token}).status_code == 200


# --- dead links --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "A" * 43,
        "q3Zr8VbN0cX1yW2eT5uI7oP9aS4dF6gH8jK0lL2mN4o",  # well-formed, never issued
        "x",
        "a" * 101,
        "%00",
        "..%2f..%2fadmin",
        "' OR 1=1 --",
    ],
)
def test_a_guessed_token_opens_nothing(browser_client, link, token):
    for response in (
        browser_client.get(f"/approve/{token}/"),
        decide(browser_client, f"/approve/{token}/", "approve"),
    ):
        assert response.status_code in (404, 410)
        assert "Supply agreement" not in response.content.decode()


def test_a_token_one_character_off_opens_nothing(browser_client, contract, link):
    token = link.split("/")[2]
    near = token[:-1] + ("A" if token[-1] != "A" else "B")

    response = decide(browser_client, f"/approve/{near}/", "approve")

    assert response.status_code == 410
    assert "does not work" in response.content.decode()
    assert pending_row(contract).status == ApprovalStatus.PENDING


def test_a_link_decides_as_its_own_person_only(browser_client, role_holder, contract, legal):
    """Two holders of the role each get their own link; whoever opens one acts as its person,
    and the other's link then finds the approval decided."""
    second = role_holder("legal")
    row = pending_row(contract)
    first_link, second_link = (
        f"/approve/{approval_link_issue(approval_id=row.pk, user=person)}/"
        for person in (legal, second)
    )

    assert decide(browser_client, second_link, "approve").status_code == 200
    row.refresh_from_db()
    assert row.decided_by_id == second.pk

    late = browser_client.get(first_link)
    assert late.status_code == 410
    assert "already approved" in late.content.decode()


def test_no_link_for_someone_who_may_not_decide(contract, tenant, legal):
    row = pending_row(contract)
    outsider = UserFactory(tenant=tenant)
    creator = contract.created_by
    other_tenant_user = UserRoleFactory(user=UserFactory(tenant=TenantFactory()), role="legal").user

    for person in (outsider, creator, other_tenant_user):
        assert approval_link_issue(approval_id=row.pk, user=person) is None
    assert not ApprovalLink.objects.exclude(user=legal).exists()


def test_a_link_for_a_stage_that_moved_on_is_dead(browser_client, contract, legal, link):
    """The row was decided through the API meanwhile: the stage settled, the next one opened."""
    from approvals.orchestrator import approval_act

    approval_act(tenant=contract.tenant, contract_id=contract.pk, actor=legal, action="approve")

    response = decide(browser_client, link, "reject", "too late")

    assert response.status_code == 410
    assert "already approved" in response.content.decode()


def test_a_link_after_the_persons_role_expired_is_dead(browser_client, contract, legal, link):
    UserRole.objects.filter(user=legal).update(expires_at=timezone.now() - timedelta(minutes=1))

    for response in (browser_client.get(link), decide(browser_client, link, "approve")):
        assert response.status_code == 410
        assert "can no longer decide" in response.content.decode()
    assert pending_row(contract).status == ApprovalStatus.PENDING


def test_a_link_of_a_deactivated_person_is_dead(browser_client, contract, legal, link):
    type(legal).objects.filter(pk=legal.pk).update(is_active=False)

    assert decide(browser_client, link, "approve").status_code == 410
    assert pending_row(contract).status == ApprovalStatus.PENDING


def test_an_expired_link_is_dead(browser_client, contract, legal, link, settings):
    ApprovalLink.objects.filter(user=legal).update(expires_at=timezone.now())

    response = browser_client.get(link)

    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert decide(browser_client, link, "approve").status_code == 410
    assert pending_row(contract).status == ApprovalStatus.PENDING


def test_a_cancelled_workflow_kills_the_link(browser_client, contract, link):
    from approvals.orchestrator import workflow_cancel

    workflow_cancel(tenant=contract.tenant, contract_id=contract.pk, actor=contract.created_by)

    response = browser_client.get(link)
    assert response.status_code == 410
    assert "workflow was closed" in response.content.decode()


def test_a_newer_email_replaces_the_link(browser_client, contract, legal, link):
    row = pending_row(contract)

    newer = f"/approve/{approval_link_issue(approval_id=row.pk, user=legal)}/"

    assert browser_client.get(link).status_code == 410
    assert browser_client.get(newer).status_code == 200
    assert ApprovalLink.objects.filter(approval=row, user=legal).count() == 1


def test_a_paused_workflow_answers_409_and_the_link_survives(
    browser_client, api_client_for, contract, legal, link, tenant
):
    from approvals.orchestrator import approval_act, workflow_resubmit

    second = UserRoleFactory(user=UserFactory(tenant=tenant), role="legal").user
    row = pending_row(contract)
    second_link = f"/approve/{approval_link_issue(approval_id=row.pk, user=second)}/"
    approval_act(
        tenant=tenant,
        contract_id=contract.pk,
        actor=legal,
        action="request_changes",
        comments="Add the cap.",
    )

    paused = browser_client.get(second_link)
    assert paused.status_code == 409
    assert "back with its requester" in paused.content.decode()

    workflow_resubmit(tenant=tenant, contract_id=contract.pk, actor=contract.created_by)
    assert browser_client.get(second_link).status_code == 200


def test_an_other_tenants_scope_never_sees_the_link(browser_client, contract, legal, link):
    """The link is read in its own tenant's scope: the row is invisible to any other."""
    from core import rls

    with rls.tenant_scope(TenantFactory()):
        assert not ApprovalLink.objects.exists()
    with rls.tenant_scope(contract.tenant):
        assert ApprovalLink.objects.filter(user=legal).exists()


# --- throttling and cost -----------------------------------------------------------------------


def test_the_link_pages_are_throttled_per_client(browser_client, link, settings):
    settings.LINK_THROTTLE_RATE = "3/min"

    statuses = [browser_client.get(link).status_code for _ in range(3)]
    refused = browser_client.get("/approve/guess/")

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0


def test_the_page_costs_a_fixed_number_of_queries(browser_client, link, django_assert_num_queries):
    with django_assert_num_queries(4):
        assert browser_client.get(link).status_code == 200


def test_contract_deletion_takes_its_links(contract, link):
    assert ApprovalLink.objects.count() == 1
    Contract.objects.filter(pk=contract.pk).delete()
    assert ApprovalLink.objects.count() == 0


def test_a_reminder_carries_a_new_link_that_replaces_the_first(
    browser_client, contract, legal, link
):
    from approvals.services import sla_check_breaches

    row = pending_row(contract)
    now = timezone.now()
    WorkflowStageApproval.objects.filter(pk=row.pk).update(remind_at=now - timedelta(minutes=1))

    assert sla_check_breaches(tenant=contract.tenant, now=now).reminded == 1
    reminder_link = emailed_links()[legal.email]

    assert reminder_link != link
    assert browser_client.get(link).status_code == 410
    assert decide(browser_client, reminder_link, "approve").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_two_submissions_of_one_link_at_once_decide_once(tenant, role_holder):
    from tests.support import run_together

    legal = role_holder("legal")
    contract = contract_for_review(tenant)
    link = emailed_links()[legal.email]

    results = run_together(
        lambda: decide(Client(), link, "approve").status_code,
        lambda: decide(Client(), link, "reject", "no").status_code,
    )

    assert sorted(value for _, value in results) == [200, 410]
    row = pending_row(contract)
    assert row.status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED)
    decisions = AuditLog.objects.filter(
        action__in=["approval_approved", "approval_rejected"], resource_id=str(row.pk)
    )
    assert decisions.count() == 1
