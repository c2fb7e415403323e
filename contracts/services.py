"""Writes of contract records: the contract row, its revisions and clause findings.

Every change of a business field makes a new immutable ``ContractRevision`` (number and SHA-256
of the canonical content, ``contracts.revisions``); approvals record the revision they decided.
Routing a contract (matching, starting and revising its workflow) is composed above, in
``approvals.lifecycle``, which calls these record writes inside its transaction: they join it
(``savepoint=False``) rather than open a savepoint each, since a failure undoes the whole change.
"""

import hashlib

from django.db import transaction
from rest_framework.exceptions import ValidationError

from audit.services import audit_record_many, diff_fields
from config.exceptions import Conflict
from contracts.clause_selectors import clause_validate, findings_summary
from contracts.models import BUSINESS_FIELDS, Contract, ContractRevision, ContractStatus
from contracts.permissions import require_contract_editor
from contracts.revisions import canonical_content, changed_fields, content_hash
from contracts.selectors import contract_get_for_update
from core import pipeline
from tenancy.models import Tenant


def contract_build(*, tenant: Tenant, created_by, **fields) -> Contract:
    """The new contract (revision 1), unsaved, with its clause findings and content hash: the
    match engine routes on it before anything is written."""
    _check_fields(fields, "contract_create")
    contract = Contract(tenant=tenant, created_by=created_by, **fields)
    # Before the match engine: trigger rules may route on `has_blocking_findings`.
    _apply_clause_validation(contract, tenant=tenant)
    contract.content_hash = content_hash(canonical_content(contract))
    return contract


def contract_created_audit(contract: Contract) -> dict:
    """The ``contract_created`` audit row of a built contract, written with its insert."""
    return {
        "action": "contract_created",
        "tenant": contract.tenant,
        "actor": contract.created_by,
        "resource": contract,
        "changes": {
            field: [None, value] for field, value in _audited(canonical_content(contract)).items()
        }
        | {"revision": [None, 1], "content_hash": [None, contract.content_hash]},
    }


@transaction.atomic(savepoint=False)
def contract_insert(*, contract: Contract) -> Contract:
    """Save a built contract that no workflow routes, with its ``contract_created`` audit row."""
    contract.save(force_insert=True)
    audit_record_many([contract_created_audit(contract)])
    return contract


def contract_first_revision_write(*, contract: Contract) -> None:
    """Revision 1 of a contract being created, queued (``core.pipeline``, inside the caller's
    ``deferred_writes``): it travels with the contract's own INSERT or the statement after it,
    whichever comes first (the foreign key is checked at commit)."""
    pipeline.create(_revision(contract, canonical_content(contract), [], contract.created_by))


@transaction.atomic(savepoint=False)
def contract_edit(
    *, tenant: Tenant, contract_id, updated_by, **fields
) -> tuple[Contract, list[str]]:
    """Change business fields: the creator or ``contracts.manage``; an approved contract is
    locked (409, amend it instead). Returns the contract and the fields that changed."""
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
    return contract, changed


@transaction.atomic(savepoint=False)
def contract_amendment_apply(*, tenant: Tenant, contract_id, amended_by, **fields) -> Contract:
    """Change an approved contract's business fields as a new revision (at least one must
    change); its new review is started by the caller."""
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
    _revision(contract, content, changed, actor).save(force_insert=True)


def _revision(contract: Contract, content: dict, changed: list[str], actor) -> ContractRevision:
    return ContractRevision(
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
