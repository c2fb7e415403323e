"""Workflow instances and approval rows in the admin: revisions, superseded rows and changes
requested are shown and filtered, scoped to the tenant."""

from decimal import Decimal

import pytest
from django.test import Client

from approvals.lifecycle import contract_update
from approvals.models import ApprovalStatus, InstanceStatus, WorkflowStageApproval
from approvals.orchestrator import approval_act
from tests.factories import UserFactory
from tests.fixtures import define, holder, log_in, stage, start

pytestmark = pytest.mark.django_db

APPROVALS = "/admin/approvals/workflowstageapproval/"
INSTANCES = "/admin/approvals/workflowinstance/"


@pytest.fixture
def browser(tenant) -> Client:
    client = Client()
    log_in(client, UserFactory(tenant=tenant, is_tenant_admin=True, is_staff=True))
    return client


@pytest.fixture
def sent_back(tenant):
    """Legal approved revision 1; an edit superseded that decision (and finance's pending row);
    legal approved revision 2 and finance sent the contract back for changes."""
    define(tenant, [stage("Legal", ["legal"]), stage("Finance", ["finance"], sequence=2)])
    requester = UserFactory(tenant=tenant)
    legal, finance = holder(tenant, "legal"), holder(tenant, "finance")
    contract = start(tenant, creator=requester, title="Initech MSA")

    def act(actor, action, comments=""):
        approval_act(
            tenant=tenant, contract_id=contract.pk, actor=actor, action=action, comments=comments
        )

    act(legal, "approve")
    contract_update(
        tenant=tenant, contract_id=contract.pk, updated_by=requester, value=Decimal("2000.00")
    )
    act(legal, "approve")
    act(finance, "request_changes", "Cap the liability.")
    return contract


def rows(response):
    assert response.status_code == 200, response.status_code
    return list(response.context["cl"].result_list)


ROWS = {
    ("legal", "superseded", 1),
    ("finance", "superseded", None),
    ("legal", "approved", 2),
    ("finance", "pending", None),
}


def test_setup_has_the_new_statuses(sent_back):
    approvals = WorkflowStageApproval.objects.filter(contract=sent_back)
    assert set(approvals.values_list("approver", "status", "revision")) == ROWS
    assert sent_back.workflow_instances.get().status == InstanceStatus.CHANGES_REQUESTED


def test_approval_list_shows_revision_and_filters_superseded(browser, sent_back):
    response = browser.get(APPROVALS)
    assert {(row.approver, row.status, row.revision) for row in rows(response)} == ROWS
    content = response.content.decode()
    assert "column-revision" in content
    assert '<td class="field-revision">1</td>' in content
    assert '<td class="field-stage_label">1. Legal</td>' in content
    assert "Superseded" in content
    assert f'href="?status__exact={ApprovalStatus.SUPERSEDED}"' in content  # in the filter

    superseded = rows(browser.get(APPROVALS, {"status__exact": "superseded"}))

    assert {(row.approver, row.revision) for row in superseded} == {
        ("legal", 1),
        ("finance", None),
    }
    approved = rows(browser.get(APPROVALS, {"status__exact": "approved"}))
    assert [(row.approver, row.revision) for row in approved] == [("legal", 2)]


def test_instance_list_filters_changes_requested(browser, sent_back):
    content = browser.get(INSTANCES).content.decode()
    assert "Changes requested" in content
    assert f'href="?status__exact={InstanceStatus.CHANGES_REQUESTED}"' in content

    [instance] = rows(browser.get(INSTANCES, {"status__exact": "changes_requested"}))

    assert instance.contract_id == sent_back.pk
    assert rows(browser.get(INSTANCES, {"status__exact": "active"})) == []


def test_instance_page_lists_approvals_with_their_revision(browser, sent_back):
    instance = sent_back.workflow_instances.get()

    response = browser.get(f"{INSTANCES}{instance.pk}/change/")

    assert response.status_code == 200
    [approvals] = [
        inline
        for inline in response.context["inline_admin_formsets"]
        if inline.formset.model is WorkflowStageApproval
    ]
    shown = {
        (form.instance.approver, form.instance.status, form.instance.revision)
        for form in approvals.formset
    }
    assert shown == ROWS
    content = response.content.decode()
    assert 'class="column-revision"' in content
    assert "Superseded" in content
    assert "Changes requested" in content


def test_other_tenants_staff_sees_none_of_it(sent_back, other_tenant):
    browser = Client()
    log_in(browser, UserFactory(tenant=other_tenant, is_tenant_admin=True, is_staff=True))
    instance = sent_back.workflow_instances.get()

    assert rows(browser.get(APPROVALS, {"status__exact": "superseded"})) == []
    assert rows(browser.get(INSTANCES)) == []
    response = browser.get(f"{INSTANCES}{instance.pk}/change/", follow=True)
    assert "Initech MSA" not in response.content.decode()
