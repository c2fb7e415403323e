"""Notifications: the in-app inbox, per-user email preferences, webhook endpoints, and the
delivery queue the worker drains (email and webhooks, at least once, never twice by the pool)."""

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.fanout import Priority
from tenancy.scoping import TenantOwnedModel


class NotificationType(models.TextChoices):
    APPROVAL_ASSIGNED = "approval_assigned", "Approval assigned"
    APPROVAL_DECIDED = "approval_decided", "Approval decided"
    APPROVAL_DELEGATED = "approval_delegated", "Approval delegated"
    WORKFLOW_COMPLETED = "workflow_completed", "Workflow completed"
    WORKFLOW_REJECTED = "workflow_rejected", "Workflow rejected"
    WORKFLOW_CANCELLED = "workflow_cancelled", "Workflow cancelled"
    SLA_REMINDER = "sla_reminder", "SLA reminder"
    SLA_BREACHED = "sla_breached", "SLA breached"
    SLA_ESCALATED = "sla_escalated", "SLA escalated"
    APPROVAL_RESET = "approval_reset", "Approval reset"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    SIGNATURE_REQUESTED = "signature_requested", "Signature requested"
    SIGNATURE_COMPLETED = "signature_completed", "Signature completed"
    SIGNATURE_DECLINED = "signature_declined", "Signature declined"
    COMMENT_MENTION = "comment_mention", "Mentioned in a comment"
    COMMENT_ADDED = "comment_added", "Comment added"
    APPROVER_UNRESOLVED = "approver_unresolved", "Approver unresolved"


class Notification(TenantOwnedModel):
    # No single-column index: notification_inbox_idx leads with the recipient (the inbox, the
    # cascade from a deleted user). Each index here is written once per notification.
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,
    )
    notification_type = models.CharField(max_length=32, choices=NotificationType.choices)
    title = models.CharField(max_length=200)
    message = models.TextField()
    priority = models.CharField(max_length=6, choices=Priority.choices, default=Priority.MEDIUM)
    payload = models.JSONField(default=dict, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["recipient", "-created_at"], name="notification_inbox_idx"),
            models.Index(
                fields=["recipient"],
                condition=Q(read_at__isnull=True),
                name="notification_unread_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.notification_type} to {self.recipient_id}"


class NotificationPreference(TenantOwnedModel):
    """A user's opt-out of email for one notification type (in-app is always on)."""

    # Indexed by notificationpref_user_type_uq (user, notification_type).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notification_preferences",
        db_index=False,
    )
    notification_type = models.CharField(max_length=32, choices=NotificationType.choices)
    email_enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "notification_type"], name="notificationpref_user_type_uq"
            )
        ]


class WebhookFormat(models.TextChoices):
    """How a webhook's body is shaped (``notifications.formats``)."""

    STANDARD = "standard", "Standard (the event as JSON)"
    SLACK = "slack", "Slack incoming webhook (Block Kit)"
    TEAMS = "teams", "Microsoft Teams incoming webhook (Adaptive Card)"


class WebhookEndpoint(TenantOwnedModel):
    url = models.URLField(max_length=2000)
    format = models.CharField(
        max_length=8, choices=WebhookFormat.choices, default=WebhookFormat.STANDARD
    )
    events = ArrayField(models.CharField(max_length=32, choices=NotificationType.choices))
    secret = models.CharField(max_length=200)
    # After a rotation the replaced secret signs too, until it expires (notifications/signing.py).
    previous_secret = models.CharField(max_length=200, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # The delivery worker's claim that alone sends to this endpoint until ``locked_until``: at
    # most one delivery is in flight per endpoint (notifications/delivery.py, ``claim_due``).
    locked_until = models.DateTimeField(null=True, blank=True, editable=False)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return self.url


class DeliveryChannel(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (gave up)"


class Delivery(TenantOwnedModel):
    """One message to send: an email for a notification, or a webhook POST for an event.

    Workers claim due rows with ``FOR UPDATE SKIP LOCKED`` and a lease (``locked_until``): a worker
    killed mid-batch loses nothing, its lease expires and another worker delivers. ``event_id`` is
    the same on every retry so receivers can de-duplicate (at-least-once delivery).
    """

    channel = models.CharField(max_length=8, choices=DeliveryChannel.choices)
    # Each row has one of these two (delivery_has_target): their indexes below are partial, on
    # the rows that have it, so an email writes no endpoint entry and a webhook no notification
    # entry. Every lookup by either (the delivery log, the cascades, the database's own foreign
    # key checks) is an equality, which a partial index on IS NOT NULL serves.
    notification = models.ForeignKey(
        Notification,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="deliveries",
        db_index=False,
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="deliveries",
        db_index=False,
    )
    event_id = models.UUIDField(default=uuid.uuid4)
    event_type = models.CharField(max_length=32, choices=NotificationType.choices)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    locked_until = models.DateTimeField(null=True, blank=True)
    # The claim that holds the lease: a worker marks only the rows it still holds.
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, default="")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(
                fields=["endpoint", "-created_at"],
                condition=Q(endpoint__isnull=False),
                name="delivery_endpoint_time_idx",
            ),
            # A claim takes the due e-mails, and one endpoint's due rows (notifications/delivery.py,
            # _CLAIM), each without reading past the other kind: pending rows only, so they stay
            # small.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending", channel="email"),
                name="delivery_email_due_idx",
            ),
            models.Index(
                fields=["endpoint", "next_attempt_at"],
                condition=Q(status="pending", endpoint__isnull=False),
                name="delivery_endpoint_due_idx",
            ),
            models.Index(
                fields=["notification"],
                condition=Q(notification__isnull=False),
                name="delivery_notification_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(channel="email", notification__isnull=False)
                    | Q(channel="webhook", endpoint__isnull=False)
                ),
                name="delivery_has_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.event_type} ({self.status})"
