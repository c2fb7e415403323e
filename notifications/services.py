"""Writing notifications: in-app rows, plus queued email and webhook deliveries, in bulk.

Also the inbox (mark read), email preferences and webhook endpoint management. Every write of
a webhook endpoint is audited in the same transaction.
"""

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from audit.services import audit_record
from notifications.models import (
    Notification,
    NotificationPreference,
    NotificationType,
    Priority,
    WebhookEndpoint,
    WebhookFormat,
)
from notifications.signing import PREVIOUS_SECRET_TTL, secret_generate
from notifications.targets import redacted_url
from tenancy.quotas import lock_tenant, quota_check

TITLE_MAX_LENGTH = Notification._meta.get_field("title").max_length
REDACTED = "<redacted>"


@dataclass(frozen=True)
class Message:
    """One event to notify: the same title, message and payload for every recipient.

    Webhooks get the event once per subscribed endpoint (with ``event_id``), not once per
    recipient; a message with no recipients still reaches the webhooks.
    """

    notification_type: str
    title: str
    message: str
    payload: dict
    recipient_ids: Sequence = ()
    priority: str = Priority.MEDIUM
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


def shorten(text: str, limit: int = TITLE_MAX_LENGTH) -> str:
    """``text`` cut to ``limit`` characters (with an ellipsis when cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def notify(
    *,
    tenant_id,
    recipient_ids: Iterable,
    notification_type: str,
    title: str,
    message: str,
    payload: dict,
    priority: str = Priority.MEDIUM,
    event_id: uuid.UUID | None = None,
) -> None:
    """One notification per recipient, their emails and the tenant's webhooks: one statement.

    Recipients who switched email off for this type get the in-app row only. Webhooks get one
    delivery per subscribed endpoint for the event (not one per recipient).
    """
    notify_many(
        tenant_id=tenant_id,
        messages=[
            Message(
                notification_type=notification_type,
                title=title,
                message=message,
                payload=payload,
                recipient_ids=tuple(recipient_ids),
                priority=priority,
                event_id=event_id or uuid.uuid4(),
            )
        ],
    )


def notify_many(*, tenant_id, messages: Sequence[Message]) -> None:
    """``notify`` for several events at once, in ONE statement.

    Used by the signal receivers: every notification of a transaction (a decision, the stage it
    opens and its many role holders) is one INSERT of notifications feeding, in the same
    statement, the INSERT of their email and webhook deliveries.
    """
    if not messages:
        return
    now = timezone.now()
    rows = [
        (message, recipient)
        for message in messages
        for recipient in dict.fromkeys(message.recipient_ids)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            _NOTIFY,
            {
                "tenant": str(tenant_id),
                "now": now,
                "recipients": [str(recipient) for _, recipient in rows],
                "types": [message.notification_type for message, _ in rows],
                "titles": [shorten(message.title) for message, _ in rows],
                "messages": [message.message for message, _ in rows],
                "priorities": [message.priority for message, _ in rows],
                "payloads": [_json(message.payload) for message, _ in rows],
                "event_ids": [str(message.event_id) for message in messages],
                "event_types": [message.notification_type for message in messages],
                "bodies": [_json(webhook_body(tenant_id, message, now)) for message in messages],
            },
        )


def _json(value) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder)


# The in-app rows, then every email (unless the recipient switched that type off) and every
# webhook POST (one per subscribed active endpoint per event): one statement for a whole batch.
_NOTIFY = """
WITH notification AS (
    INSERT INTO notifications_notification
        (id, tenant_id, recipient_id, notification_type, title, message, priority, payload,
         read_at, created_at)
    SELECT gen_random_uuid(), %(tenant)s::uuid, r.recipient_id, r.notification_type, r.title,
           r.message, r.priority, r.payload, NULL, %(now)s
      FROM unnest(%(recipients)s::uuid[], %(types)s::text[], %(titles)s::text[],
                  %(messages)s::text[], %(priorities)s::text[], %(payloads)s::text[]::jsonb[])
           AS r(recipient_id, notification_type, title, message, priority, payload)
    RETURNING id, recipient_id, notification_type
)
INSERT INTO notifications_delivery
    (id, tenant_id, channel, notification_id, endpoint_id, event_id, event_type, payload,
     status, attempts, next_attempt_at, last_error, created_at)
SELECT gen_random_uuid(), %(tenant)s::uuid, 'email', n.id, NULL, gen_random_uuid(),
       n.notification_type, '{}'::jsonb, 'pending', 0, %(now)s, '', %(now)s
  FROM notification n
 WHERE NOT EXISTS (
       SELECT 1 FROM notifications_notificationpreference p
        WHERE p.tenant_id = %(tenant)s::uuid AND p.user_id = n.recipient_id
          AND p.notification_type = n.notification_type AND NOT p.email_enabled)
UNION ALL
SELECT gen_random_uuid(), %(tenant)s::uuid, 'webhook', NULL, w.id, m.event_id,
       m.event_type, m.body, 'pending', 0, %(now)s, '', %(now)s
  FROM unnest(%(event_ids)s::uuid[], %(event_types)s::text[], %(bodies)s::text[]::jsonb[])
       AS m(event_id, event_type, body)
  JOIN notifications_webhookendpoint w
    ON w.tenant_id = %(tenant)s::uuid AND w.is_active AND m.event_type = ANY(w.events)
