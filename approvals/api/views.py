from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import services
from approvals.analytics import workflow_analytics
from approvals.api.serializers import (
    ApprovalBulkInputSerializer,
    ApprovalBulkResultSerializer,
    ApprovalListSerializer,
    ApprovalReassignSerializer,
    HolidayInputSerializer,
    HolidaySerializer,
    SLABreachSerializer,
    SLACalendarInputSerializer,
    SLACalendarSerializer,
    SLACheckInputSerializer,
    SLACheckResultSerializer,
    SLARuleInputSerializer,
    SLARuleSerializer,
    WorkflowAnalyticsQuerySerializer,
    WorkflowAnalyticsSerializer,
)
from approvals.assignment import approval_reassign, covers_apply_for_reader
from approvals.bulk_services import approval_bulk_decide
from approvals.filtersets import (
    ApprovalFilterSet,
    HolidayFilterSet,
    PendingApprovalFilterSet,
    SLABreachFilterSet,
    SLARuleFilterSet,
)
from approvals.models import Holiday, SLABreach, SLARule, SLASettings, WorkflowStageApproval
from approvals.selectors import (
    approval_list_for_user,
    approval_pending_for_user,
    holiday_list,
    sla_breach_list,
    sla_calendar,
    sla_rule_list,
    sla_settings_for,
)
from config.viewsets import ServiceWriteMixin, service_write_schema
from tenancy.capabilities import ANALYTICS_VIEW, SLA_MANAGE, WORKFLOWS_MANAGE
from tenancy.idempotency import idempotent
from tenancy.permissions import capability_required
from tenancy.scoping import TenantScopedViewSetMixin


@extend_schema(tags=["approvals"])
class ApprovalViewSet(TenantScopedViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Approvals the caller may act on or has acted on, soonest due first."""

    queryset = WorkflowStageApproval.objects.all()
    serializer_class = ApprovalListSerializer
    filterset_class = ApprovalFilterSet

    def scoped_queryset(self, tenant):
        if self.action in ("list", "pending"):
            covers_apply_for_reader(tenant=tenant)
        if self.action == "pending":
            return approval_pending_for_user(user=self.request.user)
        return approval_list_for_user(user=self.request.user)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    @extend_schema(responses=ApprovalListSerializer(many=True))
    @action(detail=False, methods=["get"], filterset_class=PendingApprovalFilterSet)
    def pending(self, request):
        """Only the caller's pending approvals."""
        return self.list(request)

    @idempotent
    @extend_schema(request=ApprovalBulkInputSerializer, responses=ApprovalBulkResultSerializer)
    @action(detail=False, methods=["post"], filterset_class=None, pagination_class=None)
    def bulk(self, request):
        """Approve or reject up to 100 approvals, each on its own: 200 with one result per
        approval (its own status code and reason), whatever each one's outcome."""
        data = ApprovalBulkInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        outcomes = approval_bulk_decide(
            actor=request.user,
            action=data.validated_data["action"],
            approval_ids=data.validated_data["approvals"],
            comments=data.validated_data["comments"],
        )
        return Response(ApprovalBulkResultSerializer({"results": outcomes}).data)

    @idempotent
    @extend_schema(request=ApprovalReassignSerializer, responses=ApprovalListSerializer)
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[capability_required(WORKFLOWS_MANAGE)],
        filterset_class=None,
    )
    def reassign(self, request, pk=None):
        """Give a pending approval to another person, with a reason (audited; they are told).

        409 unless it is pending; 400 when that person could not decide it."""
        body = ApprovalReassignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        row = approval_reassign(
            tenant=request.user.tenant,
            approval_id=pk,
            assign_to_id=body.validated_data["assign_to"],
            reason=body.validated_data["reason"],
            actor=request.user,
        )
        return Response(ApprovalListSerializer(row, context=self.get_serializer_context()).data)


# --- SLA administration (`sla.manage`) ---------------------------------------------------------


@extend_schema(tags=["admin: SLA"])
@service_write_schema(SLARuleInputSerializer, SLARuleSerializer)
class SLARuleViewSet(ServiceWriteMixin, TenantScopedViewSetMixin, viewsets.ModelViewSet):
    """SLA rules: hours (and clock, escalation) for the stages they match. Writes are audited."""

    queryset = SLARule.objects.all()
    selector = sla_rule_list
    serializer_class = SLARuleSerializer
    input_serializer_class = SLARuleInputSerializer
    filterset_class = SLARuleFilterSet
    permission_classes = [capability_required(SLA_MANAGE)]

    def service_create(self, data):
        user = self.request.user
        return services.sla_rule_create(tenant=user.tenant, created_by=user, **data)

    def service_update(self, instance, data):
        user = self.request.user
        return services.sla_rule_update(
            rule_id=instance.pk, tenant=user.tenant, updated_by=user, **data
        )

    def service_delete(self, instance):
        services.sla_rule_delete(rule=instance, deleted_by=self.request.user)


