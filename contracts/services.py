"""Writes for contracts. Workflow-driven status changes belong to the approvals orchestrator."""

import hashlib

from django.db import transaction

from approvals.orchestrator import workflow_start_on_new_contract
from audit.services import audit_record, audit_record_many, diff_fields
from config.exceptions import Conflict
from contracts.clause_selectors import clause_validate, findings_summary
from contracts.models import Contract, ContractStatus
from contracts.selectors import contract_get_for_update
from workflows.engine import match_engine

# Fields a requester may set; everything else is owned by the service.
BUSINESS_FIELDS = (
    "title",
    "contract_type",
    "value",
    "currency",
    "counterparty",
    "department",
    "region",
    "start_date",
    "end_date",
    "text",
    "metadata",
)


@transaction.atomic
def contract_create(*, tenant, created_by, **fields) -> Contract:
    """Create the contract and start the best-matching workflow in the same transaction."""
    unknown = set(fields) - set(BUSINESS_FIELDS)
    if unknown:
        raise TypeError(f"contract_create() got unexpected fields {sorted(unknown)}")
    contract = Contract(tenant=tenant, created_by=created_by, **fields)
    # Before the match engine: trigger rules may route on `has_blocking_findings`.
    _apply_clause_validation(contract)
    created = {
        "action": "contract_created",
        "tenant": tenant,
        "actor": created_by,
        "resource": contract,
        "changes": {field: [None, value] for field, value in _snapshot(contract).items()},
    }
    # Matching is pure Python over the unsaved contract, so the contract is written once,
    # already in review, with its workflow (see workflow_start_on_new_contract).
    definition = match_engine.find_match(contract)
    if definition is None:
        contract.save(force_insert=True)
        audit_record_many([created])
        started = []
    else:
        started = [
            workflow_start_on_new_contract(
                contract=contract,
                definition=definition,
                started_by=created_by,
                extra_audit=[created],
            )
        ]
    # The contract's instances, newest first, as ``approvals.selectors.instances_newest_first``
    # prefetches them for the API's workflow summary: a new contract has at most the one just
    # started (with its version loaded), so the response reads no more rows.
    contract.instances_newest_first = started
    return contract


@transaction.atomic
def contract_update(*, tenant, contract_id, updated_by, **fields) -> Contract:
    """Change business fields; only while the contract is a draft (409 otherwise)."""
    unknown = set(fields) - set(BUSINESS_FIELDS)
    if unknown:
        raise TypeError(f"contract_update() got unexpected fields {sorted(unknown)}")
    contract = contract_get_for_update(tenant=tenant, contract_id=contract_id)
    if contract.status != ContractStatus.DRAFT:
        raise Conflict(
            f"Only draft contracts can be edited; this one is '{contract.status}'.",
            code="contract_not_draft",
        )
    before = _snapshot(contract)
    before_clauses = (contract.text, contract.contract_type, contract.has_blocking_findings)
    for field, value in fields.items():
        setattr(contract, field, value)
    changes = diff_fields(before, _snapshot(contract))
    update_fields = [*fields, "updated_at"]
    if (contract.text, contract.contract_type) != before_clauses[:2]:
        _apply_clause_validation(contract)
        update_fields += ["clause_findings", "has_blocking_findings"]
        if contract.has_blocking_findings != before_clauses[2]:
            changes["has_blocking_findings"] = [before_clauses[2], contract.has_blocking_findings]
    if changes:
        contract.save(update_fields=update_fields)
        audit_record(
            action="contract_updated",
            tenant=tenant,
            actor=updated_by,
            resource=contract,
            changes=changes,
        )
    return contract


def _apply_clause_validation(contract: Contract) -> None:
    """Check the text against the tenant's clause playbook and keep the summary on the row."""
    result = clause_validate(
        tenant=contract.tenant_id, text=contract.text, contract_type=contract.contract_type
    )
    contract.has_blocking_findings = result.has_blocking_findings
    contract.clause_findings = findings_summary(result)


def _snapshot(contract: Contract) -> dict:
    """Audited values, JSON-safe; the text is summarised by a digest so audit rows stay small."""
    values = {field: getattr(contract, field) for field in BUSINESS_FIELDS if field != "text"}
    # Money as the API writes it (2 places), so 600000 and "600000.00" are not a change.
    values["value"] = f"{contract.value:.2f}" if contract.value is not None else None
    for field in ("start_date", "end_date"):
        if values[field] is not None:
            values[field] = values[field].isoformat()
    values["text_sha256"] = hashlib.sha256(contract.text.encode()).hexdigest()
    return values
