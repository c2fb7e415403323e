from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from core import rls
from tenancy import out_of_office, roles, services
from tenancy.api import serializers
from tenancy.capabilities import ROLES_MANAGE, USERS_MANAGE
from tenancy.filtersets import UserFilterSet, UserRoleFilterSet
from tenancy.models import Role, User, UserRole
from tenancy.permissions import capability_required
from tenancy.scoping import TenantScopedViewSetMixin
from tenancy.throttling import AuthRateThrottle, UserWriteRateThrottle
from tenancy.tokens import SessionTokenRefreshSerializer, token_pair


class PublicAuthView(APIView):
    """Endpoints reached without a token; failures are still 401 with a Bearer challenge."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthRateThrottle]

    def get_authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class RegisterView(PublicAuthView):
    """Create a tenant and its first user (the tenant admin); returns tokens."""

    @extend_schema(
        request=serializers.RegisterInputSerializer,
        responses={201: serializers.RegisterOutputSerializer},
        tags=["auth"],
    )
    def post(self, request):
        data = serializers.RegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.tenant_register(**data.validated_data)
        rls.activate_tenant(user.tenant_id)  # the new account's request, as after a login
        body = {
            "user": serializers.MeSerializer(user).data,
            "tenant": serializers.TenantSerializer(user.tenant).data,
            **token_pair(user),
        }
        return Response(body, status=status.HTTP_201_CREATED)


class TokenObtainView(PublicAuthView):
    """Log in with email and password; every attempt is audited, failures back off per account."""

    @extend_schema(
        request=serializers.TokenObtainInputSerializer,
        responses={200: serializers.TokenPairSerializer},
        tags=["auth"],
    )
    def post(self, request):
        data = serializers.TokenObtainInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_login(request=request, **data.validated_data)
        return Response(token_pair(user))


class TokenRefreshView(PublicAuthView):
    """Exchange a refresh token for a new pair; the old refresh token is blacklisted.

    401 for a token revoked (password change, logout everywhere, deactivation), of a deleted
    user, or of a session older than ``JWT_MAX_SESSION_DAYS``.
    """

    @extend_schema(
        request=serializers.RefreshInputSerializer,
        responses={200: serializers.TokenPairSerializer},
        tags=["auth"],
    )
    def post(self, request):
        data = SessionTokenRefreshSerializer(data=request.data)
        try:
            data.is_valid(raise_exception=True)
        except TokenError as exc:
            raise InvalidToken(str(exc)) from exc
        return Response(data.validated_data)


class LogoutView(APIView):
    """Blacklist the given refresh token (205)."""

    @extend_schema(request=serializers.RefreshInputSerializer, responses={205: None}, tags=["auth"])
    def post(self, request):
        data = serializers.RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_logout(user=request.user, refresh=data.validated_data["refresh"])
        return Response(status=status.HTTP_205_RESET_CONTENT)


class LogoutAllView(APIView):
    """Log out everywhere (205): every refresh token of the caller is revoked, and access tokens
    issued before, this request's included, stop working at once."""

    @extend_schema(request=None, responses={205: None}, tags=["auth"])
    def post(self, request):
        services.user_logout_all(user=request.user)
        return Response(status=status.HTTP_205_RESET_CONTENT)