@extend_schema(tags=["admin: SLA"])
@service_write_schema(HolidayInputSerializer, HolidaySerializer)
class HolidayViewSet(ServiceWriteMixin, TenantScopedViewSetMixin, viewsets.ModelViewSet):
    """The tenant's holidays: local dates without working hours for business-hours SLAs."""

    queryset = Holiday.objects.all()
    selector = holiday_list
    serializer_class = HolidaySerializer
    input_serializer_class = HolidayInputSerializer
    filterset_class = HolidayFilterSet
    permission_classes = [capability_required(SLA_MANAGE)]

    def service_create(self, data):
        user = self.request.user
        return services.holiday_create(tenant=user.tenant, created_by=user, **data)

    def service_update(self, instance, data):
        user = self.request.user
        return services.holiday_update(
            holiday_id=instance.pk, tenant=user.tenant, updated_by=user, **data
        )

    def service_delete(self, instance):
        services.holiday_delete(holiday=instance, deleted_by=self.request.user)


@extend_schema(tags=["admin: SLA"])
class SLACalendarView(TenantScopedViewSetMixin, generics.GenericAPIView):
    """The tenant's working calendar (time zone, working days and hours) and SLA defaults.

    Tenants that never saved one get the defaults: Mon-Fri 09:00-17:00, 72 h, reminder at 75%.
    """

    queryset = SLASettings.objects.all()
    serializer_class = SLACalendarSerializer
    permission_classes = [capability_required(SLA_MANAGE)]
    pagination_class = None
    filter_backends = []

    def _body(self, settings) -> dict:
        calendar = sla_calendar(settings=settings, tenant=self.request.user.tenant)
        return SLACalendarSerializer(calendar).data

    def get(self, request):
        return Response(self._body(sla_settings_for(tenant=request.user.tenant)))

    @extend_schema(request=SLACalendarInputSerializer, responses=SLACalendarSerializer)
    def put(self, request):
        return self._write(request, partial=False)

    @extend_schema(request=SLACalendarInputSerializer, responses=SLACalendarSerializer)
    def patch(self, request):
        return self._write(request, partial=True)

    def _write(self, request, *, partial: bool) -> Response:
        data = SLACalendarInputSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        settings = services.sla_settings_update(
            tenant=request.user.tenant, updated_by=request.user, **data.validated_data
        )
        request.user.tenant.refresh_from_db(fields=["timezone"])
        return Response(self._body(settings))


@extend_schema(tags=["admin: SLA"])
class SLABreachViewSet(
    TenantScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Recorded SLA breaches, newest first; `check_breaches` runs the check for the tenant now."""

    queryset = SLABreach.objects.all()
    selector = sla_breach_list
    serializer_class = SLABreachSerializer
    filterset_class = SLABreachFilterSet
    permission_classes = [capability_required(SLA_MANAGE)]

    @idempotent
    @extend_schema(request=SLACheckInputSerializer, responses=SLACheckResultSerializer)
    @action(detail=False, methods=["post"], url_path="check_breaches", filterset_class=None)
    def check_breaches(self, request):
        """Record new breaches, escalate and remind, for the caller's tenant; idempotent."""
        data = SLACheckInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.sla_check_breaches(
            tenant=request.user.tenant, actor=request.user, **data.validated_data
        )
        return Response(SLACheckResultSerializer(result.as_dict()).data)


# --- analytics (`analytics.view`) --------------------------------------------------------------


@extend_schema(tags=["analytics"])
class WorkflowAnalyticsView(APIView):
    """Workflow, stage and approver figures of the caller's tenant, for instances started in the
    period: outcomes and cycle time per definition, hours to decision (average, p90), SLA
    compliance and breaches per stage (slowest first: the bottleneck leads), and per approver.

    Definitions in `approvals.analytics`. Computed by the database in three queries.
    """

    permission_classes = [capability_required(ANALYTICS_VIEW)]

    @extend_schema(
        parameters=[WorkflowAnalyticsQuerySerializer], responses=WorkflowAnalyticsSerializer
    )
    def get(self, request):
        tenant = request.user.tenant
        query = WorkflowAnalyticsQuerySerializer(
            data=request.query_params, context={"timezone": tenant.timezone}
        )
        query.is_valid(raise_exception=True)
        figures = workflow_analytics(
            tenant_id=tenant.pk, timezone=tenant.timezone, **query.validated_data
        )
        return Response(WorkflowAnalyticsSerializer(figures).data)
