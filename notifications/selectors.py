"""Reads about notifications, preferences, webhook endpoints and deliveries. Tenant-scoped."""

from collections import defaultdict

from django.db.models import QuerySet

from notifications.models import (
    Delivery,
    Notification,
    NotificationPreference,
    NotificationType,
    WebhookEndpoint,
)
from tenancy.models import UserRole
from tenancy.selectors import active_roles_q


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


def role_holder_ids(*, tenant_id, roles) -> dict[str, list]:
    """``{role: [user id, ...]}``: active users holding each role (unexpired), one query."""
    holders: dict[str, list] = defaultdict(list)
    if not roles:
        return holders
    rows = (
        UserRole.objects.filter(tenant_id=tenant_id, role__in=sorted(roles), user__is_active=True)
        .filter(active_roles_q())
        .values_list("role", "user_id")
        .order_by("role", "user_id")
        .distinct()
    )
    for role, user_id in rows:
        holders[role].append(user_id)
    return holders


def webhook_list(*, tenant) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.for_tenant(tenant).order_by("-created_at", "-id")


def delivery_log(*, endpoint: WebhookEndpoint) -> QuerySet[Delivery]:
    """The endpoint's deliveries, newest first."""
    return Delivery.objects.filter(tenant_id=endpoint.tenant_id, endpoint=endpoint).order_by(
        "-created_at", "-id"
    )
