from django.urls import path
from rest_framework.routers import SimpleRouter

from documents.api import views
from tenancy.scoping import UUID_PATH_PATTERN

router = SimpleRouter()
router.register(
    rf"contracts/(?P<contract_pk>{UUID_PATH_PATTERN})/documents",
    views.DocumentViewSet,
    basename="contract-document",
)
router.register(
    rf"contracts/(?P<contract_pk>{UUID_PATH_PATTERN})/signature-requests",
    views.SignatureRequestViewSet,
    basename="contract-signature-request",
)

urlpatterns = [
    path("documents/verify/", views.DocumentVerifyView.as_view(), name="document-verify"),
    path(
        "documents/providers/<str:provider_name>/<uuid:tenant_id>/webhook/",
        views.ProviderWebhookView.as_view(),
        name="signature-provider-webhook",
    ),
    *router.urls,
]
