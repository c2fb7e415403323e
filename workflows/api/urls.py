from rest_framework.routers import SimpleRouter

from workflows.api.views import WorkflowDefinitionViewSet

router = SimpleRouter()
router.register("workflows/config", WorkflowDefinitionViewSet, basename="workflow-definition")
urlpatterns = router.urls
