"""Decide from e-mail: issuing personal approval links and deciding through one.

A link decides through the orchestrator's own entry point (``approval_act``), as its person, so
every rule of the API applies to it unchanged; its audit rows carry ``via: email_link``.
"""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import APIException, ValidationError

from approvals.link_selectors import (
    UNKNOWN_LINK,
    LinkProblem,
    approval_decidable_by,
    approval_link_get,
    approval_link_problem,
    token_digest,
)
from approvals.models import ApprovalLink
from approvals.orchestrator import ApprovalAction, approval_act

TOKEN_BYTES = 32
# Expired links are kept this long (so their page says "expired"), then purged.
EXPIRED_RETENTION = timedelta(days=30)
LINK_ACTIONS = (ApprovalAction.APPROVE, ApprovalAction.REJECT, ApprovalAction.REQUEST_CHANGES)
VIA_EMAIL_LINK = "email_link"


class LinkUnusable(APIException):
    """The link cannot decide now: ``problem`` says why (the page's status and text)."""

    def __init__(self, problem: LinkProblem):
        super().__init__(problem.message)
        self.status_code = problem.status
        self.problem = problem


@transaction.atomic
def approval_link_issue(*, approval_id, user) -> str | None:
    """A new token for ``user`` to decide the approval from an e-mail; None when they may not
    decide it now (no link is sent then).

    It replaces the person's earlier link to the row: one live link per row and person, so a
    tenant holds at most one per pending row and eligible person. The tenant's links expired
    longer than ``EXPIRED_RETENTION`` ago are purged on the way.
    """
    if not approval_decidable_by(user=user, approval_id=approval_id):
        return None
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = timezone.now()
    ApprovalLink.objects.bulk_create(
        [
            ApprovalLink(
                tenant_id=user.tenant_id,
                approval_id=approval_id,
                user=user,
                token_hash=token_digest(token),
                created_at=now,
                expires_at=now + timedelta(hours=settings.APPROVAL_LINK_TTL_HOURS),
            )
        ],
        update_conflicts=True,
        unique_fields=["approval", "user"],
        update_fields=["token_hash", "created_at", "expires_at", "used_at"],
    )
    ApprovalLink.objects.filter(
        tenant_id=user.tenant_id, expires_at__lt=now - EXPIRED_RETENTION
    ).delete()
    return token


@transaction.atomic
def approval_link_decide(*, tenant_id, token: str, action: str, comments: str) -> ApprovalLink:
    """Decide the link's approval as its person, once.

    The link row is locked first, so two submissions of one link are serialized and the second
    finds it used. ``LinkUnusable`` when the link is dead (or the workflow paused); the
    orchestrator's own refusals pass through, the decision and the link's use rolled back.
    """
    link = approval_link_get(tenant_id=tenant_id, token=token, for_update=True)
    if link is None:
        raise LinkUnusable(UNKNOWN_LINK)
    problem = approval_link_problem(link)
    if problem is not None:
        raise LinkUnusable(problem)
    if action not in LINK_ACTIONS:
        raise ValidationError({"action": ["Choose approve, reject or request changes."]})
    if action != ApprovalAction.APPROVE and not comments.strip():
        what = "reject" if action == ApprovalAction.REJECT else "request changes"
        raise ValidationError({"comments": [f"Say why: a comment is required to {what}."]})
    user = link.user
    approval_act(
        tenant=user.tenant,
        contract_id=link.approval.contract_id,
        actor=user,
        action=action,
        comments=comments.strip(),
        approval_id=link.approval_id,
        via=VIA_EMAIL_LINK,
    )
    link.used_at = timezone.now()
    link.save(update_fields=["used_at"])
    return link
