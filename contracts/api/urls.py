from rest_framework.routers import SimpleRouter

from contracts.api.views import ClauseRuleViewSet

router = SimpleRouter()
# /api/contracts/ is served by approvals (approvals.api.contract_record_views): its writes route
# the contract's workflow.
router.register("admin/clauses", ClauseRuleViewSet, basename="clause-rule")
urlpatterns = router.urls
