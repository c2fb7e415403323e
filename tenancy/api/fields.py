from rest_framework import serializers


class TenantPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key accepted only when the object belongs to the caller's tenant.

    Another tenant's id gets the same message as a non-existent one, so ids cannot be probed.
    """

    def get_queryset(self):
        queryset = super().get_queryset()
        request = self.context.get("request")
        tenant_id = getattr(getattr(request, "user", None), "tenant_id", None)
        if tenant_id is None:
            return queryset.none()
        return queryset.filter(tenant_id=tenant_id)