"""


def webhook_body(tenant_id, message: Message, occurred_at) -> dict:
    """What a webhook receives (stored once, so every retry sends the same bytes)."""
    return {
        "event_id": str(message.event_id),
        "event": message.notification_type,
        "occurred_at": occurred_at.isoformat(),
        "tenant": str(tenant_id),
        "priority": message.priority,
        "title": shorten(message.title),
        "message": message.message,
        "data": message.payload,
    }


# --- the inbox -------------------------------------------------------------------------------


def notification_mark_read(*, notification: Notification) -> Notification:
    """Idempotent: the first read time is kept."""
    if notification.read_at is None:
        notification.read_at = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=notification.read_at
        )
    return notification


def notification_mark_all_read(*, user) -> int:
    """Mark every unread notification of ``user`` read; returns how many changed."""
    return Notification.objects.filter(
        tenant_id=user.tenant_id, recipient=user, read_at__isnull=True
    ).update(read_at=timezone.now())


def email_preferences_set(*, user, email: Mapping[str, bool]) -> None:
    """Switch email on or off per notification type (types not given keep their setting)."""
    rows = [
        NotificationPreference(
            tenant_id=user.tenant_id, user=user, notification_type=kind, email_enabled=enabled
        )
        for kind, enabled in email.items()
        if kind in NotificationType.values
    ]
    if rows:
        NotificationPreference.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["user", "notification_type"],
            update_fields=["email_enabled"],
        )


# --- webhook endpoints -----------------------------------------------------------------------


def _dedupe(events: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(events))


@transaction.atomic
def webhook_create(
    *,
    tenant,
    created_by,
    url: str,
    events: Iterable[str],
    secret: str | None = None,
    is_active: bool = True,
    format: str = WebhookFormat.STANDARD,
) -> WebhookEndpoint:
    """Create an endpoint; ``secret`` is generated when not given (the caller shows it once)."""
    lock_tenant(tenant)
    count = WebhookEndpoint.objects.for_tenant(tenant).count()
    quota_check("webhooks", after=count + 1, before=count)
    endpoint = WebhookEndpoint.objects.create(
        tenant=tenant,
        url=url,
        events=_dedupe(events),
        secret=secret or secret_generate(),
        is_active=is_active,
        format=format,
        created_by=created_by,
    )
    audit_record(
        action="webhook_created",
        tenant=tenant,
        actor=created_by,
        resource=endpoint,
        changes={
            "url": [None, redacted_url(endpoint.url)],
            "events": [None, endpoint.events],
            "is_active": [None, endpoint.is_active],
            "format": [None, endpoint.format],
            "secret": [None, REDACTED],
        },
    )
    return endpoint


def _iso(value) -> str | None:
    return value.isoformat() if value else None


@transaction.atomic
def webhook_update(*, endpoint: WebhookEndpoint, updated_by, **fields) -> WebhookEndpoint:
    """Change url, events, format, secret or is_active; re-activating clears the failure streak.

    A secret set here replaces the current one at once, and ends a rotation's overlap: whoever
    sets it (after a leak, say) wants no other secret signing."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    changes: dict[str, list] = {}
    if "events" in fields:
        fields["events"] = _dedupe(fields["events"])
    for name in ("url", "events", "is_active", "format"):
        if name in fields and getattr(endpoint, name) != fields[name]:
            changes[name] = [getattr(endpoint, name), fields[name]]
            setattr(endpoint, name, fields[name])
    if "url" in changes:  # URLs often carry tokens: audit rows get scheme, host and a hash
        changes["url"] = [redacted_url(url) for url in changes["url"]]
    if fields.get("secret") and fields["secret"] != endpoint.secret:
        changes["secret"] = [REDACTED, REDACTED]
        endpoint.secret = fields["secret"]
        if endpoint.previous_secret:
            changes["previous_secret_expires_at"] = [
                _iso(endpoint.previous_secret_expires_at),
                None,
            ]
        endpoint.previous_secret, endpoint.previous_secret_expires_at = "", None
    if changes.get("is_active") == [False, True]:
        endpoint.consecutive_failures = 0
        endpoint.disabled_at = None
    if changes:
        endpoint.save()
        audit_record(
            action="webhook_updated",
            tenant=endpoint.tenant_id,
            actor=updated_by,
            resource=endpoint,
            changes=changes,
        )
    return endpoint


@transaction.atomic
def webhook_rotate_secret(*, endpoint: WebhookEndpoint, rotated_by) -> WebhookEndpoint:
    """A new secret (the caller shows it once); the current one keeps signing beside it for
    ``PREVIOUS_SECRET_TTL``, so receivers switch without a failed delivery.

    Two secrets sign at most: rotating again within that time drops the older previous secret
    and keeps the one just replaced, which receivers may still hold. The row is locked, so two
    rotations at once are serialized and neither returned secret is lost.
    """
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    previous_expiry = endpoint.previous_secret_expires_at if endpoint.previous_secret else None
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + PREVIOUS_SECRET_TTL
    endpoint.secret = secret_generate()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    audit_record(
        action="webhook_secret_rotated",
        tenant=endpoint.tenant_id,
        actor=rotated_by,
        resource=endpoint,
        changes={
            "secret": [REDACTED, REDACTED],
            "previous_secret_expires_at": [
                _iso(previous_expiry),
                endpoint.previous_secret_expires_at.isoformat(),
            ],
        },
    )
    return endpoint


@transaction.atomic
def webhook_delete(*, endpoint: WebhookEndpoint, deleted_by) -> None:
    """Delete the endpoint and its delivery log (pending deliveries are dropped)."""
    audit_record(
        action="webhook_deleted",
        tenant=endpoint.tenant_id,
        actor=deleted_by,
        resource=endpoint,
        changes={"url": [redacted_url(endpoint.url), None], "events": [endpoint.events, None]},
    )
    endpoint.delete()
