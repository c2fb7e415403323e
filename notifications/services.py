"""Writing notifications: in-app rows, plus queued email and webhook deliveries, in bulk.

The fan-out (``fanout_ctes``, ``notify_many``, ``Message``) is how notifications get written:
the signal receivers call ``notify_many``; the SLA check, in a layer below, composes
``fanout_ctes`` through the port ``core.fanout``, where ``apps.ready`` registers it. Also the
inbox (mark read), email preferences and webhook endpoint management. Every write of a webhook
endpoint is audited in the same transaction.
"""

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from core import pipeline
from core.sql import Params, Prepared, insert_select, sql
from notifications.models import (
    Delivery,
    DeliveryChannel,
    Notification,
    NotificationPreference,
    NotificationType,
    Priority,
    WebhookEndpoint,
    WebhookFormat,
)
from notifications.signing import PREVIOUS_SECRET_TTL, secret_generate
from notifications.targets import redacted_url
from tenancy.eligibility import Approvable, eligible_approvers_sql
from tenancy.quotas import quota_guard

REDACTED = "<redacted>"


# --- the fan-out: the one writer of notifications and their deliveries ------------------------


@dataclass(frozen=True)
class Message:
    """One event to notify: the same title, message and payload for every recipient.

    Recipients: ``recipient_ids``, or ``approvers_of`` (every user who may act on that approval,
    as ``tenancy.eligibility`` defines it, resolved in the writing statement itself), not both.
    Webhooks get the event once per subscribed endpoint (with ``event_id``), not once per
    recipient; a message with no recipients still reaches the webhooks.
    """

    notification_type: str
    title: str
    message: str
    payload: dict
    recipient_ids: Sequence = ()
    approvers_of: Approvable | None = None
    priority: str = Priority.MEDIUM
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def __post_init__(self):
        if self.recipient_ids and self.approvers_of is not None:
            raise ValueError("recipient_ids and approvers_of are exclusive")


_TITLE_MAX_LENGTH = Notification._meta.get_field("title").max_length
# A title cut to the column's length, with an ellipsis when cut.
_SHORT_TITLE = (
    f"CASE WHEN char_length(m.title) <= {_TITLE_MAX_LENGTH} THEN m.title"
    f" ELSE left(m.title, {_TITLE_MAX_LENGTH - 1}) || '…' END"
)


# Raw SQL: every notification, e-mail and delivery of a set of events in one statement, whatever
# their number (the SLA check writes its notifications through it: bench/bench_sla.py).
def fanout_ctes(
    *,
    messages: str,
    recipients: str,
    kinds: Sequence[str],
    params: Params,
    occurred_at: str,
    now: str,
) -> str:
    """The CTEs writing notifications, their emails and their webhook deliveries, for a set of
    events: the one writer, used by ``notify_many`` and by the SLA check's statements.

    ``messages``: a SELECT of ``tenant_id, event_id, event_type, title, message, priority,
    payload``, one row per event. ``recipients``: a SELECT of ``event_id, user_id``, each pair
    once. ``kinds``: the notification types ``messages`` may hold. ``occurred_at`` and ``now``:
    SQL of the event's instant (webhook bodies) and of the rows' creation. Each recipient gets
    the event's notification (title cut to length) and, unless they switched that type's email
    off, an email delivery; every active endpoint of the tenant subscribed to the type gets the
    event once (recipients or not), with the body a webhook receives, stored once so every retry
    sends the same bytes. Defines the CTEs ``messages``, ``recipients``, ``notified``, ``emails``
    and ``hooks``; the caller writes ``WITH`` (other CTEs may precede) and the final SELECT.

    Notifications and webhook deliveries go in in key order, emails in their notification's
    (see ``insert_select``). The email opt-outs are read once, for the recipients only, into a
    hash probed per notification: ``NOT IN`` over columns that are NOT NULL on both sides (so it
    means exactly ``NOT EXISTS``), which PostgreSQL plans as one hashed subplan whatever its row
    estimates inside these CTEs (``NOT EXISTS`` left the join to them, and with the few rows it
    expected it rescanned the preference table once per notification).
    """
    notification = insert_select(
        Notification,
        {
            "tenant_id": "m.tenant_id",
            "recipient_id": "r.user_id",
            "notification_type": "m.event_type",
            "title": _SHORT_TITLE,
            "message": "m.message",
            "priority": "m.priority",
            "payload": "m.payload",
        },
        "recipients r JOIN messages m ON m.event_id = r.event_id",
        params,
        now=now,
        key_order=True,
    )
    params["email_kinds"] = list(kinds)
    email = insert_select(
        Delivery,
        {
            "tenant_id": "n.tenant_id",
            "channel": params.add(DeliveryChannel.EMAIL, "varchar"),
            "notification_id": "n.id",
            "endpoint_id": "NULL::uuid",
            "event_type": "n.notification_type",
        },
        sql(
            """notified n
        WHERE (n.recipient_id, n.notification_type) NOT IN (
            SELECT {p.user}, {p.notification_type} FROM {p}
             WHERE NOT {p.email_enabled} AND {p.user} IN (SELECT user_id FROM recipients)
               AND {p.notification_type} = ANY(%(email_kinds)s::varchar[])
        )""",
            p=NotificationPreference,
        ),
        params,
        now=now,
    )
    webhook = insert_select(
        Delivery,
        {
            "tenant_id": "m.tenant_id",
            "channel": params.add(DeliveryChannel.WEBHOOK, "varchar"),
            "notification_id": "NULL::uuid",
            "endpoint_id": "w.id",
            "event_id": "m.event_id",
            "event_type": "m.event_type",
            "payload": f"""jsonb_build_object(
                'event_id', m.event_id, 'event', m.event_type,
                'occurred_at', {occurred_at}, 'tenant', m.tenant_id,
                'priority', m.priority, 'title', {_SHORT_TITLE}, 'message', m.message,
                'data', m.payload)""",
        },
        sql(
            """messages m
        JOIN {w} ON {w.tenant} = m.tenant_id AND {w.is_active}
         AND {w.events} @> ARRAY[m.event_type]::varchar[]""",
            w=WebhookEndpoint,
        ),
        params,
        now=now,
        key_order=True,
    )
    return f"""
    messages (tenant_id, event_id, event_type, title, message, priority, payload)
        AS MATERIALIZED ({messages}),
    recipients (event_id, user_id) AS MATERIALIZED ({recipients}),
    notified AS ({notification} RETURNING id, tenant_id, recipient_id, notification_type),
    emails AS ({email} RETURNING 1),
    hooks AS ({webhook} RETURNING 1)
    """


