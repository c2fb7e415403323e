"""Security finding 10: every delivery is signed the Standard Webhooks way (verified here with the
`standardwebhooks` package, exactly as a receiver would), keeps `X-Signature`, and secrets rotate
with a 24-hour overlap during which both sign."""

import base64
import dataclasses
import json
import re
import time
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from audit.models import AuditLog
from core import rls
from notifications import delivery
from notifications.models import WebhookEndpoint
from notifications.services import webhook_rotate_secret
from tests.factories import UserFactory, UserRoleFactory, WebhookEndpointFactory
from tests.fixtures import queue_completed_event
from tests.support import run_together

URL = "/api/admin/webhooks/"
SECRET_FORMAT = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")  # base64 of 32 bytes
LEGACY_SECRET = "receiver-side-shared-secret-0123456789"
OTHER_SECRET = "whsec_" + base64.b64encode(b"x" * 32).decode()


def event(tenant, number=0):
    queue_completed_event(tenant, title=f"Event {number}", payload={"n": number})


def deliver_one(tenant, receiver):
    """Queue one event, deliver it, and return what the receiver got."""
    before = len(receiver.requests)
    event(tenant, before)
    assert delivery.drain().sent == 1
    [request] = receiver.requests[before:]
    return request


def verifies(secret: str, request) -> bool:
    try:
        Webhook(secret).verify(request.body, request.headers)
    except WebhookVerificationError:
        return False
    return True


def create(client, receiver) -> dict:
    response = client.post(URL, {"url": receiver.url, "events": ["workflow_completed"]}, "json")
    assert response.status_code == 201, response.content
    return response.json()


def rotate(client, endpoint_id) -> dict:
    response = client.post(f"{URL}{endpoint_id}/rotate-secret/")
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    return response.json()


# --- signatures --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_delivery_verifies_with_the_standardwebhooks_package(
    admin_client, tenant, webhook_receiver
):
    created = create(admin_client, webhook_receiver)
    secret = created["secret"]
    assert SECRET_FORMAT.match(secret)
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32

    request = deliver_one(tenant, webhook_receiver)

    headers = request.headers
    assert Webhook(secret).verify(request.body, headers) == json.loads(request.body)
    assert headers["webhook-id"] == headers["X-Event-Id"]
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", headers["webhook-signature"])
    assert request.signature_valid(secret)  # X-Signature, for existing receivers
    assert not verifies(secret, dataclasses.replace(request, body=request.body + b" "))
    assert not verifies(OTHER_SECRET, request)


@pytest.mark.django_db
def test_the_signed_timestamp_refuses_replays(tenant, webhook_receiver):
    endpoint = WebhookEndpointFactory(tenant=tenant, url=webhook_receiver.url)
    request = deliver_one(tenant, webhook_receiver)
    assert verifies(endpoint.secret, request)

    old = str(int(request.headers["webhook-timestamp"]) - 600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(endpoint.secret).verify(request.body, {**request.headers, "webhook-timestamp": old})
    # A fresh timestamp on the old signature does not verify either: it is signed.
    fresh = str(int(request.headers["webhook-timestamp"]) + 1)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(endpoint.secret).verify(
            request.body, {**request.headers, "webhook-timestamp": fresh}
        )


@pytest.mark.django_db
def test_a_secret_from_before_keeps_x_signature_and_derives_the_standard_key(
    tenant, webhook_receiver
):
    WebhookEndpointFactory(tenant=tenant, url=webhook_receiver.url, secret=LEGACY_SECRET)

    request = deliver_one(tenant, webhook_receiver)

    assert request.signature_valid(LEGACY_SECRET)  # unchanged for existing receivers
    assert verifies("whsec_" + base64.b64encode(LEGACY_SECRET.encode()).decode(), request)


# --- rotation ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rotation_returns_the_new_secret_once_and_both_sign_for_24_hours(
    admin_client, tenant, webhook_receiver
):
    created = create(admin_client, webhook_receiver)
    old = created["secret"]

    before = timezone.now()
    rotated = rotate(admin_client, created["id"])

    new = rotated["secret"]
    assert SECRET_FORMAT.match(new)
    assert new != old
    expires_at = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert before + timedelta(hours=24) <= expires_at <= timezone.now() + timedelta(hours=24)
    detail = admin_client.get(f"{URL}{created['id']}/").json()
    listed = admin_client.get(URL).json()["results"]
    assert new not in json.dumps([detail, listed])
    assert old not in json.dumps([detail, listed])

    during = deliver_one(tenant, webhook_receiver)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert verifies(new, during)
    assert verifies(old, during)
    assert during.signature_valid(new)
    assert not during.signature_valid(old)

    WebhookEndpoint.objects.filter(pk=created["id"]).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    after = deliver_one(tenant, webhook_receiver)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert verifies(new, after)
    assert not verifies(old, after)


@pytest.mark.django_db
def test_rotating_again_within_the_window_keeps_the_secret_just_replaced(
    admin_client, tenant, webhook_receiver
):
    created = create(admin_client, webhook_receiver)
    first = rotate(admin_client, created["id"])
    second = rotate(admin_client, created["id"])

    expiries = [datetime.fromisoformat(r["previous_secret_expires_at"]) for r in (first, second)]
    assert expiries[1] > expiries[0]
    request = deliver_one(tenant, webhook_receiver)
    assert verifies(second["secret"], request)
    assert verifies(first["secret"], request)  # the one replaced last still signs
    assert not verifies(created["secret"], request)  # the older one no longer does
    assert len(request.headers["webhook-signature"].split(" ")) == 2


