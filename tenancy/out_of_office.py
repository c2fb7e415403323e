"""Out-of-office windows: who is away, who covers, and the rules a window must keep.

While a window lasts, whatever would be assigned to the away user personally (a named approver
entry, a delegation, a reassignment, a resolved manager) goes to the cover instead, recording on
whose behalf (``personal_assignees``). The away user's pending personal rows move to the cover
once the window has started (``approvals.covers``, from the SLA job or the first read of an
approval list). No chains: a cover may not be away during the window, and someone covering for
another may not be away while they cover. Role holders who are away keep their roles but get no
role notifications (``away_sql``).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from audit.services import audit_record
from core.sql import sql
from tenancy.models import OutOfOffice, User

# Raw SQL: a condition of the set-based writers' statements (the fan-out, the SLA check).
_AWAY = sql(
    "EXISTS (SELECT 1 FROM {away} WHERE {away.user} = {{user}}"
    " AND {away.starts_at} <= {{at}} AND {away.ends_at} > {{at}})",
    away=OutOfOffice,
)


def away_sql(user_column: str, at: str = "%s") -> str:
    """SQL true when the user in ``user_column`` is out of office at the placeholder ``at`` (bound
    twice), for set-based reads that tell role holders of work (they skip the away ones)."""
    return _AWAY.format(user=user_column, at=at)


def _overlapping(starts_at, ends_at) -> Q:
    return Q(starts_at__lt=ends_at, ends_at__gt=starts_at)


def window_for(*, user: User) -> OutOfOffice | None:
    """The user's window (past, current or future), or None."""
    return OutOfOffice.objects.filter(tenant_id=user.tenant_id, user=user).first()


def windows_active_at(*, tenant_id, at: datetime) -> QuerySet[OutOfOffice]:
    return OutOfOffice.objects.filter(tenant_id=tenant_id, starts_at__lte=at, ends_at__gt=at)


def cover_at(at: datetime) -> Subquery:
    """The cover of the outer user (``OuterRef("pk")``) while they are away at ``at``."""
    return Subquery(
        OutOfOffice.objects.filter(
            user=OuterRef("pk"), starts_at__lte=at, ends_at__gt=at, cover__is_active=True
        ).values("cover_id")[:1]
    )


@dataclass(frozen=True)
class Assignee:
    """Who a personal row goes to, and for whom when that is a cover."""

    user_id: uuid.UUID
    on_behalf_of: uuid.UUID | None = None


def personal_assignees(
    *, tenant_id, user_ids, creator_id, at: datetime, decided_ids=frozenset()
) -> dict[uuid.UUID, Assignee]:
    """For each active user of ``user_ids`` (other tenants' and inactive users are left out):
    the user, or their cover while they are away at ``at``. One query.

    A cover never receives a row of their own contract (``creator_id``), nor one they could not
    decide because they already decided another row of the workflow (``decided_ids``); then
    the row stays with the away user.
    """
    user_ids = {uuid.UUID(str(user_id)) for user_id in user_ids if user_id is not None}
    if not user_ids:
        return {}
    rows = (
        User.objects.filter(tenant_id=tenant_id, is_active=True, pk__in=user_ids)
        .annotate(cover_id=cover_at(at))
        .values_list("pk", "cover_id")
    )
    blocked = {creator_id, *decided_ids}
    return {
        user_id: (
            Assignee(cover_id, on_behalf_of=user_id)
            if cover_id is not None and cover_id not in blocked
            else Assignee(user_id)
        )
        for user_id, cover_id in rows
    }


# --- writes -------------------------------------------------------------------------------------


def _lock_users(*user_ids) -> None:
    """Both people of a window locked in one order: concurrent windows naming either are
    serialized, so two of them cannot make a chain (A covered by B while B is away)."""
    list(
        User.objects.select_for_update(no_key=True)
        .filter(pk__in=user_ids)
        .order_by("pk")
        .values_list("pk")
    )


def _iso(value) -> str | None:
    return value.isoformat() if value else None


