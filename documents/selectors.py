"""Reads: documents and signature requests of a tenant, and the canonical inputs of each PDF.

The inputs are plain JSON-able dicts built only from committed rows (revisions, approval rows,
audit rows), so rendering them again later gives the same ``inputs_sha256``.
"""

import datetime
import hashlib
import json
import uuid

from django.core.files.storage import storages
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from approvals.models import SLABreach, WorkflowInstance, WorkflowStage, WorkflowStageApproval
from audit.models import AuditLog
from contracts.models import BUSINESS_FIELDS, ContractRevision
from core import rls
from documents.models import Document, RequestStatus, SignatureRequest, Signer, SignerStatus
from tenancy.models import User

# A certificate summarises the contract's business fields; its text is rendered on its own.
SUMMARY_FIELDS = tuple(name for name in BUSINESS_FIELDS if name not in ("text", "metadata"))


def inputs_sha256(inputs: dict) -> str:
    """The identity of a PDF's inputs: SHA-256 of their canonical JSON."""
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def document_list(*, tenant) -> QuerySet[Document]:
    return Document.objects.for_tenant(tenant).order_by("-created_at", "-id")


def document_by_sha256(*, tenant, sha256: str) -> Document | None:
    return document_list(tenant=tenant).filter(sha256=sha256).first()


