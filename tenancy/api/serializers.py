from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from tenancy.api.fields import TenantPrimaryKeyRelatedField
from tenancy.capabilities import ALL_CAPABILITIES
from tenancy.models import Tenant, User, UserRole
from tenancy.selectors import user_role_slugs

PASSWORD_HELP = "At least 8 characters, not too common, not entirely numeric."  # noqa: S105


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "name", "slug"]
        read_only_fields = fields


class MeSerializer(serializers.ModelSerializer):
    tenant = TenantSerializer(read_only=True)
    roles = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "tenant", "is_tenant_admin", "roles"]
        read_only_fields = fields

    def get_roles(self, user) -> list[str]:
        return user_role_slugs(user=user)


class NewUserInputSerializer(serializers.Serializer):
    """A new user's fields; the password's strength is checked with the other fields' errors.

    Whether the e-mail is taken is not checked here: the service answers that only once every
    other field is valid (docs/api.md, "Authentication and users").
    """

    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(
        write_only=True, max_length=128, trim_whitespace=False, help_text=PASSWORD_HELP
    )
    full_name = serializers.CharField(max_length=200)

    def validate_password(self, value: str) -> str:
        raw = self.initial_data if isinstance(self.initial_data, dict) else {}
        provisional = User(
            email=str(raw.get("email") or ""), full_name=str(raw.get("full_name") or "")
        )
        try:
            password_validation.validate_password(value, provisional)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from exc
        return value


class RegisterInputSerializer(NewUserInputSerializer):
    tenant_name = serializers.CharField(max_length=200)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class RegisterOutputSerializer(TokenPairSerializer):
    user = MeSerializer()
    tenant = TenantSerializer()


class TokenObtainInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class RefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=2048)


class PasswordChangeInputSerializer(serializers.Serializer):
    old_password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)
    new_password = serializers.CharField(
        write_only=True, max_length=128, trim_whitespace=False, help_text=PASSWORD_HELP
    )


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "full_name",
            "is_tenant_admin",
            "is_active",
            "date_joined",
            "manager",
        ]
        read_only_fields = fields


class UserUpdateInputSerializer(serializers.Serializer):
    manager = serializers.UUIDField(
        allow_null=True, help_text="A user of the same tenant, or null; no cycles."
    )


class UserCreateInputSerializer(NewUserInputSerializer):
    pass


class UserRoleSerializer(serializers.ModelSerializer):
    class Meta:
        model = UserRole
        fields = ["id", "user", "role", "permissions", "assigned_by", "created_at", "expires_at"]
        read_only_fields = fields


class UserRoleCreateInputSerializer(serializers.Serializer):
    user = TenantPrimaryKeyRelatedField(queryset=User.objects.all())
    role = serializers.SlugField(
        max_length=50, help_text="Role slug, e.g. `legal`: letters, digits, hyphens, underscores."
    )
    permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=ALL_CAPABILITIES),
        required=False,
        default=list,
        max_length=len(ALL_CAPABILITIES),
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate_role(self, value: str) -> str:
        return value.lower()


class OutOfOfficeSerializer(serializers.Serializer):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    cover = serializers.UUIDField(source="cover_id", help_text="Who gets your approvals meanwhile.")
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    is_active = serializers.SerializerMethodField(help_text="Whether the window is running now.")

    def get_is_active(self, window) -> bool:
        now = self.context["now"]
        return window.starts_at <= now < window.ends_at


class RoleSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    slug = serializers.SlugField(max_length=50)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    description = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default=""
    )
    holders = serializers.IntegerField(read_only=True, help_text="Current (unexpired) holders.")

    def validate_slug(self, value: str) -> str:
        return value.lower()


class RoleUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
