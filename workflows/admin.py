"""Workflow configuration in the Django admin: the same validation and versioning as the API."""

import re

from django import forms
from django.contrib import admin
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html, format_html_join
from rest_framework.exceptions import ValidationError as ApiValidationError

from contracts.models import BUSINESS_FIELDS, Contract
from tenancy.admin_scoping import TenantAdminInlineMixin, TenantScopedAdmin, admin_tenant_id
from workflows import services
from workflows.models import (
    RESET_ANY,
    RESET_NEVER,
    WorkflowDefinition,
    WorkflowStageDefinition,
)
from workflows.rules import (
    ALLOWED_FIELDS,
    ALLOWED_LOOKUPS,
    RuleValidationError,
    compile_q,
    parse_rules,
)
from workflows.stages import validate_stages

DRY_RUN_SAMPLE = 200
DRY_RUN_BUTTON = "_dry_run"
RULES_HELP = format_html(
    "A JSON object of <code>field__lookup: value</code> pairs that must all hold; "
    "<code>{{}}</code> matches every contract. Nest with <code>any</code>, <code>all</code>, "
    "<code>not</code>. Example: <code>{}</code><br>Fields: {}, <code>metadata__&lt;key&gt;</code>."
    "<br>Lookups: {}.",
    '{"value__gte": 500000, "contract_type__in": ["MSA", "SOW"]}',
    ", ".join(sorted(ALLOWED_FIELDS)),
    ", ".join(sorted(ALLOWED_LOOKUPS)),
)
RESET_HELP = format_html(
    "Which edits of a contract under review re-open this stage's decisions: <code>{}</code> "
    "(default), <code>{}</code>, or comma-separated business fields, e.g. "
    "<code>value, text</code>. Fields: {}.",
    RESET_ANY,
    RESET_NEVER,
    ", ".join(BUSINESS_FIELDS),
)
# validate_stages keys its errors "stages[<index>].<field>" (or "stages" for the whole list).
STAGE_ERROR_KEY = re.compile(r"^stages\[(\d+)\]\.(\w+)$")


def _messages(error: ApiValidationError) -> list[str]:
    detail = error.detail
    if isinstance(detail, dict):
        return [f"{key}: {message}" for key, messages in detail.items() for message in messages]
    return [str(message) for message in detail]


class WorkflowDefinitionForm(forms.ModelForm):
    """``dry_run_requested`` (the form's "Dry run" button): validate and show, never save."""

    dry_run_requested = False
    tenant_id = None  # set by WorkflowDefinitionAdmin.get_form: the tenant a dry run looks in

    trigger_conditions = forms.JSONField(
        initial=dict,
        required=False,
        help_text=RULES_HELP,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80, "style": "font-family: monospace"}),
    )

    class Meta:
        model = WorkflowDefinition
        fields = [
            "name",
            "description",
            "trigger_conditions",
            "priority",
            "is_active",
            "distinct_approvers",
        ]

    def clean_trigger_conditions(self):
        conditions = self.cleaned_data.get("trigger_conditions")
        conditions = {} if conditions in (None, "") else conditions
        try:
            return services.validated_trigger_conditions(conditions)
        except ApiValidationError as exc:
            raise forms.ValidationError(_messages(exc)) from exc

    def _post_clean(self):
        super()._post_clean()
        if self.dry_run_requested:
            # The readonly dry_run field reads the instance: the posted rule, or why there is none.
            self.instance.dry_run_rule = (
                None if "trigger_conditions" in self.errors else self.instance.trigger_conditions
            )
            self.instance.tenant_id = self.instance.tenant_id or self.tenant_id

    def is_valid(self):
        """A dry run re-renders the form as posted, with its result, and saves nothing."""
        return super().is_valid() and not self.dry_run_requested


