from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from contracts import services
from contracts.api.serializers import ContractInputSerializer, ContractSerializer
from contracts.filtersets import ContractFilterSet
from contracts.models import Contract
from contracts.selectors import contract_list
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
    """Contracts of the caller's tenant. PATCH edits business fields while it is a draft."""

    queryset = Contract.objects.all()
    selector = contract_list
    serializer_class = ContractSerializer
    filterset_class = ContractFilterSet
    http_method_names = ["get", "post", "patch", "head", "options"]

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
