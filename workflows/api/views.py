from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config.viewsets import ServiceWriteMixin, service_write_schema
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
@service_write_schema(WorkflowDefinitionInputSerializer, WorkflowDefinitionSerializer)
class WorkflowDefinitionViewSet(ServiceWriteMixin, TenantScopedViewSetMixin, viewsets.ModelViewSet):
    """Workflow definitions. Any member reads; writing needs `workflows.manage`.

    DELETE deactivates a definition that instances used, and deletes it otherwise.
    """

    queryset = WorkflowDefinition.objects.all()
    selector = definition_list
    serializer_class = WorkflowDefinitionSerializer
    input_serializer_class = WorkflowDefinitionInputSerializer
    reread_after_write = True  # the stages, freshly written
    filterset_class = WorkflowDefinitionFilterSet
    permission_classes = [capability_required(WORKFLOWS_MANAGE, writes_only=True)]

    def service_create(self, data):
        user = self.request.user
        return services.definition_create(tenant=user.tenant, created_by=user, **data)

    def service_update(self, instance, data):
        user = self.request.user
        return services.definition_update(
            definition_id=instance.pk, tenant=user.tenant, updated_by=user, **data
        )

    def service_delete(self, instance):
        user = self.request.user
        services.definition_delete(definition_id=instance.pk, tenant=user.tenant, deleted_by=user)

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
