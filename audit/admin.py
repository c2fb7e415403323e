from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils.html import format_html

from audit.models import AuditLog
from contracts.models import Contract
from tenancy.admin_scoping import ReadOnlyAdminMixin, TenantScopedAdmin

SHORT_ID = 8  # characters of a UUID shown in a column; the whole one is its tooltip


def _short(value: str) -> str:
    return format_html('<span title="{}">{}…</span>', value, value[:SHORT_ID])


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    """Append-only: the database refuses changes; the admin offers none."""

    list_display = ["created_at", "action", "actor", "resource", "contract_link", "ip_address"]
    list_filter = ["action", "resource_type"]
    list_select_related = ["actor"]
    # A contract's id finds its whole trail (`?contract=<id>` in the URL filters by it exactly).
    search_fields = ["resource_id", "request_id", "contract"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        # The contract's title in the same query as the page of rows (the column is no FK).
        title = Contract.objects.filter(pk=OuterRef("contract")).values("title")[:1]
        return super().get_queryset(request).annotate(contract_title=Subquery(title))

    @admin.display(description="Resource", ordering="resource_type")
    def resource(self, obj):
        if not obj.resource_id:
            return obj.resource_type or "-"
        return format_html("{} {}", obj.resource_type, _short(obj.resource_id))

    @admin.display(description="Contract", ordering="contract_title")
    def contract_link(self, obj):
        if obj.contract is None:
            return "-"
        trail = f"{reverse('admin:audit_auditlog_changelist')}?contract={obj.contract}"
        return format_html(
            '<a href="{}" title="Its whole trail (contract {})">{}</a>',
            trail,
            obj.contract,
            obj.contract_title or _short(str(obj.contract)),
        )
