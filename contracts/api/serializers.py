from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from approvals.api.serializers import WorkflowSummarySerializer
from approvals.selectors import instances_newest_first
from config.validators import validate_json_object
from contracts.currencies import ISO_4217_CODES
from contracts.models import (
    TEXT_MAX_LENGTH,
    VALUE_DECIMAL_PLACES,
    VALUE_MAX_DIGITS,
    Contract,
)


class ContractCreatorSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    full_name = serializers.CharField()


class ContractSerializer(serializers.ModelSerializer):
    """What the API returns for a contract."""

    value = serializers.DecimalField(
        max_digits=VALUE_MAX_DIGITS, decimal_places=VALUE_DECIMAL_PLACES, allow_null=True
    )
    created_by = ContractCreatorSerializer()
    workflow = serializers.SerializerMethodField()

    class Meta:
        model = Contract
        fields = [
            "id",
            "title",
            "contract_type",
            "value",
            "currency",
            "counterparty",
            "department",
            "region",
            "start_date",
            "end_date",
            "text",
            "metadata",
            "has_blocking_findings",
            "status",
            "created_by",
            "created_at",
            "updated_at",
            "workflow",
        ]
        read_only_fields = fields

    @extend_schema_field(WorkflowSummarySerializer(allow_null=True))
    def get_workflow(self, contract) -> dict | None:
        """Summary of the active or last workflow instance (null until one starts)."""
        instances = getattr(contract, "instances_newest_first", None)
        if instances is None:
            instances = list(instances_newest_first().queryset.filter(contract=contract)[:1])
        return WorkflowSummarySerializer(instances[0]).data if instances else None


class ContractInputSerializer(serializers.Serializer):
    """Business fields a requester sets. Unknown and read-only fields are ignored."""

    title = serializers.CharField(max_length=255)
    contract_type = serializers.CharField(max_length=50)
    value = serializers.DecimalField(
        max_digits=VALUE_MAX_DIGITS,
        decimal_places=VALUE_DECIMAL_PLACES,
        min_value=0,
        allow_null=True,
        required=False,
        help_text="Money as a decimal string with 2 places (a JSON number is accepted too).",
    )
    currency = serializers.CharField(
        max_length=3, required=False, help_text="ISO 4217 code, default USD."
    )
    counterparty = serializers.CharField(max_length=255, required=False, allow_blank=True)
    department = serializers.CharField(max_length=100, required=False, allow_blank=True)
    region = serializers.CharField(max_length=100, required=False, allow_blank=True)
    start_date = serializers.DateField(required=False, allow_null=True)
    end_date = serializers.DateField(required=False, allow_null=True)
    text = serializers.CharField(
        max_length=TEXT_MAX_LENGTH, required=False, allow_blank=True, trim_whitespace=False
    )
    metadata = serializers.JSONField(
        required=False,
        help_text="A JSON object; keys of letters, digits and underscores (usable in rules).",
    )

    def validate_currency(self, value: str) -> str:
        code = value.upper()
        if code not in ISO_4217_CODES:
            raise serializers.ValidationError(f"'{value}' is not an ISO 4217 currency code.")
        return code

    def validate_metadata(self, value):
        return validate_json_object(value)

    def validate(self, attrs):
        start = attrs.get("start_date", getattr(self.instance, "start_date", None))
        end = attrs.get("end_date", getattr(self.instance, "end_date", None))
        if start and end and end < start:
            raise serializers.ValidationError({"end_date": ["Must not be before start_date."]})
        return attrs
