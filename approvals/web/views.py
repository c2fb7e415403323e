"""The analytics dashboard: ``approvals.analytics`` drawn for people, server-rendered.

Session login, shared with the Django admin (anonymous visitors go to its login page). Members
with ``analytics.view`` see their own tenant; a platform superuser sees the tenant they
administer (``tenancy.admin_scoping``), as the admin does. ``RowLevelSecurityMiddleware`` has
already scoped the request's queries to that tenant, like every admin page.
"""

from django import forms
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from approvals.analytics import analytics_period, dashboard_figures
from approvals.web import charts
from tenancy.admin_scoping import admin_tenant
from tenancy.capabilities import ANALYTICS_VIEW
from tenancy.permissions import has_capability

SLOWEST_STAGES = 3


class PeriodForm(forms.Form):
    """The period as GET parameters: two optional local dates, both days included."""

    date_from = forms.DateField(
        required=False,
        label="From",
        widget=forms.DateInput(attrs={"type": "date", "aria-describedby": "id_date_from-help"}),
        help_text="Workflows started on or after this day.",
    )
    date_to = forms.DateField(
        required=False,
        label="To",
        widget=forms.DateInput(attrs={"type": "date", "aria-describedby": "id_date_to-help"}),
        help_text="Up to and including this day.",
    )

    def __init__(self, *args, timezone_name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.timezone_name = timezone_name

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                analytics_period(
                    cleaned.get("date_from"), cleaned.get("date_to"), timezone=self.timezone_name
                )
            except ValidationError as exc:
                for field, messages in exc.message_dict.items():
                    self.add_error(field, messages)
        return cleaned


def _may_view(request, tenant) -> bool:
    user = request.user
    if tenant is None:
        return False
    if user.tenant_id is None:  # a platform superuser, administering ``tenant``
        return user.is_superuser
    return has_capability(user, ANALYTICS_VIEW)


def _page(request, template: str, context: dict, status: int = 200):
    return render(request, f"approvals/{template}", context, status=status)


@require_GET
def dashboard(request):
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    tenant = admin_tenant(request)
    if not _may_view(request, tenant):
        return _page(request, "dashboard_forbidden.html", {"tenant": tenant}, status=403)
    form = PeriodForm(request.GET, timezone_name=tenant.timezone)
    context = {"tenant": tenant, "form": form}
    if not form.is_valid():
        return _page(request, "dashboard.html", context, status=400)
    with timezone.override(tenant.timezone):
        figures = dashboard_figures(
            tenant_id=tenant.pk,
            date_from=form.cleaned_data["date_from"],
            date_to=form.cleaned_data["date_to"],
            timezone=tenant.timezone,
        )
        context |= _presented(figures)
        return _page(request, "dashboard.html", context)


def _presented(figures: dict) -> dict:
    """The figures with their charts, and the stage rows with their SLA as text."""
    for row in figures["stages"]:
        row["sla_text"] = charts.sla_text(row)
    return {
        "figures": figures,
        "slowest_stages": figures["stages"][:SLOWEST_STAGES],
        "completion_chart": charts.completion_chart(figures["workflows"]),
        "stage_chart": charts.stage_hours_chart(figures["stages"]),
        "weekly_chart": charts.weekly_compliance_chart(figures["weeks"]),
    }


@require_POST
def dashboard_logout(request):
    """Members without admin access cannot use the admin's logout; this one is theirs."""
    logout(request)
    return redirect(f"{reverse('admin:login')}?next={reverse('dashboard')}")
