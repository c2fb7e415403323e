"""Reads about tenants, users and roles. All tenant-scoped, but for the two account look-ups."""

import uuid
from typing import NamedTuple

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from tenancy.capabilities import ALL_CAPABILITIES
from tenancy.models import Tenant, User, UserRole


def active_roles_q(now=None, prefix: str = "") -> Q:
    """Role assignments that still grant something: not expired at ``now``."""
    now = now or timezone.now()
    return Q(**{f"{prefix}expires_at__isnull": True}) | Q(**{f"{prefix}expires_at__gt": now})


def user_active_roles(*, user: User) -> list[UserRole]:
    """The user's unexpired roles, fetched once per request and cached on the user object."""
    cached = getattr(user, "_active_roles_cache", None)
    if cached is None:
        cached = list(
            UserRole.objects.filter(user=user, tenant_id=user.tenant_id).filter(active_roles_q())
        )
        user._active_roles_cache = cached
    return cached


def user_role_slugs(*, user: User) -> list[str]:
    return sorted({assignment.role for assignment in user_active_roles(user=user)})


def user_capabilities(*, user: User) -> frozenset[str]:
    if user.is_tenant_admin:
        return frozenset(ALL_CAPABILITIES)
    return frozenset(
        capability
        for assignment in user_active_roles(user=user)
        for capability in assignment.permissions
    )


def user_list(*, tenant: Tenant) -> QuerySet[User]:
    return User.objects.for_tenant(tenant).order_by("email")


def role_assignment_list(*, tenant: Tenant) -> QuerySet[UserRole]:
    return UserRole.objects.for_tenant(tenant).select_related("user", "assigned_by")


def role_holders(*, tenant: Tenant, roles) -> QuerySet[User]:
    """Active users of the tenant holding any of ``roles`` (unexpired): a role's signers."""
    return (
        User.objects.for_tenant(tenant)
        .filter(is_active=True, role_assignments__role__in=list(roles))
        .filter(active_roles_q(prefix="role_assignments__"))
        .distinct()
    )


def tenant_by_slug_or_id(value: str) -> Tenant | None:
    """The tenant a command-line ``--tenant`` names, by id or slug."""
    value = value.strip()
    try:
        lookup = {"pk": uuid.UUID(value)}
    except ValueError:
        lookup = {"slug": value}
    return Tenant.objects.filter(**lookup).first()


class Account(NamedTuple):
    """Which user an e-mail or a session names, and the tenant (None: platform) to load it in."""

    id: uuid.UUID
    tenant_id: uuid.UUID | None


# Raw SQL: the owner's SECURITY DEFINER functions, which the ORM cannot call (a function in FROM).
_ACCOUNT_BY_EMAIL = "SELECT id, tenant_id FROM app_account_by_email(%s)"
_ACCOUNT_BY_ID = "SELECT id, tenant_id FROM app_account_by_id(%s)"


def _account(statement: str, argument) -> Account | None:
    with connection.cursor() as cursor:
        cursor.execute(statement, [argument])
        row = cursor.fetchone()
    return Account(*row) if row else None


def account_by_email(*, email: str) -> Account | None:
    """The account an e-mail address (any case) belongs to, in any tenant.

    ``tenancy_user`` is under row-level security and logging in has no tenant yet: a SECURITY
    DEFINER function of the owner answers this one question, and nothing else about the row.
    """
    return _account(_ACCOUNT_BY_EMAIL, email)


def account_by_id(*, user_id) -> Account | None:
    """The account a session names (the Django admin), by the same kind of function."""
    try:
        user_id = uuid.UUID(str(user_id))
    except ValueError:
        return None
    return _account(_ACCOUNT_BY_ID, user_id)
