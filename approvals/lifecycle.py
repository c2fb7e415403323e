"""A contract's lifecycle as it drives its workflow: create → match → start, update → revise,
amend → restart.

Approvals own every change of a contract's workflow-driven status, so the compositions that
route a contract live here; each writes the contract's records through ``contracts.services``
and routes it through the orchestrator, in one transaction.
"""

from django.db import transaction

from approvals import signals
from approvals.orchestrator import (
    workflow_revise,
    workflow_start_matched,
    workflow_start_on_new_contract,
)
from contracts import services as records
from contracts.models import Contract, ContractStatus
from core import pipeline
from tenancy.models import Tenant
from workflows.engine import match_engine

# Statuses in which an edit reaches the running workflow (re-route or reset, docs/api.md).
UNDER_REVIEW = (ContractStatus.IN_REVIEW, ContractStatus.CHANGES_REQUESTED)


@pipeline.atomic()
def contract_create(*, tenant: Tenant, created_by, **fields) -> Contract:
    """Create the contract (revision 1) and start the best-matching workflow in the same
    transaction; the writes travel together, the last ones with the COMMIT (``core.pipeline``)."""
    contract = records.contract_build(tenant=tenant, created_by=created_by, **fields)
    records.contract_first_revision_write(contract=contract)
    # Matching is pure Python over the unsaved contract, so the contract is written once,
    # already in review, with its workflow (see workflow_start_on_new_contract).
    definition = match_engine.find_match(contract)
    if definition is None:
        records.contract_insert(contract=contract)
        started = []
    else:
        started = [
            workflow_start_on_new_contract(
                contract=contract,
                definition=definition,
                started_by=created_by,
                extra_audit=[records.contract_created_audit(contract)],
            )
        ]
    # The contract's instances, newest first, as ``approvals.selectors.instances_newest_first``
    # prefetches them for the API's workflow summary: a new contract has at most the one just
    # started (with its version loaded), so the response reads no more rows.
    contract.instances_newest_first = started
    return contract


@transaction.atomic
def contract_update(*, tenant: Tenant, contract_id, updated_by, **fields) -> Contract:
    """Change business fields (``contracts.services.contract_edit``). Under review the change
    re-routes the contract or re-opens the decisions whose stage policy fires on it
    (``approvals.orchestrator.workflow_revise``)."""
    contract, changed = records.contract_edit(
        tenant=tenant, contract_id=contract_id, updated_by=updated_by, **fields
    )
    if changed and contract.status in UNDER_REVIEW:
        workflow_revise(contract=contract, changed=changed, actor=updated_by)
    return contract


@transaction.atomic
def contract_amend(*, tenant: Tenant, contract_id, amended_by, **fields) -> Contract:
    """Change an approved contract: a new revision under a newly matched review (no match: a
    draft). The earlier approval stays in the history."""
    contract = records.contract_amendment_apply(
        tenant=tenant, contract_id=contract_id, amended_by=amended_by, **fields
    )
    # What signers were asked to sign is no longer the contract (documents void their requests).
    signals.contract_amended.send(sender=Contract, contract=contract, actor=amended_by)
    workflow_start_matched(contract=contract, started_by=amended_by)
    return contract
