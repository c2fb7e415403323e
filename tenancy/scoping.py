"""Tenant isolation, built once: the model base, its queryset, and the viewset mixin.

Every tenant-owned model inherits ``TenantOwnedModel``; every API viewset over such a model
inherits ``TenantScopedViewSetMixin``, whose ``get_queryset`` always filters by the caller's
tenant. A system check (``tenancy.checks``) fails start-up if a viewset over a tenant-owned model
forgets the mixin, so a new endpoint cannot leak another tenant's rows by omission.
"""

import uuid

from django.db import models

# Path parameters that are not UUIDs never reach the database: they are simply no route (404).
UUID_PATH_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant) -> "TenantQuerySet":
        tenant_id = getattr(tenant, "pk", tenant)
        if tenant_id is None:
            return self.none()
        return self.filter(tenant_id=tenant_id)


def tenant_key(*, db_index: bool = True) -> models.ForeignKey:
    """A tenant-owned model's key to its tenant.

    A model whose composite index or unique constraint starts with ``tenant`` declares it again
    with ``db_index=False``: that index serves the key's lookups (a tenant's deletion), and a
    second one would only cost every write an entry (``tests/test_schema_indexes.py``).
    """
    return models.ForeignKey(
        "tenancy.Tenant", on_delete=models.CASCADE, editable=False, db_index=db_index
    )


class TenantOwnedModel(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = tenant_key()

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


def is_tenant_owned(model) -> bool:
    try:
        field = model._meta.get_field("tenant")
    except Exception:
        return False
    return field.is_relation and field.related_model._meta.label == "tenancy.Tenant"


class TenantScopedViewSetMixin:
    """Restricts every queryset of the viewset to the authenticated user's tenant.

    A viewset may name a ``selector`` (a function taking ``tenant=`` and returning the app's
    tenant-scoped read, with its joins); the tenant filter is applied again here regardless.
    """

    lookup_value_regex = UUID_PATH_PATTERN
    selector = None

    def scoped_queryset(self, tenant):
        """The read for this request; override to pick a selector by action or user."""
        if self.selector is not None:
            return type(self).selector(tenant=tenant)
        return super().get_queryset()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return super().get_queryset().none()
        tenant = self.request.user.tenant
        return self.scoped_queryset(tenant).filter(tenant_id=tenant.pk)