def document_read(*, document: Document) -> bytes:
    """The stored bytes, checked against the recorded SHA-256 (``DocumentIntegrityError`` when
    they differ or the file is gone)."""
    try:
        with storages["documents"].open(document.storage_name, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise DocumentIntegrityError(document.pk) from exc
    if hashlib.sha256(data).hexdigest() != document.sha256:
        raise DocumentIntegrityError(document.pk)
    return data


def document_verify(*, data: bytes):
    """Whether ``data`` is one of our sealed PDFs, unmodified (``documents.sealing``; imported
    here: pyHanko is slow to import)."""
    from documents import sealing

    return sealing.verify_pdf(data)


class DocumentIntegrityError(Exception):
    """The stored file no longer matches the SHA-256 recorded when it was generated."""


def signature_request_list(*, tenant) -> QuerySet[SignatureRequest]:
    return (
        SignatureRequest.objects.for_tenant(tenant)
        .prefetch_related(Prefetch("signers", queryset=Signer.objects.order_by("position")))
        .order_by("-created_at", "-id")
    )


def signer_by_token(token: str) -> Signer | None:
    """The signer a link's token names, or None. The token starts with its tenant's id (hex):
    the look-up runs in that tenant's row-level security scope, by the token's SHA-256 only."""
    try:
        tenant_id = uuid.UUID(hex=token[:32])
    except ValueError:
        return None
    if tenant_id.int == 0:
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    with rls.tenant_scope(tenant_id):
        return (
            Signer.objects.for_tenant(tenant_id)
            .select_related("request__contract")
            .filter(token_sha256=digest)
            .first()
        )


def signer_link_problem(signer: Signer) -> str | None:
    """Why a signer's link no longer works, or None while it does."""
    request = signer.request
    if signer.status == SignerStatus.SIGNED:
        return "You have already signed this document: each link works once."
    if signer.status == SignerStatus.DECLINED:
        return "You declined to sign this document."
    if signer.status == SignerStatus.WAITING:
        return "This link has not been sent yet."
    problems = {
        RequestStatus.VOIDED: "This signature request was withdrawn.",
        RequestStatus.DECLINED: "Another signer declined, so this request is closed.",
        RequestStatus.COMPLETED: "Everyone has signed; this request is complete.",
        RequestStatus.EXPIRED: "This link has expired.",
    }
    if request.status in problems:
        return problems[request.status]
    if request.expires_at <= timezone.now():
        return problems[RequestStatus.EXPIRED]
    return None


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat()
    return value.isoformat()


def _person(user: User | None) -> dict | None:
    return (
        None if user is None else {"id": str(user.pk), "name": user.full_name, "email": user.email}
    )


def revision_summary(revision: ContractRevision) -> dict:
    """A contract's fields at one revision, as every PDF shows them."""
    content = revision.content
    return {
        "id": str(revision.contract_id),
        **{name: content.get(name) for name in SUMMARY_FIELDS},
        "revision": revision.number,
        "content_hash": revision.content_hash,
    }


def _decision_audit(audit_rows: list[AuditLog]) -> dict[str, dict]:
    """The ``changes`` of each approval row's decision audit row, by approval id."""
    return {
        row.resource_id: row.changes
        for row in audit_rows
        if row.action.startswith("approval_") and row.resource_type == "workflowstageapproval"
    }


def _change(changes: dict, key: str):
    value = changes.get(key)
    return value[-1] if isinstance(value, list) and value else value


def _sla_outcome(stage: WorkflowStage, breaches: list[SLABreach]) -> str:
    if stage.due_at is None:
        outcome = "no SLA"
    elif stage.completed_at is None:
        outcome = f"not finished (due {_iso(stage.due_at)})"
    elif stage.completed_at <= stage.due_at:
        outcome = f"met (due {_iso(stage.due_at)}, finished {_iso(stage.completed_at)})"
    else:
        outcome = f"missed (due {_iso(stage.due_at)}, finished {_iso(stage.completed_at)})"
    for breach in breaches:
        escalated = f", escalated to {breach.escalated_to}" if breach.escalated_to else ""
        outcome += f"; breach recorded {_iso(breach.breached_at)}{escalated}"
    return outcome


def certificate_inputs(*, workflow_instance_id) -> dict:
    """Everything the approval certificate of a completed instance shows (a fixed number of
    queries, whatever the number of stages and decisions)."""
    instance = WorkflowInstance.objects.select_related("definition", "definition_version").get(
        pk=workflow_instance_id
    )
    stages = list(
        WorkflowStage.objects.filter(instance=instance)
        .order_by("sequence", "stage_name")
        .prefetch_related(
            Prefetch(
                "approvals",
                queryset=WorkflowStageApproval.objects.order_by("created_at", "id"),
            )
        )
    )
    rows = [row for stage in stages for row in stage.approvals.all()]
    approved_revisions = [row.revision for row in rows if row.revision is not None]
    revision = ContractRevision.objects.get(
        contract_id=instance.contract_id,
        number=max(approved_revisions, default=None) or _revision_at(instance),
    )
    rows_by_id = {row.pk: row for row in rows}
    breaches: dict = {}
    for breach in SLABreach.objects.filter(approval__in=rows).order_by("breached_at", "id"):
        breaches.setdefault(rows_by_id[breach.approval_id].stage_id, []).append(breach)
    resource_ids = [str(instance.pk)] + [str(s.pk) for s in stages] + [str(r.pk) for r in rows]
    audit_rows = list(
        AuditLog.objects.filter(tenant_id=instance.tenant_id, resource_id__in=resource_ids)
        .order_by("created_at", "seq")
        .only("id", "action", "resource_type", "resource_id", "changes")
    )
    decisions = _decision_audit(audit_rows)
    named = {str(row.pk): _change(decisions.get(str(row.pk), {}), "on_behalf_of") for row in rows}
    user_ids = {row.decided_by_id for row in rows} | {row.assigned_to_id for row in rows}
    users = {
        str(pk): user
        for pk, user in User.objects.in_bulk((user_ids | set(named.values())) - {None}).items()
    }

    def on_behalf_of(row: WorkflowStageApproval) -> dict | None:
        if named[str(row.pk)]:
            return _person(users.get(str(named[str(row.pk)])))
        source = rows_by_id.get(row.delegated_from_id)
        return _person(users.get(str(source.assigned_to_id))) if source else None

    return {
        "kind": "approval_certificate",
        "contract": revision_summary(revision),
        "workflow": {
            "id": str(instance.pk),
            "definition": instance.definition.name,
            "version": instance.definition_version.version,
            "started_at": _iso(instance.started_at),
            "completed_at": _iso(instance.completed_at),
        },
        "stages": [
            {
                "sequence": stage.sequence,
                "stage_name": stage.stage_name,
                "approval_type": stage.approval_type,
                "status": stage.status,
                "sla": _sla_outcome(stage, breaches.get(stage.pk, [])),
                "decisions": [
                    {
                        "approval": str(row.pk),
                        "approver": row.approver,
                        "status": row.status,
                        "decided_by": _person(users.get(str(row.decided_by_id))),
                        "on_behalf_of": on_behalf_of(row),
                        "via": _change(decisions.get(str(row.pk), {}), "via") or "api",
                        "decided_at": _iso(row.decided_at),
                        "comments": row.comments,
                        "revision": row.revision,
                    }
                    for row in stage.approvals.all()
                ],
            }
            for stage in stages
        ],
        "audit_rows": [str(row.pk) for row in audit_rows],
    }


def _revision_at(instance: WorkflowInstance) -> int:
    """The contract's revision when the instance completed (an instance without decisions)."""
    return (
        ContractRevision.objects.filter(
            contract_id=instance.contract_id, created_at__lte=instance.completed_at
        )
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
        or 1
    )


def contract_inputs(*, request: SignatureRequest) -> dict:
    """The contract as its signers read it: the request's revision, text included."""
    revision = ContractRevision.objects.get(
        contract_id=request.contract_id, number=request.revision
    )
    return {
        "kind": "contract",
        "created_at": _iso(revision.created_at),
        "contract": {**revision_summary(revision), "text": revision.content.get("text", "")},
    }


def signed_contract_inputs(*, request: SignatureRequest) -> dict:
    """The signed contract: the contract, then every signer's signature and evidence."""
    signers = list(request.signers.order_by("position"))
    return {
        "kind": "signed_contract",
        "contract": contract_inputs(request=request)["contract"],
        "request": str(request.pk),
        "order": request.order,
        "requested_at": _iso(request.created_at),
        "completed_at": _iso(request.finished_at),
        "signers": [
            {
                "position": signer.position,
                "name": signer.name,
                "email": signer.email,
                "typed_name": signer.typed_name,
                "sent_at": _iso(signer.sent_at),
                "viewed_at": _iso(signer.viewed_at),
                "signed_at": _iso(signer.signed_at),
                "ip_address": signer.ip_address,
                "user_agent": signer.user_agent,
                "document_sha256": signer.document_sha256,
            }
            for signer in signers
        ],
    }