def _dry_run_matches(tenant_id, rule: dict):
    """The latest of the tenant's recent contracts ``rule`` matches, as an HTML list."""
    try:
        condition = compile_q(parse_rules(rule))
    except RuleValidationError as exc:
        return format_html("<p>Invalid rule: {}</p>", exc)
    recent = Contract.objects.filter(tenant_id=tenant_id).order_by("-created_at")
    sample_ids = list(recent.values_list("pk", flat=True)[:DRY_RUN_SAMPLE])
    matches = list(
        Contract.objects.filter(pk__in=sample_ids)
        .filter(condition)
        .order_by("-created_at")
        .values_list("title", "contract_type", "value", "currency")[:20]
    )
    if not matches:
        return format_html("<p>None of the {} latest contracts match.</p>", len(sample_ids))
    rows = format_html_join(
        "",
        "<li>{} ({}, {} {})</li>",
        ((t, k, v if v is not None else "-", c) for t, k, v, c in matches),
    )
    return format_html("<ul>{}</ul>", rows)


class ResetPolicyField(forms.CharField):
    """A stage's ``reset_on_change`` as text: ``any``, ``never`` or ``value, text``.

    Only parsed here (the keywords as they are, anything else split on commas); ``validate_stages``
    then judges it exactly as it judges the API's JSON, with the same messages.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)  # empty is validate_stages' error, with its message
        kwargs.setdefault("initial", RESET_ANY)
        kwargs.setdefault("help_text", RESET_HELP)
        kwargs.setdefault("widget", forms.TextInput(attrs={"size": 14, "placeholder": RESET_ANY}))
        super().__init__(**kwargs)

    def to_python(self, value):
        text = super().to_python(value)
        if text in (RESET_ANY, RESET_NEVER):
            return text
        return [item.strip() for item in text.split(",") if item.strip()]

    def prepare_value(self, value):
        """A stored list is shown as it is typed: ``value, text``."""
        if isinstance(value, list | tuple):
            return ", ".join(str(item) for item in value)
        return value


STAGE_FIELDS = (
    "sequence",
    "stage_name",
    "approvers",
    "approval_type",
    "min_approvals",
    "sla_hours",
    "is_required",
    "reset_on_change",
)


class StageForm(forms.ModelForm):
    reset_on_change = ResetPolicyField(label="Reset on change")

    class Meta:
        model = WorkflowStageDefinition
        fields = STAGE_FIELDS


class StageFormSet(BaseInlineFormSet):
    """Checks the stages together (names, quorum sizes, named users) like the API does.

    ``validate_stages`` names the stage of each error by its index in the list it was given:
    the message goes onto that row's field, as the API's ``stages[i].<field>`` key points.
    """

    tenant = None

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        stage_forms = [
            form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        try:
            self.validated_stages = validate_stages(
                [_stage_fields(form.cleaned_data) for form in stage_forms], tenant=self.tenant
            )
        except ApiValidationError as exc:
            others = _attach_stage_errors(exc, stage_forms)
            if others:
                raise forms.ValidationError(others) from exc


def _stage_fields(cleaned: dict) -> dict:
    return {field: cleaned.get(field) for field in STAGE_FIELDS}


def _attach_stage_errors(error: ApiValidationError, stage_forms: list) -> list[str]:
    """Add ``stages[i].<field>`` messages to that row's field; return the rest (whole list)."""
    detail = error.detail if isinstance(error.detail, dict) else {"stages": error.detail}
    others = []
    for key, messages in detail.items():
        match = STAGE_ERROR_KEY.match(key)
        form = field = None
        if match and int(match[1]) < len(stage_forms):
            form, field = stage_forms[int(match[1])], match[2]
        for message in messages:
            if form is not None and field in form.fields:
                form.add_error(field, str(message))
            else:
                others.append(str(message) if key == "stages" else f"{key}: {message}")
    return others


class StageInline(TenantAdminInlineMixin, admin.TabularInline):
    model = WorkflowStageDefinition
    form = StageForm
    formset = StageFormSet
    template = "admin/workflows/stage_inline_tabular.html"  # Django's, and the policy's help
    extra = 1
    min_num = 1
    fields = list(STAGE_FIELDS)

    class Media:
        css = {"all": ["workflows/admin.css"]}

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        tenant = obj.tenant if obj is not None and obj.tenant_id else request.user.tenant
        return type("TenantStageFormSet", (formset,), {"tenant": tenant})


