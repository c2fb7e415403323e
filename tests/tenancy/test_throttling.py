"""Throttles through the API (docs/throttling.md), on each store: per client IP on the auth
endpoints, per account on failed logins, per user on writes. 429 with ``Retry-After``.
"""

import logging
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditLog
from config.env import env_rate, parse_rate
from tenancy.throttling import account_key, backoff_schedule
from tests.factories import FACTORY_PASSWORD, UserFactory
from tests.support import manage

pytestmark = pytest.mark.django_db

TOKEN = "/api/auth/token/"
REFRESH = "/api/auth/token/refresh/"
VALIDATE = "/api/contracts/validate-clauses/"
ME = "/api/auth/me/"
PEER = "192.0.2.10"
WRONG = "wrong-password"


def login(api_client, email, password=WRONG, **headers):
    headers.setdefault("REMOTE_ADDR", PEER)
    return api_client.post(TOKEN, {"email": email, "password": password}, **headers)


def assert_throttled(response, code="throttled"):
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == code
    assert response.json()["request_id"] == response["X-Request-ID"]
    return int(response["Retry-After"])


# --- per client IP ------------------------------------------------------------------------------


@pytest.fixture
def auth_rate(settings, backend):
    settings.AUTH_THROTTLE_RATE = "3/min"
    return backend


def refresh(api_client, **headers):
    return api_client.post(REFRESH, {"refresh": "not-a-token"}, **headers)


