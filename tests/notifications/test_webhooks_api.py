"""/api/admin/webhooks/: CRUD, the secret shown once, URL safety, audit, the delivery log."""

import pytest

from audit.models import AuditLog
from core import rls
from notifications.models import Delivery, WebhookEndpoint
from notifications.targets import redacted_url
from tests.factories import UserFactory, UserRoleFactory, WebhookEndpointFactory
from tests.fixtures import queue_completed_event

pytestmark = pytest.mark.django_db

URL = "/api/admin/webhooks/"
BODY = {"url": "https://hooks.example.com/clm", "events": ["approval_assigned"]}
ROTATED = "whsec_cm90YXRlZC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg=="  # base64 of 31 bytes


def test_create_generates_a_secret_returned_once(admin_client, tenant, tenant_admin):
    response = admin_client.post(URL, BODY, format="json")
    assert response.status_code == 201, response.json()
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert body["secret"] == endpoint.secret
    assert len(endpoint.secret) >= 32
    assert body["url"] == BODY["url"]
    assert body["events"] == ["approval_assigned"]
    assert body["is_active"] is True
    assert endpoint.tenant_id == tenant.pk
    assert endpoint.created_by == tenant_admin

    listed = admin_client.get(URL).json()["results"]
    detail = admin_client.get(f"{URL}{endpoint.pk}/").json()
    assert [row["id"] for row in listed] == [str(endpoint.pk)]
    assert "secret" not in listed[0]
    assert "secret" not in detail


def test_create_with_a_given_secret_and_audit(admin_client, tenant_admin):
    secret = "whsec_" + "czNjcmV0LW9mLW15LW93bi1jaG9vc2luZy0wMTIz"  # base64 of 30 bytes
    response = admin_client.post(
        URL, {**BODY, "secret": secret, "events": ["workflow_completed"] * 2}, format="json"
    )
    assert response.status_code == 201, response.json()
    endpoint = WebhookEndpoint.objects.get(pk=response.json()["id"])
    assert endpoint.secret == secret
    assert endpoint.events == ["workflow_completed"]
    audit = AuditLog.objects.get(action="webhook_created")
    assert audit.actor == tenant_admin
    assert audit.resource_id == str(endpoint.pk)
    assert audit.changes["url"] == [None, redacted_url(BODY["url"])]
    assert secret not in str(audit.changes)


