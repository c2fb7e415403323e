from django.db.models import QuerySet

from tenancy.models import Tenant
from workflows.models import WorkflowDefinition


def definition_list(*, tenant: Tenant) -> QuerySet[WorkflowDefinition]:
    return (
        WorkflowDefinition.objects.for_tenant(tenant)
        .select_related("created_by")
        .prefetch_related("stages")
        .order_by("-priority", "created_at")
    )
