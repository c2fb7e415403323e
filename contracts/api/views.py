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
from contracts import clause_services, comments, services
from contracts.api.serializers import (
    ClauseRuleInputSerializer,
    ClauseRuleSerializer,
    ClauseValidationInputSerializer,
    ClauseValidationSerializer,
    CommentSerializer,
    ContractInputSerializer,
    ContractRevisionSerializer,
    ContractSerializer,
)
from contracts.clause_selectors import clause_rule_list, clause_validate
from contracts.filtersets import ClauseRuleFilterSet, ContractFilterSet
from contracts.models import ClauseRule, Contract
from contracts.selectors import contract_list, contract_revision_list
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
    """Contracts of the caller's tenant, each change of their business fields a revision.

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

    @extend_schema(
        request=ContractInputSerializer,
        responses={200: ContractSerializer},
        description=(
            "Edit business fields (the creator or `contracts.manage`). A draft, rejected or "
            "cancelled contract is simply edited; under review the change makes a new revision "
            "and re-routes the contract or re-opens the decisions whose stage policy fires; an "
            "approved contract is locked (409 `contract_locked`: amend it)."
        ),
    )
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
        return Response(self._reread(contract.pk))

    def _reread(self, contract_id) -> dict:
        """The contract as the API shows it, with the workflow an edit may have changed."""
        return ContractSerializer(self.get_queryset().get(pk=contract_id)).data

    @extend_schema(responses=ContractRevisionSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[])
    def revisions(self, request, pk=None):
        """Every revision of the contract's business fields, newest first."""
        revisions = contract_revision_list(
            tenant=request.user.tenant, contract_id=self._contract_id(pk)
        )
        page = self.paginate_queryset(revisions)
        return self.get_paginated_response(ContractRevisionSerializer(page, many=True).data)

    @extend_schema(methods=["GET"], responses=CommentSerializer(many=True))
    @extend_schema(methods=["POST"], request=CommentSerializer, responses={201: CommentSerializer})
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def comments(self, request, pk=None):
        """The contract's discussion thread, oldest first; any member may post. Mentioned
        members are notified (`comment_mention`); webhooks get `comment_added`."""
        if request.method == "POST":
            return self._add_comment(request, pk)
        thread = comments.comment_list(
            tenant=request.user.tenant, contract_id=self._contract_id(pk)
        )
        page = self.paginate_queryset(thread)
        return self.get_paginated_response(CommentSerializer(page, many=True).data)

    def _add_comment(self, request, pk):
        body = CommentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        comment = comments.comment_add(
            tenant=request.user.tenant,
            contract_id=pk,
            author=request.user,
            body=body.validated_data["body"],
            mentions=body.validated_data["mentions"],
        )
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)

    @idempotent
    @extend_schema(request=ContractInputSerializer, responses=ContractSerializer)
    @action(detail=True, methods=["post"])
    def amend(self, request, pk=None):
        """Change an approved contract: a new revision and a newly matched review (the creator
        or `contracts.manage`; 409 unless approved). The earlier approval stays in the history."""
        contract = self.get_object()
        data = ContractInputSerializer(contract, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.contract_amend(
            tenant=request.user.tenant,
            contract_id=contract.pk,
            amended_by=request.user,
            **data.validated_data,
        )
        return Response(self._reread(contract.pk))

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

    @extend_schema(responses=WorkflowStatusSerializer, tags=["workflows"])
    @action(detail=True, methods=["get"], url_path="workflow/status", filter_backends=[])
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

    @extend_schema(request=None, responses=WorkflowStatusSerializer, tags=["workflows"])
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
    @extend_schema(
        request=ApprovalActionInputSerializer,
        responses=WorkflowStatusSerializer,
        tags=["workflows"],
    )
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
