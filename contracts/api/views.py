from drf_spectacular.utils import extend_schema
from rest_framework import viewsets

from config.viewsets import ServiceWriteMixin, service_write_schema
from contracts import clause_services
from contracts.api.serializers import (
    ClauseRuleInputSerializer,
    ClauseRuleSerializer,
)
from contracts.clause_selectors import clause_rule_list
from contracts.filtersets import ClauseRuleFilterSet
from contracts.models import ClauseRule
from tenancy.capabilities import CLAUSES_MANAGE
from tenancy.permissions import capability_required
from tenancy.scoping import TenantScopedViewSetMixin


@extend_schema(tags=["clauses"])
@service_write_schema(ClauseRuleInputSerializer, ClauseRuleSerializer)
class ClauseRuleViewSet(ServiceWriteMixin, TenantScopedViewSetMixin, viewsets.ModelViewSet):
    """The tenant's clause library. Any member reads it; writing needs `clauses.manage`.

    Stored contracts are checked against it when created and when their text or type changes.
    """

    queryset = ClauseRule.objects.all()
    selector = clause_rule_list
    serializer_class = ClauseRuleSerializer
    input_serializer_class = ClauseRuleInputSerializer
    reread_after_write = True
    filterset_class = ClauseRuleFilterSet
    permission_classes = [capability_required(CLAUSES_MANAGE, writes_only=True)]

    def service_create(self, data):
        user = self.request.user
        return clause_services.clause_rule_create(tenant=user.tenant, created_by=user, **data)

    def service_update(self, instance, data):
        user = self.request.user
        return clause_services.clause_rule_update(
            tenant=user.tenant, rule_id=instance.pk, updated_by=user, **data
        )

    def service_delete(self, instance):
        user = self.request.user
        clause_services.clause_rule_delete(tenant=user.tenant, rule_id=instance.pk, deleted_by=user)
