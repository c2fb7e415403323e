"""SLA configuration in the Django admin: the API's validation and audit, scoped to the tenant."""

from datetime import date

import pytest
from django.test import Client

from approvals.models import Holiday, SLABreach, SLARule, SLASettings
from approvals.services import holiday_create, sla_check_breaches, sla_rule_create
from audit.models import AuditLog
from tests.factories import UserFactory
from tests.fixtures import define, holder, pending_approvals, stage, start

pytestmark = pytest.mark.django_db

RULES = "/admin/approvals/slarule/"
HOLIDAYS = "/admin/approvals/holiday/"
SETTINGS = "/admin/approvals/slasettings/"
BREACHES = "/admin/approvals/slabreach/"


@pytest.fixture
def staff(tenant):
    return UserFactory(tenant=tenant, is_tenant_admin=True, is_staff=True)


@pytest.fixture
def browser(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


RULE_FORM = {
    "name": "",
    "contract_type": "MSA",
    "stage_name": "Legal Review",
    "sla_hours": "48",
    "business_hours_only": "on",
    "escalation_enabled": "on",
    "escalate_to_role": "legal-lead",
    "is_active": "on",
}


def test_add_rule_generates_the_name_and_audits(browser, tenant, staff):
    response = browser.post(f"{RULES}add/", RULE_FORM)

    assert response.status_code == 302, response.content.decode()[:2000]
    rule = SLARule.objects.get()
    assert (rule.tenant_id, rule.name) == (tenant.pk, "MSA · Legal Review · 48 business h")
    assert AuditLog.objects.get(action="sla_rule_created").actor_id == staff.pk

    edited = browser.post(
        f"{RULES}{rule.pk}/change/", {**RULE_FORM, "name": rule.name, "sla_hours": "24"}
    )
    assert edited.status_code == 302
    rule.refresh_from_db()
    assert rule.name == "MSA · Legal Review · 24 business h"  # still generated
    assert AuditLog.objects.filter(action="sla_rule_updated").count() == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sla_hours": "0"}, "from 1 to 8760"),
        ({"sla_hours": "9000"}, "from 1 to 8760"),
        ({"escalate_to_role": "-legal"}, "A role slug"),
        ({"escalate_to_role": "Legal Lead!"}, "valid “slug”"),
        ({"escalate_to_role": ""}, "Required when escalation_enabled"),
    ],
)
def test_bad_rules_are_form_errors(browser, changes, message):
    response = browser.post(f"{RULES}add/", {**RULE_FORM, **changes})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not SLARule.objects.exists()


def test_duplicate_scope_is_a_form_error(browser, tenant, staff):
    sla_rule_create(
        tenant=tenant, created_by=staff, contract_type="msa", stage_name="legal review", sla_hours=5
    )
    response = browser.post(f"{RULES}add/", RULE_FORM)
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert SLARule.objects.count() == 1


def test_holiday_add_duplicate_and_delete(browser, tenant, staff):
    assert (
        browser.post(f"{HOLIDAYS}add/", {"date": "2026-12-25", "name": "Christmas"}).status_code
        == 302
    )
    duplicate = browser.post(f"{HOLIDAYS}add/", {"date": "2026-12-25", "name": "Again"})
    assert duplicate.status_code == 200
    assert "already a holiday" in duplicate.content.decode()
    holiday = Holiday.objects.get()
    assert holiday.tenant_id == tenant.pk
    assert browser.post(f"{HOLIDAYS}{holiday.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Holiday.objects.exists()
    assert AuditLog.objects.filter(action__startswith="sla_holiday_").count() == 2


def test_settings_add_then_only_change(browser, tenant):
    form = {
        "timezone": "Europe/Berlin",
        "working_days": ["0", "1", "2", "3"],
        "day_start": "08:00",
        "day_end": "16:00",
        "default_sla_hours": "",
        "reminder_percent": "80",
    }
    bad = browser.post(f"{SETTINGS}add/", {**form, "timezone": "Nowhere/City"})
    assert bad.status_code == 200
    assert "not a known IANA time zone" in bad.content.decode()

    assert browser.post(f"{SETTINGS}add/", form).status_code == 302
    settings = SLASettings.objects.get()
    assert settings.working_days == [0, 1, 2, 3]
    assert settings.default_sla_hours is None
    tenant.refresh_from_db()
    assert tenant.timezone == "Europe/Berlin"
    assert browser.get(f"{SETTINGS}add/").status_code == 403  # one per tenant

    reversed_hours = browser.post(
        f"{SETTINGS}{settings.pk}/change/", {**form, "day_start": "18:00", "day_end": "09:00"}
    )
    assert reversed_hours.status_code == 200
    assert "Must be after day_start" in reversed_hours.content.decode()


@pytest.mark.rls_bypass("builds and checks two tenants' SLA rows, then compares")
def test_admin_lists_only_the_tenants_rows(browser, tenant, other_tenant, staff):
    outsider = UserFactory(tenant=other_tenant)
    sla_rule_create(tenant=other_tenant, created_by=outsider, stage_name="Theirs", sla_hours=1)
    holiday_create(
        tenant=other_tenant, created_by=outsider, date=date(2026, 1, 1), name="Their day"
    )
    for owner in (tenant, other_tenant):
        define(owner, [stage("Review", ["legal"], sla_hours=1)])
        holder(owner, "legal")
        pending_approvals(start(owner))
    sla_check_breaches(now=SLARule.objects.first().created_at.replace(year=2099))
    assert SLABreach.objects.count() == 2
    mine = SLABreach.objects.get(tenant=tenant)

    for url in (RULES, HOLIDAYS, BREACHES):
        response = browser.get(url)
        assert response.status_code == 200
        listed = {obj.tenant_id for obj in response.context["cl"].result_list}
        assert listed <= {tenant.pk}
    assert [obj.pk for obj in browser.get(BREACHES).context["cl"].result_list] == [mine.pk]
    their_breach = SLABreach.objects.get(tenant=other_tenant)
    assert browser.get(f"{BREACHES}{their_breach.pk}/change/").status_code in (302, 404)
