"""Writes for contracts. Workflow-driven status changes belong to the approvals orchestrator.

Every change of a business field makes a new immutable ``ContractRevision`` (number and SHA-256
of the canonical content, ``contracts.revisions``); approvals record the revision they decided.
"""

import hashlib

from django.db import transaction
from rest_framework.exceptions import ValidationError

from approvals.orchestrator import (
    workflow_revise,
    workflow_start_matched,
    workflow_start_on_new_contract,
)
from audit.services import audit_record_many, diff_fields
from config.exceptions import Conflict
from contracts.clause_selectors import clause_validate, findings_summary
from contracts.models import BUSINESS_FIELDS, Contract, ContractRevision, ContractStatus
from contracts.permissions import require_contract_editor
from contracts.revisions import canonical_content, changed_fields, content_hash
from contracts.selectors import contract_get_for_update
from documents.services import signature_requests_void_open
from tenancy.models import Tenant
from workflows.engine import match_engine

# Statuses in which an edit reaches the running workflow (re-route or reset, docs/api.md).
UNDER_REVIEW = (ContractStatus.IN_REVIEW, ContractStatus.CHANGES_REQUESTED)


@transaction.atomic
def contract_create(*, tenant: Tenant, created_by, **fields) -> Contract:
    """Create the contract (revision 1) and start the best-matching workflow in the same
    transaction."""
    _check_fields(fields, "contract_create")
    contract = Contract(tenant=tenant, created_by=created_by, **fields)
    # Before the match engine: trigger rules may route on `has_blocking_findings`.
    _apply_clause_validation(contract, tenant=tenant)
    content = canonical_content(contract)
    contract.content_hash = content_hash(content)
    created = {
        "action": "contract_created",
        "tenant": tenant,
        "actor": created_by,
        "resource": contract,
        "changes": {field: [None, value] for field, value in _audited(content).items()}
        | {"revision": [None, 1], "content_hash": [None, contract.content_hash]},
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
    _write_revision(contract, content, [], created_by)
    # The contract's instances, newest first, as ``approvals.selectors.instances_newest_first``
    # prefetches them for the API's workflow summary: a new contract has at most the one just
    # started (with its version loaded), so the response reads no more rows.
    contract.instances_newest_first = started
    return contract


@transaction.atomic
def contract_update(*, tenant: Tenant, contract_id, updated_by, **fields) -> Contract:
    """Change business fields: the creator or ``contracts.manage``; an approved contract is
    locked (409, amend it instead). Under review the change re-routes the contract or re-opens
    the decisions whose stage policy fires on it (``approvals.orchestrator.workflow_revise``)."""
    _check_fields(fields, "contract_update")
    contract = contract_get_for_update(tenant=tenant, contract_id=contract_id)
    require_contract_editor(contract=contract, user=updated_by)
    if contract.status == ContractStatus.APPROVED:
        raise Conflict(
            "An approved contract is locked; amend it (POST .../amend/) to change it.",
            code="contract_locked",
        )
    if contract.status == ContractStatus.SIGNED:
        raise Conflict("A signed contract is locked.", code="contract_locked")
    changed = _apply_revision(
        contract, fields, updated_by, tenant=tenant, action="contract_updated"
    )
    if changed and contract.status in UNDER_REVIEW:
        workflow_revise(contract=contract, changed=changed, actor=updated_by)
    return contract


@transaction.atomic
def contract_amend(*, tenant: Tenant, contract_id, amended_by, **fields) -> Contract:
    """Change an approved contract: a new revision under a newly matched review (no match: a
    draft). The earlier approval stays in the history."""
    _check_fields(fields, "contract_amend")
    contract = contract_get_for_update(tenant=tenant, contract_id=contract_id)
    require_contract_editor(contract=contract, user=amended_by)
    if contract.status != ContractStatus.APPROVED:
        raise Conflict(
            f"Only approved contracts are amended; this one is '{contract.status}' "
            "(edit it with PATCH).",
            code="contract_not_approved",
        )
    changed = _apply_revision(
        contract, fields, amended_by, tenant=tenant, action="contract_amended"
    )
    if not changed:
        raise ValidationError(
            {"non_field_errors": ["An amendment must change at least one business field."]}
        )
    # What signers were asked to sign is no longer the contract.
    signature_requests_void_open(contract=contract, actor=amended_by, reason="contract amended")
    workflow_start_matched(contract=contract, started_by=amended_by)
    return contract


@transaction.atomic
def contract_mark_signed(*, tenant, contract_id) -> Contract:
    """Every signer signed the approved contract (``documents.services``): it is ``signed``."""
    contract = contract_get_for_update(tenant=tenant, contract_id=contract_id)
    if contract.status != ContractStatus.APPROVED:
        raise Conflict(
            f"Only an approved contract becomes signed; this one is '{contract.status}'.",
            code="contract_not_approved",
        )
    contract.status = ContractStatus.SIGNED
    contract.save(update_fields=["status", "updated_at"])
    return contract


def _check_fields(fields, caller: str) -> None:
    unknown = set(fields) - set(BUSINESS_FIELDS)
    if unknown:
        raise TypeError(f"{caller}() got unexpected fields {sorted(unknown)}")


def _apply_revision(
    contract: Contract, fields: dict, actor, *, tenant: Tenant, action: str
) -> list[str]:
    """Apply ``fields`` to the locked contract; when a business field changed, save it as a new
    revision and audit ``action``. Returns the changed fields."""
    before_content = canonical_content(contract)
    before_clauses = (contract.text, contract.contract_type, contract.has_blocking_findings)
    for name, value in fields.items():
        setattr(contract, name, value)
    content = canonical_content(contract)
    changed = changed_fields(before_content, content)
    if not changed:
        return []
    changes = diff_fields(_audited(before_content), _audited(content))
    update_fields = [*changed, "revision", "content_hash", "updated_at"]
    if (contract.text, contract.contract_type) != before_clauses[:2]:
        _apply_clause_validation(contract, tenant=tenant)
        update_fields += ["clause_findings", "has_blocking_findings"]
        if contract.has_blocking_findings != before_clauses[2]:
            changes["has_blocking_findings"] = [before_clauses[2], contract.has_blocking_findings]
    previous_hash = contract.content_hash
    contract.revision += 1
    contract.content_hash = content_hash(content)
    contract.save(update_fields=update_fields)
    _write_revision(contract, content, changed, actor)
    audit_record_many(
        [
            {
                "action": action,
                "tenant": tenant,
                "actor": actor,
                "resource": contract,
                "changes": changes
                | {
                    "revision": [contract.revision - 1, contract.revision],
                    "content_hash": [previous_hash, contract.content_hash],
                },
            }
        ]
    )
    return changed


def _write_revision(contract: Contract, content: dict, changed: list[str], actor) -> None:
    ContractRevision.objects.create(
        tenant_id=contract.tenant_id,
        contract=contract,
        number=contract.revision,
        content_hash=contract.content_hash,
        content=content,
        changed_fields=changed,
        created_by=actor,
    )


def _apply_clause_validation(contract: Contract, *, tenant: Tenant) -> None:
    """Check the text against the tenant's clause playbook and keep the summary on the row."""
    result = clause_validate(
        tenant=tenant, text=contract.text, contract_type=contract.contract_type
    )
    contract.has_blocking_findings = result.has_blocking_findings
    contract.clause_findings = findings_summary(result)


def _audited(content: dict) -> dict:
    """The canonical content as audited: the text summarised by a digest so audit rows stay
    small (the revision keeps the whole of it)."""
    values = {field: value for field, value in content.items() if field != "text"}
    values["text_sha256"] = hashlib.sha256(content["text"].encode()).hexdigest()
    return values
