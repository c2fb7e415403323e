"""The Django admin's login (/admin/login/): limited and audited like the API's login.

The same per-client budget, the same per-account back-off (bounded: never longer than
``LOGIN_BACKOFF_MAX_SECONDS``), a ``login_failed`` audit row for each refused login, and a page
that says when to try again (429 with ``Retry-After``, not an error page). A browser the account
logged in from before keeps its own count, so others' failures cannot lock the owner out.
"""

import pytest
from django.test import Client

from audit.models import AuditLog
from core import rls
from tenancy.admin_site import TRUSTED_DEVICE_COOKIE
from tenancy.throttling import account_key
from tests.factories import FACTORY_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
TOKEN = "/api/auth/token/"
PEER = "198.51.100.20"
WRONG = "wrong-password"


@pytest.fixture
def staff(tenant):
    return UserFactory(tenant=tenant, is_tenant_admin=True, is_staff=True)


@pytest.fixture
def browser() -> Client:
    return Client(REMOTE_ADDR=PEER, HTTP_USER_AGENT="AdminBrowser/1.0")


@pytest.fixture
def backoff(settings, backend):
    settings.LOGIN_BACKOFF_FAILURES = 5
    settings.LOGIN_BACKOFF_BASE_SECONDS = 30
    settings.LOGIN_BACKOFF_MAX_SECONDS = 900
    return backend


def admin_login(browser, email, password=WRONG):
    return browser.post(LOGIN, {"username": email, "password": password, "next": "/admin/"})


def logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def throttled_for(response) -> int:
    assert response.status_code == 429
    assert response["Content-Type"].startswith("text/html")
    assert b"Too many login attempts. Try again in" in response.content
    assert b'name="username"' in response.content  # the login form, ready for later
    return int(response["Retry-After"])


def test_a_failed_admin_login_is_audited_like_the_apis(browser, staff):
    response = admin_login(browser, staff.email.upper())

    assert response.status_code == 200
    assert b"Please enter the correct email and password" in response.content
    row = AuditLog.objects.get(action="login_failed")
    assert (row.tenant_id, row.resource_id, row.actor_id) == (staff.tenant_id, str(staff.pk), None)
    assert row.changes == {"email": [None, staff.email], "via": [None, "admin"]}
    assert (row.ip_address, row.user_agent) == (PEER, "AdminBrowser/1.0")


def test_a_failed_admin_login_of_an_unknown_address_is_audited_without_tenant(browser):
    admin_login(browser, "ghost@example.com")

    with rls.platform_scope():
        row = AuditLog.objects.get(action="login_failed")
    assert (row.tenant_id, row.resource_id) == (None, "")


def test_a_non_staff_user_with_the_right_password_is_refused_and_audited(browser, user):
    assert admin_login(browser, user.email, FACTORY_PASSWORD).status_code == 200
    assert AuditLog.objects.filter(action="login_failed", resource_id=str(user.pk)).exists()


def test_an_empty_form_is_not_an_attempt(browser, settings):
    settings.AUTH_THROTTLE_RATE = "1/min"
    for _ in range(3):
        assert browser.post(LOGIN, {"username": "", "password": ""}).status_code == 200
    assert not AuditLog.objects.exists()


def test_admin_logins_back_off_per_account_and_say_so(browser, staff, backoff):
    for _ in range(5):
        assert admin_login(browser, staff.email).status_code == 200

    response = admin_login(browser, staff.email, FACTORY_PASSWORD)  # the right one, too late

    wait = throttled_for(response)
    assert 25 < wait <= 30
    assert f"Try again in {wait} seconds.".encode() in response.content
    assert "_auth_user_id" not in browser.session
    assert AuditLog.objects.filter(action="login_failed").count() == 5  # refusals are not


