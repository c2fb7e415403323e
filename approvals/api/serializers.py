from django.utils import timezone
from rest_framework import serializers

from approvals.orchestrator import ApprovalAction
from contracts.models import VALUE_DECIMAL_PLACES, VALUE_MAX_DIGITS
from tenancy.api.fields import TenantPrimaryKeyRelatedField
from tenancy.models import User
from workflows.models import USER_APPROVER_PREFIX, WorkflowDefinition


def approver_display(entry: str) -> str:
    """API.md: the role slug, or the user id for a named approver."""
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
    due_at = serializers.DateTimeField(allow_null=True)
    is_overdue = serializers.SerializerMethodField()
    delegated_to = serializers.UUIDField(source="delegated_to_id", allow_null=True)

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
    status = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True)
    approvals = ApprovalSerializer(many=True)


class WorkflowStatusSerializer(serializers.Serializer):
    """The workflow status document of API.md."""

    id = serializers.UUIDField()
    contract = serializers.UUIDField(source="contract_id")
    definition = serializers.SerializerMethodField()
    status = serializers.CharField()
    current_stage = serializers.IntegerField(source="current_sequence", allow_null=True)
    started_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    stages = StageStatusSerializer(many=True)

    def get_definition(self, instance) -> DefinitionRefSerializer:
        return definition_ref(instance)


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
    action = serializers.ChoiceField(choices=ApprovalAction.CHOICES)
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
