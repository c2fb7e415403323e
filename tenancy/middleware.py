"""Each web request's row-level security scope (``tenancy.rls``)."""

from audit.services import audit_rls_bypass
from tenancy import rls


class RowLevelSecurityMiddleware:
    """Starts every request with no scope, then the session user's, if there is one.

    API requests authenticate later, in DRF (``TenantJWTAuthentication`` narrows the scope to the
    token's tenant); this middleware covers session users, i.e. the Django admin. A tenant's staff
    see their tenant; a platform superuser (no tenant) administers every tenant, which is an
    explicit bypass, logged and audited per request. Evaluating ``request.user`` here costs a
    query only when the request carries a session cookie.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with rls.request_scope():
            user = request.user
            if user.is_authenticated and user.tenant_id is not None:
                rls.activate_tenant(user.tenant_id)
            elif user.is_authenticated and user.is_superuser:
                reason = f"platform administrator: {request.method} {request.path}"
                rls.activate_bypass(reason)
                audit_rls_bypass(reason=reason, actor=user)
            return self.get_response(request)
