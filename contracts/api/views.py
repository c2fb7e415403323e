from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from approvals import orchestrator
from approvals.api.serializers import (
    ApprovalActionInputSerializer,
    WorkflowCancelInputSerializer,
    WorkflowStartInputSerializer,
    WorkflowStatusSerializer,
)
from approvals.selectors import workflow_instance_latest
from config.viewsets import ServiceWriteMixin, service_write_schema
from contracts import clause_services, services
from contracts.api.serializers import (
    ClauseRuleInputSerializer,
    ClauseRuleSerializer,
    ClauseValidationInputSerializer,
    ClauseValidationSerializer,
    ContractInputSerializer,
    ContractSerializer,
)
from contracts.clause_selectors import clause_rule_list, clause_validate
from contracts.filtersets import ClauseRuleFilterSet, ContractFilterSet
from contracts.models import ClauseRule, Contract
from contracts.selectors import contract_list
from tenancy.capabilities import CLAUSES_MANAGE
from tenancy.idempotency import idempotent
from tenancy.permissions import capability_required
from tenancy.scoping import TenantScopedViewSetMixin


@extend_schema(tags=["contracts"])
class ContractViewSet(
    TenantScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Contracts of the caller's tenant. PATCH edits business fields while it is a draft.

    Creating a contract runs the match engine and starts the winning workflow at once.
    """

    queryset = Contract.objects.all()
    selector = contract_list
    serializer_class = ContractSerializer
    filterset_class = ContractFilterSet
    http_method_names = ["get", "post", "patch", "head", "options"]

    @idempotent
    @extend_schema(request=ContractInputSerializer, responses={201: ContractSerializer})
    def create(self, request):
        data = ContractInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        contract = services.contract_create(
            tenant=request.user.tenant, created_by=request.user, **data.validated_data
        )
        return Response(ContractSerializer(contract).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ContractInputSerializer, responses={200: ContractSerializer})
    def partial_update(self, request, pk=None):
        contract = self.get_object()
        data = ContractInputSerializer(contract, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        contract = services.contract_update(
            tenant=request.user.tenant,
            contract_id=contract.pk,
            updated_by=request.user,
            **data.validated_data,
        )
        return Response(ContractSerializer(contract).data)

    @extend_schema(
        request=ClauseValidationInputSerializer,
        responses=ClauseValidationSerializer,
        tags=["clauses"],
    )
    @action(detail=False, methods=["post"], url_path="validate-clauses")
    def validate_clauses(self, request):
        """Check a stored contract or free text against the tenant's clause playbook.

        Nothing is written. A stored contract is checked with its own text and type; free text
        with the rules for `contract_type` (if given) and the rules for every type.
        """
        data = ClauseValidationInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        contract = data.validated_data.get("contract")
        result = clause_validate(
            tenant=request.user.tenant,
            text=contract.text if contract else data.validated_data["text"],
            contract_type=(
                contract.contract_type if contract else data.validated_data.get("contract_type")
            ),
        )
        return Response(ClauseValidationSerializer(result.as_dict()).data)

    def _workflow_status(self, contract_id, status_code=status.HTTP_200_OK) -> Response:
        instance = workflow_instance_latest(
            tenant=self.request.user.tenant, contract_id=contract_id
        )
        if instance is None:
            raise NotFound("No workflow has run on this contract.")
        body = WorkflowStatusSerializer(instance, context={"now": timezone.now()}).data
        return Response(body, status=status_code)

    def _contract_id(self, pk):
        """404 for a contract that is not the caller's tenant's, before any workflow logic."""
        if not self.get_queryset().filter(pk=pk).exists():
            raise NotFound()
        return pk

    @idempotent
    @extend_schema(
        request=WorkflowStartInputSerializer,
        responses={201: WorkflowStatusSerializer},
        tags=["workflows"],
    )
    @action(detail=True, methods=["post"], url_path="workflow/start")
    def workflow_start(self, request, pk=None):
        """Start a workflow by hand: the given definition, or the match engine's pick."""
        contract = self.get_object()
        data = WorkflowStartInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        orchestrator.workflow_start(
            contract=contract,
            started_by=request.user,
            definition=data.validated_data.get("workflow_definition"),
        )
        return self._workflow_status(contract.pk, status.HTTP_201_CREATED)

    @extend_schema(responses=WorkflowStatusSerializer, tags=["workflows"])
    @action(detail=True, methods=["get"], url_path="workflow/status")
    def workflow_status(self, request, pk=None):
        """The active or most recent workflow with its stages and approvals."""
        return self._workflow_status(self._contract_id(pk))

    @extend_schema(
        request=WorkflowCancelInputSerializer,
        responses=WorkflowStatusSerializer,
        tags=["workflows"],
    )
    @action(detail=True, methods=["post"], url_path="workflow/cancel")
    def workflow_cancel(self, request, pk=None):
        """Cancel the active workflow (the contract's creator or a tenant admin)."""
        data = WorkflowCancelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        contract_id = self._contract_id(pk)
        orchestrator.workflow_cancel(
            tenant=request.user.tenant,
            contract_id=contract_id,
            actor=request.user,
            reason=data.validated_data["reason"],
        )
        return self._workflow_status(contract_id)

    @idempotent
    @extend_schema(
        request=ApprovalActionInputSerializer,
        responses=WorkflowStatusSerializer,
        tags=["workflows"],
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve, reject or delegate the caller's pending approval on this contract."""
        data = ApprovalActionInputSerializer(data=request.data, context={"request": request})
        if not data.is_valid():
            self._contract_id(pk)  # an unknown contract is a 404 whatever the body
            raise ValidationError(data.errors)
        # approval_act answers 404 for a contract that is not the tenant's: no query for it here.
        orchestrator.approval_act(
            tenant=request.user.tenant,
            contract_id=pk,
            actor=request.user,
            action=data.validated_data["action"],
            comments=data.validated_data["comments"],
            delegate_to=data.validated_data["delegate_to"],
            approval_id=data.validated_data["approval"],
        )
        return self._workflow_status(pk)


@extend_schema(tags=["clauses"])
@service_write_schema(ClauseRuleInputSerializer, ClauseRuleSerializer)
class ClauseRuleViewSet(ServiceWriteMixin, TenantScopedViewSetMixin, viewsets.ModelViewSet):
    """The tenant's clause library. Any member reads it; writing needs `clauses.manage`.

    Stored contracts are checked against it when created and when their text or type changes.
    """

    queryset = ClauseRule.objects.all()
    selector = clause_rule_list
    serializer_class = ClauseRuleSerializer
    input_serializer_class = ClauseRuleInputSerializer
    reread_after_write = True
    filterset_class = ClauseRuleFilterSet
    permission_classes = [capability_required(CLAUSES_MANAGE, writes_only=True)]

    def service_create(self, data):
        user = self.request.user
        return clause_services.clause_rule_create(tenant=user.tenant, created_by=user, **data)

    def service_update(self, instance, data):
        user = self.request.user
        return clause_services.clause_rule_update(
            tenant=user.tenant, rule_id=instance.pk, updated_by=user, **data
        )

    def service_delete(self, instance):
        user = self.request.user
        clause_services.clause_rule_delete(tenant=user.tenant, rule_id=instance.pk, deleted_by=user)
