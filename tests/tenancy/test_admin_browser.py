"""The Django admin as a legal-ops person uses it, in a real browser, on the demo tenant's data.

Screenshots of the index, a contract, a workflow definition and the audit list at desktop and
phone width; at neither does the page scroll sideways.
"""

import re
from decimal import Decimal

import pytest
from django.core.management import call_command

from approvals.lifecycle import contract_create
from approvals.orchestrator import approval_act
from core import rls
from tenancy.models import Tenant, User
from tests.browser import DESKTOP, PHONE, horizontal_overflow
from workflows.management.commands.seed_demo import DEMO_PASSWORD
from workflows.models import WorkflowDefinition

pytestmark = pytest.mark.django_db(transaction=True)

CLEAN_TEXT = "The limitation of liability is twelve months of fees."
FLAGGED_TEXT = "Supplier accepts unlimited liability for data loss."


@pytest.fixture
def demo(capsys):
    """``seed_demo``'s tenant with a contract approved by Legal and one with a blocking finding."""
    call_command("seed_demo")
    capsys.readouterr()
    tenant = Tenant.objects.get(slug="acme")
    with rls.tenant_scope(tenant):
        users = {user.email.split("@")[0]: user for user in User.objects.filter(tenant=tenant)}
        requester = users["requester"]

        def create(title, contract_type, value, counterparty, text):
            return contract_create(
                tenant=tenant,
                created_by=requester,
                title=title,
                contract_type=contract_type,
                value=Decimal(value),
                counterparty=counterparty,
                text=text,
            )

        globex = create("Globex MSA", "MSA", "750000.00", "Globex Corporation", CLEAN_TEXT)
        approval_act(tenant=tenant, contract_id=globex.pk, actor=users["legal"], action="approve")
        initech = create("Initech SOW", "SOW", "120000.00", "Initech", FLAGGED_TEXT)
    return {"tenant": tenant, "users": users, "globex": globex, "initech": initech}


def log_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/admin/")


def visit(page, url: str, screenshot, name: str, viewport_name: str) -> None:
    page.goto(url)
    screenshot(page, f"dash-admin-{name}-{viewport_name}")


@pytest.mark.parametrize(("viewport", "viewport_name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_the_admin_pages_a_legal_ops_person_reads(
    live_server, open_page, screenshot, demo, viewport, viewport_name
):
    page = open_page(viewport)
    base = live_server.url
    log_in(page, base, "admin@acme.example")
    overflow = {}

    visit(page, f"{base}/admin/", screenshot, "index", viewport_name)
    overflow["index"] = horizontal_overflow(page)
    assert page.locator("#site-name").inner_text() == "Contract Approvals · Acme Corp"
    assert page.get_by_role("link", name="Analytics dashboard").get_attribute("href") == (
        "/dashboard/"
    )

    visit(
        page,
        f"{base}/admin/contracts/contract/{demo['globex'].pk}/change/",
        screenshot,
        "contract",
        viewport_name,
    )
    overflow["contract"] = horizontal_overflow(page)
    assert page.locator(".field-blocking_findings .readonly").inner_text() == "None"
    workflow = page.locator(".field-workflow_panel")
    assert "1. Legal Review" in workflow.inner_text()
    assert re.search(r"\d{1,2} Dec 2026, \d\d:\d\d:\d\d E[SD]T", workflow.inner_text())

    visit(
        page,
        f"{base}/admin/contracts/contract/{demo['initech'].pk}/change/",
        screenshot,
        "contract-flagged",
        viewport_name,
    )
    overflow["contract-flagged"] = horizontal_overflow(page)
    assert "Yes: routed as a deviation" in page.locator(".field-blocking_findings").inner_text()
    assert "No unlimited liability" in page.locator(".field-findings_table").inner_text()

    with rls.tenant_scope(demo["tenant"]):
        definition = WorkflowDefinition.objects.get(name="High Value Contract Approval")
    visit(
        page,
        f"{base}/admin/workflows/workflowdefinition/{definition.pk}/change/",
        screenshot,
        "definition",
        viewport_name,
    )
    overflow["definition"] = horizontal_overflow(page)
    # The rule as typed, tried without saving it.
    page.get_by_label("Trigger conditions").fill('{"contract_type": "SOW"}')
    page.get_by_role("button", name="Dry run the rule as typed").click()
    dry_run = page.locator(".field-dry_run").inner_text()
    assert "The rule as typed, not saved" in dry_run
    assert "Initech SOW" in dry_run
    assert "Globex MSA" not in dry_run
    screenshot(page, f"dash-admin-definition-dry-run-{viewport_name}")
    with rls.tenant_scope(demo["tenant"]):
        definition.refresh_from_db()
    assert definition.trigger_conditions["contract_type__in"] == ["MSA", "SOW"]

    visit(page, f"{base}/admin/audit/auditlog/", screenshot, "audit", viewport_name)
    overflow["audit"] = horizontal_overflow(page)
    assert page.get_by_role("link", name="Globex MSA").first.is_visible()

    # On a phone too (Django's responsive CSS; wide tables scroll inside their own boxes).
    assert overflow == dict.fromkeys(overflow, 0)
