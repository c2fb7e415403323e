import django_filters

from workflows.models import WorkflowDefinition


class WorkflowDefinitionFilterSet(django_filters.FilterSet):
    is_active = django_filters.BooleanFilter()
    search = django_filters.CharFilter(field_name="name", lookup_expr="icontains", max_length=200)
    ordering = django_filters.OrderingFilter(
        fields=("priority", "created_at", "updated_at", "name")
    )

    class Meta:
        model = WorkflowDefinition
        fields = []
