import django_filters

from config.filters import StrictBooleanFilter
from workflows.models import WorkflowDefinition


class WorkflowDefinitionFilterSet(django_filters.FilterSet):
    is_active = StrictBooleanFilter()
    search = django_filters.CharFilter(field_name="name", lookup_expr="icontains", max_length=200)
    ordering = django_filters.OrderingFilter(
        fields=("priority", "created_at", "updated_at", "name")
    )

    class Meta:
        model = WorkflowDefinition
        fields = []