@cache
def _notify_statement() -> tuple[Prepared, dict]:
    """``notify_many``'s statement (built once) and the parameters of its column defaults."""
    params = Params()
    approvers = eligible_approvers_sql(
        source="""SELECT q.key, %(tenant)s::uuid AS tenant_id, q.role, q.assigned_to_id,
                         q.creator_id
                    FROM unnest(%(q_events)s::uuid[], %(q_roles)s::text[],
                                %(q_assigned)s::uuid[], %(q_creators)s::uuid[])
                         AS q(key, role, assigned_to_id, creator_id)""",
        now="%(now)s",
        told=True,
    )
    ctes = fanout_ctes(
        messages="""SELECT %(tenant)s::uuid, m.*
            FROM unnest(%(events)s::uuid[], %(types)s::text[], %(titles)s::text[],
                        %(texts)s::text[], %(priorities)s::text[], %(payloads)s::text[]::jsonb[])
                 AS m(event_id, event_type, title, message, priority, payload)""",
        recipients=f"""SELECT r.event_id, r.user_id
            FROM unnest(%(r_events)s::uuid[], %(r_users)s::uuid[]) AS r(event_id, user_id)
            UNION ALL
            SELECT e.key, e.user_id FROM ({approvers}) e""",  # noqa: S608 (SQL text only)
        kinds=NotificationType.values,
        params=params,
        occurred_at="%(now)s::timestamptz",
        now="%(now)s::timestamptz",
    )
    return Prepared(f"WITH {ctes} SELECT 1"), dict(params)


def notify_many(*, tenant_id, messages: Sequence[Message]) -> None:
    """Every notification of several events of one tenant, with their emails and webhook
    deliveries and their approvers resolved: ONE statement (``fanout_ctes``).

    Used by the signal receivers: every notification of a transaction (a decision, the stage it
    opens and its many role holders) goes in at once, whatever the number of recipients. Inside
    a transition it is queued with the transition's writes (``core.pipeline.write``).
    """
    if not messages:
        return
    statement, defaults = _notify_statement()
    named = [
        (message.event_id, recipient)
        for message in messages
        for recipient in dict.fromkeys(message.recipient_ids)
    ]
    approvals = [message for message in messages if message.approvers_of is not None]
    pipeline.write(
        statement,
        {
            **defaults,
            "tenant": tenant_id,
            "now": timezone.now(),
            "events": [message.event_id for message in messages],
            "types": [message.notification_type for message in messages],
            "titles": [message.title for message in messages],
            "texts": [message.message for message in messages],
            "priorities": [message.priority for message in messages],
            "payloads": [_json(message.payload) for message in messages],
            "r_events": [event_id for event_id, _ in named],
            "r_users": [user_id for _, user_id in named],
            "q_events": [message.event_id for message in approvals],
            "q_roles": [message.approvers_of.role for message in approvals],
            "q_assigned": [message.approvers_of.assigned_to_id for message in approvals],
            "q_creators": [message.approvers_of.creator_id for message in approvals],
        },
    )


def _json(value) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder)


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
    quota_guard("webhooks", tenant=tenant, rows=WebhookEndpoint.objects.for_tenant(tenant))
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
