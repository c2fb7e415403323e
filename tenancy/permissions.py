"""The one place capabilities are checked."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from tenancy.selectors import user_capabilities


class IsTenantMember(BasePermission):
    """Authenticated and belonging to a tenant (platform superusers use the Django admin)."""

    message = "Authentication credentials were not provided or do not belong to a tenant."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.tenant_id)


def has_capability(user, capability: str) -> bool:
    return capability in user_capabilities(user=user)


def capability_required(capability: str, *, writes_only: bool = False) -> type[BasePermission]:
    """A permission class requiring ``capability`` (for writes only when ``writes_only``)."""

    class CapabilityRequired(IsTenantMember):
        message = f"This action requires the '{capability}' capability."

        def has_permission(self, request, view) -> bool:
            if not super().has_permission(request, view):
                return False
            if writes_only and request.method in SAFE_METHODS:
                return True
            return has_capability(request.user, capability)

    CapabilityRequired.__name__ = f"CapabilityRequired[{capability}]"
    return CapabilityRequired
