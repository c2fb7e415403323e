from django.contrib import admin

from contracts.models import Contract
from tenancy.admin_scoping import TenantScopedAdmin


@admin.register(Contract)
class ContractAdmin(TenantScopedAdmin):
    list_display = ["title", "contract_type", "value", "currency", "status", "created_at"]
    list_filter = ["status", "contract_type", "currency"]
    search_fields = ["title", "counterparty"]
    date_hierarchy = "created_at"
    list_select_related = ["created_by"]
    readonly_fields = ["status", "created_by", "created_at", "updated_at", "has_blocking_findings"]

    def has_add_permission(self, request):
        # Contracts start workflows; they are created through the API, which runs the match engine.
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Contracts carry audit history; the API offers no delete either.
        return False
