"""Query parameters of GET /api/audit-logs/. A malformed value is a 400 naming the parameter."""

import re
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta

import django_filters
from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework.exceptions import ValidationError

from audit.models import AuditLog

ACTION_PATTERN = re.compile(r"[a-z][a-z0-9_.]{0,63}")  # whole value (fullmatch)
MAX_ACTIONS = 50
# "+01:00" arrives as " 01:00" when a client forgets to URL-encode the offset's plus sign.
_UNENCODED_OFFSET = re.compile(r"^(.+[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


class ActionListField(forms.CharField):
    """``approval_approved`` or ``approval_approved,approval_rejected``: a sorted list of names."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        actions = sorted({part.strip() for part in value.split(",")})
        bad = [action for action in actions if not ACTION_PATTERN.fullmatch(action)]
        if bad:
            # The value goes in params: django-filter %-formats messages, and a '%' typed in
            # the query string must not break that (it was a 500).
            raise forms.ValidationError(
                "Not an action name: %(value)s (lower-case letters, digits, '_' and '.').",
                params={"value": repr(bad[0])},
            )
        if len(actions) > MAX_ACTIONS:
            raise forms.ValidationError(f"At most {MAX_ACTIONS} actions.")
        return actions


class DateOrDateTimeField(forms.CharField):
    """An ISO 8601 date (``2026-03-01``) or date-time (``2026-03-01T09:30:00+01:00``)."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        try:
            day = parse_date(value)
            if day is not None:
                return day
            moment = parse_datetime(_UNENCODED_OFFSET.sub(r"\1+\2", value))
        except ValueError:  # well-formed but impossible, e.g. 2026-02-30
            moment = None
        if moment is None:
            raise forms.ValidationError(
                "Enter an ISO 8601 date (2026-03-01) or date-time (2026-03-01T09:30:00Z)."
            )
        return moment


class ActionFilter(django_filters.CharFilter):
    field_class = ActionListField

    def filter(self, queryset, value):
        if not value:
            return queryset
        if len(value) == 1:  # a plain equality: the index's range read stays in created_at order
            return queryset.filter(action=value[0])
        return queryset.filter(action__in=value)


class DateBoundFilter(django_filters.CharFilter):
    """``date_from`` (inclusive) or ``date_to`` (inclusive; a date means to the end of that day).

    Dates and date-times without an offset are read in the tenant's time zone.
    """

    field_class = DateOrDateTimeField

    def __init__(self, *args, upper: bool, **kwargs):
        self.upper = upper
        super().__init__(*args, field_name="created_at", **kwargs)

    def filter(self, queryset, value):
        if value is None:
            return queryset
        bound = self.parent.bound(value, upper=self.upper)
        return queryset.filter(**{"created_at__lt" if self.upper else "created_at__gte": bound})


class AuditLogFilterSet(django_filters.FilterSet):
    action = ActionFilter(
        help_text="One action, or several separated by commas (any of them matches)."
    )
    # A plain UUID, not a model choice: another tenant's user is answered like an unknown one.
    actor = django_filters.UUIDFilter(field_name="actor_id", help_text="The acting user's id.")
    resource_type = django_filters.CharFilter(
        max_length=64, help_text="e.g. `contract`, `workflowinstance`, `user`."
    )
    resource_id = django_filters.CharFilter(max_length=64)
    # As `actor`: another tenant's contract is answered like an unknown one (no rows).
    contract = django_filters.UUIDFilter(
        help_text=(
            "A contract's id: every row about it, its workflow instances, stages and approvals."
        )
    )
    date_from = DateBoundFilter(
        upper=False, help_text="ISO 8601 date or date-time; rows at or after it."
    )
    date_to = DateBoundFilter(
        upper=True,
        help_text="ISO 8601 date or date-time; rows at or before it (a date: to that day's end).",
    )

    class Meta:
        model = AuditLog
        fields = []

    def bound(self, value: date | datetime, *, upper: bool) -> datetime:
        """The instant a date or date-time bound stands for; upper bounds are exclusive."""
        zone = self._tenant_zone()
        try:
            if isinstance(value, datetime):
                moment = value if timezone.is_aware(value) else timezone.make_aware(value, zone)
                moment += timedelta(microseconds=1) if upper else timedelta(0)
            else:
                day = value + timedelta(days=1) if upper else value
                moment = datetime.combine(day, time.min, tzinfo=zone)
            # In UTC: PostgreSQL refuses offsets beyond +-15:59 that Python accepts (-22:06).
            return moment.astimezone(UTC)
        except OverflowError:  # the very end (or start) of the calendar: no bound at all
            return datetime.max.replace(tzinfo=UTC) if upper else datetime.min.replace(tzinfo=UTC)

    def _tenant_zone(self):
        user = getattr(self.request, "user", None)
        name = getattr(getattr(user, "tenant", None), "timezone", None) or "UTC"
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return zoneinfo.ZoneInfo("UTC")

    def filter_queryset(self, queryset):
        data = self.form.cleaned_data
        if data.get("date_from") is not None and data.get("date_to") is not None:
            start = self.bound(data["date_from"], upper=False)
            end = self.bound(data["date_to"], upper=True)
            if start >= end:
                raise ValidationError({"date_to": ["Must not be before date_from."]})
        return super().filter_queryset(queryset)
