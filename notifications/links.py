"""Where e-mails link: every link must open something that exists (contracts: core.links).

The preferences link is the API resource that switches e-mails off per type. An e-mail asking
its recipient for a decision carries their personal approval link (``decide_url``).
"""

from django.urls import reverse

from approvals.link_services import approval_link_issue
from core.links import public_url
from notifications.models import NotificationType


def preferences_url() -> str:
    return public_url(reverse("notification-preferences"))


# E-mails that ask their recipient to decide an approval (payload ``approval_id``).
DECISION_REQUESTS = (
    NotificationType.APPROVAL_ASSIGNED,
    NotificationType.SLA_REMINDER,
    NotificationType.SLA_BREACHED,
)


def decide_url(notification) -> str:
    """A new personal link deciding the notification's approval, or "" (not a decision request,
    or the recipient may not decide it now). Issued when the e-mail is rendered: only its hash is
    stored, so the token exists in this e-mail alone."""
    approval_id = (notification.payload or {}).get("approval_id")
    if notification.notification_type not in DECISION_REQUESTS or not approval_id:
        return ""
    token = approval_link_issue(approval_id=approval_id, user=notification.recipient)
    return public_url(reverse("approval-link", args=[token])) if token else ""