def test_update_and_delete_are_audited(admin_client):
    endpoint_id = admin_client.post(URL, BODY, format="json").json()["id"]
    old_secret = WebhookEndpoint.objects.get(pk=endpoint_id).secret

    response = admin_client.patch(
        f"{URL}{endpoint_id}/",
        {"events": ["workflow_rejected", "workflow_completed"], "secret": ROTATED},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["events"] == ["workflow_rejected", "workflow_completed"]
    assert "secret" not in response.json()
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    assert endpoint.secret == ROTATED
    assert endpoint.url == BODY["url"]  # PATCH leaves the rest alone
    updated = AuditLog.objects.get(action="webhook_updated")
    assert updated.changes["events"] == [
        ["approval_assigned"],
        ["workflow_rejected", "workflow_completed"],
    ]
    assert old_secret not in str(updated.changes)
    assert ROTATED not in str(updated.changes)

    response = admin_client.put(
        f"{URL}{endpoint_id}/", {"url": "https://other.example.org/h", "events": ["sla_breached"]}
    )
    assert response.status_code == 200, response.json()
    assert WebhookEndpoint.objects.get(pk=endpoint_id).secret == ROTATED

    assert admin_client.delete(f"{URL}{endpoint_id}/").status_code == 204
    assert not WebhookEndpoint.objects.filter(pk=endpoint_id).exists()
    deleted = AuditLog.objects.get(action="webhook_deleted")
    assert deleted.resource_id == endpoint_id


def test_reactivating_a_disabled_endpoint_clears_its_failures(admin_client, tenant):
    endpoint = WebhookEndpointFactory(tenant=tenant, is_active=False, consecutive_failures=25)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(disabled_at="2026-01-01T00:00:00Z")
    response = admin_client.patch(f"{URL}{endpoint.pk}/", {"is_active": True}, format="json")
    assert response.status_code == 200
    assert response.json()["consecutive_failures"] == 0
    assert response.json()["disabled_at"] is None


def test_put_without_is_active_does_not_reenable(admin_client, tenant):
    endpoint = WebhookEndpointFactory(tenant=tenant, is_active=False)
    response = admin_client.put(
        f"{URL}{endpoint.pk}/", {"url": endpoint.url, "events": ["sla_breached"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["is_active"] is False


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.com/x", "Only http and https"),
        ("file:///etc/passwd", "Only http and https"),
        ("javascript:alert(1)", "Only http and https"),
        ("https://user:pass@hooks.example.com/x", "Credentials"),
        ("https://token@hooks.example.com/x", "Credentials"),
        ("https:///no-host", "host"),
        ("https://hooks.example.com:99999/x", "valid URL"),
        ("http://[::1/x", "valid URL"),
        ("https://hooks.example.com/a b", "spaces"),
        ("https://hooks.example.com/" + "a" * 2000, "2000"),
        ("not a url", "spaces"),
        ("", "blank"),
    ],
)
def test_bad_urls_are_400(admin_client, url, message):
    response = admin_client.post(URL, {**BODY, "url": url}, format="json")
    assert response.status_code == 400, response.content
    assert message in " ".join(response.json()["fields"]["url"])
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://api.localhost/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0x7f.1/hook",
        "http://2130706433/hook",
        "http://db:5432/",
        "http://0.0.0.0/",
    ],
)
def test_private_targets_are_refused_unless_allowed(admin_client, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    response = admin_client.post(URL, {**BODY, "url": url}, format="json")
    assert response.status_code == 400, response.content
    assert "url" in response.json()["fields"]

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    assert admin_client.post(URL, {**BODY, "url": url}, format="json").status_code == 201


def test_public_targets_are_accepted_with_private_refused(admin_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    for url in ("https://hooks.example.com/clm", "http://93.184.215.14/hook"):
        response = admin_client.post(URL, {**BODY, "url": url}, format="json")
        assert response.status_code == 201, response.json()


@pytest.mark.parametrize(
    "body",
    [
        {"url": BODY["url"], "events": []},
        {"url": BODY["url"], "events": ["not_an_event"]},
        {"url": BODY["url"], "events": "approval_assigned"},
        {"url": BODY["url"]},
        {"events": ["approval_assigned"]},
        {**BODY, "secret": "short"},
        {**BODY, "is_active": "sometimes"},
        {**BODY, "url": 12},
    ],
)
def test_bad_bodies_are_400(admin_client, body):
    response = admin_client.post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"


def test_webhooks_need_the_capability(api_client_for, tenant):
    member = UserFactory(tenant=tenant)
    endpoint = WebhookEndpointFactory(tenant=tenant)
    client = api_client_for(member)
    assert client.get(URL).status_code == 403
    assert client.post(URL, BODY, format="json").status_code == 403
    assert client.get(f"{URL}{endpoint.pk}/deliveries/").status_code == 403

    manager = UserFactory(tenant=tenant)
    UserRoleFactory(user=manager, role="integrations", permissions=["webhooks.manage"])
    assert api_client_for(manager).get(URL).status_code == 200


def test_other_tenants_endpoint_is_404(admin_client, other_tenant):
    theirs = WebhookEndpointFactory(tenant=other_tenant)
    for method, suffix in (("get", ""), ("patch", ""), ("delete", ""), ("get", "deliveries/")):
        response = getattr(admin_client, method)(f"{URL}{theirs.pk}/{suffix}", {}, format="json")
        assert response.status_code == 404, (method, suffix)
    with rls.tenant_scope(other_tenant):
        assert WebhookEndpoint.objects.filter(pk=theirs.pk, url=theirs.url).exists()


def test_delivery_log_lists_the_endpoints_deliveries_newest_first(admin_client, tenant):
    endpoint = WebhookEndpointFactory(tenant=tenant, events=["workflow_completed"])
    other = WebhookEndpointFactory(tenant=tenant, events=["workflow_completed"])
    for number in range(3):
        queue_completed_event(tenant, title=f"Done {number}", payload={"n": number})
    response = admin_client.get(f"{URL}{endpoint.pk}/deliveries/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    rows = body["results"]
    expected = Delivery.objects.filter(endpoint=endpoint).order_by("-created_at", "-id")
    assert [row["id"] for row in rows] == [str(pk) for pk in expected.values_list("pk", flat=True)]
    assert not {row["id"] for row in rows} & {
        str(pk) for pk in Delivery.objects.filter(endpoint=other).values_list("pk", flat=True)
    }
    assert set(rows[0]) == {
        "id",
        "event_id",
        "event_type",
        "status",
        "attempts",
        "next_attempt_at",
        "response_status",
        "last_error",
        "created_at",
        "sent_at",
    }
    assert rows[0]["status"] == "pending"


def test_webhook_audit_rows_carry_the_request_context(admin_client, tenant_admin):
    response = admin_client.post(
        URL,
        BODY,
        format="json",
        HTTP_X_REQUEST_ID="req-webhook-create-1",
        HTTP_USER_AGENT="WebhookAdmin/2.0",
        REMOTE_ADDR="203.0.113.7",
    )
    assert response.status_code == 201
    audit = AuditLog.objects.get(action="webhook_created")
    assert (audit.request_id, audit.user_agent, audit.ip_address) == (
        "req-webhook-create-1",
        "WebhookAdmin/2.0",
        "203.0.113.7",
    )
    assert (audit.tenant_id, audit.resource_type) == (tenant_admin.tenant_id, "webhookendpoint")


def test_a_refused_webhook_write_audits_nothing(admin_client):
    response = admin_client.post(URL, {**BODY, "url": "ftp://x.example.com"}, format="json")
    assert response.status_code == 400
    assert not AuditLog.objects.filter(action__startswith="webhook_").exists()
