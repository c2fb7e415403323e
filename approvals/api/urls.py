from django.urls import path
from rest_framework.routers import SimpleRouter

from approvals.api import views
from approvals.api.contract_views import ContractWorkflowViewSet

router = SimpleRouter()
# A contract's workflow actions, beside contracts' own routes: /api/contracts/{id}/approve/, ...
router.register("contracts", ContractWorkflowViewSet, basename="contract")
router.register("approvals", views.ApprovalViewSet, basename="approval")
router.register("admin/sla-rules", views.SLARuleViewSet, basename="sla-rule")
router.register("admin/sla-holidays", views.HolidayViewSet, basename="sla-holiday")
router.register("admin/sla-breaches", views.SLABreachViewSet, basename="sla-breach")

urlpatterns = [
    path("admin/sla-calendar/", views.SLACalendarView.as_view(), name="sla-calendar"),
    path(
        "analytics/workflows/",
        views.WorkflowAnalyticsView.as_view(),
        name="analytics-workflows",
    ),
    *router.urls,
]
