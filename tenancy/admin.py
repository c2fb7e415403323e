from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm as DjangoAdminPasswordChangeForm
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.contrib.auth.forms import UserCreationForm as DjangoUserCreationForm
from django.db import transaction

from audit.services import audit_record, diff_fields
from core.context import current_request_context, set_actor
from tenancy import services
from tenancy.admin_scoping import (
    ADMINISTERED_TENANT_KEY,
    TenantAdminInlineMixin,
    TenantScopedAdmin,
    admin_tenant_id,
)
from tenancy.models import Tenant, User, UserRole
from tenancy.selectors import account_by_email

# What a user change in the admin audits (the password has its own view and is never recorded).
AUDITED_USER_FIELDS = (
    "email",
    "full_name",
    "tenant_id",
    "is_active",
    "is_tenant_admin",
    "is_staff",
    "is_superuser",
)


def _user_snapshot(user: User) -> dict:
    return {field.removesuffix("_id"): getattr(user, field) for field in AUDITED_USER_FIELDS}


def _role_snapshot(assignment: UserRole) -> dict:
    return {
        "user": str(assignment.user_id),
        "role": assignment.role,
        "permissions": sorted(assignment.permissions),
        "expires_at": assignment.expires_at,
    }


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    """Tenants. A platform superuser sees them all and picks the one to administer: the rest of
    the admin then shows that tenant's rows only (row-level security shows no other's)."""

    list_display = ["name", "slug", "timezone", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["created_at"]
    actions = ["administer", "stop_administering"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        tenant_id = request.user.tenant_id
        return queryset if tenant_id is None else queryset.filter(pk=tenant_id)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if request.user.tenant_id is not None or not request.user.is_superuser:
            actions.pop("administer", None)
            actions.pop("stop_administering", None)
        return actions

    @admin.action(description="Administer the selected tenant")
    def administer(self, request, queryset):
        if len(queryset) != 1:
            self.message_user(request, "Select exactly one tenant to administer.", messages.ERROR)
            return
        [tenant] = queryset
        services.platform_admin_enter(admin=request.user, tenant=tenant)
        request.session[ADMINISTERED_TENANT_KEY] = str(tenant.pk)
        self.message_user(
            request,
            f"You administer {tenant.name} now: the admin shows its rows only. Its audit log "
            "records this. To leave, run “Stop administering a tenant” on any tenant.",
        )

    @admin.action(description="Stop administering a tenant")
    def stop_administering(self, request, queryset):
        request.session.pop(ADMINISTERED_TENANT_KEY, None)
        self.message_user(request, "You administer no tenant: the admin shows platform rows.")


class AvailableEmailMixin:
    """The e-mail is stored lower-cased and must be free in every tenant, as in the API.

    Users are under row-level security, so the form's own uniqueness check would only see this
    tenant's: another tenant's address would then fail on the unique index, a 500.
    """

    def clean_email(self):
        email = services.normalized_email(self.cleaned_data["email"])
        account = account_by_email(email=email)
        if account is not None and account.id != self.instance.pk:
            raise forms.ValidationError(services.EMAIL_UNAVAILABLE)
        return email


class UserCreationForm(AvailableEmailMixin, DjangoUserCreationForm):
    class Meta:
        model = User
        fields = ["email", "full_name"]


class UserChangeForm(AvailableEmailMixin, DjangoUserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class AdminPasswordChangeForm(DjangoAdminPasswordChangeForm):
    """The admin's password form: a reset ends every session of the user, and is audited."""

    def save(self, commit=True):
        with transaction.atomic():
            user = super().save(commit=commit)
            if commit:
                context = current_request_context()
                services.user_password_reset(
                    user=user, reset_by=context.actor_id if context else None
                )
        return user


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
    change_password_form = AdminPasswordChangeForm
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

    def user_change_password(self, request, id, form_url=""):
        set_actor(request.user.pk)  # the reset's audit row names the administrator
        return super().user_change_password(request, id, form_url)

    def save_model(self, request, obj, form, change):
        """Saved and audited like the API's writes (``user_created``; ``user_updated`` here).

        Deactivating a user ends every session of it (``services.user_tokens_revoke``).
        """
        before = _user_snapshot(User.objects.get(pk=obj.pk)) if change else None
        tenant_id = obj.tenant_id or admin_tenant_id(request)
        if not change and tenant_id is not None:  # platform users are no tenant's resource
            services.check_user_quota(tenant=Tenant.objects.get(pk=tenant_id))
        super().save_model(request, obj, form, change)
        if change and before["is_active"] and not obj.is_active:
            services.user_tokens_revoke(user=obj)
        if not change:
            audit_record(
                action="user_created",
                tenant=obj.tenant,
                actor=request.user,
                resource=obj,
                changes={"email": [None, obj.email], "full_name": [None, obj.full_name]},
            )
            return
        changes = diff_fields(before, _user_snapshot(obj))
        if changes:
            audit_record(
                action="user_updated",
                tenant=obj.tenant,
                actor=request.user,
                resource=obj,
                changes=changes,
            )

    def save_formset(self, request, form, formset, change):
        """Role rows added, edited or removed inline are audited like the API's role endpoints."""
        stored = UserRole.objects.in_bulk(
            [inline.instance.pk for inline in formset.initial_forms if inline.instance.pk]
        )
        for instance in formset.save(commit=False):
            adding = instance._state.adding
            instance.tenant_id = form.instance.tenant_id
            if instance.assigned_by_id is None:
                instance.assigned_by = request.user
            instance.save()
            before = {} if adding else _role_snapshot(stored[instance.pk])
            changes = diff_fields(before, _role_snapshot(instance))
            if adding or changes:
                audit_record(
                    action="role_assigned" if adding else "role_updated",
                    tenant=form.instance.tenant,
                    actor=request.user,
                    resource=instance,
                    changes=changes,
                )
        for removed in formset.deleted_objects:
            services.role_revoke(assignment=removed, revoked_by=request.user)
