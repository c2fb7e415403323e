from django.urls import path
from rest_framework.routers import SimpleRouter

from tenancy.api import views
from tenancy.api.audit_views import AuditLogViewSet

router = SimpleRouter()
router.register("admin/users/roles", views.UserRoleViewSet, basename="user-role")
router.register("admin/roles", views.RoleViewSet, basename="role")
router.register("admin/users", views.UserViewSet, basename="user")
router.register("audit-logs", AuditLogViewSet, basename="audit-log")

urlpatterns = [
    path("auth/register/", views.RegisterView.as_view(), name="auth-register"),
    path("auth/token/", views.TokenObtainView.as_view(), name="auth-token"),
    path("auth/token/refresh/", views.TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/logout/", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/logout-all/", views.LogoutAllView.as_view(), name="auth-logout-all"),
    path("auth/password/", views.PasswordChangeView.as_view(), name="auth-password"),
    path("auth/me/", views.MeView.as_view(), name="auth-me"),
    path("auth/me/out-of-office/", views.MyOutOfOfficeView.as_view(), name="auth-me-ooo"),
    *router.urls,
]
