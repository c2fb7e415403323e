"""The dashboard in a real browser: a member logs in and reads the figures, desktop and phone."""

import pytest

from tests.browser import DESKTOP, PHONE, horizontal_overflow
from tests.factories import FACTORY_PASSWORD, UserFactory, UserRoleFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cfo(world, tenant):
    """A member without admin access whose role grants ``analytics.view``."""
    user = UserFactory(tenant=tenant, full_name="Cole CFO", email="cole@example.com")
    UserRoleFactory(user=user, role="cfo", permissions=["analytics.view"])
    return user


def log_in(page, base_url: str, user) -> None:
    page.goto(f"{base_url}/dashboard/")
    assert "/admin/login/" in page.url
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(FACTORY_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/dashboard/")


@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_the_dashboard_in_a_browser(live_server, open_page, screenshot, cfo, viewport, name):
    page = open_page(viewport)
    log_in(page, live_server.url, cfo)

    assert page.get_by_role("heading", name="Completion rate per workflow definition").is_visible()
    workflows = page.get_by_role("table", name="Workflows per definition")
    row = workflows.get_by_role("row", name="Deal Review").inner_text()
    assert " ".join(row.split()) == "Deal Review 5 1 1 2 1 25% 32.3 h"
    stages = page.get_by_role("table", name="Stages, slowest first")
    assert "21.6 h" in stages.get_by_role("row", name="Legal Review").inner_text()
    assert page.get_by_role("img", name="SLA compliance per week").is_visible()
    assert page.get_by_role("row", name="Role: finance (any holder)").is_visible()
    screenshot(page, f"dash-dashboard-{name}")
    assert horizontal_overflow(page) == 0

    page.get_by_label("From", exact=True).fill("2026-03-05")
    page.get_by_label("To", exact=True).fill("2026-03-04")
    page.get_by_role("button", name="Show").click()
    assert page.get_by_role("alert").inner_text().count("Must be after date_from") == 1
    screenshot(page, f"dash-dashboard-bad-period-{name}")
    assert horizontal_overflow(page) == 0
