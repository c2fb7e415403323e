"""Who a stage's approver entries go to when the stage opens: one rule for every path.

An entry is a catalog role (any unexpired holder but the contract's creator may act), a named
person (``user:<uuid>``) or ``manager`` (the contract creator's manager, read when the stage
opens). Personal entries go to the person's out-of-office cover while they are away
(``tenancy.out_of_office``). An entry nobody could act on (a role nobody else holds, a named
person who left, a creator without a manager) is not a dead end: it goes to a tenant admin,
and the caller audits ``approver_unresolved`` and tells every admin.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from core.sql import Prepared, sql
from tenancy.eligibility import eligible_approvers_sql
from tenancy.models import User
from tenancy.out_of_office import Assignee, cover_at, personal_assignees

MANAGER = "manager"
# A named person's entry: this prefix and their user id.
USER_APPROVER_PREFIX = "user:"


@dataclass(frozen=True)
class Resolution:
    """What one approver entry becomes: a role row, or a row assigned to someone."""

    role: str = ""
    assigned_to: uuid.UUID | None = None
    on_behalf_of: uuid.UUID | None = None
    unresolved: bool = False


def split_approver(entry: str) -> tuple[str, uuid.UUID | None]:
    """``(role, None)`` for a role or ``manager``, ``("", <uuid>)`` for ``user:<uuid>`` (a
    malformed id: ValueError)."""
    if entry.startswith(USER_APPROVER_PREFIX):
        return "", uuid.UUID(entry[len(USER_APPROVER_PREFIX) :])
    return entry, None


def resolve_stage_approvers(
    *,
    tenant_id,
    entries,
    creator_id,
    at: datetime,
    decided_ids=frozenset(),
    held_roles: frozenset[str] | None = None,
) -> dict[str, Resolution]:
    """``{entry: Resolution}`` for a stage's entries (at most two queries, a third for the admin
    fallback). ``decided_ids``: people who may not get another row of the workflow.
    ``held_roles``: the entries' roles someone may act on, when the caller read them with its own
    query (``held_roles_sql``); otherwise they are read here."""
    entries = list(dict.fromkeys(entries))
    roles = {role for role, user_id in map(split_approver, entries) if role and role != MANAGER}
    named = {user_id for _, user_id in map(split_approver, entries) if user_id is not None}
    held = held_roles or set()
    if roles and held_roles is None:
        params = {"tenant": tenant_id, "roles": sorted(roles), "creator": creator_id, "now": at}
        held = {role for (role,) in _HELD_ROLES.fetchall(params)}
    manager_id = None
    people: dict = {}
    if named or MANAGER in entries:
        if MANAGER in entries:
            manager_id = (
                User.objects.filter(tenant_id=tenant_id, pk=creator_id)
                .values_list("manager_id", flat=True)
                .first()
            )
        people = personal_assignees(
            tenant_id=tenant_id,
            user_ids=named | {manager_id},
            creator_id=creator_id,
            at=at,
            decided_ids=decided_ids,
        )
    resolved: dict[str, Resolution] = {}
    for entry in entries:
        role, user_id = split_approver(entry)
        if role == MANAGER:
            user_id = manager_id
        person = people.get(user_id) if user_id is not None else None
        if role and role != MANAGER and role in held:
            resolved[entry] = Resolution(role=role)
        elif person is not None and person.user_id != creator_id:
            resolved[entry] = Resolution(
                role="" if role == MANAGER else role,
                assigned_to=person.user_id,
                on_behalf_of=person.on_behalf_of,
            )
        else:
            resolved[entry] = None
    unresolved = [entry for entry, found in resolved.items() if found is None]
    if unresolved:
        admin = fallback_admin(tenant_id=tenant_id, creator_id=creator_id, at=at)
        for entry in unresolved:
            role, _ = split_approver(entry)
            resolved[entry] = Resolution(
                role="" if role == MANAGER else role,
                assigned_to=admin.user_id if admin else None,
                on_behalf_of=admin.on_behalf_of if admin else None,
                unresolved=True,
            )
    return resolved


def held_roles_sql(*, roles: str, tenant: str, creator: str, now: str) -> str:
    """A SELECT of the roles among ``roles`` (SQL of a ``text[]``) that someone other than
    ``creator`` may act on at ``now`` (the rule of ``tenancy.eligibility``, for approvals that
    name a role and nobody); each argument is SQL (a column or a named parameter)."""
    source = f"""SELECT r.role AS key, {tenant} AS tenant_id, r.role,
                        NULL::uuid AS assigned_to_id, {creator} AS creator_id
                   FROM unnest({roles}) AS r(role)"""  # noqa: S608 (SQL text only)
    eligible = eligible_approvers_sql(source=source, now=now)
    return f"SELECT DISTINCT e.key FROM ({eligible}) e"  # noqa: S608 (SQL text only)


# Prepared: it runs whenever a stage opens, and planning it cost more than running it
# (bench/bench_process.py).
_HELD_ROLES = Prepared(
    held_roles_sql(
        roles="%(roles)s::text[]", tenant="%(tenant)s::uuid", creator="%(creator)s::uuid",
        now="%(now)s",
    )
)  # fmt: skip


def fallback_admin(*, tenant_id, creator_id, at: datetime) -> Assignee | None:
    """The tenant admin an unresolved entry goes to: the longest-standing active admin who is
    not the contract's creator and not away (else the first such admin's cover). One query."""
    admins = list(
        User.objects.filter(tenant_id=tenant_id, is_tenant_admin=True, is_active=True)
        .exclude(pk=creator_id)
        .annotate(cover_id=cover_at(at))
        .order_by("date_joined", "pk")
        .values_list("pk", "cover_id")[:50]
    )
    present = next((pk for pk, cover_id in admins if cover_id is None), None)
    if present is not None:
        return Assignee(present)
    for pk, cover_id in admins:
        if cover_id != creator_id:
            return Assignee(cover_id, on_behalf_of=pk)
    return None


def admin_ids(*, tenant_id, creator_id) -> list[uuid.UUID]:
    """Every active admin of the tenant but the contract's creator (told of unresolved entries)."""
    return list(
        User.objects.filter(tenant_id=tenant_id, is_tenant_admin=True, is_active=True)
        .exclude(pk=creator_id)
        .values_list("pk", flat=True)
    )


def manager_chain_has(*, user_id, candidate_id) -> bool:
    """Whether ``user_id`` appears among ``candidate_id``'s managers (or is the candidate):
    making ``candidate_id`` the manager of ``user_id`` would close a cycle. One query."""
    with connection.cursor() as cursor:
        cursor.execute(_CHAIN, [str(candidate_id), str(user_id)])
        return cursor.fetchone() is not None


# Walks up from the candidate; a cycle already present cannot loop forever (UNION drops repeats).
# Raw SQL: the whole chain in one query needs a recursive CTE, which the ORM cannot express.
_CHAIN = sql(
    """
WITH RECURSIVE chain(id) AS (
    SELECT %s::uuid
    UNION
    SELECT {u.manager} FROM {u} JOIN chain c ON {u.pk} = c.id
     WHERE {u.manager} IS NOT NULL
)
SELECT 1 FROM chain WHERE id = %s::uuid LIMIT 1
""",
    u=User,
)
