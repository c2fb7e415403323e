"""Who may act on an approval: the one definition, as SQL and as a Django ``Q``.

A user may act on (decide, delegate, be told about) an approval when they are active, are not the
contract's creator (nobody approves their own contract), and either

* are the approval's named approver (``assigned_to``: a named user, or the delegate it was handed
  to), or
* the approval names nobody and they hold its role with an assignment that has not expired.

Two forms of that one rule, proven to agree by ``tests/tenancy/test_eligibility.py``:

* ``eligible_approvers_sql``: the ``(key, user_id)`` pairs for a set of approvals, for the
  set-based writers (the notification fan-out, the SLA check, the orchestrator's row read);
* ``approval_eligible_q``: a user's approvals, for the approval lists.
"""

import uuid
from typing import NamedTuple

from django.db.models import Q

from core.sql import sql
from tenancy.models import User, UserRole
from tenancy.out_of_office import away_sql
from tenancy.selectors import user_role_slugs


class Approvable(NamedTuple):
    """What the rule reads of one approval (for callers holding the row in memory)."""

    role: str  # '' for none
    assigned_to_id: uuid.UUID | None
    creator_id: uuid.UUID | None  # the contract's creator


# Raw SQL: a part of the set-based writers' statements (the fan-out, the SLA check, the
# orchestrator's row read), which are SQL (bench/bench_sla.py, approvals/orchestrator.py).
_ELIGIBLE_APPROVERS = sql(
    """
SELECT s.key, s.assigned_to_id AS user_id
  FROM ({{source}}) s
  JOIN {u} ON {u.pk} = s.assigned_to_id AND {u.is_active}
 WHERE s.assigned_to_id IS DISTINCT FROM s.creator_id
UNION ALL
SELECT s.key, {ur.user} AS user_id
  FROM ({{source}}) s
  JOIN {ur} ON {ur.tenant} = s.tenant_id AND {ur.role} = s.role
   AND ({ur.expires_at} IS NULL OR {ur.expires_at} > {{now}})
  JOIN {u} ON {u.pk} = {ur.user} AND {u.is_active}
 WHERE s.assigned_to_id IS NULL AND s.role <> '' AND {ur.user} IS DISTINCT FROM s.creator_id
       {{away}}
""",
    u=User,
    ur=UserRole,
)


_ROLE_HOLDER = sql("{ur.user}", ur=UserRole)


def eligible_approvers_sql(*, source: str, now: str, told: bool = False) -> str:
    """A SELECT of ``(key, user_id)``: every user who may act on each row of ``source``.

    ``source`` is a SELECT (or a CTE's name as ``SELECT * FROM name``) of ``key`` (anything
    identifying the row), ``tenant_id``, ``role`` (``''`` for none), ``assigned_to_id`` and
    ``creator_id`` (the contract's creator; NULL excludes nobody); ``now`` is the SQL of the
    instant roles are judged at. The text uses ``source`` twice: its parameters, and ``now``, must
    be named ones (``%(now)s``). Each pair comes once: the two branches
    take disjoint rows and a user holds a role once (``userrole_user_role_unique``).

    ``told``: the people to tell of the work rather than those who may act on it: a role's
    holders out of office at ``now`` are skipped (they keep the role; their cover is told of what
    was theirs personally, ``tenancy.out_of_office``).
    """
    away = f"AND NOT {away_sql(_ROLE_HOLDER, at=now)}" if told else ""
    return _ELIGIBLE_APPROVERS.format(source=source, now=now, away=away)


def approval_eligible_q(user: User) -> Q:
    """Approvals ``user`` may act on (over ``WorkflowStageApproval``), whatever their status.

    Roles are the user's unexpired ones, read once per request (``user_role_slugs``)."""
    if not user.is_active:
        return Q(pk__in=[])
    roles = [role for role in user_role_slugs(user=user) if role]
    named_or_role = Q(assigned_to=user) | Q(assigned_to__isnull=True, role__in=roles)
    return named_or_role & ~Q(contract__created_by=user)
