from rest_framework.routers import SimpleRouter

from notifications.api.views import NotificationViewSet, WebhookEndpointViewSet

router = SimpleRouter()
router.register("notifications", NotificationViewSet, basename="notification")
router.register("admin/webhooks", WebhookEndpointViewSet, basename="webhook-endpoint")
urlpatterns = router.urls
