from django.contrib import admin

from audit.models import AuditLog
from tenancy.admin_scoping import ReadOnlyAdminMixin, TenantScopedAdmin


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    """Append-only: the database refuses changes; the admin offers none."""

    list_display = [
        "created_at",
        "action",
        "actor",
        "resource_type",
        "resource_id",
        "contract",
        "ip_address",
    ]
    list_filter = ["action", "resource_type"]
    list_select_related = ["actor"]
    # A contract's id finds its whole trail (`?contract=<id>` in the URL filters by it exactly).
    search_fields = ["resource_id", "request_id", "contract"]
    date_hierarchy = "created_at"
