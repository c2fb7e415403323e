"""Reads about notifications, preferences, webhook endpoints and deliveries. Tenant-scoped."""

from django.db.models import QuerySet

from notifications.models import (
    Delivery,
    Notification,
    NotificationPreference,
    NotificationType,
    WebhookEndpoint,
)


def notification_list_for_user(*, user) -> QuerySet[Notification]:
    """The user's own notifications, newest first."""
    return (
        Notification.objects.for_tenant(user.tenant_id)
        .filter(recipient=user)
        .order_by("-created_at", "-id")
    )


def notification_unread_count(*, user) -> int:
    return notification_list_for_user(user=user).filter(read_at__isnull=True).count()


def email_preferences(*, user) -> dict[str, bool]:
    """Email on or off for every notification type (on unless the user switched it off)."""
    stored = dict(
        NotificationPreference.objects.for_tenant(user.tenant_id)
        .filter(user=user)
        .values_list("notification_type", "email_enabled")
    )
    return {kind: stored.get(kind, True) for kind in NotificationType.values}


def webhook_list(*, tenant) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.for_tenant(tenant).order_by("-created_at", "-id")


def delivery_log(*, endpoint: WebhookEndpoint) -> QuerySet[Delivery]:
    """The endpoint's deliveries, newest first."""
    return Delivery.objects.filter(tenant_id=endpoint.tenant_id, endpoint=endpoint).order_by(
        "-created_at", "-id"
    )
