"""Where a request came from, as audit rows record it: request id, client IP, user agent.

X-Forwarded-For is believed only with `TRUSTED_PROXY_COUNT` set, and then only the entry the
outermost trusted proxy appended; everything to its left is the client's to forge.
"""

import io
import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import WorkflowStageApproval
from audit.models import AuditLog
from config.logging import JsonFormatter
from tests.factories import FACTORY_PASSWORD
from tests.fixtures import define, stage, start

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


# --- log lines (issue 15: every line said `"request_id": null`) -----------------------------


@pytest.fixture
def log_lines():
    """The JSON lines the configured console handler writes (its real filter and formatter)."""
    handler = next(
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler.formatter, JsonFormatter)
    )
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        handler.setStream(previous)


def test_the_response_status_line_carries_the_request_id(api_client, log_lines):
    """Django logs 4xx/5xx after the middleware chain returned: the context was gone."""
    api_client.get("/api/auth/me/", HTTP_X_REQUEST_ID="trace-log-401")
    api_client.get("/api/no-such-thing/", HTTP_X_REQUEST_ID="trace-log-404")

    lines = [(line["logger"], line["message"], line["request_id"]) for line in log_lines()]

    assert lines == [
        ("django.request", "Unauthorized: /api/auth/me/", "trace-log-401"),
        ("django.request", "Not Found: /api/no-such-thing/", "trace-log-404"),
    ]


def test_lines_logged_while_serving_carry_the_request_id(admin_client, tenant, log_lines):
    define(tenant, [stage("Legal", ["legal"], sla_hours=1)], contract_type="LOGGED")
    contract = start(tenant, contract_type="LOGGED")
    WorkflowStageApproval.objects.filter(contract=contract).update(
        due_at=timezone.now() - timedelta(hours=1)
    )
    set_up = len(log_lines())  # the factories' logged bypasses

    response = admin_client.post(
        "/api/admin/sla-breaches/check_breaches/", {}, HTTP_X_REQUEST_ID="trace-log-sla"
    )

    assert response.status_code == 200, response.content
    assert [(line["message"], line["request_id"]) for line in log_lines()[set_up:]] == [
        ("sla check", "trace-log-sla")
    ]


def test_lines_outside_requests_carry_no_request_id(log_lines):
    logging.getLogger("clm.test").warning("between requests")

    assert log_lines()[-1]["request_id"] is None
