"""Where a request came from, as audit rows record it: request id, client IP, user agent.

X-Forwarded-For is believed only with `TRUSTED_PROXY_COUNT` set, and then only the entry the
outermost trusted proxy appended; everything to its left is the client's to forge.
"""

import pytest

from audit.models import AuditLog
from tests.factories import FACTORY_PASSWORD

pytestmark = pytest.mark.django_db

PEER = "192.0.2.10"  # the TCP peer: the service itself, or the nearest proxy


def login(api_client, user, **headers):
    response = api_client.post(
        "/api/auth/token/",
        {"email": user.email, "password": FACTORY_PASSWORD},
        format="json",
        REMOTE_ADDR=PEER,
        **headers,
    )
    assert response.status_code == 200, response.content
    return response, AuditLog.objects.get(action="login")


def test_request_id_is_taken_from_the_caller_and_echoed(api_client, user):
    response, row = login(api_client, user, HTTP_X_REQUEST_ID="trace-abc.123:4")
    assert row.request_id == "trace-abc.123:4" == response["X-Request-ID"]


def test_request_id_is_minted_when_absent(api_client, user):
    response, row = login(api_client, user)
    assert len(row.request_id) == 32
    assert row.request_id == response["X-Request-ID"]


@pytest.mark.parametrize("bad", ["has spaces", "x" * 65, "new\\nline", "<script>"])
def test_an_unusable_request_id_is_replaced(api_client, user, bad):
    response, row = login(api_client, user, HTTP_X_REQUEST_ID=bad)
    assert row.request_id != bad
    assert row.request_id == response["X-Request-ID"]


def test_user_agent_is_recorded_truncated_and_without_control_characters(api_client, user):
    _, row = login(api_client, user, HTTP_USER_AGENT="Agent\x00/1.0\t" + "x" * 600)
    assert row.user_agent.startswith("Agent/1.0x")
    assert len(row.user_agent) == 512


def test_x_forwarded_for_is_ignored_without_trusted_proxies(api_client, user, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    _, row = login(api_client, user, HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert row.ip_address == PEER


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"),
    [
        # One proxy: it appended the client it saw; the client's own entries are ignored.
        (1, "198.51.100.7", "198.51.100.7"),
        (1, "6.6.6.6, 198.51.100.7", "198.51.100.7"),
        (1, "6.6.6.6,7.7.7.7,198.51.100.7", "198.51.100.7"),
        # Two proxies: the outer one appended the client, the inner one appended the outer one.
        (2, "6.6.6.6, 198.51.100.7, 10.0.0.2", "198.51.100.7"),
        # Fewer hops than trusted proxies: the header was not written by them; the peer stands.
        (2, "198.51.100.7", PEER),
        # IPv6 is kept as an address.
        (1, "6.6.6.6, 2001:db8::7", "2001:db8::7"),
        # A garbled entry is not stored (the column is inet): the peer stands.
        (1, "6.6.6.6, not-an-ip", PEER),
        (1, "6.6.6.6, fe80::1%eth0", PEER),
    ],
)
def test_x_forwarded_for_honours_only_the_trusted_hop(
    api_client, user, settings, trusted, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = trusted
    _, row = login(api_client, user, HTTP_X_FORWARDED_FOR=forwarded)
    assert row.ip_address == expected


def test_rows_written_outside_a_request_have_no_request_context(tenant):
    """Management commands and workers write rows too; they have no IP, agent or request id."""
    from audit.services import audit_record

    row = audit_record(action="login", tenant=tenant)
    assert (row.ip_address, row.user_agent, row.request_id) == (None, "", "")
