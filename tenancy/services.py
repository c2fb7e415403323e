"""Writes for tenants, users and roles. Each is one transaction that writes its audit row."""

from datetime import datetime

from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone
from django.utils.text import slugify
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied, ValidationError
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from audit.services import audit_record
from config.exceptions import clash_is_invalid
from core import rls
from tenancy import throttling
from tenancy.approvers import manager_chain_has
from tenancy.models import Tenant, User, UserRole
from tenancy.quotas import lock_tenant, quota_guard
from tenancy.roles import catalog_add
from tenancy.selectors import account_by_email, user_capabilities


def _unique_tenant_slug(name: str) -> str:
    base = slugify(name)[:50] or "tenant"
    taken = set(Tenant.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    if base not in taken:
        return base
    suffix = 2
    while f"{base}-{suffix}" in taken:
        suffix += 1
    return f"{base}-{suffix}"


# One answer for a taken address, whichever tenant holds it (docs/api.md): the message
# neither says "exists" nor differs between the caller's tenant and another.
EMAIL_UNAVAILABLE = "This email address cannot be used."
EMAIL_UNIQUE_CONSTRAINT = "tenancy_user_email_key"


def _email_unavailable() -> ValidationError:
    return ValidationError({"email": [EMAIL_UNAVAILABLE]})


def normalized_email(email: str) -> str:
    """How addresses are stored (lower-cased), so uniqueness is case-insensitive."""
    return User.objects.normalize_email(email).lower()


def _validated_password(password: str, user: User, *, field: str = "password") -> None:
    from django.core.exceptions import ValidationError as DjangoValidationError

    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationError({field: list(exc.messages)}) from exc


def _prepare_new_user(user: User, password: str) -> None:
    """Everything but the e-mail's availability first, then that, at the same cost either way.

    Against account enumeration: a weak password is reported whether or not the address is taken
    (and a taken address only once the rest is valid), and the password is hashed (the slow part,
    on purpose) before the lookup, so a taken address is not answered measurably faster than a
    free one.
    """
    _validated_password(password, user)
    user.set_password(password)
    if account_by_email(email=user.email) is not None:  # in any tenant
        raise _email_unavailable()


@transaction.atomic
def tenant_register(*, email: str, password: str, full_name: str, tenant_name: str) -> User:
    """Create a tenant and its first user, who is the tenant's admin."""
    user = User(email=normalized_email(email), full_name=full_name, is_tenant_admin=True)
    _prepare_new_user(user, password)
    tenant = Tenant.objects.create(name=tenant_name, slug=_unique_tenant_slug(tenant_name))
    user.tenant = tenant
    with rls.tenant_scope(tenant):  # the caller is anonymous: the new tenant is the scope
        _save_new_user(user)
        audit_record(
            action="user_registered",
            tenant=tenant,
            actor=user,
            resource=user,
            changes={"email": [None, user.email], "tenant": [None, tenant.name]},
        )
    return user


@transaction.atomic
def user_create(
    *, tenant: Tenant, email: str, password: str, full_name: str, created_by: User
) -> User:
    user = User(tenant=tenant, email=normalized_email(email), full_name=full_name)
    _prepare_new_user(user, password)
    check_user_quota(tenant=tenant)
    _save_new_user(user)
    audit_record(
        action="user_created",
        tenant=tenant,
        actor=created_by,
        resource=user,
        changes={"email": [None, user.email], "full_name": [None, user.full_name]},
    )
    return user


def check_user_quota(*, tenant: Tenant) -> None:
    """One more user for ``tenant``: within the quota? (Locks the tenant until commit.)"""
    quota_guard("users", tenant=tenant, rows=User.objects.filter(tenant=tenant))


def _save_new_user(user: User) -> None:
    """Two registrations racing for one email: the unique index decides, the loser gets a 400."""
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) != (
            EMAIL_UNIQUE_CONSTRAINT
        ):
            raise
        raise _email_unavailable() from exc


