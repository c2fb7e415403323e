from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
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
from contracts.models import Contract
from tenancy.idempotency import idempotent
from tenancy.scoping import TenantScopedViewSetMixin


@extend_schema(tags=["workflows"])
class ContractWorkflowViewSet(TenantScopedViewSetMixin, viewsets.GenericViewSet):
    """A contract's workflow under `/api/contracts/{id}/`: start, status, cancel, resubmit and the
    approvers' decisions. Each answers with the workflow's status."""

    queryset = Contract.objects.all()
    filter_backends = []

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
    @extend_schema(request=WorkflowStartInputSerializer, responses={201: WorkflowStatusSerializer})
    @action(detail=True, methods=["post"], url_path="workflow/start")
    def workflow_start(self, request, pk=None):
        """Start (or restart after a rejection or cancellation) the matched workflow: the
        creator or `workflows.manage`; only `workflows.manage` may name a definition."""
        contract = self.get_object()
        data = WorkflowStartInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        orchestrator.workflow_start(
            contract=contract,
            started_by=request.user,
            definition=data.validated_data.get("workflow_definition"),
        )
        return self._workflow_status(contract.pk, status.HTTP_201_CREATED)

    @extend_schema(responses=WorkflowStatusSerializer)
    @action(detail=True, methods=["get"], url_path="workflow/status")
    def workflow_status(self, request, pk=None):
        """The active or most recent workflow with its stages and approvals."""
        return self._workflow_status(self._contract_id(pk))

    @extend_schema(request=WorkflowCancelInputSerializer, responses=WorkflowStatusSerializer)
    @action(detail=True, methods=["post"], url_path="workflow/cancel")
    def workflow_cancel(self, request, pk=None):
        """Cancel the open workflow (the contract's creator or `workflows.manage`)."""
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

    @extend_schema(request=None, responses=WorkflowStatusSerializer)
    @action(detail=True, methods=["post"])
    def resubmit(self, request, pk=None):
        """Hand a contract sent back for changes to its approvers again (the creator or
        `contracts.manage`; 409 unless `changes_requested`)."""
        contract_id = self._contract_id(pk)
        orchestrator.workflow_resubmit(
            tenant=request.user.tenant, contract_id=contract_id, actor=request.user
        )
        return self._workflow_status(contract_id)

    @idempotent
    @extend_schema(request=ApprovalActionInputSerializer, responses=WorkflowStatusSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve, reject, delegate or request changes on the caller's pending approval."""
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
