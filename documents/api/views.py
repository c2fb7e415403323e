from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.exceptions import Conflict
from contracts.models import Contract
from core import rls
from documents import providers, selectors, services
from documents.api.serializers import (
    DocumentSerializer,
    SignatureRequestInputSerializer,
    SignatureRequestSerializer,
    VerificationSerializer,
    VerifyInputSerializer,
)
from documents.models import Document, SignatureRequest
from tenancy.idempotency import idempotent
from tenancy.scoping import TenantScopedViewSetMixin


class ContractNestedMixin(TenantScopedViewSetMixin):
    """Rows of one contract (``contract_pk`` in the path): 404 when it is not the tenant's."""

    def contract_id(self):
        if not hasattr(self, "_contract_id"):
            self._contract_id = (
                Contract.objects.for_tenant(self.request.user.tenant)
                .filter(pk=self.kwargs["contract_pk"])
                .values_list("pk", flat=True)
                .first()
            )
            if self._contract_id is None:
                raise NotFound()
        return self._contract_id

    def scoped_queryset(self, tenant):
        return super().scoped_queryset(tenant).filter(contract_id=self.contract_id())


@extend_schema(tags=["documents"])
class DocumentViewSet(ContractNestedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """A contract's generated documents: approval certificates and signed contracts, each a
    sealed PDF recorded with its SHA-256."""

    queryset = Document.objects.all()
    selector = selectors.document_list
    serializer_class = DocumentSerializer
    filter_backends = []

    @extend_schema(
        responses={
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The sealed PDF."
            )
        }
    )
    @action(detail=True, methods=["get"])
    def download(self, request, contract_pk=None, pk=None):
        """The sealed PDF, byte for byte as generated (409 if the stored file was altered)."""
        document = self.get_object()
        try:
            data = selectors.document_read(document=document)
        except selectors.DocumentIntegrityError as exc:
            raise Conflict(
                "The stored file is missing or no longer matches the SHA-256 recorded when it was "
                "generated.",
                code="document_integrity",
            ) from exc
        response = HttpResponse(data, content_type="application/pdf")
        response["Content-Disposition"] = (
            f'attachment; filename="{document.kind}-r{document.revision}-{document.pk}.pdf"'
        )
        return response


@extend_schema(tags=["documents"])
class DocumentVerifyView(APIView):
    """Is this PDF one of ours, unmodified since it was sealed? (``valid``, with the reason.)"""

    parser_classes = [MultiPartParser]

    @extend_schema(request=VerifyInputSerializer, responses=VerificationSerializer)
    def post(self, request):
        data = VerifyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        verification = selectors.document_verify(data=data.validated_data["file"].read())
        document = selectors.document_by_sha256(
            tenant=request.user.tenant, sha256=verification.sha256
        )
        return Response(
            VerificationSerializer(
                {**verification.__dict__, "document": document.pk if document else None}
            ).data
        )


@extend_schema(tags=["documents"])
class SignatureRequestViewSet(
    ContractNestedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Signatures asked on an approved contract: members or outside signers, in parallel or in
    order, each through a single-use link. All signed: the contract is `signed`."""

    queryset = SignatureRequest.objects.all()
    selector = selectors.signature_request_list
    serializer_class = SignatureRequestSerializer
    filter_backends = []

    def _reread(self, request_id):
        return Response(self.get_serializer(self.get_queryset().get(pk=request_id)).data)

    @idempotent
    @extend_schema(
        request=SignatureRequestInputSerializer, responses={201: SignatureRequestSerializer}
    )
    def create(self, request, contract_pk=None):
        """Ask for signatures (the creator or `contracts.manage`; 409 unless approved)."""
        data = SignatureRequestInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = services.signature_request_create(
            tenant=request.user.tenant,
            contract_id=self.contract_id(),
            requested_by=request.user,
            **data.validated_data,
        )
        response = self._reread(created.pk)
        response.status_code = status.HTTP_201_CREATED
        return response

    @extend_schema(request=None, responses=SignatureRequestSerializer)
    @action(detail=True, methods=["post"])
    def void(self, request, contract_pk=None, pk=None):
        """Withdraw a pending request: its links die and signers who got one are told."""
        services.signature_request_void(
            request=self.get_object(), voided_by=request.user, reason="voided by request"
        )
        return self._reread(pk)


@extend_schema(tags=["documents"], request=OpenApiTypes.OBJECT, responses={204: None})
class ProviderWebhookView(APIView):
    """Status callbacks of an external signature provider, verified with its secret (no login):
    a signer viewed, signed or declined. Repeated or stale events change nothing."""

    authentication_classes = []
    permission_classes = [AllowAny]
    parser_classes = []  # the raw body is what the signature covers

    def post(self, request, provider_name: str, tenant_id):
        try:
            events = providers.provider(provider_name).parse_webhook(
                body=request.body, headers=request.headers
            )
        except providers.ProviderError as exc:
            raise ValidationError({"non_field_errors": [str(exc)]}) from exc
        with rls.tenant_scope(tenant_id):
            for event in events:
                services.provider_event_apply(
                    tenant_id=tenant_id, provider_name=provider_name, event=event
                )
        return Response(status=status.HTTP_204_NO_CONTENT)
