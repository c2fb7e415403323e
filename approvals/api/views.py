from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action

from approvals.api.serializers import ApprovalListSerializer
from approvals.filtersets import ApprovalFilterSet
from approvals.models import WorkflowStageApproval
from approvals.selectors import approval_list_for_user, approval_pending_for_user
from tenancy.scoping import TenantScopedViewSetMixin


@extend_schema(tags=["approvals"])
class ApprovalViewSet(TenantScopedViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Approvals the caller may act on or has acted on, soonest due first."""

    queryset = WorkflowStageApproval.objects.all()
    serializer_class = ApprovalListSerializer
    filterset_class = ApprovalFilterSet

    def scoped_queryset(self, tenant):
        if self.action == "pending":
            return approval_pending_for_user(user=self.request.user)
        return approval_list_for_user(user=self.request.user)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    @extend_schema(responses=ApprovalListSerializer(many=True))
    @action(detail=False, methods=["get"])
    def pending(self, request):
        """Only the caller's pending approvals."""
        return self.list(request)
