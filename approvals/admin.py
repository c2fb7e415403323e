"""Workflow instances and approvals in the admin: visible to the tenant's staff, never edited."""

from django.contrib import admin

from approvals.models import WorkflowInstance, WorkflowStage, WorkflowStageApproval
from tenancy.admin_scoping import ReadOnlyAdminMixin, TenantScopedAdmin, is_staff_tenant_admin


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return is_staff_tenant_admin(request) or super().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class StageInline(ReadOnlyInline):
    model = WorkflowStage
    fields = ["sequence", "stage_name", "approval_type", "status", "due_at", "completed_at"]
    readonly_fields = fields


class ApprovalInline(ReadOnlyInline):
    model = WorkflowStageApproval
    fk_name = "instance"
    fields = ["stage", "approver", "assigned_to", "status", "decided_by", "decided_at", "due_at"]
    readonly_fields = fields


@admin.register(WorkflowInstance)
class WorkflowInstanceAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["contract", "definition", "status", "current_sequence", "started_at"]
    list_filter = ["status"]
    list_select_related = ["contract", "definition"]
    search_fields = ["contract__title"]
    inlines = [StageInline, ApprovalInline]


@admin.register(WorkflowStageApproval)
class WorkflowStageApprovalAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["contract", "stage", "approver", "assigned_to", "status", "due_at"]
    list_filter = ["status"]
    list_select_related = ["contract", "stage", "assigned_to"]
    search_fields = ["contract__title", "approver"]
