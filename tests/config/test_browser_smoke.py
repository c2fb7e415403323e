"""The browser harness itself: Chromium starts, a live page renders and fits a phone's width."""

from tests.browser import PHONE, horizontal_overflow


def test_the_admin_login_renders_in_a_real_browser_at_phone_width(
    live_server, open_page, screenshot
):
    page = open_page(PHONE)
    page.goto(f"{live_server.url}/admin/login/")
    assert page.get_by_label("Email").is_visible()
    assert page.get_by_label("Password").is_visible()
    screenshot(page, "admin-login-phone")
    assert horizontal_overflow(page) == 0
