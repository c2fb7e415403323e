import django_filters
from django.db.models import Q
from django.utils import timezone

from approvals.models import ApprovalStatus, WorkflowStageApproval


class ApprovalFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ApprovalStatus.choices)
    contract = django_filters.UUIDFilter(field_name="contract_id")
    overdue = django_filters.BooleanFilter(method="filter_overdue", label="Past due and pending")

    class Meta:
        model = WorkflowStageApproval
        fields = []

    def filter_overdue(self, queryset, name, value):
        overdue = Q(status=ApprovalStatus.PENDING, due_at__lt=timezone.now())
        return queryset.filter(overdue) if value else queryset.exclude(overdue)
