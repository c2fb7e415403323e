"""Clause library in the Django admin: through the service, one tenant's rules."""

import pytest
from django.test import Client

from audit.models import AuditLog
from contracts.models import ClauseRule
from tests.factories import ClauseRuleFactory, UserFactory

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- Django admin


ADMIN = "/admin/contracts/clauserule/"


@pytest.fixture
def browser(tenant) -> Client:
    browser = Client()
    browser.force_login(
        UserFactory(tenant=tenant, is_tenant_admin=True, is_staff=True, full_name="Staff")
    )
    return browser


def admin_form(**overrides) -> dict:
    return {
        "name": "Admin rule",
        "category": "liability",
        "contract_types": "MSA, SOW",
        "kind": "prohibited",
        "patterns": "unlimited liability\nliability, without limit",
        "severity": "blocking",
        "guidance": "Cap it.",
        "is_active": "on",
        **overrides,
    }


def test_admin_adds_a_rule_through_the_service(browser, tenant):
    response = browser.post(f"{ADMIN}add/", admin_form())

    assert response.status_code == 302, response.content.decode()[:2000]
    rule = ClauseRule.objects.get()
    assert rule.tenant_id == tenant.pk
    assert rule.contract_types == ["MSA", "SOW"]
    assert rule.patterns == ["unlimited liability", "liability, without limit"]
    assert AuditLog.objects.filter(action="clause_rule_created", resource_id=str(rule.pk)).exists()


def test_admin_edits_and_deletes_through_the_service(browser, tenant):
    rule = ClauseRuleFactory(tenant=tenant, patterns=["one"])

    page = browser.get(f"{ADMIN}{rule.pk}/change/")
    assert page.status_code == 200
    assert "one" in page.content.decode()

    edited = browser.post(f"{ADMIN}{rule.pk}/change/", admin_form(patterns="two\nthree"))
    assert edited.status_code == 302
    rule.refresh_from_db()
    assert rule.patterns == ["two", "three"]
    assert AuditLog.objects.filter(action="clause_rule_updated").exists()

    deleted = browser.post(f"{ADMIN}{rule.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert not ClauseRule.objects.exists()
    assert AuditLog.objects.filter(action="clause_rule_deleted").exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"patterns": "fine\n" + "x" * 501}, "patterns"),
        ({"patterns": "   \n\n"}, "patterns"),
        ({"patterns": "nul\x00byte"}, "patterns"),
        ({"kind": "forbidden"}, "kind"),
        ({"severity": "critical"}, "severity"),
        ({"contract_types": "MSA, " + "X" * 51}, "contract_types"),
        ({"name": "Taken"}, "name"),
    ],
)
def test_admin_form_errors_never_500(browser, tenant, overrides, field):
    ClauseRuleFactory(tenant=tenant, name="Taken")

    response = browser.post(f"{ADMIN}add/", admin_form(**overrides))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert ClauseRule.objects.count() == 1


def test_admin_hides_other_tenants_rules(browser, other_tenant):
    theirs = ClauseRuleFactory(tenant=other_tenant, name="Outsider rule")

    listing = browser.get(ADMIN)
    detail = browser.get(f"{ADMIN}{theirs.pk}/change/", follow=True)

    assert listing.status_code == 200
    assert "Outsider rule" not in listing.content.decode()
    assert "Outsider rule" not in detail.content.decode()
