import django_filters

from config.filters import StrictBooleanFilter
from notifications.models import Notification


class NotificationFilterSet(django_filters.FilterSet):
    unread = StrictBooleanFilter(
        method="filter_unread", label="true: unread only; false: read only"
    )

    class Meta:
        model = Notification
        fields = []

    def filter_unread(self, queryset, name, value):
        return queryset.filter(read_at__isnull=value)
