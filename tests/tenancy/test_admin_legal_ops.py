"""The admin as legal operations reads it: human titles, the tenant's clock, whose data it is."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import SLABreach, WorkflowInstance, WorkflowStage, WorkflowStageApproval
from approvals.orchestrator import approval_act
from approvals.services import sla_check_breaches
from contracts.models import ContractRevision
from tenancy.admin_scoping import ADMINISTERED_TENANT_KEY
from tenancy.models import User
from tests.factories import FACTORY_PASSWORD, ContractFactory, UserFactory
from tests.fixtures import define, holder, log_in, stage, start

pytestmark = pytest.mark.django_db

SECONDS_IN_TOKYO = r"\d{1,2} \w{3} \d{4}, \d\d:\d\d:\d\d JST"


@pytest.fixture
def tokyo(tenant):
    tenant.name, tenant.timezone = "Globex Legal", "Asia/Tokyo"
    tenant.save()
    return tenant


@pytest.fixture
def staff(tokyo):
    browser = Client()
    log_in(browser, UserFactory(tenant=tokyo, is_tenant_admin=True, is_staff=True))
    return browser


@pytest.fixture
def reviewed(tokyo):
    """A Legal Review of "Globex MSA", decided by Legal; Finance then overdue."""
    define(
        tokyo,
        [stage("Legal Review", ["legal"], sla_hours=48), stage("Finance", ["finance"], 2, 1)],
        contract_type="MSA",
        name="Deal Review",
    )
    legal = holder(tokyo, "legal")  # before the stage opens: a role nobody holds goes to an admin
    holder(tokyo, "finance")
    contract = start(tokyo, contract_type="MSA", title="Globex MSA")
    approval_act(tenant=tokyo, contract_id=contract.pk, actor=legal, action="approve")
    return contract


def test_objects_have_human_titles(reviewed):
    instance = WorkflowInstance.objects.get()
    legal = WorkflowStage.objects.get(stage_name="Legal Review")
    approval = WorkflowStageApproval.objects.get(stage=legal)

    assert str(instance) == "Deal Review — Globex MSA"
    assert str(legal) == "Legal Review — Globex MSA"
    assert str(approval) == "Legal Review — Globex MSA: any legal"
    assert str(ContractRevision.objects.get()) == "Revision 1 of Globex MSA"


def test_a_breach_is_titled_by_stage_and_contract(reviewed, tokyo):
    sla_check_breaches(tenant=tokyo, now=timezone.now() + timedelta(hours=3))

    assert str(SLABreach.objects.get()) == "Finance — Globex MSA: overdue"


def test_the_header_names_the_product_and_the_tenant(staff, tokyo):
    page = staff.get("/admin/").content.decode()

    assert "<title>Administration | Contract Approvals</title>" in page
    assert "Contract Approvals · Globex Legal</a>" in page
    assert "Django administration" not in page
    assert '<a href="/dashboard/"' in page
    assert ">SLA rules<" in page
    assert ">SLA settings<" in page


def test_a_platform_superuser_sees_which_tenant_they_administer(tokyo):
    operator = User.objects.create_superuser("ops@example.com", FACTORY_PASSWORD)
    browser = Client()
    log_in(browser, operator)
    assert "Contract Approvals</a>" in browser.get("/admin/").content.decode()

    session = browser.session
    session[ADMINISTERED_TENANT_KEY] = str(tokyo.pk)
    session.save()

    page = browser.get("/admin/").content.decode()
    assert "Contract Approvals · administering Globex Legal</a>" in page


def test_the_contract_page_reads_like_a_review(staff, reviewed):
    page = staff.get(f"/admin/contracts/contract/{reviewed.pk}/change/").content.decode()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))

    assert "Blocking findings: None" in text
    assert "icon-no.svg" not in page  # no red cross for the good case
    assert "Result Passes the playbook" in text
    assert '"missing_required"' not in page  # no raw JSON
    assert "1. Legal Review (All approvers, SLA 48 h) Approved" in text
    assert "2. Finance (All approvers, SLA 1 h) Pending" in text
    assert "Deal Review v1" in text
    assert re.search(SECONDS_IN_TOKYO, text)


def test_admin_timestamps_are_the_tenants_to_the_second(staff, reviewed):
    page = staff.get("/admin/contracts/contract/").content.decode()

    assert re.search(SECONDS_IN_TOKYO, page)


def test_the_audit_list_names_contracts_and_shortens_ids(staff, tokyo, reviewed):
    page = staff.get("/admin/audit/auditlog/").content.decode()

    assert (
        f'?contract={reviewed.pk}" title="Its whole trail (contract {reviewed.pk})">Globex MSA</a>'
        in page
    )
    assert f'<span title="{reviewed.pk}">{str(reviewed.pk)[:8]}…</span>' in page


def test_the_audit_list_reads_contract_titles_in_its_own_query(staff, tokyo):
    creator = UserFactory(tenant=tokyo)

    def queries(count: int) -> int:
        for _ in range(count):
            start(tokyo, contract_type="none", creator=creator)
        with CaptureQueriesContext(connection) as captured:
            assert staff.get("/admin/audit/auditlog/").status_code == 200
        return len(captured)

    assert queries(1) == queries(20)


def test_a_neutral_boolean_for_a_flagged_contract(staff, tokyo):
    contract = ContractFactory(
        tenant=tokyo, created_by=UserFactory(tenant=tokyo), has_blocking_findings=True
    )

    page = staff.get(f"/admin/contracts/contract/{contract.pk}/change/").content.decode()

    assert "Yes: routed as a deviation" in page
    assert "Not validated yet." in page


def test_workflow_pages_use_the_titles(staff, reviewed, tokyo):
    sla_check_breaches(tenant=tokyo, now=timezone.now() + timedelta(hours=3))
    instance = WorkflowInstance.objects.get()
    approval = WorkflowStageApproval.objects.get(stage__stage_name="Legal Review")

    pages = {
        "instance": staff.get(f"/admin/approvals/workflowinstance/{instance.pk}/change/"),
        "instances": staff.get("/admin/approvals/workflowinstance/"),
        "approval": staff.get(f"/admin/approvals/workflowstageapproval/{approval.pk}/change/"),
        "breaches": staff.get("/admin/approvals/slabreach/"),
    }

    assert {name: page.status_code for name, page in pages.items()} == dict.fromkeys(pages, 200)
    instance_page = pages["instance"].content.decode()
    assert "<h2>Deal Review — Globex MSA</h2>" in instance_page
    assert "1. Legal Review" in instance_page
    assert "any legal" in instance_page
    assert "Deal Review — Globex MSA" in pages["instances"].content.decode()
    assert "Legal Review — Globex MSA: any legal" in pages["approval"].content.decode()
    assert "Globex MSA" in pages["breaches"].content.decode()