@pytest.mark.django_db(transaction=True)
def test_two_rotations_at_once_lose_no_returned_secret():
    endpoint = WebhookEndpointFactory()
    admin = UserFactory(tenant=endpoint.tenant, is_tenant_admin=True)
    with rls.tenant_scope(endpoint.tenant):  # the racing requests' scope, which threads copy
        results = run_together(
            *[lambda: webhook_rotate_secret(endpoint=endpoint, rotated_by=admin) for _ in range(2)]
        )

        assert [kind for kind, _ in results] == ["ok", "ok"]
        returned = {value.secret for _, value in results}
        stored = WebhookEndpoint.objects.get(pk=endpoint.pk)
        assert {stored.secret, stored.previous_secret} == returned  # both still sign
        assert AuditLog.objects.filter(action="webhook_secret_rotated").count() == 2


@pytest.mark.django_db
def test_rotation_is_audited_without_secrets_or_url(admin_client, tenant_admin, webhook_receiver):
    created = create(admin_client, webhook_receiver)
    rotated = rotate(admin_client, created["id"])

    audit = AuditLog.objects.get(action="webhook_secret_rotated")
    assert (audit.actor, audit.resource_id) == (tenant_admin, created["id"])
    assert set(audit.changes) == {"secret", "previous_secret_expires_at"}
    assert audit.changes["secret"] == ["<redacted>", "<redacted>"]
    before, after = audit.changes["previous_secret_expires_at"]
    assert before is None
    assert datetime.fromisoformat(after) == datetime.fromisoformat(
        rotated["previous_secret_expires_at"]
    )
    stored = json.dumps(audit.changes)
    for leaked in (created["secret"], rotated["secret"], webhook_receiver.url, "/hooks/clm"):
        assert leaked not in stored


@pytest.mark.django_db
def test_setting_a_secret_replaces_it_at_once_and_ends_the_overlap(
    admin_client, tenant, webhook_receiver
):
    created = create(admin_client, webhook_receiver)
    rotate(admin_client, created["id"])
    chosen = "whsec_" + base64.b64encode(bytes(range(24))).decode()

    response = admin_client.patch(f"{URL}{created['id']}/", {"secret": chosen}, format="json")

    assert response.status_code == 200, response.content
    request = deliver_one(tenant, webhook_receiver)
    assert request.headers["webhook-signature"].count("v1,") == 1
    assert verifies(chosen, request)
    assert request.signature_valid(chosen)
    updated = AuditLog.objects.get(action="webhook_updated")
    assert set(updated.changes) == {"secret", "previous_secret_expires_at"}
    assert updated.changes["previous_secret_expires_at"][1] is None


@pytest.mark.parametrize(
    "secret",
    [
        "a-plain-secret-of-sufficient-length",
        "whsec_" + base64.b64encode(b"x" * 23).decode(),  # too short a key
        "whsec_" + base64.b64encode(b"x" * 65).decode(),  # too long
        "whsec_not*base64*at*all*0123456789abcdef",
        "whsec_",
    ],
)
@pytest.mark.django_db
def test_a_secret_not_in_the_standard_format_is_400(admin_client, secret):
    body = {"url": "https://hooks.example.com/x", "events": ["workflow_completed"]}
    response = admin_client.post(URL, {**body, "secret": secret}, format="json")
    assert response.status_code == 400, response.content
    assert "whsec_" in " ".join(response.json()["fields"]["secret"])
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_rotation_needs_the_capability_and_the_tenant(
    api_client_for, admin_client, tenant, other_tenant
):
    theirs = WebhookEndpointFactory(tenant=other_tenant)
    assert admin_client.post(f"{URL}{theirs.pk}/rotate-secret/").status_code == 404
    with rls.tenant_scope(other_tenant):
        assert WebhookEndpoint.objects.get(pk=theirs.pk).secret == theirs.secret

    ours = WebhookEndpointFactory(tenant=tenant)
    member = api_client_for(UserFactory(tenant=tenant))
    assert member.post(f"{URL}{ours.pk}/rotate-secret/").status_code == 403
    manager = UserFactory(tenant=tenant)
    UserRoleFactory(user=manager, role="integrations", permissions=["webhooks.manage"])
    assert api_client_for(manager).post(f"{URL}{ours.pk}/rotate-secret/").status_code == 200
    with rls.bypass("nothing was audited in the other tenant"):
        assert not AuditLog.objects.filter(action="webhook_secret_rotated", tenant=other_tenant)


@pytest.mark.django_db
def test_rotation_is_in_the_openapi_schema(admin_client):
    schema = admin_client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/admin/webhooks/{id}/rotate-secret/"]["post"]
    reference = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    component = schema["components"]["schemas"][reference.rsplit("/", 1)[1]]
    assert set(component["properties"]) == {"secret", "previous_secret_expires_at"}
    assert "requestBody" not in operation