@transaction.atomic
def out_of_office_set(
    *,
    user: User,
    cover_id,
    starts_at: datetime,
    ends_at: datetime,
    note: str = "",
    set_by: User,
) -> OutOfOffice:
    """Set (or replace) ``user``'s window; 400 naming the field when a rule is broken."""
    if ends_at <= starts_at:
        raise ValidationError({"ends_at": ["Must be after starts_at."]})
    if ends_at <= timezone.now():
        raise ValidationError({"ends_at": ["The window is over already; pick a future end."]})
    cover = User.objects.filter(tenant_id=user.tenant_id, pk=cover_id).first()
    if cover is None or not cover.is_active:
        raise ValidationError({"cover": ["Unknown or inactive user."]})
    if cover.pk == user.pk:
        raise ValidationError({"cover": ["Choose someone else to cover for you."]})
    _lock_users(user.pk, cover.pk)
    during = _overlapping(starts_at, ends_at)
    if OutOfOffice.objects.filter(during, user=cover).exists():
        raise ValidationError({"cover": [f"{cover.email} is away during that time."]})
    covered = (
        OutOfOffice.objects.filter(during, cover=user).select_related("user").order_by("pk").first()
    )
    if covered is not None:
        raise ValidationError(
            {
                "starts_at": [
                    f"{user.email} covers for {covered.user.email} during that time; "
                    "they need another cover first."
                ]
            }
        )
    window = window_for(user=user)
    before = (
        {}
        if window is None
        else {
            "cover": str(window.cover_id),
            "starts_at": _iso(window.starts_at),
            "ends_at": _iso(window.ends_at),
        }
    )
    if window is None:
        window = OutOfOffice(tenant_id=user.tenant_id, user=user)
    window.cover = cover
    window.starts_at, window.ends_at = starts_at, ends_at
    window.note = note
    window.set_by = set_by
    window.applied_at = None  # a new start: its rows move again when it comes
    window.save()
    audit_record(
        action="out_of_office_set",
        tenant=user.tenant_id,
        actor=set_by,
        resource=user,
        changes={
            "cover": [before.get("cover"), str(cover.pk)],
            "starts_at": [before.get("starts_at"), _iso(starts_at)],
            "ends_at": [before.get("ends_at"), _iso(ends_at)],
        },
    )
    return window


@transaction.atomic
def out_of_office_clear(*, user: User, cleared_by: User) -> None:
    """End the user's window; rows already moved stay with the cover."""
    window = window_for(user=user)
    if window is None:
        return
    audit_record(
        action="out_of_office_cleared",
        tenant=user.tenant_id,
        actor=cleared_by,
        resource=user,
        changes={
            "cover": [str(window.cover_id), None],
            "starts_at": [_iso(window.starts_at), None],
            "ends_at": [_iso(window.ends_at), None],
        },
    )
    window.delete()


def windows_to_apply(*, tenant_ids, now: datetime) -> list[OutOfOffice]:
    """Started, unfinished windows whose rows have not moved yet, locked until commit.

    A second caller waits for the first and then finds them applied: each window moves its
    rows once.
    """
    windows = OutOfOffice.objects.select_for_update(of=("self",)).filter(
        applied_at__isnull=True, starts_at__lte=now, ends_at__gt=now
    )
    if tenant_ids is not None:
        windows = windows.filter(tenant_id__in=tenant_ids)
    return list(windows.order_by("pk"))


def windows_due_exist(*, tenant_ids, now: datetime) -> bool:
    """Whether a started window (of ``tenant_ids``; None: any tenant) still has rows to move:
    the cheap pre-check of every read and SLA run (one indexed query)."""
    windows = OutOfOffice.objects.filter(
        applied_at__isnull=True, starts_at__lte=now, ends_at__gt=now
    )
    if tenant_ids is not None:
        windows = windows.filter(tenant_id__in=tenant_ids)
    return windows.exists()


def windows_mark_applied(*, windows: list[OutOfOffice], now: datetime) -> None:
    OutOfOffice.objects.filter(pk__in=[window.pk for window in windows]).update(applied_at=now)
