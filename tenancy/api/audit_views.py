"""The audit trail's read API (``/api/audit-logs/``). Audit sits below tenancy (tenancy's services
write audit rows), so the tenant-scoped, capability-checked viewset over its rows lives here, the
lowest app that sees both."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets

from audit.api.pagination import KeysetCursorPagination
from audit.api.serializers import AuditLogSerializer
from audit.filtersets import AuditLogFilterSet
from audit.models import AuditLog
from audit.selectors import audit_log_list
from tenancy.capabilities import AUDIT_VIEW
from tenancy.permissions import capability_required
from tenancy.scoping import TenantScopedViewSetMixin


@extend_schema(tags=["audit"])
class AuditLogViewSet(TenantScopedViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The tenant's audit trail, newest first (`audit.view`, or a tenant admin). Read-only.

    Rows written together (one request's workflow transition) share `created_at` and are listed
    in reverse of the order they were written. `?contract=<id>` is one contract's trail: the rows
    about it, its workflow instances, stages and approvals.

    Paged by an opaque cursor: follow `next` (older rows) and `previous` (newer rows); filters
    stay in the links.
    """

    queryset = AuditLog.objects.all()
    selector = audit_log_list
    serializer_class = AuditLogSerializer
    filterset_class = AuditLogFilterSet
    pagination_class = KeysetCursorPagination
    permission_classes = [capability_required(AUDIT_VIEW)]
    http_method_names = ["get", "head", "options"]
