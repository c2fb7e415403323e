"""GET /dashboard/: the analytics dashboard, through real sessions on real PostgreSQL.

The figures are the analytics world's (``build_world`` in ``tests/fixtures.py``): the page must show
what ``workflow_analytics`` computes, drawn and tabled, for the viewer's tenant only.
"""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from approvals.analytics import dashboard_figures
from approvals.orchestrator import approval_act
from tenancy.admin_scoping import ADMINISTERED_TENANT_KEY
from tenancy.models import User
from tests.factories import FACTORY_PASSWORD, UserFactory, UserRoleFactory
from tests.fixtures import T0, H, define, holder, log_in, stage, start

pytestmark = pytest.mark.django_db

URL = "/dashboard/"


def browser_for(user) -> Client:
    browser = Client()
    log_in(browser, user)
    return browser


def text(response) -> str:
    """The page's text, tags removed and white space collapsed (what a reader sees)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


@pytest.fixture
def viewer(tenant):
    return UserFactory(tenant=tenant, is_tenant_admin=True, full_name="Vera Viewer")


def test_the_dashboard_shows_the_worlds_figures(world, other, viewer):
    response = browser_for(viewer).get(URL)

    assert response.status_code == 200
    page = text(response)
    # Completion per definition: Deal Review 1 of 4 finished, NDA 1 of 1.
    assert "Deal Review 5 1 1 2 1 25% 32.3 h" in page
    assert "NDA Fast Track 1 0 1 0 0 100% 2 h" in page
    # Stages, slowest first, with the SLA they ran under (48 h on Deal Review, 24 h on NDA).
    assert "Legal Review 5 21.6 h 44 h 24-48 h 80% 1" in page
    assert "Finance Approval 2 17 h 27.4 h 24 h 50% 2" in page
    assert "Legal Review : 21.6 h on average, p90 44 h (SLA 24-48 h), 80% on time" in page
    # One week of decisions (2-7 March 2026): 5 of 7 on time.
    assert "Mon 2026-03-02 7 5 71%" in page
    # W5's Finance Approval waits for either role; both rows breached.
    assert "Role: cfo (any holder) 1 1" in page
    assert "Role: finance (any holder) 1 1" in page
    # Decision time per approver.
    assert f"{world.cfo.full_name} 1 30 h" in page


def test_the_charts_are_svg_with_a_title_and_a_description(world, viewer):
    content = browser_for(viewer).get(URL).content.decode()

    svgs = re.findall(r"<svg .*?</svg>", content, re.S)
    assert len(svgs) == 3
    for svg in svgs:
        assert 'role="img"' in svg
        assert re.search(r"<title id=\"[\w-]+-title\">[^<]+</title>", svg)
        assert re.search(r"<desc id=\"[\w-]+-desc\">[^<]+</desc>", svg)
    assert "Deal Review: 25%" in svgs[0]
    assert "Legal Review: average 21.6 h, p90 44 h, SLA 24-48 h" in svgs[1]
    assert "week of Mar 2: 71% of 7" in svgs[2]
    assert "<script" not in content
    assert not re.search(r'(src|href)="(https?:)?//', content)  # nothing from another site


def test_a_date_range_narrows_every_section(world, viewer):
    # 4 and 5 March: W3 (rejected after a breach) and W4 (cancelled).
    response = browser_for(viewer).get(URL, {"date_from": "2026-03-04", "date_to": "2026-03-05"})

    page = text(response)
    assert "Deal Review 2 0 0 1 1 0% 32.5 h" in page
    assert "NDA Fast Track" not in page
    assert "Legal Review 1 60 h 60 h 48 h 0% 1" in page
    assert "Nothing is waiting for a decision." in page


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"date_from": "2026-02-30"}, "From: Enter a valid date."),
        ({"date_to": "yesterday"}, "To: Enter a valid date."),
        ({"date_from": "x" * 500}, "From: Enter a valid date."),
        (
            {"date_from": "2026-03-05", "date_to": "2026-03-04"},
            "To: Must be after date_from (the period is empty).",
        ),
    ],
)
def test_bad_dates_are_a_400_page_saying_why(viewer, params, message):
    response = browser_for(viewer).get(URL, params)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert message in text(response)


@pytest.mark.parametrize("params", [{"date_from": "0001-01-01"}, {"date_to": "9999-12-31"}])
def test_extreme_dates_are_answered(viewer, params):
    assert browser_for(viewer).get(URL, params).status_code == 200


def test_anonymous_visitors_go_to_the_login_page():
    response = Client().get(URL, {"date_from": "2026-03-01"})

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/dashboard/%3Fdate_from%3D2026-03-01"


def test_a_member_without_the_capability_gets_a_403_page(tenant):
    response = browser_for(UserFactory(tenant=tenant, is_staff=True)).get(URL)

    assert response.status_code == 403
    assert "analytics.view" in text(response)


def test_a_role_granting_the_capability_opens_it(world, tenant):
    cfo = UserRoleFactory(
        user=UserFactory(tenant=tenant), role="cfo", permissions=["analytics.view"]
    ).user

    response = browser_for(cfo).get(URL)

    assert response.status_code == 200
    assert "Deal Review" in text(response)


def test_another_tenants_admin_sees_only_their_own(world, other, tenant):
    other_tenant, _ = other
    outsider = UserFactory(tenant=other_tenant, is_tenant_admin=True)

    page = text(browser_for(outsider).get(URL))

    assert "Deal Review 1 0 1 0 0 100% 1001 h" in page
    assert "NDA Fast Track" not in page
    assert world.cfo.full_name not in page


def test_a_platform_superuser_sees_the_tenant_they_administer(world, tenant):
    operator = User.objects.create_superuser("ops@example.com", FACTORY_PASSWORD)
    browser = browser_for(operator)

    refused = browser.get(URL)
    assert refused.status_code == 403
    assert "Administer the selected tenant" in text(refused)

    session = browser.session
    session[ADMINISTERED_TENANT_KEY] = str(tenant.pk)
    session.save()
    response = browser.get(URL)
    assert response.status_code == 200
    assert f"Analytics — {tenant.name}" in text(response)
    assert "NDA Fast Track 1 0 1 0 0 100% 2 h" in text(response)


def test_a_member_without_admin_access_logs_in_for_the_dashboard(world, tenant):
    cfo = UserRoleFactory(
        user=UserFactory(tenant=tenant), role="cfo", permissions=["analytics.view"]
    ).user
    browser = Client()
    credentials = {"username": cfo.email, "password": FACTORY_PASSWORD}

    refused = browser.post("/admin/login/?next=/admin/", {**credentials, "next": "/admin/"})
    assert refused.status_code == 200
    assert "_auth_user_id" not in browser.session

    response = browser.post(
        "/admin/login/?next=/dashboard/", {**credentials, "next": "/dashboard/"}, follow=True
    )
    assert response.redirect_chain[-1] == ("/dashboard/", 302)
    assert "Deal Review" in text(response)

    logged_out = browser.post("/dashboard/logout/")
    assert logged_out["Location"] == "/admin/login/?next=/dashboard/"
    assert browser.get(URL).status_code == 302


def test_figures_come_in_six_queries_and_the_page_in_a_fixed_number(tenant, viewer):
    """Same for 1 and for 50 definitions, each with its own stage and a decided workflow."""
    browser = browser_for(viewer)
    legal = holder(tenant, "legal")
    requester = UserFactory(tenant=tenant)

    def grow(count: int, first: int) -> tuple[int, int]:
        for number in range(first, first + count):
            define(
                tenant,
                [stage(f"Stage {number}", ["legal"], sla_hours=24)],
                contract_type=f"T{number}",
                name=f"Flow {number}",
            )
            contract = start(tenant, contract_type=f"T{number}", creator=requester)
            approval_act(tenant=tenant, contract_id=contract.pk, actor=legal, action="approve")
        with CaptureQueriesContext(connection) as selector:
            figures = dashboard_figures(tenant_id=tenant.pk, date_from=(T0 - 1000 * 24 * H))
        with CaptureQueriesContext(connection) as page:
            response = browser.get(URL)
        assert response.status_code == 200
        assert len(figures["workflows"]) == len(figures["stages"]) == first + count - 1
        return len(selector), len(page)

    one = grow(1, 1)
    fifty = grow(49, 2)

    assert one[0] == fifty[0] == 6
    assert one[1] == fifty[1]
