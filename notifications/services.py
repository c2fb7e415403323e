"""Writing notifications: in-app rows, plus queued email and webhook deliveries, in bulk."""

import uuid
from collections.abc import Iterable

from django.db.models import Q

from notifications.models import (
    Delivery,
    DeliveryChannel,
    Notification,
    NotificationPreference,
    Priority,
    WebhookEndpoint,
)


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
) -> list[Notification]:
    """One notification per recipient, their emails and the tenant's webhooks: four queries.

    Recipients who switched email off for this type get the in-app row only. Webhooks get one
    delivery per subscribed endpoint for the event (not one per recipient).
    """
    recipients = list(dict.fromkeys(recipient_ids))
    event_id = event_id or uuid.uuid4()
    notifications = Notification.objects.bulk_create(
        Notification(
            tenant_id=tenant_id,
            recipient_id=recipient,
            notification_type=notification_type,
            title=title,
            message=message,
            priority=priority,
            payload=payload,
        )
        for recipient in recipients
    )
    opted_out = set(
        NotificationPreference.objects.filter(
            tenant_id=tenant_id,
            user_id__in=recipients,
            notification_type=notification_type,
            email_enabled=False,
        ).values_list("user_id", flat=True)
    )
    endpoints = WebhookEndpoint.objects.filter(
        Q(tenant_id=tenant_id, is_active=True) & Q(events__contains=[notification_type])
    ).values_list("pk", flat=True)
    deliveries = [
        Delivery(
            tenant_id=tenant_id,
            channel=DeliveryChannel.EMAIL,
            notification=notification,
            event_id=uuid.uuid4(),
            event_type=notification_type,
        )
        for notification in notifications
        if notification.recipient_id not in opted_out
    ]
    deliveries += [
        Delivery(
            tenant_id=tenant_id,
            channel=DeliveryChannel.WEBHOOK,
            endpoint_id=endpoint_id,
            event_id=event_id,
            event_type=notification_type,
            payload={
                "event_id": str(event_id),
                "event": notification_type,
                "tenant": str(tenant_id),
                "data": payload,
            },
        )
        for endpoint_id in endpoints
    ]
    Delivery.objects.bulk_create(deliveries)
    return notifications
