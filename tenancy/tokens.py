"""The JWTs of a session: who, of which ``tenant``, since when (``auth_time``), under which
``auth_epoch``.

``tenant`` is the user's tenant: ``tenancy_user`` and the token tables are under row-level
security, so a request must know the tenant before it can read the user or the blacklist, and a
claim signed with the JWT key is a tenant the caller cannot choose. A token without it (from
before the claim existed, or minted by plain ``RefreshToken.for_user``) is refused with a 401:
sign in again.

``auth_epoch`` is the user's revocation counter when the session began: every revocation
(password change or reset, logout from everywhere, deactivation) bumps ``User.auth_epoch``, and a
token carrying an older value is refused, access tokens at once (``TenantJWTAuthentication``),
refresh tokens on refresh. A counter rather than a timestamp: a JWT's ``iat`` has whole seconds,
so a timestamp cannot tell a token issued just before a revocation from one issued just after.

``auth_time`` is the login, carried unchanged through rotation; refreshing a session older than
``JWT_MAX_SESSION`` is refused, and no rotated refresh token outlives it.
"""

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken, Token, UntypedToken
from rest_framework_simplejwt.utils import datetime_from_epoch, datetime_to_epoch

from core import rls
from tenancy.models import User

EPOCH_CLAIM = "auth_epoch"
AUTH_TIME_CLAIM = "auth_time"
TENANT_CLAIM = "tenant"
NO_TENANT = "Token has no tenant: sign in again."


class SessionRefreshToken(RefreshToken):
    @classmethod
    def for_user(cls, user):
        """Within the user's tenant's scope (the token's row is under RLS through the user)."""
        token = super().for_user(user)
        token[TENANT_CLAIM] = str(user.tenant_id) if user.tenant_id else None
        token[EPOCH_CLAIM] = user.auth_epoch
        token[AUTH_TIME_CLAIM] = datetime_to_epoch(token.current_time)
        return token


def token_pair(user) -> dict:
    """A new session's pair (login, registration)."""
    refresh = SessionRefreshToken.for_user(user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def activate_token_tenant(token: Token) -> None:
    """Narrow the request's scope to the token's tenant, or raise ``AuthenticationFailed``."""
    try:
        rls.activate_tenant(token.get(TENANT_CLAIM) or "")
    except ValueError as exc:
        raise AuthenticationFailed(NO_TENANT, code="token_not_valid") from exc


def check_not_revoked(token: Token, user) -> None:
    """401 if a revocation of the user happened after this token's session began."""
    if token.get(EPOCH_CLAIM, 0) != user.auth_epoch:
        raise AuthenticationFailed("Token has been revoked: sign in again.", code="token_revoked")


def session_end(token: Token) -> datetime:
    """When the token's session ends. A token without ``auth_time`` dates its session from its own
    ``iat`` (its rotations keep that date, so such a session is capped all the same)."""
    started = token.get(AUTH_TIME_CLAIM, token["iat"])
    return datetime_from_epoch(started) + settings.JWT_MAX_SESSION


class SessionTokenRefreshSerializer(TokenRefreshSerializer):
    """simplejwt's refresh with rotation and blacklisting, which also refuses the token of a
    deleted, inactive or revoked user (401, where simplejwt's raised a 500 for a deleted one) and
    of a session past ``JWT_MAX_SESSION``."""

    token_class = SessionRefreshToken

    def validate(self, attrs: dict) -> dict:
        # The signature first (TokenError): only then is the tenant claim the scope to read in.
        activate_token_tenant(UntypedToken(attrs["refresh"]))
        refresh = self.token_class(attrs["refresh"])  # TokenError: invalid, expired, blacklisted
        user = self._user(refresh)
        if user is None or not user.is_active:
            raise AuthenticationFailed(
                self.error_messages["no_active_account"], code="no_active_account"
            )
        check_not_revoked(refresh, user)
        ends = session_end(refresh)
        if refresh.current_time >= ends:
            raise AuthenticationFailed(
                "Session is older than the maximum session age: sign in again.",
                code="session_expired",
            )
        refresh.payload.setdefault(AUTH_TIME_CLAIM, refresh["iat"])
        last = datetime_to_epoch(ends)
        access = refresh.access_token
        access["exp"] = min(access["exp"], last)
        refresh.blacklist()
        refresh.set_jti()
        refresh.set_exp()
        refresh.set_iat()
        refresh["exp"] = min(refresh["exp"], last)
        refresh.outstand()
        return {"access": str(access), "refresh": str(refresh)}

    @staticmethod
    def _user(refresh: Token):
        try:
            return User.objects.filter(pk=refresh.get(api_settings.USER_ID_CLAIM)).first()
        except (ValueError, TypeError, DjangoValidationError):
            return None
