from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from contracts.models import Contract
from tenancy.capabilities import WORKFLOWS_MANAGE
from tenancy.permissions import IsTenantMember, capability_required
from tenancy.scoping import TenantScopedViewSetMixin
from workflows import services
from workflows.api.serializers import (
    PreviewMatchInputSerializer,
    PreviewMatchOutputSerializer,
    WorkflowDefinitionInputSerializer,
    WorkflowDefinitionSerializer,
)
from workflows.engine import match_engine
from workflows.filtersets import WorkflowDefinitionFilterSet
from workflows.models import WorkflowDefinition
from workflows.selectors import definition_list


@extend_schema(tags=["workflow definitions"])
class WorkflowDefinitionViewSet(TenantScopedViewSetMixin, viewsets.ModelViewSet):
    """Workflow definitions. Any member reads; writing needs `workflows.manage`.

    DELETE deactivates a definition that instances used, and deletes it otherwise.
    """

    queryset = WorkflowDefinition.objects.all()
    selector = definition_list
    serializer_class = WorkflowDefinitionSerializer
    filterset_class = WorkflowDefinitionFilterSet
    permission_classes = [capability_required(WORKFLOWS_MANAGE, writes_only=True)]

    def _output(self, definition, status_code=status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=definition.pk)
        return Response(WorkflowDefinitionSerializer(fresh).data, status=status_code)

    @extend_schema(
        request=WorkflowDefinitionInputSerializer,
        responses={201: WorkflowDefinitionSerializer},
    )
    def create(self, request):
        data = WorkflowDefinitionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        definition = services.definition_create(
            tenant=request.user.tenant, created_by=request.user, **data.validated_data
        )
        return self._output(definition, status.HTTP_201_CREATED)

    @extend_schema(request=WorkflowDefinitionInputSerializer)
    def update(self, request, pk=None, partial=False):
        definition = self.get_object()
        data = WorkflowDefinitionInputSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        definition = services.definition_update(
            definition_id=definition.pk,
            tenant=request.user.tenant,
            updated_by=request.user,
            **data.validated_data,
        )
        return self._output(definition)

    @extend_schema(request=WorkflowDefinitionInputSerializer)
    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk, partial=True)

    def destroy(self, request, pk=None):
        definition = self.get_object()
        services.definition_delete(
            definition_id=definition.pk, tenant=request.user.tenant, deleted_by=request.user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=PreviewMatchInputSerializer, responses=PreviewMatchOutputSerializer)
    @action(
        detail=False,
        methods=["post"],
        url_path="preview-match",
        permission_classes=[IsTenantMember],
    )
    def preview_match(self, request):
        """Which definition a contract (stored, or described by its fields) would start."""
        data = PreviewMatchInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        contract = fields.pop("contract", None) or Contract(tenant=request.user.tenant, **fields)
        matched = match_engine.find_match(contract)
        body = {
            "matched": None
            if matched is None
            else {"id": matched.pk, "name": matched.name, "priority": matched.priority}
        }
        return Response(PreviewMatchOutputSerializer(body).data)
