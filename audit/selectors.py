"""Reads of the audit log. Tenant-scoped; the listing's order is the models' unique ordering."""

from typing import TYPE_CHECKING

from django.db.models import F, QuerySet

from audit.models import AuditLog

if TYPE_CHECKING:  # for the annotation only: tenancy sits above audit (docs/architecture.md)
    from tenancy.models import Tenant


def audit_log_list(*, tenant: "Tenant") -> QuerySet[AuditLog]:
    """The tenant's audit rows, newest first, each with its actor's email (one join, no N+1).

    Filters and the keyset cursor are applied on top; every combination is served by one of the
    ``(tenant, <filter>, created_at, seq)`` indexes of ``AuditLog.Meta``.
    """
    return (
        AuditLog.objects.filter(tenant_id=tenant.pk)
        .annotate(actor_email=F("actor__email"))
        .order_by("-created_at", "-seq")
    )
