"""The Django admin's site, whose login is limited and audited like the API's.

* The same budget per client (``AUTH_THROTTLE_RATE``, shared with the API's auth endpoints) and
  the same per-account back-off (``tenancy.throttling.login_attempt``): the API's failures count
  here and the other way round.
* A refused login is audited by the API's own service (``login_failed``, ``via: admin``).
* A throttled login answers 429 with ``Retry-After``, on the login page saying when to try again.
* Members without admin access log in here too, for the member pages (the analytics
  dashboard): a login whose ``next`` is such a page accepts any active account.
* A browser an account logged in from is remembered (a signed cookie, ``TRUSTED_DEVICE_DAYS``):
  its attempts for that account back off on their own, so an attacker who keeps failing on the
  account cannot keep its owner out of the admin (OWASP's "device cookies"). Elsewhere the owner
  waits at most ``LOGIN_BACKOFF_MAX_SECONDS``, like everyone.
"""

import secrets
from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core import signing
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from tenancy import services, throttling
from tenancy.admin_scoping import admin_tenant
from tenancy.capabilities import ANALYTICS_VIEW
from tenancy.permissions import has_capability

PRODUCT = "Contract Approvals"

TRUSTED_DEVICE_COOKIE = "clm_admin_device"
TRUSTED_DEVICE_DAYS = 90
_TRUSTED_DEVICE_SALT = "tenancy.admin_site.trusted-device"


def trusted_device(request, email: str) -> str | None:
    """The id of this browser, if the account of ``email`` logged in from it before."""
    try:
        account, device = signing.loads(
            request.COOKIES.get(TRUSTED_DEVICE_COOKIE, ""),
            salt=_TRUSTED_DEVICE_SALT,
            max_age=TRUSTED_DEVICE_DAYS * 86400,
        )
    except (signing.BadSignature, TypeError, ValueError):
        return None
    return device if account == throttling.account_key(email) else None


def _remember_device(request, response, path: str) -> None:
    """After a login: this browser is trusted for this account (one account per browser)."""
    email = request.user.email
    device = trusted_device(request, email) or secrets.token_urlsafe(16)
    response.set_cookie(
        TRUSTED_DEVICE_COOKIE,
        signing.dumps([throttling.account_key(email), device], salt=_TRUSTED_DEVICE_SALT),
        max_age=TRUSTED_DEVICE_DAYS * 86400,
        path=path,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def _how_long(seconds: int) -> str:
    if seconds < 120:
        return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}
    minutes = -(-seconds // 60)
    return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}


# Pages for every member of a tenant (each checks its own capability), by URL name.
MEMBER_PAGES = ("dashboard",)


def _for_member_page(request) -> bool:
    """Whether the login's ``next`` is a member page of this site."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return False
    path = urlsplit(target).path
    return any(path.startswith(reverse(name)) for name in MEMBER_PAGES)


class AdminLoginForm(AdminAuthenticationForm):
    """Limits first, then the password; a refusal is audited, a success resets the back-off."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "throttled": _("Too many login attempts. Try again in %(wait)s."),
    }
    throttled_for = 0  # seconds, when this attempt was refused unchecked

    def confirm_login_allowed(self, user):
        if user.is_staff or not _for_member_page(self.request):
            return super().confirm_login_allowed(user)
        return AuthenticationForm.confirm_login_allowed(self, user)  # active accounts only

    def clean(self):
        email = self.cleaned_data.get("username")
        if not email or not self.cleaned_data.get("password"):
            return super().clean()
        device = trusted_device(self.request, email)
        self.throttled_for = throttling.auth_wait(self.request.META) or throttling.login_attempt(
            email, device=device
        )
        if self.throttled_for:
            raise ValidationError(
                self.error_messages["throttled"],
                code="throttled",
                params={"wait": _how_long(self.throttled_for)},
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            services.login_failure_record(email=email, via="admin")
            raise
        throttling.login_backoff_reset(email, device=device)
        return cleaned


class AdminSite(admin.AdminSite):
    """The default admin site (``tenancy.apps.AdminConfig``), branded as the product.

    Pages render in the administered tenant's time zone (``admin_tenant``), and the header names
    that tenant, so a platform superuser always sees whose data they are looking at.
    """

    login_form = AdminLoginForm
    site_header = PRODUCT
    site_title = PRODUCT
    index_title = "Administration"
    index_template = "admin/tenancy/index.html"

    def each_context(self, request):
        context = super().each_context(request)
        tenant = admin_tenant(request) if request.user.is_authenticated else None
        if tenant is not None:
            administering = request.user.tenant_id is None
            context["site_header"] = (
                f"{PRODUCT} · administering {tenant.name}"
                if administering
                else f"{PRODUCT} · {tenant.name}"
            )
            if administering or has_capability(request.user, ANALYTICS_VIEW):
                context["dashboard_url"] = reverse("dashboard")
        return context

    def admin_view(self, view, cacheable=False):
        """Every admin page in the tenant's time zone, rendered before the zone is left."""
        wrapped = super().admin_view(view, cacheable)

        @wraps(view)
        def in_tenant_time(request, *args, **kwargs):
            tenant = admin_tenant(request) if request.user.is_authenticated else None
            with timezone.override(tenant.timezone if tenant is not None else None):
                response = wrapped(request, *args, **kwargs)
                if hasattr(response, "render"):
                    response.render()
            return response

        return in_tenant_time

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        logged_in = request.method == "POST" and response.status_code == 302
        if logged_in and request.user.is_authenticated:
            _remember_device(request, response, reverse("admin:index", current_app=self.name))
        form = (getattr(response, "context_data", None) or {}).get("form")
        if getattr(form, "throttled_for", 0):
            response.status_code = 429
            response["Retry-After"] = str(form.throttled_for)
        return response
