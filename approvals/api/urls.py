from django.urls import path
from rest_framework.routers import SimpleRouter

from approvals.api import views
from approvals.api.contract_record_views import ContractViewSet
from approvals.api.contract_views import ContractWorkflowViewSet

# The contract's records (list, read, create, edit, amend): their writes route its workflow.
# A router of its own, as the workflow actions below share the basename "contract".
contract_router = SimpleRouter()
contract_router.register("contracts", ContractViewSet, basename="contract")

router = SimpleRouter()
# A contract's workflow actions, beside contracts' own routes: /api/contracts/{id}/approve/, ...
router.register("contracts", ContractWorkflowViewSet, basename="contract")
router.register("approvals", views.ApprovalViewSet, basename="approval")
router.register("admin/sla-rules", views.SLARuleViewSet, basename="sla-rule")
router.register("admin/sla-holidays", views.HolidayViewSet, basename="sla-holiday")
router.register("admin/sla-breaches", views.SLABreachViewSet, basename="sla-breach")

urlpatterns = [
    *contract_router.urls,
    path("admin/sla-calendar/", views.SLACalendarView.as_view(), name="sla-calendar"),
    path(
        "analytics/workflows/",
        views.WorkflowAnalyticsView.as_view(),
        name="analytics-workflows",
    ),
    *router.urls,
]
