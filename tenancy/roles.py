"""The tenant's role catalog: the roles stage approvers and role assignments may name.

A slug in use (assigned to someone, or named by a stage of a definition) cannot be deleted;
assigning a slug the catalog lacks adds it (name = slug), so clients that assign first keep
working. ``manager`` is no role: as a stage approver it means the contract creator's manager.

Stages belong to workflows, a layer above: workflows registers its use of slugs here
(``role_use_register``, in its ``AppConfig.ready``) and ``role_delete`` asks every registered use.
"""

from collections.abc import Callable

from django.db import transaction
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from rest_framework.exceptions import ValidationError

from audit.services import audit_record
from config.exceptions import Conflict, clash_is_invalid
from tenancy.approvers import MANAGER
from tenancy.models import Role, Tenant, UserRole
from tenancy.quotas import lock_tenant, quota_guard
from tenancy.selectors import active_roles_q

# ``(tenant_id=..., slug=...)``: why the slug may not be deleted (it is in use), or None.
RoleUse = Callable[..., str | None]
_role_uses: dict[str, RoleUse] = {}


def role_use_register(use: RoleUse) -> None:
    """Make ``role_delete`` refuse a slug while ``use`` says it is in use. Idempotent."""
    _role_uses[f"{use.__module__}.{use.__qualname__}"] = use


def catalog_slugs(*, tenant) -> set[str]:
    """Every slug of the catalog, and any assigned one (the catalog includes those). One query."""
    tenant_id = getattr(tenant, "pk", tenant)
    catalog = Role.objects.filter(tenant_id=tenant_id).values_list("slug", flat=True)
    assigned = UserRole.objects.filter(tenant_id=tenant_id).values_list("role", flat=True)
    return set(catalog.union(assigned))


def role_list(*, tenant) -> QuerySet[Role]:
    """The catalog with each role's number of current (unexpired) holders."""
    holders = (
        UserRole.objects.filter(
            active_roles_q(), tenant_id=OuterRef("tenant_id"), role=OuterRef("slug")
        )
        .order_by()
        .values("role")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return (
        Role.objects.for_tenant(tenant)
        .annotate(holders=Coalesce(Subquery(holders), 0))
        .order_by("slug")
    )


def _validated_slug(slug: str) -> str:
    if slug == MANAGER:
        raise ValidationError(
            {"slug": ["'manager' is reserved: as an approver it names the creator's manager."]}
        )
    return slug


@transaction.atomic
def role_create(*, tenant: Tenant, slug: str, name: str, description: str, created_by) -> Role:
    slug = _validated_slug(slug)
    quota_guard("roles", tenant=tenant, rows=Role.objects.filter(tenant=tenant))
    role = Role(tenant=tenant, slug=slug, name=name or slug, description=description)
    with clash_is_invalid({"slug": [f"The catalog already has the role '{slug}'."]}):
        role.save()
    audit_record(
        action="role_created",
        tenant=tenant,
        actor=created_by,
        resource=role,
        changes={"slug": [None, slug], "name": [None, role.name]},
    )
    return role


@transaction.atomic
def role_update(*, role: Role, updated_by, **fields) -> Role:
    """Name and description only: the slug is what stages and assignments refer to."""
    changes = {}
    for name in ("name", "description"):
        if name in fields and fields[name] != getattr(role, name):
            changes[name] = [getattr(role, name), fields[name]]
            setattr(role, name, fields[name])
    if changes:
        role.save(update_fields=list(changes))
        audit_record(
            action="role_updated",
            tenant=role.tenant_id,
            actor=updated_by,
            resource=role,
            changes=changes,
        )
    return role


@transaction.atomic
def role_delete(*, role: Role, deleted_by) -> None:
    """409 while the slug is assigned or in a registered use (a stage of a definition names it)."""
    lock_tenant(role.tenant)
    if UserRole.objects.filter(tenant_id=role.tenant_id, role=role.slug).exists():
        raise Conflict(
            f"The role '{role.slug}' is assigned to users; revoke it first.", code="role_in_use"
        )
    for use in _role_uses.values():
        in_use = use(tenant_id=role.tenant_id, slug=role.slug)
        if in_use:
            raise Conflict(in_use, code="role_in_use")
    audit_record(
        action="role_deleted",
        tenant=role.tenant_id,
        actor=deleted_by,
        resource=role,
        changes={"slug": [role.slug, None], "name": [role.name, None]},
    )
    role.delete()


def catalog_add(*, tenant: Tenant, slug: str) -> None:
    """Add ``slug`` (name = slug) unless the catalog has it: assigning a new slug adds it."""
    if Role.objects.filter(tenant=tenant, slug=slug).exists():
        return
    _validated_slug(slug)
    quota_guard("roles", tenant=tenant, rows=Role.objects.filter(tenant=tenant))
    Role.objects.bulk_create([Role(tenant=tenant, slug=slug, name=slug)], ignore_conflicts=True)
