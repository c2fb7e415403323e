from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.contrib.auth.forms import UserCreationForm as DjangoUserCreationForm

from tenancy.admin_scoping import TenantAdminInlineMixin, TenantScopedAdmin, admin_tenant_id
from tenancy.models import Tenant, User, UserRole


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "timezone", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        tenant_id = admin_tenant_id(request)
        return queryset if tenant_id is None else queryset.filter(pk=tenant_id)


class UserCreationForm(DjangoUserCreationForm):
    class Meta:
        model = User
        fields = ["email", "full_name"]


class UserChangeForm(DjangoUserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class UserRoleInline(TenantAdminInlineMixin, admin.TabularInline):
    model = UserRole
    fk_name = "user"
    extra = 0
    fields = ["role", "permissions", "expires_at", "assigned_by", "created_at"]
    readonly_fields = ["assigned_by", "created_at"]


@admin.register(User)
class UserAdmin(TenantScopedAdmin, DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    inlines = [UserRoleInline]
    ordering = ["email"]
    list_display = ["email", "full_name", "tenant", "is_tenant_admin", "is_active", "is_staff"]
    list_filter = ["is_tenant_admin", "is_active", "is_staff"]
    search_fields = ["email", "full_name"]
    readonly_fields = ["date_joined", "last_login"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["full_name", "tenant"]}),
        ("Access", {"fields": ["is_active", "is_tenant_admin", "is_staff"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "full_name", "password1", "password2"]})
    ]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser and obj is not None:
            return [*fieldsets, ("Platform", {"fields": ["is_superuser"]})]
        return fieldsets

    def save_formset(self, request, form, formset, change):
        for instance in formset.save(commit=False):
            instance.tenant_id = form.instance.tenant_id
            if instance.assigned_by_id is None:
                instance.assigned_by = request.user
            instance.save()
        for removed in formset.deleted_objects:
            removed.delete()
