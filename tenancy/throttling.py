"""Throttles (docs/throttling.md), counted in ``tenancy.ratelimit``'s store, shared by all
workers.

* Per client: login, registration, token refresh and password change (``AUTH_THROTTLE_RATE``),
  the API's and the Django admin's logins in one budget. The client is the audit log's
  (``core.context.client_ip``: ``X-Forwarded-For`` only through ``TRUSTED_PROXY_COUNT`` proxies);
  an IPv6 client is counted by its /64, the block one subscriber usually holds.
* Per user: every authenticated POST, PUT, PATCH and DELETE (``USER_WRITE_THROTTLE_RATE``).
* Per client: pages opened by a link's token, GET and POST (``LINK_THROTTLE_RATE``).
* Per account: failed logins back off (``LOGIN_BACKOFF_*``), keyed on a keyed hash of the
  normalised e-mail, so an unknown address is treated exactly like a known one and the store
  holds no addresses. See ``login_attempt``.

Refusals are 429 with ``Retry-After`` (the JSON error of ``config.exceptions``; the admin's login
page shows a message instead).
"""

import ipaddress

from django.conf import settings
from django.utils.crypto import salted_hmac
from rest_framework.exceptions import Throttled
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import BaseThrottle

from config.env import parse_rate
from core.context import client_ip
from tenancy import ratelimit

IPV6_PREFIX = 64
_ACCOUNT_KEY_SALT = "tenancy.throttling.login-account"


def client_key(meta) -> str:
    """The client a request counts against: its address, or its /64 for IPv6."""
    address = client_ip(meta)
    if address is None:
        return "unknown"
    parsed = ipaddress.ip_address(address)
    if parsed.version == 4:
        return address
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))


def auth_wait(meta) -> int:
    """Count an authentication request of this client; 0, or the seconds it must wait."""
    rate = parse_rate(settings.AUTH_THROTTLE_RATE)
    if rate is None:
        return 0
    return ratelimit.hit(f"auth:{client_key(meta)}", *rate)


def user_write_wait(request) -> int:
    """Count a write of the authenticated user; 0, or the seconds they must wait."""
    rate = parse_rate(settings.USER_WRITE_THROTTLE_RATE)
    user = request.user  # None when unauthenticated (REST_FRAMEWORK's UNAUTHENTICATED_USER)
    if rate is None or request.method in SAFE_METHODS or user is None:
        return 0
    return ratelimit.hit(f"write:{user.pk}", *rate)


def link_wait(meta) -> int:
    """Count a request to a page a link's token opens (``LINK_THROTTLE_RATE``, per client):
    0, or the seconds it must wait. Tokens cannot be guessed; this bounds whoever tries."""
    rate = parse_rate(settings.LINK_THROTTLE_RATE)
    if rate is None:
        return 0
    return ratelimit.hit(f"link:{client_key(meta)}", *rate)


class _SharedThrottle(BaseThrottle):
    """A DRF throttle over ``tenancy.ratelimit``.

    Not DRF's ``SimpleRateThrottle``: it keeps a list of timestamps in Django's cache, read and
    written back without a lock (concurrent requests overwrite each other's counts).
    """

    def seconds_to_wait(self, request) -> int:
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        self.seconds = self.seconds_to_wait(request)
        return not self.seconds

    def wait(self) -> int:
        return self.seconds


class AuthRateThrottle(_SharedThrottle):
    """Per client IP (``AUTH_THROTTLE_RATE``): login, registration, refresh, password change."""

    def seconds_to_wait(self, request) -> int:
        return auth_wait(request.META)


class UserWriteRateThrottle(_SharedThrottle):
    """Per authenticated user, writes only (``USER_WRITE_THROTTLE_RATE``); the API's default."""

    def seconds_to_wait(self, request) -> int:
        return user_write_wait(request)


# --- failed logins back off, per account ------------------------------------------------------


class LoginBackedOff(Throttled):
    """429 for a login attempt while its account is blocked (``login_attempt``)."""

    default_detail = "Too many failed logins for this account."


def account_key(email: str) -> str:
    """The back-off's key for ``email``: a keyed hash of it, normalised (known or not)."""
    from tenancy.services import normalized_email  # services import DRF, whose settings load us

    digest = salted_hmac(_ACCOUNT_KEY_SALT, normalized_email(email), algorithm="sha256")
    return f"login:{digest.hexdigest()}"


def backoff_schedule() -> list[int]:
    """Seconds each further failure blocks for: BASE, 2 BASE, 4 BASE, ... up to MAX."""
    schedule = [settings.LOGIN_BACKOFF_BASE_SECONDS]
    while schedule[-1] < settings.LOGIN_BACKOFF_MAX_SECONDS:
        schedule.append(min(schedule[-1] * 2, settings.LOGIN_BACKOFF_MAX_SECONDS))
    return schedule


def _backoff_key(email: str, device: str | None) -> str:
    return account_key(email) + (f":device:{device}" if device else "")


def login_attempt(email: str, *, device: str | None = None) -> int:
    """Count a login attempt for ``email`` before its password is checked; 0 or seconds to wait.

    The ``LOGIN_BACKOFF_FAILURES``-th attempt without a success in between blocks the account for
    ``LOGIN_BACKOFF_BASE_SECONDS``, each further one for twice as long, up to
    ``LOGIN_BACKOFF_MAX_SECONDS``: so nobody, the owner included, is locked out for longer than
    that. While blocked, attempts are refused (even with the right password, so guessing learns
    nothing) and not counted. ``login_backoff_reset`` forgets the count; so does
    ``LOGIN_BACKOFF_WINDOW_SECONDS`` after the first attempt.

    ``device``: a browser this account logged in from before (``tenancy.admin_site``) counts
    apart, so others' failures cannot lock the owner out of it.
    """
    free = settings.LOGIN_BACKOFF_FAILURES
    if not free:
        return 0
    return ratelimit.attempt(
        _backoff_key(email, device),
        free=free,
        schedule=backoff_schedule(),
        window=settings.LOGIN_BACKOFF_WINDOW_SECONDS,
    )


def login_backoff_reset(email: str, *, device: str | None = None) -> None:
    """Forget the attempts ``login_attempt`` counted (after a successful login)."""
    if settings.LOGIN_BACKOFF_FAILURES:
        ratelimit.clear(_backoff_key(email, device))