def test_a_spoofed_forwarded_for_does_not_reset_the_count(api_client, auth_rate, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    statuses = [
        refresh(api_client, REMOTE_ADDR=PEER, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(4)
    ]

    assert statuses == [401, 401, 401, 429]


def test_behind_a_trusted_proxy_the_hop_it_appended_is_the_client(api_client, auth_rate, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}

    def from_client(address, forged="198.51.100.1"):
        forwarded = f"{forged}, {address}"  # the client wrote the left part, the proxy the right
        return refresh(api_client, HTTP_X_FORWARDED_FOR=forwarded, **proxy).status_code

    assert [from_client("203.0.113.7", forged=f"198.51.100.{n}") for n in range(4)] == [
        401,
        401,
        401,
        429,
    ]
    assert from_client("203.0.113.8") == 401  # another client, behind the same proxy


def test_an_ipv6_client_is_counted_by_its_64_block(api_client, auth_rate):
    statuses = [
        refresh(api_client, REMOTE_ADDR=f"2001:db8:1:2::{n:x}").status_code for n in range(1, 5)
    ]

    assert statuses == [401, 401, 401, 429]
    assert refresh(api_client, REMOTE_ADDR="2001:db8:1:3::1").status_code == 401


def test_login_register_and_refresh_share_the_client_budget(api_client, auth_rate):
    login(api_client, "someone@example.com")
    api_client.post("/api/auth/register/", {"email": "not-an-email"}, REMOTE_ADDR=PEER)
    refresh(api_client, REMOTE_ADDR=PEER)

    assert_throttled(refresh(api_client, REMOTE_ADDR=PEER))


@pytest.mark.django_db(transaction=True)
def test_the_client_count_is_shared_by_every_process(api_client, auth_rate, settings):
    """Another process (another worker, or machine) counts against the same budget."""
    assert [refresh(api_client, REMOTE_ADDR=PEER).status_code for _ in range(2)] == [401, 401]

    child = manage(
        "shell",
        "-c",
        "from rest_framework.test import APIClient; print('status', APIClient().post("
        f"'{REFRESH}', {{'refresh': 'x'}}, format='json', REMOTE_ADDR='{PEER}').status_code)",
        AUTH_THROTTLE_RATE="3/min",
        REDIS_URL=settings.REDIS_URL,
        RATE_LIMIT_REDIS_PREFIX=settings.RATE_LIMIT_REDIS_PREFIX,
    )

    assert "status 401" in child.stdout, child.stdout + child.stderr
    assert_throttled(refresh(api_client, REMOTE_ADDR=PEER))


# --- per account: failed logins back off ------------------------------------------------------


@pytest.fixture
def backoff(settings, backend):
    settings.LOGIN_BACKOFF_FAILURES = 5
    settings.LOGIN_BACKOFF_BASE_SECONDS = 30
    settings.LOGIN_BACKOFF_MAX_SECONDS = 900
    return backend


def back_off_sequence(api_client, backend, email, rounds=7):
    """The Retry-After of each block, letting each block pass before the next failure."""
    for _ in range(4):
        assert login(api_client, email).status_code == 401
    waits = []
    for _ in range(rounds):
        assert login(api_client, email).status_code == 401  # counted: it blocks the account
        waits.append(assert_throttled(login(api_client, email)))
        backend.pass_block(account_key(email))
    return waits


def within(waits, expected):
    return all(e - 5 < got <= e for got, e in zip(waits, expected, strict=True))


def test_failed_logins_back_off_exponentially_up_to_the_cap(api_client, user, backoff):
    waits = back_off_sequence(api_client, backoff, user.email)

    assert backoff_schedule() == [30, 60, 120, 240, 480, 900]
    assert within(waits, [30, 60, 120, 240, 480, 900, 900]), waits


def test_an_unknown_address_backs_off_exactly_like_a_known_one(api_client, user, backoff):
    known = back_off_sequence(api_client, backoff, user.email, rounds=3)
    unknown = back_off_sequence(api_client, backoff, "nobody@example.com", rounds=3)

    assert within(known, [30, 60, 120]), known
    assert within(unknown, [30, 60, 120]), unknown


def test_while_backed_off_even_the_right_password_is_refused(api_client, user, backoff):
    for _ in range(5):
        login(api_client, user.email)

    response = login(api_client, user.email, FACTORY_PASSWORD)

    assert assert_throttled(response) > 0
    assert "account" in response.json()["detail"]
    assert not AuditLog.objects.filter(action="login").exists()
    assert AuditLog.objects.filter(action="login_failed").count() == 5  # refusals are not


def test_a_success_resets_the_back_off(api_client, user, backoff):
    for _ in range(5):
        login(api_client, user.email)
    backoff.pass_block(account_key(user.email))

    assert login(api_client, user.email, FACTORY_PASSWORD).status_code == 200
    # Counting starts over: four free failures, not a block at the next one.
    assert [login(api_client, user.email).status_code for _ in range(5)] == [401] * 5
    assert login(api_client, user.email).status_code == 429


def test_the_back_off_is_per_account_and_ignores_case(api_client, user, backoff):
    for _ in range(5):
        login(api_client, user.email.upper())

    assert login(api_client, user.email, FACTORY_PASSWORD).status_code == 429
    other = UserFactory(tenant=user.tenant)
    assert login(api_client, other.email, FACTORY_PASSWORD).status_code == 200


def test_the_back_off_holds_from_any_address(api_client, user, backoff, settings):
    settings.AUTH_THROTTLE_RATE = None
    for n in range(5):
        login(api_client, user.email, REMOTE_ADDR=f"203.0.113.{n}")

    assert login(api_client, user.email, REMOTE_ADDR="198.51.100.99").status_code == 429


def test_unlock_login_ends_the_back_off(api_client, user, backoff):
    for _ in range(5):
        login(api_client, user.email)

    call_command("unlock_login", user.email.upper())

    assert login(api_client, user.email, FACTORY_PASSWORD).status_code == 200


# --- per user: writes -----------------------------------------------------------------------


@pytest.fixture
def write_rate(settings, backend):
    settings.USER_WRITE_THROTTLE_RATE = "3/min"
    return backend


def validate(client):
    return client.post(VALIDATE, {"text": "Either party may terminate."}, format="json")


def test_writes_are_throttled_per_user(api_client_for, tenant, write_rate):
    alice, bob = UserFactory(tenant=tenant), UserFactory(tenant=tenant)
    alice_client, bob_client = api_client_for(alice), api_client_for(bob)

    assert [validate(alice_client).status_code for _ in range(3)] == [200] * 3
    assert 55 <= assert_throttled(validate(alice_client)) <= 60
    assert validate(bob_client).status_code == 200  # another user: unaffected
    assert alice_client.get(ME).status_code == 200  # reads: unaffected


def test_every_write_method_counts(api_client_for, user, write_rate):
    client = api_client_for(user)
    contract = f"/api/contracts/{uuid.uuid4()}/"
    # Refused (405, 404), but write attempts all the same: throttles run before the handler.
    assert client.put(contract, {}, format="json").status_code == 405
    assert client.delete(contract).status_code == 405
    assert client.patch(contract, {}, format="json").status_code == 404

    assert_throttled(client.post(VALIDATE, {"text": "x"}, format="json"))


def test_the_write_throttle_costs_one_statement_per_write_and_none_per_read(
    api_client_for, user, settings, backend
):
    client = api_client_for(user)

    def statements(request) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert request().status_code == 200
        return len(queries)

    settings.USER_WRITE_THROTTLE_RATE = None
    write_off, read_off = statements(lambda: validate(client)), statements(lambda: client.get(ME))
    settings.USER_WRITE_THROTTLE_RATE = "100/min"
    validate(client)  # a process's first hit also deletes expired rows (once a minute)

    extra = 1 if backend.name == "postgres" else 0  # Redis: one round trip, not SQL
    assert statements(lambda: validate(client)) == write_off + extra
    assert statements(lambda: client.get(ME)) == read_off


def test_unauthenticated_writes_are_not_counted_per_user(api_client, write_rate, settings):
    settings.AUTH_THROTTLE_RATE = None
    for _ in range(5):
        assert api_client.post(VALIDATE, {"text": "x"}, format="json").status_code == 401


def test_throttles_are_on_by_default():
    from config import settings as production_settings

    assert production_settings.AUTH_THROTTLE_RATE == "30/min"
    assert production_settings.USER_WRITE_THROTTLE_RATE == "600/min"
    assert production_settings.LOGIN_BACKOFF_FAILURES == 5
    assert production_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] == [
        "tenancy.throttling.UserWriteRateThrottle"
    ]


# --- a store outage -------------------------------------------------------------------------


def test_with_redis_down_writes_and_logins_go_through(api_client_for, user, settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.USER_WRITE_THROTTLE_RATE = "1/min"
    settings.AUTH_THROTTLE_RATE = "1/min"
    settings.LOGIN_BACKOFF_FAILURES = 1
    client = api_client_for(user)

    with caplog.at_level(logging.WARNING, logger="clm.security"):
        assert [validate(client).status_code for _ in range(3)] == [200] * 3
        assert login(client, user.email, FACTORY_PASSWORD).status_code == 200

    events = [getattr(record, "event", None) for record in caplog.records]
    assert "rate_limit_store_unavailable" in events


# --- rate settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("30/min", (30, 60)),
        ("600/minute", (600, 60)),
        ("5/s", (5, 1)),
        ("100/10s", (100, 10)),
        ("1000/h", (1000, 3600)),
        ("10000/day", (10000, 86400)),
        (" 7 / 15min ", (7, 900)),
        ("", None),
    ],
)
def test_rates_parse(text, parsed):
    assert parse_rate(text) == parsed


@pytest.mark.parametrize("text", ["30", "0/min", "30/ms", "30/fortnight", "-1/s", "1.5/s"])
def test_a_bad_rate_stops_start_up(monkeypatch, text):
    monkeypatch.setenv("USER_WRITE_THROTTLE_RATE", text)
    with pytest.raises(ImproperlyConfigured, match="USER_WRITE_THROTTLE_RATE"):
        env_rate("USER_WRITE_THROTTLE_RATE", "600/min")


def test_an_empty_rate_switches_the_throttle_off(monkeypatch):
    monkeypatch.setenv("USER_WRITE_THROTTLE_RATE", "")
    assert env_rate("USER_WRITE_THROTTLE_RATE", "600/min") is None
