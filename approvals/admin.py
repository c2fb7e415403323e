"""Workflow instances and approvals in the admin: visible to the tenant's staff, never edited.

SLA rules, holidays and the tenant calendar are edited here through ``approvals.services``, with
the API's validation and audit; breaches are read-only.
"""

from django import forms
from django.contrib import admin
from django.db.models import prefetch_related_objects
from django.template.loader import render_to_string
from rest_framework.exceptions import ValidationError as ApiValidationError

from approvals import services
from approvals.models import (
    Holiday,
    SLABreach,
    SLARule,
    SLASettings,
    WorkflowInstance,
    WorkflowStage,
    WorkflowStageApproval,
)
from approvals.selectors import workflow_instance_latest
from contracts.admin import ContractAdmin as ContractRecordAdmin
from contracts.models import Contract
from tenancy.admin_scoping import ReadOnlyAdminMixin, ReadOnlyInline, TenantScopedAdmin


class StageInline(ReadOnlyInline):
    model = WorkflowStage
    fields = ["sequence", "stage_name", "approval_type", "status", "due_at", "completed_at"]
    readonly_fields = fields

    class Media:
        css = {"all": ["approvals/admin.css"]}


class ApprovalInline(ReadOnlyInline):
    model = WorkflowStageApproval
    fk_name = "instance"
    fields = [
        "stage_label",
        "approver_label",
        "status",
        "revision",
        "decided_by",
        "decided_at",
        "due_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("stage", "assigned_to", "decided_by")

    @admin.display(description="Stage")
    def stage_label(self, obj):
        return f"{obj.stage.sequence}. {obj.stage.stage_name}"

    @admin.display(description="Approver")
    def approver_label(self, obj):
        return obj.approver_label


@admin.register(WorkflowInstance)
class WorkflowInstanceAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["__str__", "status", "current_sequence", "started_at", "completed_at"]
    list_filter = ["status"]
    list_select_related = ["contract", "definition"]
    search_fields = ["contract__title", "definition__name"]
    inlines = [StageInline, ApprovalInline]
    fields = [
        "contract",
        "definition_version",
        "status",
        "current_sequence",
        "started_by",
        "started_at",
        "completed_at",
        "changes_requested_by",
        "changes_requested_at",
        "changes_requested_comments",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("contract", "definition")


@admin.register(WorkflowStageApproval)
class WorkflowStageApprovalAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    # Status and revision right after the stage: with the filter sidebar open, the columns to
    # the right of about 630 pixels are behind a sideways scroll on a 1280 pixel screen.
    list_display = [
        "contract",
        "stage_label",
        "status",
        "revision",
        "approver",
        "assigned_to",
        "due_at",
    ]
    list_filter = ["status"]
    list_select_related = ["contract", "stage", "assigned_to"]
    search_fields = ["contract__title", "approver"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("contract", "stage", "assigned_to")

    @admin.display(description="Stage", ordering="stage__sequence")
    def stage_label(self, obj):
        # Not the stage's own status, which a row's status column would seem to contradict.
        return f"{obj.stage.sequence}. {obj.stage.stage_name}"


# --- SLA configuration: edited through approvals.services (validated and audited) --------------


def _adopt(obj, saved) -> None:
    """Make the admin's object the row the service saved (the admin logs and redirects with it)."""
    for model_field in saved._meta.concrete_fields:
        setattr(obj, model_field.attname, getattr(saved, model_field.attname))
    obj._state = saved._state


def _form_errors(form, error: ApiValidationError) -> None:
    """Show a service's 400 on the admin form, per field where the form has it."""
    detail = error.detail if isinstance(error.detail, dict) else {"__all__": error.detail}
    for key, messages in detail.items():
        field = key if key in form.fields else None
        for message in messages if isinstance(messages, list) else [messages]:
            form.add_error(field, str(message))


class SLARuleForm(forms.ModelForm):
    name = forms.CharField(
        max_length=200,
        required=False,
        help_text='Leave empty for a generated name, e.g. "MSA · Legal Review · 48h".',
    )

    class Meta:
        model = SLARule
        fields = [
            "name",
            "contract_type",
            "stage_name",
            "sla_hours",
            "business_hours_only",
            "escalation_enabled",
            "escalate_to_role",
            "is_active",
        ]
        help_texts = {
            "contract_type": "Empty: any contract type.",
            "stage_name": "Empty: any stage.",
            "escalate_to_role": "Role slug whose holders are notified when an approval breaches.",
        }

    tenant_id = None

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        fields = {field: cleaned.get(field) for field in self.Meta.fields}
        if self.instance.pk and self.instance.auto_named and fields["name"] == self.instance.name:
            fields["name"] = None  # unchanged generated name: keep generating
        try:
            self.validated = services.sla_rule_validate(
                tenant_id=self.tenant_id,
                rule_id=self.instance.pk if self.instance._state.adding is False else None,
                **fields,
            )
        except ApiValidationError as exc:
            _form_errors(self, exc)
        return cleaned


@admin.register(SLARule)
class SLARuleAdmin(TenantScopedAdmin):
    form = SLARuleForm
    list_display = [
        "name",
        "contract_type",
        "stage_name",
        "sla_hours",
        "business_hours_only",
        "escalate_to_role",
        "is_active",
    ]
    list_filter = ["is_active", "business_hours_only", "escalation_enabled"]
    search_fields = ["name", "contract_type", "stage_name"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        tenant_id = obj.tenant_id if obj is not None else request.user.tenant_id
        return type("TenantSLARuleForm", (form,), {"tenant_id": tenant_id})

    def save_model(self, request, obj, form, change):
        fields = {field: form.cleaned_data.get(field) for field in SLARuleForm.Meta.fields}
        if change and obj.auto_named and fields["name"] == form.initial.get("name"):
            fields["name"] = None
        if change:
            saved = services.sla_rule_update(
                rule_id=obj.pk, tenant=obj.tenant, updated_by=request.user, **fields
            )
        else:
            saved = services.sla_rule_create(
                tenant=request.user.tenant, created_by=request.user, **fields
            )
        _adopt(obj, saved)

    def delete_model(self, request, obj):
        services.sla_rule_delete(rule=obj, deleted_by=request.user)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # bulk delete would skip the audit
        return actions


class HolidayForm(forms.ModelForm):
    class Meta:
        model = Holiday
        fields = ["date", "name"]

    tenant_id = None

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("date") is not None:
            try:
                services.holiday_validate(
                    tenant_id=self.tenant_id,
                    date=cleaned["date"],
                    holiday_id=None if self.instance._state.adding else self.instance.pk,
                )
            except ApiValidationError as exc:
                _form_errors(self, exc)
        return cleaned


@admin.register(Holiday)
class HolidayAdmin(TenantScopedAdmin):
    form = HolidayForm
    list_display = ["date", "name"]
    date_hierarchy = "date"
    search_fields = ["name"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        tenant_id = obj.tenant_id if obj is not None else request.user.tenant_id
        return type("TenantHolidayForm", (form,), {"tenant_id": tenant_id})

    def save_model(self, request, obj, form, change):
        data = {"date": form.cleaned_data["date"], "name": form.cleaned_data["name"]}
        if change:
            saved = services.holiday_update(
                holiday_id=obj.pk, tenant=obj.tenant, updated_by=request.user, **data
            )
        else:
            saved = services.holiday_create(
                tenant=request.user.tenant, created_by=request.user, **data
            )
        _adopt(obj, saved)

    def delete_model(self, request, obj):
        services.holiday_delete(holiday=obj, deleted_by=request.user)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class SLASettingsForm(forms.ModelForm):
    timezone = forms.CharField(max_length=64, help_text="The tenant's IANA time zone.")
    working_days = forms.TypedMultipleChoiceField(
        choices=[
            (0, "Mon"),
            (1, "Tue"),
            (2, "Wed"),
            (3, "Thu"),
            (4, "Fri"),
            (5, "Sat"),
            (6, "Sun"),
        ],
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = SLASettings
        fields = ["working_days", "day_start", "day_end", "default_sla_hours", "reminder_percent"]

    tenant = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.tenant is not None:
            self.fields["timezone"].initial = self.tenant.timezone

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            services.validated_calendar(
                timezone_name=cleaned["timezone"],
                working_days=cleaned["working_days"],
                day_start=cleaned["day_start"],
                day_end=cleaned["day_end"],
            )
        except ApiValidationError as exc:
            _form_errors(self, exc)
        return cleaned


@admin.register(SLASettings)
class SLASettingsAdmin(TenantScopedAdmin):
    """The tenant's working calendar and SLA defaults (one row; defaults until saved)."""

    form = SLASettingsForm
    list_display = ["tenant", "working_days", "day_start", "day_end", "default_sla_hours"]
    fields = list(services.SETTINGS_FIELDS)

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["fields"] = SLASettingsForm.Meta.fields
        form = super().get_form(request, obj, change=change, **kwargs)
        tenant = obj.tenant if obj is not None else request.user.tenant
        return type("TenantSLASettingsForm", (form,), {"tenant": tenant})

    def has_add_permission(self, request):
        if not super().has_add_permission(request):
            return False
        return not SLASettings.objects.filter(tenant_id=request.user.tenant_id).exists()

    def save_model(self, request, obj, form, change):
        fields = {field: form.cleaned_data[field] for field in self.fields}
        saved = services.sla_settings_update(
            tenant=obj.tenant if change else request.user.tenant,
            updated_by=request.user,
            **fields,
        )
        _adopt(obj, saved)


@admin.register(SLABreach)
class SLABreachAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["breached_at", "contract", "stage_name", "due_at", "escalated_to"]
    list_filter = ["escalated_to"]
    list_select_related = ["contract"]
    search_fields = ["contract__title", "stage_name"]
    date_hierarchy = "breached_at"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("contract")


class WorkflowInline(ReadOnlyInline):
    """Every workflow the contract ran, newest first, each linking to its stages and approvals."""

    model = WorkflowInstance
    verbose_name_plural = "Workflows (newest first)"
    fields = ["definition_version", "status", "started_at", "completed_at"]
    readonly_fields = fields
    ordering = ["-started_at"]
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("definition_version")


class ContractAdmin(ContractRecordAdmin):
    """The contract's page with its workflows: every one it ran, and the current one's panel
    (after the clause review), registered in place of contracts' own."""

    inlines = [WorkflowInline, *ContractRecordAdmin.inlines]
    readonly_fields = [*ContractRecordAdmin.readonly_fields, "workflow_panel"]
    fieldsets = [
        *ContractRecordAdmin.fieldsets[:2],
        ("Current workflow", {"fields": ["workflow_panel"]}),
        *ContractRecordAdmin.fieldsets[2:],
    ]

    @admin.display(description="Workflow")
    def workflow_panel(self, obj):
        instance = workflow_instance_latest(tenant=obj.tenant_id, contract_id=obj.pk)
        if instance is None:
            return "No workflow: no active definition matched this contract."
        approvals = [row for stage in instance.stages.all() for row in stage.approvals.all()]
        prefetch_related_objects(approvals, "decided_by")  # the panel shows who decided
        return render_to_string("admin/contracts/contract/workflow.html", {"instance": instance})


admin.site.unregister(Contract)
admin.site.register(Contract, ContractAdmin)
