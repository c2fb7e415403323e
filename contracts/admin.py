from django import forms
from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from rest_framework.exceptions import ValidationError as ApiValidationError

from audit.models import AuditLog
from contracts import clause_services
from contracts.models import RECORD_FIELDS, ClauseRule, Contract, ContractRevision
from tenancy.admin_scoping import ReadOnlyAdminMixin, ReadOnlyInline, TenantScopedAdmin


class RevisionInline(ReadOnlyInline):
    """The contract's immutable revisions, newest first (what each approval was decided on)."""

    model = ContractRevision
    verbose_name_plural = "Revisions (newest first)"
    fields = ["number", "content_hash", "changes", "created_by", "created_at"]
    readonly_fields = fields
    ordering = ["-number"]

    class Media:
        css = {"all": ["contracts/admin.css"]}

    def get_queryset(self, request):
        # Not the content: it holds the whole text, and the page shows only the hash of it.
        return super().get_queryset(request).select_related("created_by").defer("content")

    @admin.display(description="Changed fields")
    def changes(self, obj):
        return ", ".join(obj.changed_fields) or ("(created)" if obj.number == 1 else "-")


@admin.register(Contract)
class ContractAdmin(TenantScopedAdmin):
    """A contract as legal operations reads it: its terms, its review, its history.

    The apps above contracts attach their part of the page by registering a subclass in its place
    (Django's documented way of extending another app's ModelAdmin): ``approvals.admin`` adds
    the workflows and the current workflow's panel, ``documents.admin`` the documents and
    signature requests.
    """

    inlines = [RevisionInline]
    list_display = ["title", "contract_type", "value", "currency", "status", "created_at"]
    list_filter = ["status", "contract_type", "currency", "has_blocking_findings"]
    search_fields = ["title", "counterparty"]
    date_hierarchy = "created_at"
    list_select_related = ["created_by"]
    readonly_fields = [
        *RECORD_FIELDS,
        "blocking_findings",
        "findings_table",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "title",
                    "contract_type",
                    ("value", "currency"),
                    "counterparty",
                    ("department", "region"),
                    ("start_date", "end_date"),
                    "status",
                ]
            },
        ),
        ("Clause review", {"fields": ["blocking_findings", "findings_table"]}),
        ("Text", {"fields": ["text", "metadata"], "classes": ["collapse"]}),
        (
            "Record",
            {"fields": ["revision", "content_hash", "created_by", "created_at", "updated_at"]},
        ),
    ]

    @admin.display(description="Blocking findings")
    def blocking_findings(self, obj):
        # Words, not Django's red cross: having no blocking finding is the good case.
        return "Yes: routed as a deviation" if obj.has_blocking_findings else "None"

    @admin.display(description="Findings")
    def findings_table(self, obj):
        summary = obj.clause_findings
        if not summary:
            return "Not validated yet."
        return render_to_string(
            "admin/contracts/contract/findings.html",
            {"summary": summary, "checked_at": parse_datetime(summary.get("checked_at") or "")},
        )

    def has_add_permission(self, request):
        # Contracts start workflows; they are created through the API, which runs the match engine.
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Contracts carry audit history; the API offers no delete either.
        return False


def _messages(error: ApiValidationError, field: str) -> list[str]:
    """The service's messages for one field, per-phrase ones prefixed with the phrase number."""
    detail = error.detail
    if isinstance(detail, dict):
        detail = detail.get(field, detail)
    if isinstance(detail, dict):
        return [
            f"Phrase {index + 1}: {message}"
            for index, messages in detail.items()
            for message in messages
        ]
    return [str(message) for message in detail]


class ClauseRuleForm(forms.ModelForm):
    """Phrases one per line (they may contain commas); validated exactly like the API."""

    contract_types = forms.CharField(
        required=False,
        help_text="Comma-separated contract types, e.g. <code>MSA, SOW</code>; empty: every type.",
    )
    patterns = forms.CharField(
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text=(
            "One phrase per line: plain text, matched case-insensitively on word boundaries "
            "(no regular expressions)."
        ),
    )
    tenant = None  # set by ClauseRuleAdmin.get_form, for the per-tenant name check

    class Meta:
        model = ClauseRule
        fields = list(clause_services.CLAUSE_RULE_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            self.initial["patterns"] = "\n".join(self.instance.patterns)
            self.initial["contract_types"] = ", ".join(self.instance.contract_types)

    def clean_name(self):
        name = self.cleaned_data["name"]
        if self.tenant is not None and clause_services.clause_rule_name_taken(
            tenant=self.tenant, name=name, exclude_id=self.instance.pk
        ):
            raise forms.ValidationError("A clause rule with this name already exists.")
        return name

    def clean_contract_types(self):
        raw = self.cleaned_data.get("contract_types") or ""
        items = [item.strip() for item in raw.split(",") if item.strip()]
        try:
            return clause_services.validated_contract_types(items)
        except ApiValidationError as exc:
            raise forms.ValidationError(_messages(exc, "contract_types")) from exc

    def clean_patterns(self):
        raw = self.cleaned_data.get("patterns") or ""
        phrases = [line for line in raw.splitlines() if line.strip()]
        if not phrases:
            raise forms.ValidationError("Enter at least one phrase.")
        try:
            return clause_services.validated_patterns(phrases)
        except ApiValidationError as exc:
            raise forms.ValidationError(_messages(exc, "patterns")) from exc


@admin.register(ClauseRule)
class ClauseRuleAdmin(TenantScopedAdmin):
    """The clause library; saves go through ``contracts.clause_services`` (validated, audited)."""

    form = ClauseRuleForm
    list_display = ["name", "category", "kind", "severity", "types", "is_active", "updated_at"]
    list_filter = ["kind", "severity", "is_active", "category"]
    search_fields = ["name", "category", "guidance"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    list_select_related = ["created_by"]

    @admin.display(description="Contract types")
    def types(self, obj):
        return ", ".join(obj.contract_types) or "all"

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        tenant = obj.tenant if obj is not None else request.user.tenant
        return type("TenantClauseRuleForm", (form,), {"tenant": tenant})

    def save_model(self, request, obj, form, change):
        fields = {field: form.cleaned_data[field] for field in clause_services.CLAUSE_RULE_FIELDS}
        if change:
            saved = clause_services.clause_rule_update(
                tenant=obj.tenant, rule_id=obj.pk, updated_by=request.user, **fields
            )
        else:
            saved = clause_services.clause_rule_create(
                tenant=request.user.tenant, created_by=request.user, **fields
            )
        obj.pk = saved.pk
        obj._state.adding = False

    def delete_model(self, request, obj):
        clause_services.clause_rule_delete(
            tenant=obj.tenant, rule_id=obj.pk, deleted_by=request.user
        )

    def get_actions(self, request):
        # Bulk delete would bypass the service (and its audit rows).
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


SHORT_ID = 8  # characters of a UUID shown in a column; the whole one is its tooltip


def _short(value: str) -> str:
    return format_html('<span title="{}">{}…</span>', value, value[:SHORT_ID])


# The audit trail's page: tenant-scoped like every admin page, and naming each row's contract
# with a link to its whole trail. Audit sits below tenancy and contracts, so it is registered
# here, the lowest app that sees audit's rows, tenancy's admin scoping and contracts' titles.
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