@transaction.atomic
def role_assign(
    *,
    tenant: Tenant,
    user: User,
    role: str,
    permissions: list[str],
    expires_at: datetime | None,
    assigned_by: User,
) -> UserRole:
    if user.tenant_id != tenant.pk:
        raise ValidationError({"user": ["Unknown user."]})
    beyond_own = sorted(set(permissions) - user_capabilities(user=assigned_by))
    if beyond_own:
        # Otherwise holding roles.manage alone would be a path to every capability.
        raise PermissionDenied(
            f"You cannot grant capabilities you do not hold: {', '.join(beyond_own)}."
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": ["Must be in the future."]})
    catalog_add(tenant=tenant, slug=role)
    assignment = UserRole(
        tenant=tenant,
        user=user,
        role=role,
        permissions=sorted(set(permissions)),
        expires_at=expires_at,
        assigned_by=assigned_by,
    )
    with clash_is_invalid({"role": [f"The user already holds the role '{role}'."]}):
        assignment.save()
    audit_record(
        action="role_assigned",
        tenant=tenant,
        actor=assigned_by,
        resource=assignment,
        changes={
            "user": [None, str(user.pk)],
            "role": [None, role],
            "permissions": [None, assignment.permissions],
            "expires_at": [None, expires_at.isoformat() if expires_at else None],
        },
    )
    return assignment


@transaction.atomic
def role_revoke(*, assignment: UserRole, revoked_by: User) -> None:
    audit_record(
        action="role_revoked",
        tenant=assignment.tenant,
        actor=revoked_by,
        resource=assignment,
        changes={
            "user": [str(assignment.user_id), None],
            "role": [assignment.role, None],
            "permissions": [assignment.permissions, None],
        },
    )
    assignment.delete()


@transaction.atomic
def user_set_manager(*, user: User, manager_id, updated_by: User) -> User:
    """Give ``user`` a manager (or none): an active member of the same tenant, no cycle.

    The tenant row is locked first, so two changes that would together close a cycle (A's
    manager B, B's manager A) are serialized and the second sees the first.
    """
    lock_tenant(user.tenant)
    user.refresh_from_db(fields=["manager"])
    if manager_id is not None:
        manager = User.objects.filter(tenant_id=user.tenant_id, pk=manager_id).first()
        if manager is None or not manager.is_active:
            raise ValidationError({"manager": ["Unknown or inactive user."]})
        if manager.pk == user.pk:
            raise ValidationError({"manager": ["A user cannot be their own manager."]})
        if manager_chain_has(user_id=user.pk, candidate_id=manager.pk):
            raise ValidationError(
                {"manager": [f"{manager.email} reports to {user.email}: that would be a cycle."]}
            )
    previous = user.manager_id
    if previous == manager_id:
        return user
    user.manager_id = manager_id
    user.save(update_fields=["manager"])
    audit_record(
        action="user_updated",
        tenant=user.tenant_id,
        actor=updated_by,
        resource=user,
        changes={
            "manager": [
                str(previous) if previous else None,
                str(manager_id) if manager_id else None,
            ]
        },
    )
    return user


@transaction.atomic
def user_tokens_revoke(*, user: User) -> None:
    """End every session of the user: access tokens stop working at once, refresh tokens too.

    Bumps ``User.auth_epoch`` (the check of ``tenancy.tokens``) and blacklists every outstanding
    refresh token of the user in one statement. Not audited here: callers audit their action.
    """
    User.objects.filter(pk=user.pk).update(auth_epoch=F("auth_epoch") + 1)
    user.refresh_from_db(fields=["auth_epoch"])
    outstanding = OutstandingToken.objects.filter(
        user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    ).values_list("pk", flat=True)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token_id=pk) for pk in outstanding], ignore_conflicts=True
    )


@transaction.atomic
def password_change(*, user: User, old_password: str, new_password: str) -> None:
    """The user's own password change; every session of the user ends (the caller's too)."""
    if not user.check_password(old_password):
        raise ValidationError({"old_password": ["The current password is not correct."]})
    _validated_password(new_password, user, field="new_password")
    user.set_password(new_password)
    user.save(update_fields=["password"])
    user_tokens_revoke(user=user)
    audit_record(action="password_changed", tenant=user.tenant, actor=user, resource=user)


@transaction.atomic
def user_logout_all(*, user: User) -> None:
    """Log the user out everywhere, without a password change."""
    user_tokens_revoke(user=user)
    audit_record(action="logout_all", tenant=user.tenant, actor=user, resource=user)


@transaction.atomic
def user_password_reset(*, user: User, reset_by) -> None:
    """An administrator has set (or disabled) the user's password: every session of it ends."""
    user_tokens_revoke(user=user)
    audit_record(action="password_reset", tenant=user.tenant, actor=reset_by, resource=user)


def user_login(*, email: str, password: str, request: HttpRequest | None = None) -> User:
    """A tenant user's login (the API's): the account's back-off first, then the password.

    Every attempt is audited (``login``, ``login_failed``); failures back off per account
    (``tenancy.throttling.login_attempt``): 429 while it does, 401 for wrong credentials or a
    platform account. ``request`` goes to Django's authentication backends, whose success
    narrows its scope to the user's tenant (``TenantAccountBackend``). Not one transaction: a
    refused attempt's audit row stays.
    """
    email = email.lower()
    if wait := throttling.login_attempt(email):
        raise throttling.LoginBackedOff(wait)
    user = authenticate(request, email=email, password=password)
    if user is None or user.tenant_id is None:
        login_failure_record(email=email)
        raise AuthenticationFailed("No active account found with the given credentials.")
    throttling.login_backoff_reset(email)
    audit_record(action="login", tenant=user.tenant, actor=user, resource=user)
    return user


@transaction.atomic
def user_logout(*, user: User, refresh: str) -> None:
    """End one session of ``user``: blacklist its refresh token (400 if invalid or another's)."""
    try:
        token = RefreshToken(refresh)
    except TokenError as exc:
        raise ValidationError({"refresh": [str(exc)]}) from exc
    if str(token.get("user_id")) != str(user.pk):
        raise ValidationError({"refresh": ["This refresh token belongs to another user."]})
    token.blacklist()
    audit_record(action="logout", tenant=user.tenant, actor=user, resource=user)


@transaction.atomic
def login_failure_record(*, email: str, via: str | None = None) -> None:
    """Audit a refused login (``login_failed``), the API's and the Django admin's alike.

    ``via`` names a channel other than the API (``"admin"``). The row names the account when the
    address is known; the answer to the caller is the same either way.
    """
    email = normalized_email(email)
    known = account_by_email(email=email)
    tenant_id = known.tenant_id if known else None
    changes = {"email": [None, email]} | ({"via": [None, via]} if via else {})
    # Filed under the account's tenant, or (no such tenant) as a platform row.
    with rls.account_scope(tenant_id):
        audit_record(
            action="login_failed",
            tenant=Tenant.objects.get(pk=tenant_id) if tenant_id else None,
            resource_type="user",
            resource_id=str(known.id) if known else "",
            changes=changes,
        )


@transaction.atomic
def platform_admin_enter(*, admin: User, tenant: Tenant) -> None:
    """A platform superuser starts administering ``tenant`` in the Django admin (their session
    then works in its scope): the tenant's own audit log records who, and when."""
    if not admin.is_superuser or admin.tenant_id is not None:
        raise PermissionDenied("Only platform superusers administer a tenant of their choice.")
    with rls.tenant_scope(tenant):
        audit_record(action="platform_admin_entered", tenant=tenant, actor=admin, resource=tenant)
