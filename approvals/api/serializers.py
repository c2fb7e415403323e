import re
from datetime import date

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from approvals.analytics import analytics_period
from approvals.bulk_services import BULK_ACTIONS, BULK_MAX_APPROVALS
from approvals.models import MAX_SLA_HOURS, InstanceStatus
from approvals.orchestrator import ApprovalAction
from contracts.models import VALUE_DECIMAL_PLACES, VALUE_MAX_DIGITS
from tenancy.api.fields import TenantPrimaryKeyRelatedField
from tenancy.approvers import USER_APPROVER_PREFIX
from tenancy.models import User
from workflows.models import WorkflowDefinition


def approver_display(entry: str) -> str:
    """docs/api.md: the role slug, or the user id for a named approver."""
    return entry.removeprefix(USER_APPROVER_PREFIX)


class DefinitionRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    version = serializers.IntegerField()


def definition_ref(instance) -> dict:
    version = instance.definition_version
    return {
        "id": instance.definition_id,
        "name": version.snapshot["name"],
        "version": version.version,
    }


class ApprovalSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    approver = serializers.SerializerMethodField()
    assigned_to = serializers.UUIDField(source="assigned_to_id", allow_null=True)
    status = serializers.CharField()
    decided_by = serializers.UUIDField(source="decided_by_id", allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    comments = serializers.CharField()
    revision = serializers.IntegerField(
        allow_null=True, help_text="The contract revision the decision was made on."
    )
    due_at = serializers.DateTimeField(allow_null=True)
    is_overdue = serializers.SerializerMethodField()
    delegated_to = serializers.UUIDField(source="delegated_to_id", allow_null=True)
    on_behalf_of = serializers.UUIDField(
        source="on_behalf_of_id",
        allow_null=True,
        help_text="Whom the assignee covers for (out of office), or null.",
    )

    def get_approver(self, approval) -> str:
        return approver_display(approval.approver)

    def get_is_overdue(self, approval) -> bool:
        return approval.is_overdue(self.context.get("now") or timezone.now())


class StageStatusSerializer(serializers.Serializer):
    sequence = serializers.IntegerField()
    stage_name = serializers.CharField()
    approval_type = serializers.CharField()
    min_approvals = serializers.IntegerField(allow_null=True)
    is_required = serializers.BooleanField()
    reset_on_change = serializers.JSONField(
        help_text='"any", "never" or the business fields whose change re-opens its decisions.'
    )
    status = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True)
    approvals = serializers.SerializerMethodField()

    @extend_schema_field(ApprovalSerializer(many=True))
    def get_approvals(self, stage) -> list:
        """In the definition's approver order (rows opened together share created_at), each
        entry's delegations following it in time."""
        position = {entry: index for index, entry in enumerate(stage.approvers)}
        rows = sorted(
            stage.approvals.all(),
            key=lambda row: (position.get(row.approver, len(position)), row.created_at),
        )
        return ApprovalSerializer(rows, many=True, context=self.context).data


class ChangesRequestedSerializer(serializers.Serializer):
    by = serializers.UUIDField(allow_null=True, help_text="The approver who sent it back.")
    stage_name = serializers.CharField(allow_null=True)
    revision = serializers.IntegerField(help_text="The revision they asked to change.")
    at = serializers.DateTimeField()
    comments = serializers.CharField()


