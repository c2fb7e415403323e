"""The in-app inbox: mine only, newest first, read / read-all / unread filter / count, and the
email preferences."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from core import rls
from notifications.models import Delivery, Notification, NotificationPreference, NotificationType
from notifications.services import Message, notify_many
from tests.factories import NotificationFactory, UserFactory

pytestmark = pytest.mark.django_db

ALL_TYPES = set(NotificationType.values)


def inbox(client, **params) -> list[dict]:
    response = client.get("/api/notifications/", params)
    assert response.status_code == 200, response.json()
    return response.json()["results"]


@pytest.fixture
def mine(user):
    """Three of the user's notifications, oldest first (one already read)."""
    now = timezone.now()
    return [
        NotificationFactory(recipient=user, created_at=now - timedelta(minutes=3)),
        NotificationFactory(
            recipient=user,
            created_at=now - timedelta(minutes=2),
            read_at=now - timedelta(minutes=1),
        ),
        NotificationFactory(recipient=user, created_at=now - timedelta(minutes=1)),
    ]


def test_list_is_mine_only_newest_first_with_the_api_fields(client, user, tenant, mine):
    NotificationFactory(recipient=UserFactory(tenant=tenant))  # a colleague's
    rows = inbox(client)
    assert [row["id"] for row in rows] == [str(note.pk) for note in reversed(mine)]
    assert set(rows[0]) == {
        "id",
        "notification_type",
        "title",
        "message",
        "priority",
        "payload",
        "read_at",
        "created_at",
    }


def test_list_is_paginated(client, user):
    for _ in range(3):
        NotificationFactory(recipient=user)
    body = client.get("/api/notifications/", {"page_size": 2}).json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"] is not None


def test_unread_filter(client, mine):
    unread = {row["id"] for row in inbox(client, unread="true")}
    read = {row["id"] for row in inbox(client, unread="false")}
    assert unread == {str(mine[0].pk), str(mine[2].pk)}
    assert read == {str(mine[1].pk)}


def test_unread_filter_rejects_garbage(client, mine):
    response = client.get("/api/notifications/", {"unread": "maybe"})
    assert response.status_code == 400
    assert "unread" in response.json()["fields"]


def test_read_marks_one_and_is_idempotent(client, mine):
    target = mine[0]
    response = client.post(f"/api/notifications/{target.pk}/read/")
    assert response.status_code == 200, response.json()
    first_read = response.json()["read_at"]
    assert first_read is not None
    again = client.post(f"/api/notifications/{target.pk}/read/")
    assert again.status_code == 200
    assert again.json()["read_at"] == first_read
    target.refresh_from_db()
    assert target.read_at is not None
    mine[2].refresh_from_db()
    assert mine[2].read_at is None  # only that one


def test_read_all_and_unread_count(client, user, tenant, mine):
    colleague_note = NotificationFactory(recipient=UserFactory(tenant=tenant))
    assert client.get("/api/notifications/unread-count/").json() == {"unread": 2}

    response = client.post("/api/notifications/read-all/")
    assert response.status_code == 200
    assert response.json() == {"updated": 2}
    assert client.get("/api/notifications/unread-count/").json() == {"unread": 0}
    assert inbox(client, unread="true") == []
    colleague_note.refresh_from_db()
    assert colleague_note.read_at is None


def test_another_users_notification_is_404(client, tenant):
    colleague_note = NotificationFactory(recipient=UserFactory(tenant=tenant))
    response = client.post(f"/api/notifications/{colleague_note.pk}/read/")
    missing = client.post(f"/api/notifications/{uuid.uuid4()}/read/")
    assert response.status_code == missing.status_code == 404
    assert response.json()["code"] == "not_found"
    colleague_note.refresh_from_db()
    assert colleague_note.read_at is None


def test_another_tenants_notification_is_404_and_invisible(client, other_tenant, mine):
    theirs = NotificationFactory(recipient=UserFactory(tenant=other_tenant))
    assert client.post(f"/api/notifications/{theirs.pk}/read/").status_code == 404
    assert str(theirs.pk) not in {row["id"] for row in inbox(client)}
    with rls.tenant_scope(other_tenant):
        theirs.refresh_from_db()
    assert theirs.read_at is None


def test_inbox_needs_authentication(api_client):
    assert api_client.get("/api/notifications/").status_code == 401
    assert api_client.get("/api/notifications/unread-count/").status_code == 401


# --- preferences -------------------------------------------------------------------------------


def test_preferences_default_to_email_on_for_every_type(client):
    response = client.get("/api/notifications/preferences/")
    assert response.status_code == 200
    assert response.json() == {"email": dict.fromkeys(sorted(ALL_TYPES), True)}


def test_preferences_switch_email_off_per_type(client, user):
    response = client.put(
        "/api/notifications/preferences/",
        {"email": {"approval_assigned": False, "sla_reminder": False}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    expected = dict.fromkeys(ALL_TYPES, True) | {"approval_assigned": False, "sla_reminder": False}
    assert response.json()["email"] == expected
    assert client.get("/api/notifications/preferences/").json()["email"] == expected

    # Types left out keep their setting; switching back on works.
    client.put("/api/notifications/preferences/", {"email": {"sla_reminder": True}}, format="json")
    assert NotificationPreference.objects.filter(user=user, email_enabled=False).count() == 1

    def notify(notification_type):
        message = Message(notification_type, "t", "m", {}, recipient_ids=[user.pk])
        notify_many(tenant_id=user.tenant_id, messages=[message])

    notify("approval_assigned")
    note = Notification.objects.get(recipient=user)
    assert not Delivery.objects.filter(notification=note).exists()  # no email row
    notify("sla_reminder")
    assert Delivery.objects.filter(channel="email", notification__recipient=user).count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"email": {"not_a_type": False}},
        {"email": {"approval_assigned": "perhaps"}},
        {"email": ["approval_assigned"]},
        {},
        {"email": None},
    ],
)
def test_bad_preferences_are_400(client, user, body):
    response = client.put("/api/notifications/preferences/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert not NotificationPreference.objects.filter(user=user).exists()


def test_preferences_are_per_user(client, api_client_for, user, tenant):
    colleague = UserFactory(tenant=tenant)
    client.put(
        "/api/notifications/preferences/",
        {"email": {"workflow_completed": False}},
        format="json",
    )
    theirs = api_client_for(colleague).get("/api/notifications/preferences/").json()
    assert theirs["email"]["workflow_completed"] is True
