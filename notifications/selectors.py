"""Reads about notifications, preferences, webhook endpoints and deliveries. Tenant-scoped."""

from collections import defaultdict

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from notifications.models import (
    Delivery,
    Notification,
    NotificationPreference,
    NotificationType,
    WebhookEndpoint,
)
from tenancy.models import User, UserRole
from tenancy.out_of_office import away_sql


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
    """``{role: [user id, ...]}``: active users holding each role (unexpired) who are not out of
    office now (they keep the role, but are not told of new work), one query.

    Raw SQL: it runs whenever a stage opens, and the ORM's compilation of this join cost more
    than the query itself.
    """
    holders: dict[str, list] = defaultdict(list)
    if not roles:
        return holders
    with connection.cursor() as cursor:
        now = timezone.now()
        cursor.execute(_ROLE_HOLDERS, [str(tenant_id), sorted(roles), now, now, now])
        for role, user_id in cursor.fetchall():
            holders[role].append(user_id)
    return holders


# (user, role) is unique, so no DISTINCT is needed.
_ROLE_HOLDERS = f"""
SELECT r.role, r.user_id
  FROM {UserRole._meta.db_table} r
  JOIN {User._meta.db_table} u ON u.id = r.user_id
 WHERE r.tenant_id = %s::uuid AND r.role = ANY(%s::varchar[]) AND u.is_active
   AND (r.expires_at IS NULL OR r.expires_at > %s)
   AND NOT {away_sql("r.user_id")}
 ORDER BY r.role, r.user_id
"""  # noqa: S608 (table names only)


def webhook_list(*, tenant) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.for_tenant(tenant).order_by("-created_at", "-id")


def delivery_log(*, endpoint: WebhookEndpoint) -> QuerySet[Delivery]:
    """The endpoint's deliveries, newest first."""
    return Delivery.objects.filter(tenant_id=endpoint.tenant_id, endpoint=endpoint).order_by(
        "-created_at", "-id"
    )
