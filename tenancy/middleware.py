"""Each web request's row-level security scope (``core.rls``)."""

from core import rls
from tenancy.admin_scoping import admin_tenant_id


class RowLevelSecurityMiddleware:
    """Starts every request with no scope, then the session user's, if there is one.

    API requests authenticate later, in DRF (``TenantJWTAuthentication`` narrows the scope to the
    token's tenant); this middleware covers session users, i.e. the Django admin. A tenant's staff
    work in their tenant. A platform superuser (no tenant) works in the platform scope (platform
    users and audit rows, no tenant's), or inside the one tenant they chose to administer
    (``tenancy.admin.TenantAdmin``, audited in that tenant when chosen, logged per request here):
    the web process never bypasses row-level security. Evaluating ``request.user`` here costs
    queries only when the request carries a session cookie.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with rls.request_scope():
            user = request.user
            if user.is_authenticated:
                tenant_id = admin_tenant_id(request)
                rls.activate_account(tenant_id)
                if user.tenant_id is None and tenant_id is not None:
                    rls.security_log.info(
                        "platform administrator in a tenant",
                        extra={
                            "event": "platform_admin_request",
                            "tenant": str(tenant_id),
                            "actor": str(user.pk),
                            "path": f"{request.method} {request.path}",
                        },
                    )
            return self.get_response(request)
