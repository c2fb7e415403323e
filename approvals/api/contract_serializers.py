"""The contract's representation, which embeds its workflow summary: it sits with the viewset
that serves it (``approvals.api.contract_record_views``), above contracts."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from approvals.api.serializers import WorkflowSummarySerializer
from approvals.selectors import instances_newest_first
from contracts.api.serializers import ClauseFindingsSummarySerializer, ContractCreatorSerializer
from contracts.models import (
    BUSINESS_FIELDS,
    RECORD_FIELDS,
    VALUE_DECIMAL_PLACES,
    VALUE_MAX_DIGITS,
    Contract,
)


class ContractSerializer(serializers.ModelSerializer):
    """What the API returns for a contract."""

    clause_findings = ClauseFindingsSummarySerializer(
        allow_null=True, read_only=True, help_text="Null until the text was validated."
    )

    value = serializers.DecimalField(
        max_digits=VALUE_MAX_DIGITS, decimal_places=VALUE_DECIMAL_PLACES, allow_null=True
    )
    created_by = ContractCreatorSerializer()
    workflow = serializers.SerializerMethodField()

    class Meta:
        model = Contract
        fields = [
            "id",
            *BUSINESS_FIELDS,
            "has_blocking_findings",
            "clause_findings",
            *RECORD_FIELDS,
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
