"""Reads for decide-from-e-mail links: which link a token is, and whether it still works.

A link is alive while it is unused and unexpired, its approval is pending and its person may
still decide it, by the rule the pending inbox uses (``approval_pending_for_user``). That is
checked each time the link is opened, so a row decided, delegated, reassigned, superseded or
cancelled, or a person who lost the role, kills the link without anything revoking it.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.utils import timezone

from approvals.models import ApprovalLink, ApprovalStatus, InstanceStatus
from approvals.selectors import approval_pending_for_user

TOKEN_MAX_LENGTH = 100


def token_digest(token: str) -> str:
    """What is stored of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def approval_link_tenant(*, token: str):
    """The tenant of the link ``token`` opens, or None: the one read made before any tenant is
    known, through the owner's function (``approvals/migrations/0005``)."""
    if not token or len(token) > TOKEN_MAX_LENGTH:
        return None
    with connection.cursor() as cursor:  # Raw SQL: the owner's function, which the ORM cannot call
        cursor.execute("SELECT app_approval_link_tenant(%s)", [token_digest(token)])
        (tenant_id,) = cursor.fetchone()
    return tenant_id


def approval_link_get(*, tenant_id, token: str, for_update: bool = False) -> ApprovalLink | None:
    """The link with its person (and tenant), approval, stage, contract and workflow: one query."""
    links = ApprovalLink.objects.for_tenant(tenant_id)
    if for_update:
        links = links.select_for_update(of=("self",))
    return (
        links.select_related(
            "user__tenant", "approval__stage", "approval__contract", "approval__instance"
        )
        .defer("approval__contract__text", "approval__contract__clause_findings")
        .filter(token_hash=token_digest(token))
        .first()
    )


def approval_decidable_by(*, user, approval_id) -> bool:
    """``user`` may decide the approval now (the pending inbox's rule)."""
    return approval_pending_for_user(user=user).filter(pk=approval_id).exists()


@dataclass(frozen=True)
class LinkProblem:
    """Why a link cannot be used now: the page's status, heading and explanation."""

    status: int
    title: str
    message: str


UNKNOWN_LINK = LinkProblem(
    410,
    "This link does not work",
    "It is not a valid approval link, or a newer e-mail about the same approval replaced it. "
    "Use the link in the most recent e-mail, or open your approvals in the application.",
)

_CLOSED = {
    ApprovalStatus.APPROVED: "It was already approved.",
    ApprovalStatus.REJECTED: "It was already rejected.",
    ApprovalStatus.DELEGATED: "It was delegated to someone else.",
    ApprovalStatus.SUPERSEDED: "The contract changed, and the approval was reset: a new "
    "request comes with its own e-mail.",
    ApprovalStatus.CANCELLED: "The contract's workflow was closed.",
    ApprovalStatus.SKIPPED: "Its stage was settled by the other approvers.",
}


def approval_link_problem(link: ApprovalLink, now: datetime | None = None) -> LinkProblem | None:
    """None when ``link`` may decide its approval now, else why not."""
    now = now or timezone.now()
    approval = link.approval
    if link.used_at is not None:
        return LinkProblem(
            410,
            "This link was already used",
            "A decision was made with it. The approval is now "
            f"{approval.get_status_display().lower()}.",
        )
    if link.expires_at <= now:
        return LinkProblem(
            410,
            "This link has expired",
            "Approval links work for a limited time. If the approval still waits for you, "
            "decide it in the application; a reminder brings a new link.",
        )
    if approval.status != ApprovalStatus.PENDING:
        return LinkProblem(410, "This approval is no longer open", _CLOSED[approval.status])
    if approval.instance.status == InstanceStatus.CHANGES_REQUESTED:
        return LinkProblem(
            409,
            "The contract is back with its requester",
            "Changes were requested, so nobody can decide until the contract is resubmitted. "
            "This link works again then, until it expires.",
        )
    if not link.user.is_active or not approval_decidable_by(
        user=link.user, approval_id=approval.pk
    ):
        return LinkProblem(
            410,
            "You can no longer decide this approval",
            "It was reassigned, or your role or account changed since the e-mail was sent.",
        )
    return None
