import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from notifications.models import Notification

TRUE_WORDS = ("true", "1")
BOOLEAN_CHOICES = [("true", "true"), ("false", "false"), ("1", "1"), ("0", "0")]


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.TypedChoiceFilter):
    """true/false/1/0; anything else is a 400, not silently ignored as BooleanFilter does."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("choices", BOOLEAN_CHOICES)
        kwargs.setdefault("coerce", lambda value: value in TRUE_WORDS)
        super().__init__(*args, **kwargs)


class NotificationFilterSet(django_filters.FilterSet):
    unread = StrictBooleanFilter(
        method="filter_unread", label="true: unread only; false: read only"
    )

    class Meta:
        model = Notification
        fields = []

    def filter_unread(self, queryset, name, value):
        return queryset.filter(read_at__isnull=value)
