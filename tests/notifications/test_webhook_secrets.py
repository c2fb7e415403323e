"""docs/security.md "Webhooks": webhook URLs (tokens) stay out of audit rows, and internal
addresses out of the delivery errors a tenant reads; the details are in the server log only."""

import json
import logging
import re
import socket

import pytest

from audit.models import AuditLog
from notifications import delivery
from notifications.models import Delivery
from notifications.targets import redacted_url
from tests.factories import WebhookEndpointFactory
from tests.fixtures import queue_completed_event

pytestmark = pytest.mark.django_db

URL = "/api/admin/webhooks/"
AUDIT = "/api/audit-logs/"
SECRET_PATH = "/services/T0123/B0456/xoxb-very-secret-token"
SECRET_QUERY = "api_key=k3y-that-must-not-leak"
HOOK = f"https://hooks.example.com{SECRET_PATH}?{SECRET_QUERY}"
OTHER_HOOK = "https://other.example.org:8443/endpoint/s3cret-path?sig=abc123"
REDACTED = re.compile(r"^https://(?P<host>[a-z0-9.-]+)/…#sha256:(?P<hash>[0-9a-f]{16})$")


def audit_rows(client, action) -> list[dict]:
    response = client.get(AUDIT, {"action": action})
    assert response.status_code == 200, response.content
    return response.json()["results"]


def assert_no_secret_parts(text: str) -> None:
    for secret in ("T0123", "xoxb-very-secret-token", "k3y-that-must-not-leak", "api_key"):
        assert secret not in text
    # The port as a URL carries it: a bare "8443" may turn up inside a request id or a hash.
    for secret in ("s3cret-path", "sig=abc123", ":8443", "/endpoint"):
        assert secret not in text


def test_redacted_url_keeps_scheme_and_host_and_a_stable_hash_of_the_rest():
    redacted = redacted_url(HOOK)
    match = REDACTED.match(redacted)
    assert match, redacted
    assert match["host"] == "hooks.example.com"
    assert redacted == redacted_url(HOOK)  # stable
    assert redacted_url(HOOK.replace("token", "tokem")) != redacted  # a changed URL shows
    assert redacted_url(OTHER_HOOK).startswith("https://other.example.org/…#sha256:")
    assert_no_secret_parts(redacted + redacted_url(OTHER_HOOK))
    assert redacted_url("not a url").startswith("…#sha256:")


def test_webhook_audit_rows_hold_scheme_host_and_hash_only(admin_client):
    created = admin_client.post(URL, {"url": HOOK, "events": ["approval_assigned"]}, format="json")
    assert created.status_code == 201, created.content
    endpoint_id = created.json()["id"]
    assert created.json()["url"] == HOOK  # the endpoint itself keeps the URL for its managers
    response = admin_client.patch(f"{URL}{endpoint_id}/", {"url": OTHER_HOOK}, format="json")
    assert response.status_code == 200, response.content
    assert admin_client.delete(f"{URL}{endpoint_id}/").status_code == 204

    [create] = audit_rows(admin_client, "webhook_created")
    [update] = audit_rows(admin_client, "webhook_updated")
    [delete] = audit_rows(admin_client, "webhook_deleted")
    assert create["changes"]["url"] == [None, redacted_url(HOOK)]
    assert update["changes"]["url"] == [redacted_url(HOOK), redacted_url(OTHER_HOOK)]
    assert delete["changes"]["url"] == [redacted_url(OTHER_HOOK), None]
    assert REDACTED.match(create["changes"]["url"][1])
    assert REDACTED.match(delete["changes"]["url"][0])
    # The same URL gives the same hash in every row, so a trail can be followed.
    assert create["changes"]["url"][1] == update["changes"]["url"][0]
    for row in (create, update, delete):
        assert_no_secret_parts(json.dumps(row, ensure_ascii=False))
    stored = AuditLog.objects.filter(action__startswith="webhook_").values_list(
        "changes", flat=True
    )
    assert_no_secret_parts(json.dumps(list(stored), ensure_ascii=False))


def test_a_patch_leaving_the_url_alone_does_not_audit_it(admin_client):
    endpoint_id = admin_client.post(
        URL, {"url": HOOK, "events": ["approval_assigned"]}, format="json"
    ).json()["id"]
    admin_client.patch(f"{URL}{endpoint_id}/", {"url": HOOK, "is_active": False}, format="json")
    [update] = audit_rows(admin_client, "webhook_updated")
    assert set(update["changes"]) == {"is_active"}


def closed_local_port() -> int:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refused_connection_shows_the_tenant_no_address_or_port(
    admin_client, tenant, settings, caplog
):
    settings.NOTIFICATION_MAX_ATTEMPTS = 1  # fail at once: the audit row carries the error too
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 100
    port = closed_local_port()
    endpoint = WebhookEndpointFactory(
        tenant=tenant, url=f"http://127.0.0.1:{port}/x", events=["workflow_completed"]
    )
    queue_completed_event(tenant)

    with caplog.at_level(logging.WARNING, logger="notifications.delivery"):
        assert delivery.drain().failed == 1

    [row] = admin_client.get(f"{URL}{endpoint.pk}/deliveries/").json()["results"]
    assert row["last_error"] == "connection refused"
    [failed] = audit_rows(admin_client, "notification_failed")
    assert failed["changes"]["error"] == [None, "connection refused"]
    for shown in (json.dumps(row), json.dumps(failed["changes"])):
        assert "127.0.0.1" not in shown
        assert str(port) not in shown
        assert "Errno" not in shown
    # The server log keeps the detail for operators.
    [record] = [r for r in caplog.records if r.getMessage() == "delivery attempt failed"]
    assert record.error == "connection refused"
    assert "Connection refused" in record.detail


def test_an_internal_target_refused_at_delivery_is_not_named(admin_client, tenant, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    endpoint = WebhookEndpointFactory(
        tenant=tenant, url="http://127.0.0.1:9/hook", events=["workflow_completed"]
    )
    queue_completed_event(tenant)
    assert delivery.drain().retrying == 1
    [row] = admin_client.get(f"{URL}{endpoint.pk}/deliveries/").json()["results"]
    assert row["last_error"] == "refused target: the host name resolves to a non-public address"
    assert Delivery.objects.get().last_error == row["last_error"]


@pytest.mark.parametrize(
    ("exc", "shown"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (TimeoutError("timed out connecting to 10.0.0.7:8080"), "timed out"),
        (
            socket.gaierror(-2, "Name or service not known: db.internal"),
            "the host name cannot be resolved",
        ),
        (ConnectionResetError(104, "reset by 10.1.2.3"), "connection reset"),
        (OSError(113, "No route to host 10.9.9.9"), "connection error"),
    ],
)
def test_public_errors_name_the_kind_only(exc, shown):
    import ssl

    assert delivery.public_error(exc) == shown
    tls = ssl.SSLCertVerificationError(1, "hostname 'db.internal' doesn't match '10.0.0.7'")
    assert delivery.public_error(tls) == "TLS error"
