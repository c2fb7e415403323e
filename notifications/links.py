"""Where e-mails link: every link must open something that exists.

A contract opens in the frontend when ``FRONTEND_URL`` is set (a template such as
``https://app.example/contracts/{contract_id}``), otherwise at its API resource on this service
(``PUBLIC_BASE_URL``), which every recipient may read with their token. The preferences link is
the API resource that switches e-mails off per type. An e-mail asking its recipient for a decision
carries their personal approval link (``decide_url``).
"""

from django.conf import settings
from django.urls import reverse

from approvals.link_services import approval_link_issue
from notifications.models import NotificationType


def _public(path: str) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}{path}"


def contract_url(contract_id) -> str:
    if settings.FRONTEND_URL:
        return settings.FRONTEND_URL.format(contract_id=contract_id)
    return _public(reverse("contract-detail", args=[contract_id]))


def preferences_url() -> str:
    return _public(reverse("notification-preferences"))


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
    return _public(reverse("approval-link", args=[token])) if token else ""
