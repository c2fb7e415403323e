import django_filters
from django.db.models import Q

from contracts.models import Contract, ContractStatus


class ContractFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ContractStatus.choices)
    contract_type = django_filters.CharFilter(max_length=50)
    currency = django_filters.CharFilter(method="filter_currency", max_length=3)
    value_min = django_filters.NumberFilter(field_name="value", lookup_expr="gte")
    value_max = django_filters.NumberFilter(field_name="value", lookup_expr="lte")
    created_by = django_filters.UUIDFilter(field_name="created_by_id")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    search = django_filters.CharFilter(
        method="filter_search", max_length=200, label="Search in title and counterparty"
    )
    ordering = django_filters.OrderingFilter(
        fields=(
            "created_at",
            "updated_at",
            "title",
            "value",
            "contract_type",
            "status",
            "start_date",
            "end_date",
        ),
        help_text="Field to order by, `-` for descending (e.g. `-value`).",
    )

    class Meta:
        model = Contract
        fields = []

    def filter_currency(self, queryset, name, value):
        return queryset.filter(currency=value.upper())  # stored upper-case, as create normalizes

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(title__icontains=value) | Q(counterparty__icontains=value))
