import uuid
import zoneinfo

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from tenancy.capabilities import CAPABILITY_CHOICES
from tenancy.scoping import TenantOwnedModel, TenantQuerySet, tenant_key


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"'{value}' is not a known IANA time zone.")


class Tenant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    sla_config_version = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Bumped by every SLA configuration change; keys the cached SLA policy.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # The nil UUID is the scope of platform rows (core.rls.PLATFORM), no tenant's id.
            models.CheckConstraint(condition=~Q(id=uuid.UUID(int=0)), name="tenant_id_not_nil"),
        ]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager.from_queryset(TenantQuerySet)):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields):
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, username):
        """The user an e-mail names, whichever tenant (``tenancy_user`` is under RLS)."""
        from core import rls
        from tenancy.selectors import account_by_email

        account = account_by_email(email=self.normalize_email(username))
        if account is None:
            raise self.model.DoesNotExist
        with rls.account_scope(account.tenant_id):
            return self.get(pk=account.id)

    def create_superuser(self, email: str, password: str | None = None, **fields):
        """Platform operators: the Django admin, one tenant at a time, no API; no tenant."""
        from core import rls

        fields.update(is_staff=True, is_superuser=True, tenant=None)
        with rls.platform_scope():
            return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="users", null=True, blank=True
    )
    email = models.EmailField(max_length=254, unique=True, help_text="Stored lower-cased.")
    full_name = models.CharField(max_length=200)
    is_tenant_admin = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May log into the Django admin.")
    date_joined = models.DateTimeField(default=timezone.now)
    auth_epoch = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text=(
            "Bumped by every revocation (password change or reset, logout from everywhere, "
            "deactivation); a JWT carrying an older epoch is refused."
        ),
    )
    manager = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reports",
        help_text='Same tenant, no cycles; a stage approver "manager" resolves to it.',
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        ordering = ["email"]
        constraints = [
            models.CheckConstraint(
                condition=Q(tenant__isnull=False) | Q(is_superuser=True),
                name="user_tenant_required_unless_superuser",
            ),
        ]
        # Finding an account by e-mail across tenants (``app_account_by_email``), any case.
        indexes = [models.Index(Lower("email"), name="user_email_lower_idx")]

    def __str__(self) -> str:
        return self.email


class UserRole(TenantOwnedModel):
    """A role (e.g. ``legal``) held by a user, maybe granting capabilities, maybe expiring."""

    tenant = tenant_key(db_index=False)  # userrole_tenant_role_idx leads with it
    # Indexed by userrole_user_role_unique (user, role).
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="role_assignments", db_index=False
    )
    role = models.SlugField(max_length=50)
    permissions = ArrayField(
        models.CharField(max_length=40, choices=CAPABILITY_CHOICES), default=list, blank=True
    )
    assigned_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["role", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "role"], name="userrole_user_role_unique"),
        ]
        indexes = [models.Index(fields=["tenant", "role"], name="userrole_tenant_role_idx")]

    def __str__(self) -> str:
        return f"{self.user} as {self.role}"

    def is_active_at(self, moment) -> bool:
        return self.expires_at is None or self.expires_at > moment


class IdempotencyRecord(TenantOwnedModel):
    """One ``Idempotency-Key`` of one user: claimed before the action runs, answered after.

    ``status_code`` is null while the first request is still running (a duplicate gets a 409);
    afterwards the first response is kept verbatim until ``expires_at`` for replays. See
    ``tenancy.idempotency``.
    """

    tenant = tenant_key(db_index=False)  # idempotency_tenant_user_key_unique leads with it
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of the method, path and canonical JSON body."
    )
    status_code = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Null while the first request is in flight."
    )
    response_body = models.TextField(blank=True, default="")
    content_type = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "user", "key"], name="idempotency_tenant_user_key_unique"
            ),
        ]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_expires_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({self.user_id})"


class RateLimitCounter(models.Model):
    """A throttle's window, or an account's failed logins (``tenancy.ratelimit``).

    Keys name a client, a user or a hashed e-mail, never a tenant's data, so the table has no
    tenant and no row-level security. It is UNLOGGED (migration 0007): it is written on every
    authenticated write, and a crash that empties it only forgives some counts.
    """

    key = models.TextField(primary_key=True)
    count = models.BigIntegerField()
    expires_at = models.DateTimeField()
    blocked_until = models.DateTimeField(null=True, blank=True, help_text="Login back-off only.")

    def __str__(self) -> str:
        return f"{self.key}: {self.count} until {self.expires_at:%Y-%m-%d %H:%M:%S}"


class Role(TenantOwnedModel):
    """A role of the tenant's catalog: what stage approvers and role assignments may name."""

    tenant = tenant_key(db_index=False)  # role_tenant_slug_uq leads with it
    slug = models.SlugField(max_length=50)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="", max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="role_tenant_slug_uq"),
        ]

    def __str__(self) -> str:
        return self.name if self.name == self.slug else f"{self.name} ({self.slug})"


class OutOfOffice(TenantOwnedModel):
    """A user's absence: while it lasts, their personal approvals go to ``cover``.

    One window per user (setting a new one replaces it). ``applied_at`` records when the user's
    pending rows were moved to the cover (``tenancy.out_of_office``); null until the window starts.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="out_of_office")
    cover = models.ForeignKey(User, on_delete=models.CASCADE, related_name="covering")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    note = models.CharField(max_length=500, blank=True, default="")
    set_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    applied_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "out-of-office window"
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="ooo_ends_after_start"
            ),
            models.CheckConstraint(condition=~Q(cover=models.F("user")), name="ooo_cover_not_self"),
        ]
        indexes = [
            # The windows whose start has not been applied yet (the SLA job and first reads).
            models.Index(
                fields=["tenant", "starts_at"],
                condition=Q(applied_at__isnull=True),
                name="ooo_unapplied_start_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} away {self.starts_at:%Y-%m-%d %H:%M} - {self.ends_at:%Y-%m-%d %H:%M}"