class PasswordChangeView(APIView):
    """Change the caller's password (204). Every session of the caller ends, as with logout-all:
    sign in again with the new password."""

    # Guessing `old_password` is limited like a login, on top of the per-user write limit.
    throttle_classes = [AuthRateThrottle, UserWriteRateThrottle]

    @extend_schema(
        request=serializers.PasswordChangeInputSerializer, responses={204: None}, tags=["auth"]
    )
    def post(self, request):
        data = serializers.PasswordChangeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.password_change(user=request.user, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(responses=serializers.MeSerializer, tags=["auth"])
    def get(self, request):
        return Response(serializers.MeSerializer(request.user).data)


def _out_of_office_response(window) -> Response:
    if window is None:
        raise NotFound("No out-of-office window is set.")
    return Response(serializers.OutOfOfficeSerializer(window, context={"now": timezone.now()}).data)


class OutOfOfficeMixin:
    """GET, PUT and DELETE of one user's out-of-office window (whose: ``window_owner``)."""

    def _put_window(self, request, owner):
        body = serializers.OutOfOfficeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        window = out_of_office.out_of_office_set(
            user=owner,
            cover_id=data["cover_id"],
            starts_at=data["starts_at"],
            ends_at=data["ends_at"],
            note=data["note"],
            set_by=request.user,
        )
        return _out_of_office_response(window)

    def _window_actions(self, request, owner):
        if request.method == "PUT":
            return self._put_window(request, owner)
        if request.method == "DELETE":
            if out_of_office.window_for(user=owner) is None:
                raise NotFound("No out-of-office window is set.")
            out_of_office.out_of_office_clear(user=owner, cleared_by=request.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        return _out_of_office_response(out_of_office.window_for(user=owner))


@extend_schema(tags=["auth"])
class MyOutOfOfficeView(OutOfOfficeMixin, APIView):
    """The caller's own out-of-office window: their personal approvals go to the cover."""

    @extend_schema(responses=serializers.OutOfOfficeSerializer)
    def get(self, request):
        return self._window_actions(request, request.user)

    @extend_schema(
        request=serializers.OutOfOfficeSerializer, responses=serializers.OutOfOfficeSerializer
    )
    def put(self, request):
        return self._window_actions(request, request.user)

    @extend_schema(responses={204: None})
    def delete(self, request):
        return self._window_actions(request, request.user)


@extend_schema(tags=["admin: users"])
class UserViewSet(
    OutOfOfficeMixin,
    TenantScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Users of the caller's tenant. Any member may read; creating needs `users.manage`."""

    queryset = User.objects.all()
    serializer_class = serializers.UserSerializer
    permission_classes = [capability_required(USERS_MANAGE, writes_only=True)]
    filterset_class = UserFilterSet

    @extend_schema(
        request=serializers.UserCreateInputSerializer,
        responses={201: serializers.UserSerializer},
    )
    def create(self, request):
        data = serializers.UserCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_create(
            tenant=request.user.tenant, created_by=request.user, **data.validated_data
        )
        return Response(serializers.UserSerializer(user).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.UserUpdateInputSerializer, responses=serializers.UserSerializer
    )
    def partial_update(self, request, pk=None):
        """Set the user's manager (`users.manage`)."""
        user = self.get_object()
        data = serializers.UserUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_set_manager(
            user=user, manager_id=data.validated_data["manager"], updated_by=request.user
        )
        return Response(serializers.UserSerializer(user).data)

    @extend_schema(
        methods=["GET"], responses=serializers.OutOfOfficeSerializer, operation_id="user_ooo_get"
    )
    @extend_schema(
        methods=["PUT"],
        request=serializers.OutOfOfficeSerializer,
        responses=serializers.OutOfOfficeSerializer,
    )
    @extend_schema(methods=["DELETE"], responses={204: None})
    @action(detail=True, methods=["get", "put", "delete"], url_path="out-of-office")
    def out_of_office(self, request, pk=None):
        """Another user's out-of-office window (`users.manage` to change it)."""
        return self._window_actions(request, self.get_object())


@extend_schema(tags=["admin: roles"])
class RoleViewSet(TenantScopedViewSetMixin, viewsets.ModelViewSet):
    """The tenant's role catalog: what stage approvers and role assignments may name. Any member
    may read; writes need `roles.manage`. A role in use cannot be deleted (409)."""

    queryset = Role.objects.all()
    selector = roles.role_list
    serializer_class = serializers.RoleSerializer
    permission_classes = [capability_required(ROLES_MANAGE, writes_only=True)]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = roles.role_create(
            tenant=self.request.user.tenant,
            slug=data["slug"],
            name=data["name"],
            description=data["description"],
            created_by=self.request.user,
        )
        serializer.instance.holders = 0

    @extend_schema(request=serializers.RoleUpdateSerializer, responses=serializers.RoleSerializer)
    def partial_update(self, request, pk=None):
        role = self.get_object()
        data = serializers.RoleUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        role = roles.role_update(role=role, updated_by=request.user, **data.validated_data)
        return Response(serializers.RoleSerializer(role).data)

    def perform_destroy(self, instance):
        roles.role_delete(role=instance, deleted_by=self.request.user)


@extend_schema(tags=["admin: users"])
class UserRoleViewSet(
    TenantScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Role assignments (`roles.manage`). Revoking (DELETE) is audited."""

    queryset = UserRole.objects.all()
    serializer_class = serializers.UserRoleSerializer
    permission_classes = [capability_required(ROLES_MANAGE)]
    filterset_class = UserRoleFilterSet

    @extend_schema(
        request=serializers.UserRoleCreateInputSerializer,
        responses={201: serializers.UserRoleSerializer},
    )
    def create(self, request):
        data = serializers.UserRoleCreateInputSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        data.is_valid(raise_exception=True)
        assignment = services.role_assign(
            tenant=request.user.tenant, assigned_by=request.user, **data.validated_data
        )
        return Response(
            serializers.UserRoleSerializer(assignment).data, status=status.HTTP_201_CREATED
        )

    def perform_destroy(self, instance):
        services.role_revoke(assignment=instance, revoked_by=self.request.user)