class WorkflowStatusSerializer(serializers.Serializer):
    """The workflow status document of docs/api.md ("Running a workflow")."""

    id = serializers.UUIDField()
    contract = serializers.UUIDField(source="contract_id")
    definition = serializers.SerializerMethodField()
    status = serializers.CharField()
    current_stage = serializers.IntegerField(source="current_sequence", allow_null=True)
    started_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    distinct_approvers = serializers.BooleanField()
    changes_requested = serializers.SerializerMethodField()
    stages = StageStatusSerializer(many=True)

    def get_definition(self, instance) -> DefinitionRefSerializer:
        return definition_ref(instance)

    @extend_schema_field(ChangesRequestedSerializer(allow_null=True))
    def get_changes_requested(self, instance) -> dict | None:
        """Who sent the contract back, from which stage, on which revision (while
        ``changes_requested``)."""
        # A paused instance closed by a cancel or a re-route keeps the fields; it is no longer
        # with its requester.
        if instance.status != InstanceStatus.CHANGES_REQUESTED:
            return None
        stage = next(
            (s for s in instance.stages.all() if s.pk == instance.changes_requested_stage_id),
            None,
        )
        return ChangesRequestedSerializer(
            {
                "by": instance.changes_requested_by_id,
                "stage_name": stage.stage_name if stage else None,
                "revision": instance.changes_requested_revision,
                "at": instance.changes_requested_at,
                "comments": instance.changes_requested_comments,
            }
        ).data


class WorkflowSummarySerializer(serializers.Serializer):
    """A contract's active or last workflow, as embedded in the contract."""

    id = serializers.UUIDField()
    definition = serializers.SerializerMethodField()
    status = serializers.CharField()
    current_stage = serializers.IntegerField(source="current_sequence", allow_null=True)

    def get_definition(self, instance) -> DefinitionRefSerializer:
        return definition_ref(instance)


class WorkflowStartInputSerializer(serializers.Serializer):
    workflow_definition = TenantPrimaryKeyRelatedField(
        queryset=WorkflowDefinition.objects.all(),
        required=False,
        allow_null=True,
        help_text="Start this definition; omitted, the match engine picks.",
    )


class WorkflowCancelInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class ApprovalActionInputSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=ApprovalAction.values,
        help_text="`request_changes` sends the contract back to its requester (comments required).",
    )
    comments = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    delegate_to = TenantPrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True),
        required=False,
        allow_null=True,
        default=None,
        help_text="User id; required for `delegate`.",
    )
    approval = serializers.UUIDField(
        required=False, allow_null=True, default=None, help_text="When you hold several."
    )

    def validate(self, attrs):
        if attrs["action"] == ApprovalAction.DELEGATE and attrs["delegate_to"] is None:
            raise serializers.ValidationError({"delegate_to": ["Required to delegate."]})
        if attrs["action"] == ApprovalAction.REQUEST_CHANGES and not attrs["comments"].strip():
            raise serializers.ValidationError(
                {"comments": ["Required to request changes: say what has to change."]}
            )
        return attrs


class ApprovalContractSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    title = serializers.CharField()
    contract_type = serializers.CharField()
    value = serializers.DecimalField(
        max_digits=VALUE_MAX_DIGITS, decimal_places=VALUE_DECIMAL_PLACES, allow_null=True
    )
    currency = serializers.CharField()


class ApprovalListSerializer(ApprovalSerializer):
    contract = ApprovalContractSerializer()
    stage_name = serializers.CharField(source="stage.stage_name")
    stage_sequence = serializers.IntegerField(source="stage.sequence")
    workflow = serializers.UUIDField(source="instance_id")


class ApprovalReassignSerializer(serializers.Serializer):
    assign_to = serializers.UUIDField(help_text="The user who gets the approval.")
    reason = serializers.CharField(max_length=1000, help_text="Why (audited, shown to them).")


# --- SLA ---------------------------------------------------------------------------------------


class SLARuleSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    contract_type = serializers.CharField(allow_null=True, help_text="null: any contract type.")
    stage_name = serializers.CharField(allow_null=True, help_text="null: any stage.")
    sla_hours = serializers.IntegerField()
    escalation_enabled = serializers.BooleanField()
    escalate_to_role = serializers.CharField(allow_null=True)
    business_hours_only = serializers.BooleanField()
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class SLARuleInputSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=200,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text='Omitted or blank: generated, e.g. "MSA · Legal Review · 48h".',
    )
    contract_type = serializers.CharField(
        max_length=50, required=False, allow_null=True, allow_blank=True, default=None
    )
    stage_name = serializers.CharField(
        max_length=100, required=False, allow_null=True, allow_blank=True, default=None
    )
    sla_hours = serializers.IntegerField(min_value=1, max_value=MAX_SLA_HOURS)
    escalation_enabled = serializers.BooleanField(required=False, default=False)
    escalate_to_role = serializers.CharField(
        max_length=50,
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        help_text="Role slug whose holders are notified on a breach (with escalation_enabled).",
    )
    business_hours_only = serializers.BooleanField(required=False, default=False)
    is_active = serializers.BooleanField(required=False, default=True)


class HolidaySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    date = serializers.DateField()
    name = serializers.CharField()


class HolidayInputSerializer(serializers.Serializer):
    date = serializers.DateField()
    name = serializers.CharField(max_length=200)


class SLACalendarSerializer(serializers.Serializer):
    timezone = serializers.CharField(help_text="The tenant's IANA time zone.")
    working_days = serializers.ListField(
        child=serializers.IntegerField(), help_text="0 = Monday .. 6 = Sunday."
    )
    day_start = serializers.TimeField()
    day_end = serializers.TimeField()
    default_sla_hours = serializers.IntegerField(
        allow_null=True, help_text="Wall-clock hours for stages no rule matches; null: no SLA."
    )
    reminder_percent = serializers.IntegerField(
        allow_null=True, help_text="Share of the SLA after which approvers are reminded."
    )


class SLACalendarInputSerializer(serializers.Serializer):
    timezone = serializers.CharField(max_length=64)
    working_days = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), min_length=1, max_length=7
    )
    day_start = serializers.TimeField()
    day_end = serializers.TimeField()
    default_sla_hours = serializers.IntegerField(
        min_value=1, max_value=MAX_SLA_HOURS, allow_null=True
    )
    reminder_percent = serializers.IntegerField(min_value=1, max_value=99, allow_null=True)


class SLABreachSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    approval = serializers.UUIDField(source="approval_id")
    contract = serializers.UUIDField(source="contract_id")
    stage_name = serializers.CharField()
    due_at = serializers.DateTimeField()
    breached_at = serializers.DateTimeField()
    escalated_to = serializers.CharField(allow_null=True)
    escalated_at = serializers.DateTimeField(allow_null=True)


class SLACheckInputSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="Report what a check would do; change nothing."
    )


class SLACheckResultSerializer(serializers.Serializer):
    checked = serializers.IntegerField(help_text="Pending approvals found past due, unmarked.")
    breached = serializers.IntegerField(help_text="New breaches recorded (0 on a repeat run).")
    escalated = serializers.IntegerField(help_text="Of those, the ones escalated.")
    reminded = serializers.IntegerField(help_text="Approvals reminded (sla_reminder).")


# --- analytics ---------------------------------------------------------------------------------

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


@extend_schema_field(
    {
        "type": "string",
        "description": "ISO 8601 date (`2026-01-31`) or date-time (`2026-01-31T12:00:00+02:00`).",
        "example": "2026-01-31",
    }
)
class DateOrDateTimeField(serializers.Field):
    """An ISO 8601 date or date-time, parsed into a ``date`` or a ``datetime`` (as written);
    blank (``?date_from=``, an empty form field) is None."""

    MAX_LENGTH = 64
    default_error_messages = {
        "invalid": "Enter an ISO 8601 date (YYYY-MM-DD) or date-time (YYYY-MM-DDThh:mm[±hh:mm]).",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str) or len(data) > self.MAX_LENGTH or "\x00" in data:
            self.fail("invalid")
        text = data.strip()
        if not text:
            return None
        try:
            if _DATE_RE.fullmatch(text):
                return date.fromisoformat(text)
            parsed = parse_datetime(text)
        except ValueError:  # well-formed but not a real date or time (2026-02-30, 25:00)
            self.fail("invalid")
        if parsed is None:
            self.fail("invalid")
        return parsed

    def to_representation(self, value):
        return value.isoformat()