def test_the_admin_lockout_is_bounded_and_a_success_ends_it(browser, staff, backoff):
    """However long an attacker keeps failing, the owner waits at most the cap, then gets in."""
    for _ in range(4):
        admin_login(browser, staff.email)
    waits = []
    for _ in range(8):
        admin_login(browser, staff.email)
        refused = admin_login(browser, staff.email)
        waits.append(throttled_for(refused))
        backoff.pass_block(account_key(staff.email))

    assert max(waits) <= 900
    assert all(895 < wait <= 900 for wait in waits[-3:]), waits
    assert b"Try again in 15 minutes." in refused.content
    assert logged_in(admin_login(browser, staff.email, FACTORY_PASSWORD))
    stranger = Client(REMOTE_ADDR="203.0.113.9")  # not the browser that logged in
    assert [admin_login(stranger, staff.email).status_code for _ in range(5)] == [200] * 5
    throttled_for(admin_login(stranger, staff.email))  # counting started over at the success


def test_api_and_admin_share_the_account_back_off(api_client, browser, staff, backoff):
    for _ in range(5):
        api_client.post(TOKEN, {"email": staff.email, "password": WRONG}, REMOTE_ADDR=PEER)

    throttled_for(admin_login(browser, staff.email, FACTORY_PASSWORD))


def test_api_and_admin_share_the_client_budget(api_client, browser, staff, settings, backend):
    settings.AUTH_THROTTLE_RATE = "2/min"
    api_client.post(TOKEN, {"email": staff.email, "password": WRONG}, REMOTE_ADDR=PEER)
    assert admin_login(browser, staff.email).status_code == 200
    assert browser.get(LOGIN).status_code == 200  # showing the form counts for nothing

    assert 55 < throttled_for(admin_login(browser, staff.email, FACTORY_PASSWORD)) <= 60
    assert AuditLog.objects.filter(action="login_failed").count() == 2


def test_the_admin_login_still_works(browser, staff):
    assert logged_in(admin_login(browser, staff.email, FACTORY_PASSWORD))
    assert browser.get("/admin/").status_code == 200


# --- the owner's browser ----------------------------------------------------------------------


@pytest.fixture
def owners_browser(staff):
    """A browser the staff user logged in from (and out of) before."""
    browser = Client(REMOTE_ADDR="192.0.2.50")
    assert logged_in(admin_login(browser, staff.email, FACTORY_PASSWORD))
    browser.get("/admin/logout/")
    browser.post("/admin/logout/")
    return browser


def attack(staff, times=6):
    attacker = Client(REMOTE_ADDR="203.0.113.66")
    for _ in range(times):
        admin_login(attacker, staff.email)
    return attacker


def test_a_login_marks_the_browser_as_the_accounts(owners_browser):
    cookie = owners_browser.cookies[TRUSTED_DEVICE_COOKIE]
    assert (cookie["path"], cookie["httponly"], cookie["samesite"]) == ("/admin/", True, "Lax")
    assert cookie["max-age"] == 90 * 86400


def test_an_attacker_cannot_lock_the_owner_out_of_their_browser(owners_browser, staff, backoff):
    attacker = attack(staff)
    throttled_for(admin_login(attacker, staff.email, FACTORY_PASSWORD))

    assert logged_in(admin_login(owners_browser, staff.email, FACTORY_PASSWORD))
    throttled_for(admin_login(attacker, staff.email))  # the owner's login frees nobody else


def test_the_owners_browser_backs_off_on_its_own_failures(owners_browser, staff, backoff):
    for _ in range(5):
        assert admin_login(owners_browser, staff.email).status_code == 200

    throttled_for(admin_login(owners_browser, staff.email, FACTORY_PASSWORD))
    assert logged_in(admin_login(Client(), staff.email, FACTORY_PASSWORD))  # others: unaffected


def test_the_browser_is_trusted_for_its_account_only(owners_browser, staff, tenant, backoff):
    other = UserFactory(tenant=tenant, is_staff=True)
    attack(other)

    throttled_for(admin_login(owners_browser, other.email, FACTORY_PASSWORD))


def test_a_forged_device_cookie_is_ignored(staff, backoff):
    attack(staff)
    forger = Client()
    forger.cookies[TRUSTED_DEVICE_COOKIE] = f"{account_key(staff.email)}:my-device"

    throttled_for(admin_login(forger, staff.email, FACTORY_PASSWORD))
