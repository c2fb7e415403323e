"""The contract's records under /api/contracts/: list, read, create, edit, amend, revisions and
clause checks. Creating, editing and amending route the contract's workflow
(``approvals.lifecycle``), so the viewset sits in approvals, above contracts; the workflow's own
actions under the same URLs are ``approvals.api.contract_views``."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from approvals import lifecycle
from approvals.api.contract_serializers import ContractSerializer
from approvals.selectors import contract_list
from contracts import comments
from contracts.api.serializers import (
    ClauseValidationInputSerializer,
    ClauseValidationSerializer,
    CommentSerializer,
    ContractInputSerializer,
    ContractRevisionSerializer,
)
from contracts.clause_selectors import clause_validate
from contracts.filtersets import ContractFilterSet
from contracts.models import Contract
from contracts.selectors import contract_revision_list
from tenancy.idempotency import idempotent
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
        contract = lifecycle.contract_create(
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
        contract = lifecycle.contract_update(
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
        lifecycle.contract_amend(
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

    def _contract_id(self, pk):
        """404 for a contract that is not the caller's tenant's, before any workflow logic."""
        if not self.get_queryset().filter(pk=pk).exists():
            raise NotFound()
        return pk
