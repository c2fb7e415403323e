"""Filters shared by every app's filtersets."""

from datetime import UTC, datetime

import django_filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

TRUE_WORDS = ("true", "1")
BOOLEAN_CHOICES = [("true", "true"), ("false", "false"), ("1", "1"), ("0", "0")]


class UTCIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC before it reaches the database.

    Python accepts UTC offsets up to ±23:59, PostgreSQL only up to ±15:59: passed through as
    written, ``2026-01-01T00:00:00+22:32`` is a valid filter value that fails in the database
    (a 500). In UTC it is an ordinary instant. One just outside years 1..9999 in UTC
    (``0001-01-01T00:00:00+05:00``) becomes the nearest representable instant, which compares
    with every stored value exactly as the real bound would.
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is None or value.tzinfo is None:
            return value
        try:
            return value.astimezone(UTC)
        except OverflowError:
            extreme = datetime.min if value.year == datetime.min.year else datetime.max
            return extreme.replace(tzinfo=UTC)


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.TypedChoiceFilter):
    """true/false/1/0; anything else is a 400.

    django-filter's BooleanFilter ignores a value it cannot read (``?is_active=yes`` lists every
    row), so the filter the schema offers would silently do nothing.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("choices", BOOLEAN_CHOICES)
        kwargs.setdefault("coerce", lambda value: value in TRUE_WORDS)
        super().__init__(*args, **kwargs)
