import django_filters
from django.db.models import Q
from django.utils import timezone

from approvals.models import ApprovalStatus, Holiday, SLABreach, SLARule, WorkflowStageApproval
from config.filters import IsoDateTimeFilter, StrictBooleanFilter


class PendingApprovalFilterSet(django_filters.FilterSet):
    """The caller's pending approvals: a `status` filter would have nothing to choose from."""

    contract = django_filters.UUIDFilter(field_name="contract_id")
    overdue = StrictBooleanFilter(method="filter_overdue", label="Past due and pending")

    class Meta:
        model = WorkflowStageApproval
        fields = []

    def filter_overdue(self, queryset, name, value):
        # As WorkflowStageApproval.is_overdue: marked by the breach check, or past due now.
        overdue = Q(status=ApprovalStatus.PENDING) & (
            Q(overdue_at__isnull=False) | Q(due_at__lt=timezone.now())
        )
        return queryset.filter(overdue) if value else queryset.exclude(overdue)


class ApprovalFilterSet(PendingApprovalFilterSet):
    status = django_filters.ChoiceFilter(choices=ApprovalStatus.choices)


class SLARuleFilterSet(django_filters.FilterSet):
    is_active = StrictBooleanFilter()
    contract_type = django_filters.CharFilter(lookup_expr="iexact", max_length=50)
    stage_name = django_filters.CharFilter(lookup_expr="iexact", max_length=100)
    escalation_enabled = StrictBooleanFilter()

    class Meta:
        model = SLARule
        fields = []


class HolidayFilterSet(django_filters.FilterSet):
    date_from = django_filters.DateFilter(field_name="date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="date", lookup_expr="lte")

    class Meta:
        model = Holiday
        fields = []


class SLABreachFilterSet(django_filters.FilterSet):
    # Plain UUID filters: another tenant's id answers exactly like an unknown one.
    contract = django_filters.UUIDFilter(field_name="contract_id")
    approval = django_filters.UUIDFilter(field_name="approval_id")
    stage_name = django_filters.CharFilter(lookup_expr="iexact", max_length=100)
    escalated = StrictBooleanFilter(
        field_name="escalated_to", lookup_expr="isnull", exclude=True, label="Escalated or not"
    )
    escalated_to = django_filters.CharFilter(max_length=50)
    breached_after = IsoDateTimeFilter(field_name="breached_at", lookup_expr="gte")
    breached_before = IsoDateTimeFilter(field_name="breached_at", lookup_expr="lt")

    class Meta:
        model = SLABreach
        fields = []
