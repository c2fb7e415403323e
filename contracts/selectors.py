from django.db.models import QuerySet

from approvals.selectors import instances_newest_first
from contracts.models import Contract, ContractRevision
from tenancy.models import Tenant


def contract_list(*, tenant: Tenant) -> QuerySet[Contract]:
    return (
        Contract.objects.for_tenant(tenant)
        .select_related("created_by")
        .prefetch_related(instances_newest_first())
    )


def contract_get_for_update(*, tenant: Tenant, contract_id) -> Contract:
    """The contract row, locked for the rest of the transaction (404 when not the tenant's)."""
    from django.shortcuts import get_object_or_404

    return get_object_or_404(
        Contract.objects.for_tenant(tenant).select_for_update(), pk=contract_id
    )


def contract_revision_list(*, tenant: Tenant, contract_id) -> QuerySet[ContractRevision]:
    """A contract's revisions, newest first (the content itself stays in the database)."""
    return (
        ContractRevision.objects.for_tenant(tenant)
        .filter(contract_id=contract_id)
        .select_related("created_by")
        .defer("content")
        .order_by("-number")
    )
