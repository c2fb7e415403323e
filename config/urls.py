from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import health
from config.api_root import ApiRootView

handler400 = "config.exceptions.json_bad_request"
handler403 = "config.exceptions.json_permission_denied"
handler404 = "config.exceptions.json_not_found"
handler500 = "config.exceptions.json_server_error"

api_patterns = [
    path("", ApiRootView.as_view(), name="api-root"),
    path("", include("tenancy.api.urls")),
    path("", include("contracts.api.urls")),
    path("", include("workflows.api.urls")),
    path("", include("approvals.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("notifications.api.urls")),
    path("", include("documents.api.urls")),
]

urlpatterns = [
    # The site's front page (also the admin's "View site") is the API documentation.
    path("", RedirectView.as_view(pattern_name="docs"), name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/", include(api_patterns)),
    path("approve/", include("approvals.web.link_urls")),
    path("admin/", admin.site.urls),
    path("dashboard/", include("approvals.web.urls")),
    path("", include("documents.web.urls")),
]