class WorkflowAnalyticsQuerySerializer(serializers.Serializer):
    """The period: instances whose `started_at` lies in it (see `analytics_period`)."""

    date_from = DateOrDateTimeField(
        required=False,
        help_text="Inclusive: instances started at or after it (a date: from its start).",
    )
    date_to = DateOrDateTimeField(
        required=False,
        help_text=(
            "A date includes that whole day; a date-time is an exclusive bound. Dates and "
            "date-times without an offset are in the tenant's time zone."
        ),
    )

    def validate(self, attrs):
        try:
            period = analytics_period(
                attrs.get("date_from"),
                attrs.get("date_to"),
                timezone=self.context["timezone"],
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return {"date_from": period.start, "date_to": period.end}


class AnalyticsPeriodSerializer(serializers.Serializer):
    start = serializers.DateTimeField(
        allow_null=True, help_text="Inclusive; null: from the first instance."
    )
    end = serializers.DateTimeField(allow_null=True, help_text="Exclusive; null: up to now.")


class AnalyticsDefinitionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField(help_text="The definition's current name.")


class WorkflowAnalyticsRowSerializer(serializers.Serializer):
    definition = AnalyticsDefinitionSerializer()
    started = serializers.IntegerField(help_text="Instances started in the period.")
    active = serializers.IntegerField(help_text="Of those, still running.")
    completed = serializers.IntegerField()
    rejected = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    completion_rate = serializers.FloatField(
        allow_null=True,
        help_text="completed / (completed + rejected + cancelled), 0..1; null: none finished.",
    )
    avg_cycle_hours = serializers.FloatField(
        allow_null=True,
        help_text="Mean hours from start to finish (any outcome); null: none finished.",
    )


class StageAnalyticsSerializer(serializers.Serializer):
    stage_name = serializers.CharField(help_text="Stages of every definition sharing this name.")
    decided = serializers.IntegerField(help_text="Approvals approved or rejected.")
    avg_hours_to_decision = serializers.FloatField(
        allow_null=True, help_text="Mean hours from the stage's start to each decision."
    )
    p90_hours_to_decision = serializers.FloatField(
        allow_null=True, help_text="90th percentile (interpolated) of the same hours."
    )
    sla_compliance_rate = serializers.FloatField(
        allow_null=True,
        help_text="Decisions at or before their due time / decisions with a due time, 0..1.",
    )
    breaches = serializers.IntegerField(help_text="Recorded SLA breaches.")


class AnalyticsUserSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    full_name = serializers.CharField()


class ApproverAnalyticsSerializer(serializers.Serializer):
    user = AnalyticsUserSerializer()
    decided = serializers.IntegerField(help_text="Approvals this user approved or rejected.")
    avg_hours_to_decision = serializers.FloatField(
        allow_null=True,
        help_text="Mean hours from when each approval reached them (stage start or delegation).",
    )


class WorkflowAnalyticsSerializer(serializers.Serializer):
    period = AnalyticsPeriodSerializer()
    workflows = WorkflowAnalyticsRowSerializer(many=True, help_text="Most started first.")
    stages = StageAnalyticsSerializer(
        many=True, help_text="Slowest first (average hours to decision): the bottleneck leads."
    )
    approvers = ApproverAnalyticsSerializer(many=True, help_text="Slowest first.")


# --- bulk decisions ----------------------------------------------------------------------------


class ApprovalBulkInputSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=BULK_ACTIONS)
    approvals = serializers.ListField(
        child=serializers.UUIDField(),
        min_length=1,
        max_length=BULK_MAX_APPROVALS,
        help_text=f"Approval ids, 1 to {BULK_MAX_APPROVALS}, each once; decided in this order.",
    )
    comments = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")

    def validate_approvals(self, value):
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Name each approval once.")
        return value


class ApprovalBulkOutcomeSerializer(serializers.Serializer):
    approval = serializers.UUIDField()
    status_code = serializers.IntegerField(
        help_text="What the single-approval endpoint would have answered: 200 decided, 403, "
        "404, 409 ..."
    )
    detail = serializers.CharField()


class ApprovalBulkResultSerializer(serializers.Serializer):
    results = ApprovalBulkOutcomeSerializer(many=True, help_text="One per approval, in order.")
