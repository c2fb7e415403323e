"""Django admin, scoped like the API: staff of a tenant see and pick only their tenant's rows."""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from config.exceptions import QuotaExceeded
from tenancy.models import Tenant
from tenancy.scoping import is_tenant_owned

# The tenant a platform superuser administers, in their session (``TenantAdmin``).
ADMINISTERED_TENANT_KEY = "administered_tenant"


def admin_tenant_id(request):
    """The tenant whose rows the admin shows: the staff user's own, or the one a platform
    superuser chose to administer; None for a platform superuser who chose none (who then sees
    platform rows only: row-level security shows no tenant's)."""
    if request.user.tenant_id is not None or not request.user.is_superuser:
        return request.user.tenant_id
    return request.session.get(ADMINISTERED_TENANT_KEY)


def admin_tenant(request):
    """The ``Tenant`` of ``admin_tenant_id`` (None: none), loaded once per request."""
    if not hasattr(request, "_admin_tenant"):
        tenant_id = admin_tenant_id(request)
        if tenant_id is None:
            request._admin_tenant = None
        elif tenant_id == request.user.tenant_id:
            request._admin_tenant = request.user.tenant
        else:
            request._admin_tenant = Tenant.objects.filter(pk=tenant_id).first()
    return request._admin_tenant


class TenantScopedAdmin(admin.ModelAdmin):
    """Base ModelAdmin: querysets, foreign-key choices and new rows are limited to one tenant.

    A tenant admin with ``is_staff`` manages their tenant here without Django model permissions.
    """

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        tenant_id = admin_tenant_id(request)
        return queryset if tenant_id is None else queryset.filter(tenant_id=tenant_id)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        tenant_id = admin_tenant_id(request)
        related = db_field.related_model
        if tenant_id is not None:
            if related._meta.label == "tenancy.Tenant":
                kwargs["queryset"] = related.objects.filter(pk=tenant_id)
            elif is_tenant_owned(related):
                kwargs["queryset"] = related._default_manager.filter(tenant_id=tenant_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def changeform_view(self, request, *args, **kwargs):
        """A quota refused by a service (its transaction rolled back) is a message, not a 500."""
        try:
            return super().changeform_view(request, *args, **kwargs)
        except QuotaExceeded as exc:
            self.message_user(request, str(exc.detail), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        if not change and getattr(obj, "tenant_id", None) is None:
            obj.tenant_id = admin_tenant_id(request)
        super().save_model(request, obj, form, change)

    def _is_tenant_admin(self, request) -> bool:
        return is_staff_tenant_admin(request)

    def has_module_permission(self, request):
        return self._is_tenant_admin(request) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._is_tenant_admin(request) or super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._is_tenant_admin(request) or super().has_change_permission(request, obj)

    def has_add_permission(self, request):
        # Rows need a tenant: a platform superuser adds inside the tenant they administer.
        if admin_tenant_id(request) is None:
            return False
        return self._is_tenant_admin(request) or super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self._is_tenant_admin(request) or super().has_delete_permission(request, obj)


def is_staff_tenant_admin(request) -> bool:
    user = request.user
    return user.is_active and user.is_staff and user.is_tenant_admin


class TenantAdminInlineMixin:
    """Inlines editable by a staff tenant admin (whose parent object is already tenant-scoped)."""

    def has_view_permission(self, request, obj=None):
        return is_staff_tenant_admin(request) or super().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return is_staff_tenant_admin(request) or super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return is_staff_tenant_admin(request) or super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return is_staff_tenant_admin(request) or super().has_delete_permission(request, obj)


class ReadOnlyAdminMixin:
    """For rows the service owns (audit, instances): visible, never edited here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """Rows the services own, listed under their parent: visible to its viewers, never edited.

    Scoped by the parent, whose admin is tenant-scoped (and by row-level security below it).
    """

    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return is_staff_tenant_admin(request) or super().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
