from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.settings import api_settings

from core.context import set_actor
from tenancy.models import User
from tenancy.tokens import activate_token_tenant, check_not_revoked


class TenantJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication, loading the user with its tenant in the same query.

    It replaces simplejwt's ``get_user``: the request's scope becomes the token's tenant first
    (``tenancy_user`` is under row-level security), a token without one is refused, and so is a
    token from before a revocation (``tenancy.tokens``).
    """

    def get_user(self, validated_token):
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        activate_token_tenant(validated_token)
        try:
            user = User.objects.select_related("tenant").get(pk=user_id)
        except (User.DoesNotExist, ValueError, TypeError) as exc:
            raise AuthenticationFailed("User not found", code="user_not_found") from exc
        if not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        check_not_revoked(validated_token, user)  # the user is loaded already: no extra query
        set_actor(user.pk)
        return user
