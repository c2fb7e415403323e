from rest_framework.routers import SimpleRouter

from contracts.api.views import ClauseRuleViewSet, ContractViewSet

router = SimpleRouter()
router.register("contracts", ContractViewSet, basename="contract")
router.register("admin/clauses", ClauseRuleViewSet, basename="clause-rule")
urlpatterns = router.urls
