"""Writes for tenants, users and roles. Each is one transaction that writes its audit row."""

from datetime import datetime

from django.contrib.auth.password_validation import validate_password
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from rest_framework.exceptions import PermissionDenied, ValidationError

from audit.services import audit_record
from tenancy import rls
from tenancy.models import Tenant, User, UserRole
from tenancy.quotas import lock_tenant, quota_check
from tenancy.selectors import user_capabilities


def _unique_tenant_slug(name: str) -> str:
    base = slugify(name)[:50] or "tenant"
    taken = set(Tenant.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    if base not in taken:
        return base
    suffix = 2
    while f"{base}-{suffix}" in taken:
        suffix += 1
    return f"{base}-{suffix}"


def _ensure_email_free(email: str) -> str:
    normalized = User.objects.normalize_email(email).lower()
    if User.objects.filter(email__iexact=normalized).exists():
        raise ValidationError({"email": ["A user with this email already exists."]})
    return normalized


def _validated_password(password: str, user: User) -> None:
    from django.core.exceptions import ValidationError as DjangoValidationError

    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationError({"password": list(exc.messages)}) from exc


@transaction.atomic
def tenant_register(*, email: str, password: str, full_name: str, tenant_name: str) -> User:
    """Create a tenant and its first user, who is the tenant's admin."""
    normalized = _ensure_email_free(email)
    user = User(email=normalized, full_name=full_name, is_tenant_admin=True)
    _validated_password(password, user)
    tenant = Tenant.objects.create(name=tenant_name, slug=_unique_tenant_slug(tenant_name))
    user.tenant = tenant
    user.set_password(password)
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
    normalized = _ensure_email_free(email)
    user = User(tenant=tenant, email=normalized, full_name=full_name)
    _validated_password(password, user)
    check_user_quota(tenant)
    user.set_password(password)
    _save_new_user(user)
    audit_record(
        action="user_created",
        tenant=tenant,
        actor=created_by,
        resource=user,
        changes={"email": [None, user.email], "full_name": [None, user.full_name]},
    )
    return user


def check_user_quota(tenant) -> None:
    """One more user for ``tenant``: within the quota? (Locks the tenant until commit.)"""
    lock_tenant(tenant)
    count = User.objects.filter(tenant_id=getattr(tenant, "pk", tenant)).count()
    quota_check("users", after=count + 1, before=count)


def _save_new_user(user: User) -> None:
    """Two registrations racing for one email: the unique index decides, the loser gets a 400."""
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        raise ValidationError({"email": ["A user with this email already exists."]}) from exc


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
    assignment = UserRole(
        tenant=tenant,
        user=user,
        role=role,
        permissions=sorted(set(permissions)),
        expires_at=expires_at,
        assigned_by=assigned_by,
    )
    try:
        with transaction.atomic():
            assignment.save()
    except IntegrityError as exc:
        raise ValidationError({"role": [f"The user already holds the role '{role}'."]}) from exc
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
        tenant=assignment.tenant_id,
        actor=revoked_by,
        resource=assignment,
        changes={
            "user": [str(assignment.user_id), None],
            "role": [assignment.role, None],
            "permissions": [assignment.permissions, None],
        },
    )
    assignment.delete()