@admin.register(WorkflowDefinition)
class WorkflowDefinitionAdmin(TenantScopedAdmin):
    """Edits go through ``workflows.services``: validated, versioned and audited as in the API."""

    form = WorkflowDefinitionForm
    inlines = [StageInline]
    list_display = ["name", "priority", "is_active", "version", "updated_at"]
    list_filter = ["is_active", "distinct_approvers"]
    search_fields = ["name"]
    readonly_fields = ["version", "created_by", "created_at", "updated_at", "dry_run"]
    fieldsets = [
        (None, {"fields": ["name", "description", "priority", "is_active"]}),
        ("Who decides", {"fields": ["distinct_approvers"]}),
        ("When it applies", {"fields": ["trigger_conditions", "dry_run"]}),
        ("History", {"fields": ["version", "created_by", "created_at", "updated_at"]}),
    ]

    @admin.display(description=f"Dry run: matches among the {DRY_RUN_SAMPLE} latest contracts")
    def dry_run(self, obj):
        button = format_html(
            '<p><button type="submit" name="{}" value="1" class="button">'
            "Dry run the rule as typed</button> (nothing is saved)</p>",
            DRY_RUN_BUTTON,
        )
        if obj is None or obj.tenant_id is None:
            return button
        if not hasattr(obj, "dry_run_rule"):  # the page as loaded: the saved rule
            if obj.pk is None:
                return button
            return format_html(
                "{}{}", _dry_run_matches(obj.tenant_id, obj.trigger_conditions), button
            )
        if obj.dry_run_rule is None:
            return format_html("<p>Correct the rule above to run it.</p>{}", button)
        return format_html(
            "<p><strong>The rule as typed, not saved:</strong></p>{}{}",
            _dry_run_matches(obj.tenant_id, obj.dry_run_rule),
            button,
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        tenant_id = obj.tenant_id if obj is not None else admin_tenant_id(request)
        return type(
            "TenantWorkflowDefinitionForm",
            (form,),
            {"tenant_id": tenant_id, "dry_run_requested": DRY_RUN_BUTTON in request.POST},
        )

    def construct_change_message(self, request, form, formsets, add=False):
        """History names the stages added, changed (with their fields) and removed.

        The service saved them (``save_related``), so the formsets' own bookkeeping is empty.
        """
        for formset in formsets:
            kept = [f for f in formset.forms if f.has_changed() and f not in formset.deleted_forms]
            formset.new_objects = [f.instance for f in kept if f.instance.pk is None]
            formset.changed_objects = [
                (f.instance, f.changed_data) for f in kept if f.instance.pk is not None
            ]
            formset.deleted_objects = [f.instance for f in formset.deleted_forms if f.instance.pk]
        return super().construct_change_message(request, form, formsets, add)

    def save_model(self, request, obj, form, change):
        """Saved with its stages in ``save_related``, through the service."""

    def save_related(self, request, form, formsets, change):
        """Definition and stages in one service call: validated, versioned, audited."""
        stages = next(
            formset.validated_stages for formset in formsets if isinstance(formset, StageFormSet)
        )
        fields = {field: form.cleaned_data[field] for field in WorkflowDefinitionForm.Meta.fields}
        if change:
            saved = services.definition_update(
                definition_id=form.instance.pk,
                tenant=form.instance.tenant,
                updated_by=request.user,
                stages=stages,
                **fields,
            )
        else:
            saved = services.definition_create(
                tenant=request.user.tenant, created_by=request.user, stages=stages, **fields
            )
        form.instance.pk = saved.pk
        form.instance.version = saved.version

    def delete_model(self, request, obj):
        services.definition_delete(definition_id=obj.pk, tenant=obj.tenant, deleted_by=request.user)

    def get_actions(self, request):
        # Bulk delete would bypass the service (deactivation of used definitions, audit).
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
