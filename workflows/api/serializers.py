from rest_framework import serializers

from contracts.models import BUSINESS_FIELDS, Contract
from tenancy.api.fields import TenantPrimaryKeyRelatedField
from workflows.models import (
    MAX_APPROVERS_PER_STAGE,
    MAX_SLA_HOURS,
    MAX_STAGES,
    PRIORITY_BOUND,
    RESET_ANY,
    ApprovalType,
    WorkflowDefinition,
)
from workflows.rules import ALLOWED_FIELDS, ALLOWED_LOOKUPS

RULES_HELP = (
    "An object of `<field>__<lookup>: value` pairs that must all hold (`{}` matches every "
    "contract); nest with `any`, `all`, `not`. Fields: "
    + ", ".join(sorted(ALLOWED_FIELDS))
    + ", metadata__<key>. Lookups: "
    + ", ".join(sorted(ALLOWED_LOOKUPS))
    + "."
)


class WorkflowStageSerializer(serializers.Serializer):
    stage_name = serializers.CharField(max_length=100)
    sequence = serializers.IntegerField(
        min_value=1, max_value=100, help_text="Stages sharing a sequence run in parallel."
    )
    approvers = serializers.ListField(
        child=serializers.CharField(max_length=60),
        min_length=1,
        max_length=MAX_APPROVERS_PER_STAGE,
        help_text='Role slugs (e.g. "legal") or "user:<uuid>".',
    )
    approval_type = serializers.ChoiceField(choices=ApprovalType.choices, default="all")
    min_approvals = serializers.IntegerField(
        min_value=1,
        max_value=MAX_APPROVERS_PER_STAGE,
        required=False,
        allow_null=True,
        default=None,
        help_text="Quorum stages only.",
    )
    sla_hours = serializers.IntegerField(
        min_value=1, max_value=MAX_SLA_HOURS, required=False, allow_null=True, default=None
    )
    is_required = serializers.BooleanField(default=True)
    reset_on_change = serializers.JSONField(
        default=RESET_ANY,
        help_text=(
            'Which edits of a contract under review re-open this stage\'s decisions: "any" '
            '(default), "never", or a list of business fields (' + ", ".join(BUSINESS_FIELDS) + ")."
        ),
    )


class DefinitionSignerSerializer(serializers.Serializer):
    """One signer asked automatically when the workflow completes."""

    role = serializers.SlugField(required=False, max_length=50, help_text="Every holder signs.")
    user = serializers.UUIDField(required=False, help_text="A member of your organisation.")
    name = serializers.CharField(required=False, max_length=200, help_text="Someone outside.")
    email = serializers.EmailField(required=False)

    def validate(self, attrs):
        shapes = [bool(attrs.get("role")), bool(attrs.get("user")), "email" in attrs]
        if sum(shapes) != 1 or ("email" in attrs) != ("name" in attrs):
            raise serializers.ValidationError(
                "Give exactly one of `role`, `user`, or `name` and `email`."
            )
        return {key: str(value) for key, value in attrs.items()}


class WorkflowDefinitionInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default=""
    )
    trigger_conditions = serializers.JSONField(required=False, default=dict, help_text=RULES_HELP)
    stages = WorkflowStageSerializer(many=True, min_length=1, max_length=MAX_STAGES)
    priority = serializers.IntegerField(
        min_value=-PRIORITY_BOUND, max_value=PRIORITY_BOUND, required=False, default=0
    )
    is_active = serializers.BooleanField(required=False, default=True)
    distinct_approvers = serializers.BooleanField(
        required=False,
        default=True,
        help_text=(
            "One person decides at most one approval of a workflow (false only for tiny teams; "
            "audited)."
        ),
    )
    signers = DefinitionSignerSerializer(many=True, required=False, default=list, max_length=20)
    signing_order = serializers.ChoiceField(
        choices=["parallel", "sequential"], required=False, default="parallel"
    )

    def validate_stages(self, stages):
        """A PATCH replaces the whole list, so each stage is complete (with defaults) even then."""
        if not self.partial:
            return stages
        complete = WorkflowStageSerializer(data=self.initial_data["stages"], many=True)
        complete.is_valid(raise_exception=True)
        return complete.validated_data


class WorkflowDefinitionSerializer(serializers.ModelSerializer):
    stages = WorkflowStageSerializer(many=True)
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = WorkflowDefinition
        fields = [
            "id",
            "name",
            "description",
            "trigger_conditions",
            "stages",
            "priority",
            "is_active",
            "distinct_approvers",
            "signers",
            "signing_order",
            "version",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_created_by(self, definition) -> str | None:
        user = definition.created_by
        return f"{user.full_name} <{user.email}>" if user else None


class PreviewMatchInputSerializer(serializers.Serializer):
    """Either an existing contract's id, or contract fields to try."""

    contract = TenantPrimaryKeyRelatedField(queryset=Contract.objects.all(), required=False)
    title = serializers.CharField(max_length=255, required=False, default="")
    contract_type = serializers.CharField(max_length=50, required=False, default="")
    value = serializers.DecimalField(
        max_digits=18, decimal_places=2, required=False, allow_null=True, default=None
    )
    currency = serializers.CharField(max_length=3, required=False, default="USD")
    counterparty = serializers.CharField(max_length=255, required=False, default="")
    department = serializers.CharField(max_length=100, required=False, default="")
    region = serializers.CharField(max_length=100, required=False, default="")
    start_date = serializers.DateField(required=False, allow_null=True, default=None)
    end_date = serializers.DateField(required=False, allow_null=True, default=None)
    has_blocking_findings = serializers.BooleanField(required=False, default=False)
    metadata = serializers.JSONField(required=False, default=dict)

    def validate_metadata(self, value):
        from config.validators import validate_json_object

        return validate_json_object(value)


class MatchedDefinitionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    priority = serializers.IntegerField()


class PreviewMatchOutputSerializer(serializers.Serializer):
    matched = MatchedDefinitionSerializer(allow_null=True)
