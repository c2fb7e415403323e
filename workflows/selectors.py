from django.db.models import QuerySet

from tenancy.models import Tenant
from workflows.models import WorkflowDefinition, WorkflowStageDefinition


def definition_list(*, tenant: Tenant) -> QuerySet[WorkflowDefinition]:
    return (
        WorkflowDefinition.objects.for_tenant(tenant)
        .select_related("created_by")
        .prefetch_related("stages")
        .order_by("-priority", "created_at")
    )


def role_named_by_a_stage(*, tenant_id, slug: str) -> str | None:
    """Why the role catalog may not delete ``slug``: a stage of a definition names it (one
    query). Registered with ``tenancy.roles`` by ``WorkflowsConfig.ready``."""
    if WorkflowStageDefinition.objects.filter(
        definition__tenant_id=tenant_id, approvers__contains=[slug]
    ).exists():
        return f"A workflow definition's stage names the role '{slug}'; change it first."
    return None
