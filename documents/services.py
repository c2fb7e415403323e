"""Writes of the documents app: the job queue, generated documents, signature requests.

Requests and signal receivers only queue jobs (``DocumentJob``) in their own transaction; the
worker (``manage.py generate_documents``) claims them FOR UPDATE SKIP LOCKED, renders and seals
PDFs, sends signers their links, and retries failures with back-off. A failing job never touches
the workflow or the request that queued it.
"""

import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from audit.services import audit_record
from config.exceptions import Conflict
from contracts.models import ContractStatus
from contracts.permissions import require_contract_editor
from contracts.selectors import contract_get_for_update
from core import pipeline
from core.sql import Params, Prepared, insert_select
from documents import providers, selectors
from documents.models import (
    Document,
    DocumentJob,
    DocumentKind,
    JobKind,
    JobStatus,
    RequestStatus,
    SignatureRequest,
    Signer,
    SignerStatus,
    SigningOrder,
)
from notifications.models import Priority
from notifications.services import Message, notify_many
from tenancy.models import User
from tenancy.quotas import quota_guard
from tenancy.selectors import role_holders

logger = logging.getLogger(__name__)

SEAL_REASONS = {
    DocumentKind.APPROVAL_CERTIFICATE: "Approval certificate issued by the CLM workflow service",
    DocumentKind.SIGNED_CONTRACT: "Signed contract sealed by the CLM workflow service",
}


# --- the queue -------------------------------------------------------------------------------


def certificate_job_enqueue(*, instance) -> None:
    """Queue the approval certificate of a completed instance (once per instance); inside a
    transition, with its writes (``core.pipeline.write``)."""
    statement, defaults = _certificate_job_statement()
    pipeline.write(
        statement,
        {
            **defaults,
            "tenant": instance.tenant_id,
            "kind": JobKind.APPROVAL_CERTIFICATE,
            "contract": instance.contract_id,
            "instance": instance.pk,
        },
    )


# Raw SQL: every completed workflow queues its certificate, and ``bulk_create(...,
# ignore_conflicts=True)``'s compilation was most of the client's time in completing one
# (bench/bench_process.py). The other columns get the model's defaults (``insert_select``).
@cache
def _certificate_job_statement() -> tuple[Prepared, dict]:
    params = Params()
    statement = insert_select(
        DocumentJob,
        {
            "tenant_id": "%(tenant)s::uuid",
            "kind": "%(kind)s",
            "contract_id": "%(contract)s::uuid",
            "workflow_instance_id": "%(instance)s::uuid",
        },
        "(SELECT) AS one",
        params,
        now="statement_timestamp()",
    )
    return Prepared(f"{statement} ON CONFLICT DO NOTHING"), dict(params)


# --- documents -------------------------------------------------------------------------------


def render_and_seal(*, kind: str, inputs: dict, pdf: bytes | None = None) -> tuple[bytes, bytes]:
    """The PDF (rendered from ``inputs`` unless given) and its sealed copy."""
    # fpdf2 and pyHanko take seconds to import: only the processes that render pay for them.
    from documents import rendering, sealing

    if pdf is None:
        pdf = rendering.RENDERERS[kind](inputs)
    return pdf, sealing.seal_pdf(pdf, reason=SEAL_REASONS[kind])


@transaction.atomic
def document_create(
    *,
    tenant_id,
    contract_id,
    kind: str,
    inputs: dict,
    pdf: bytes | None = None,
    workflow_instance_id=None,
    signature_request_id=None,
) -> Document:
    """Render (unless a provider gave the ``pdf``), seal and store a PDF; record it with its
    SHA-256; audit ``document_generated``. The file's name is the document's id: a stored
    document is never overwritten."""
    _, sealed = render_and_seal(kind=kind, inputs=inputs, pdf=pdf)
    document = Document(
        tenant_id=tenant_id,
        contract_id=contract_id,
        kind=kind,
        revision=inputs["contract"]["revision"],
        sha256=hashlib.sha256(sealed).hexdigest(),
        inputs_sha256=selectors.inputs_sha256(inputs),
        size=len(sealed),
        workflow_instance_id=workflow_instance_id,
        signature_request_id=signature_request_id,
    )
    document.storage_name = storages["documents"].save(
        f"{tenant_id}/{contract_id}/{document.pk}.pdf", ContentFile(sealed)
    )
    document.save(force_insert=True)
    audit_record(
        action="document_generated",
        tenant=tenant_id,
        resource=document,
        contract=contract_id,
        changes={
            "kind": [None, kind],
            "revision": [None, document.revision],
            "sha256": [None, document.sha256],
            "inputs_sha256": [None, document.inputs_sha256],
            "size": [None, document.size],
        },
    )
    return document


# --- the worker ------------------------------------------------------------------------------


@dataclass
class JobsResult:
    done: int = 0
    retried: int = 0
    failed: int = 0

    @property
    def claimed(self) -> int:
        return self.done + self.retried + self.failed

    def __str__(self) -> str:
        return f"{self.done} done, {self.retried} to retry, {self.failed} given up"


def retry_delay(attempts: int) -> timedelta:
    """Exponential back-off after ``attempts`` failures, capped."""
    seconds = settings.DOCUMENT_JOB_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.DOCUMENT_JOB_RETRY_MAX_SECONDS))


def jobs_run_due(
    *, limit: int = 100, should_stop: Callable[[], bool] = lambda: False
) -> JobsResult:
    """Run due jobs one by one, each in its own transaction holding its row's lock, until none
    is due, ``limit`` ran or ``should_stop()``. Several workers share the queue: SKIP LOCKED."""
    result = JobsResult()
    signature_requests_expire()
    while result.claimed < limit and not should_stop():
        outcome = _run_one_job()
        if outcome is None:
            break
        setattr(result, outcome, getattr(result, outcome) + 1)
    return result


@transaction.atomic
def _run_one_job() -> str | None:
    job = (
        DocumentJob.objects.select_for_update(skip_locked=True)
        .filter(status=JobStatus.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at", "id")
        .first()
    )
    if job is None:
        return None
    job.attempts += 1
    try:
        with transaction.atomic():
            job.document = JOB_RUNNERS[job.kind](job)
    except Exception as exc:
        job.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if job.attempts >= settings.DOCUMENT_JOB_MAX_ATTEMPTS:
            job.status, job.finished_at = JobStatus.FAILED, timezone.now()
            logger.exception("document job gave up", extra={"job": str(job.pk), "kind": job.kind})
            outcome = "failed"
        else:
            job.next_attempt_at = timezone.now() + retry_delay(job.attempts)
            logger.warning(
                "document job failed; will retry",
                extra={"job": str(job.pk), "kind": job.kind, "error": job.last_error},
            )
            outcome = "retried"
    else:
        job.status, job.finished_at, job.last_error = JobStatus.DONE, timezone.now(), ""
        outcome = "done"
    job.save()
    return outcome


def _run_certificate(job: DocumentJob) -> Document:
    existing = Document.objects.filter(workflow_instance_id=job.workflow_instance_id).first()
    if existing is not None:
        return existing
    return document_create(
        tenant_id=job.tenant_id,
        contract_id=job.contract_id,
        kind=DocumentKind.APPROVAL_CERTIFICATE,
        inputs=selectors.certificate_inputs(workflow_instance_id=job.workflow_instance_id),
        workflow_instance_id=job.workflow_instance_id,
    )


JOB_RUNNERS: dict[str, Callable[[DocumentJob], Document | None]] = {
    JobKind.APPROVAL_CERTIFICATE: _run_certificate,
}


# --- signature requests ----------------------------------------------------------------------


@transaction.atomic
def signature_request_create(
    *,
    tenant,
    contract_id,
    requested_by,
    signers: list[dict],
    order: str,
    message: str = "",
    provider: str = providers.BUILTIN,
) -> SignatureRequest:
    """Ask for signatures on an approved contract's current revision (the creator or
    ``contracts.manage``). Links go out from the worker: all at once, or one after another."""
    contract = contract_get_for_update(tenant=tenant, contract_id=contract_id)
    require_contract_editor(contract=contract, user=requested_by)
    if contract.status != ContractStatus.APPROVED:
        raise Conflict(
            f"Only approved contracts are signed; this one is '{contract.status}'.",
            code="contract_not_approved",
        )
    if SignatureRequest.objects.filter(contract=contract, status=RequestStatus.PENDING).exists():
        raise Conflict(
            "The contract already has an open signature request; void it first.",
            code="signature_request_open",
        )
    pending = SignatureRequest.objects.for_tenant(tenant).filter(status=RequestStatus.PENDING)
    quota_guard("open_signature_requests", tenant=tenant, rows=pending)
    people = _resolve_signers(tenant=tenant, signers=signers)
    now = timezone.now()
    request = SignatureRequest.objects.create(
        tenant=tenant,
        contract=contract,
        revision=contract.revision,
        content_hash=contract.content_hash,
        order=order,
        message=message,
        provider=provider,
        requested_by=requested_by,
        created_at=now,
        expires_at=now + timedelta(days=settings.SIGNATURE_LINK_DAYS),
    )
    rows = Signer.objects.bulk_create(
        [
            Signer(tenant=tenant, request=request, position=position, **person)
            for position, person in enumerate(people, start=1)
        ]
    )
    audit_record(
        action="signature_requested",
        tenant=tenant,
        actor=requested_by,
        resource=request,
        changes={
            "order": [None, order],
            "revision": [None, request.revision],
            "signers": [None, [row.email for row in rows]],
        },
    )
    _invite(request, rows if order == SigningOrder.PARALLEL else rows[:1])
    return request


def signature_request_for_completed_workflow(*, instance) -> SignatureRequest | None:
    """A definition naming ``signers`` asks for signatures as soon as its workflow completes,
    on behalf of the contract's creator; a role stands for its holders at that moment."""
    snapshot = instance.definition_version.snapshot  # the orchestrator has read it
    entries = snapshot.get("signers") or []
    if not entries:
        return None
    roles = [entry["role"] for entry in entries if entry.get("role")]
    holders = role_holders(tenant=instance.tenant, roles=roles) if roles else []
    members = [entry["user"] for entry in entries if entry.get("user")]
    members += [str(user.pk) for user in holders]
    signers = [{"user": member} for member in dict.fromkeys(members)]
    signers += [entry for entry in entries if entry.get("email")]
    if not signers:
        return None
    contract = instance.contract
    return signature_request_create(
        tenant=contract.tenant,
        contract_id=contract.pk,
        requested_by=contract.created_by,
        signers=signers,
        order=snapshot.get("signing_order", SigningOrder.PARALLEL),
    )


def _resolve_signers(*, tenant, signers: list[dict]) -> list[dict]:
    """Each entry ``{user}`` (an active member) or ``{name, email}``; no e-mail twice."""
    user_ids = [entry["user"] for entry in signers if entry.get("user")]
    active = User.objects.filter(tenant=tenant, is_active=True)
    users = {str(pk): user for pk, user in active.in_bulk(user_ids).items()}
    people, errors = [], {}
    for index, entry in enumerate(signers):
        if entry.get("user"):
            user = users.get(str(entry["user"]))
            if user is None:
                errors[str(index)] = ["No active user of your organisation has this id."]
                continue
            people.append({"user": user, "name": user.full_name, "email": user.email})
        else:
            people.append({"user": None, "name": entry["name"], "email": entry["email"].lower()})
    emails = [person["email"] for person in people]
    if not errors and len(set(emails)) != len(emails):
        errors["non_field_errors"] = ["Each signer must have a different e-mail address."]
    if errors:
        raise ValidationError({"signers": errors})
    return people


def _invite(request: SignatureRequest, signers: list[Signer]) -> None:
    """Queue each signer's link (the worker makes the token and sends it) and tell members."""
    _queue_for_signers(request, signers, JobKind.SIGNER_LINK)
    members = [signer.user_id for signer in signers if signer.user_id]
    if members:
        _notify(request, "signature_requested", members, "Your signature is requested")


def _notify(request: SignatureRequest, kind: str, recipients, title: str) -> None:
    contract = request.contract
    notify_many(
        tenant_id=request.tenant_id,
        messages=[
            Message(
                notification_type=kind,
                title=f"{title}: {contract.title}",
                message=f"{title} on '{contract.title}' (revision {request.revision}).",
                payload={
                    "contract_id": str(request.contract_id),
                    "signature_request_id": str(request.pk),
                    "status": request.status,
                },
                recipient_ids=tuple(recipients),
                priority=Priority.HIGH if kind == "signature_declined" else Priority.MEDIUM,
            )
        ],
    )


def signer_token_new(*, tenant_id) -> tuple[str, str]:
    """A signing link's token and its SHA-256. The token starts with the tenant's id (hex), so
    the page can look it up within that tenant's row-level security scope."""
    token = f"{uuid.UUID(str(tenant_id)).hex}{secrets.token_urlsafe(32)}"
    return token, token_sha256(token)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _run_signer_link(job: DocumentJob) -> None:
    signer = (
        Signer.objects.select_for_update().select_related("request__contract").get(pk=job.signer_id)
    )
    request = signer.request
    if request.status != RequestStatus.PENDING or signer.status != SignerStatus.WAITING:
        return None  # voided, declined or already sent: nothing to send
    chosen = providers.provider(request.provider)
    token = None
    if chosen.uses_links:
        token, signer.token_sha256 = signer_token_new(tenant_id=signer.tenant_id)
        signer.token_expires_at = request.expires_at
    signer.status, signer.sent_at = SignerStatus.SENT, timezone.now()
    signer.save(update_fields=["token_sha256", "token_expires_at", "status", "sent_at"])
    reference = chosen.send(signer=signer, token=token)
    if reference and reference != request.provider_reference:
        SignatureRequest.objects.filter(pk=request.pk).update(provider_reference=reference)
    return None


def _run_signer_voided(job: DocumentJob) -> None:
    signer = Signer.objects.select_related("request__contract").get(pk=job.signer_id)
    send_mail(
        subject=f"Signature request withdrawn: {signer.request.contract.title}",
        message=(
            f"Hello {signer.name},\n\nthe request to sign '{signer.request.contract.title}' "
            "was withdrawn; your link no longer works. Nothing else is needed from you.\n"
        ),
        from_email=None,
        recipient_list=[signer.email],
    )


@transaction.atomic
def signer_viewed(*, signer: Signer, document_sha256: str) -> Signer:
    """The signer opened the page: the first view is recorded and audited."""
    signer = Signer.objects.select_for_update().get(pk=signer.pk)
    if signer.viewed_at is None:
        signer.viewed_at, signer.status = timezone.now(), SignerStatus.VIEWED
        signer.document_sha256 = document_sha256
        signer.save(update_fields=["viewed_at", "status", "document_sha256"])
        audit_record(
            action="signature_viewed",
            tenant=signer.tenant_id,
            resource=signer,
            contract=signer.request.contract_id,
            changes={"signer": [None, signer.email], "document_sha256": [None, document_sha256]},
        )
    return signer


def _locked_live_signer(signer: Signer) -> Signer:
    """The signer and its request, locked (request first, as every writer of it does); 409
    when the link died meanwhile (signed, declined, voided or expired)."""
    request = SignatureRequest.objects.select_for_update().get(pk=signer.request_id)
    signer = Signer.objects.select_for_update().get(pk=signer.pk)
    signer.request = request
    problem = selectors.signer_link_problem(signer)
    if problem:
        raise Conflict(problem, code="link_dead")
    return signer


@transaction.atomic
def signer_sign(
    *, signer: Signer, typed_name: str, consent: bool, ip_address, user_agent: str
) -> Signer:
    """Sign on the built-in page: consent and a typed full name are required; the link dies.
    The last signature completes the request; in order, the next signer's link goes out."""
    if not consent:
        raise ValidationError({"consent": ["Tick the box to agree to sign electronically."]})
    typed_name = " ".join(typed_name.split())
    if not typed_name:
        raise ValidationError({"full_name": ["Type your full name to sign."]})
    return _record_signature(
        _locked_live_signer(signer),
        typed_name=typed_name,
        ip_address=ip_address,
        user_agent=user_agent,
    )


def _record_signature(signer: Signer, *, typed_name: str, ip_address, user_agent: str) -> Signer:
    request = signer.request
    signer.status, signer.signed_at = SignerStatus.SIGNED, timezone.now()
    signer.typed_name = typed_name[:200]
    signer.ip_address, signer.user_agent = ip_address, user_agent[:512]
    signer.save()
    audit_record(
        action="signed",
        tenant=signer.tenant_id,
        resource=signer,
        contract=request.contract_id,
        changes={
            "signer": [None, signer.email],
            "typed_name": [None, signer.typed_name],
            "document_sha256": [None, signer.document_sha256],
            "provider": [None, request.provider],
        },
    )
    remaining = list(request.signers.exclude(status=SignerStatus.SIGNED).order_by("position"))
    if not remaining:
        _request_complete(request)
    elif request.order == SigningOrder.SEQUENTIAL and remaining[0].status == SignerStatus.WAITING:
        _invite(request, remaining[:1])
    return signer


def _request_complete(request: SignatureRequest) -> None:
    # contracts.services calls this module (amending voids requests): imported at the call.
    from contracts.services import contract_mark_signed

    request.status, request.finished_at = RequestStatus.COMPLETED, timezone.now()
    request.save(update_fields=["status", "finished_at"])
    contract_mark_signed(contract_id=request.contract_id, tenant=request.tenant_id)
    audit_record(
        action="signature_completed",
        tenant=request.tenant_id,
        resource=request,
        changes={
            "status": [RequestStatus.PENDING, RequestStatus.COMPLETED],
            "contract_status": [ContractStatus.APPROVED, ContractStatus.SIGNED],
        },
    )
    DocumentJob.objects.create(
        tenant_id=request.tenant_id,
        kind=JobKind.SIGNED_CONTRACT,
        contract_id=request.contract_id,
        signature_request=request,
    )
    recipients = {request.contract.created_by_id, request.requested_by_id}
    recipients |= {signer.user_id for signer in request.signers.all()}
    _notify(request, "signature_completed", recipients - {None}, "Signing completed")


@transaction.atomic
def signer_decline(*, signer: Signer, reason: str) -> Signer:
    """Decline with a reason: the whole request is declined, every link dies, the contract's
    creator is told."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": ["Say why you decline."]})
    return _record_decline(_locked_live_signer(signer), reason=reason)


def _record_decline(signer: Signer, *, reason: str) -> Signer:
    request = signer.request
    signer.status, signer.declined_at = SignerStatus.DECLINED, timezone.now()
    signer.decline_reason = reason[:5000]
    signer.save(update_fields=["status", "declined_at", "decline_reason"])
    request.status, request.finished_at = RequestStatus.DECLINED, timezone.now()
    request.save(update_fields=["status", "finished_at"])
    audit_record(
        action="signature_declined",
        tenant=signer.tenant_id,
        resource=request,
        changes={"signer": [None, signer.email], "reason": [None, signer.decline_reason]},
    )
    recipients = {request.contract.created_by_id, request.requested_by_id} - {None}
    _notify(request, "signature_declined", recipients, f"{signer.name} declined to sign")
    return signer


@transaction.atomic
def provider_event_apply(*, tenant_id, provider_name: str, event: providers.SignerEvent) -> bool:
    """A verified callback of an external provider: the signer viewed, signed or declined.
    Events for unknown, closed or already-settled signers are ignored (callbacks repeat)."""
    signer = (
        Signer.objects.for_tenant(tenant_id)
        .select_related("request__contract")
        .filter(
            request__provider=provider_name,
            request__provider_reference=event.reference,
            email=event.email,
        )
        .first()
    )
    if signer is None:
        return False
    try:
        signer = _locked_live_signer(signer)
    except Conflict:
        return False
    if event.event == "viewed":
        signer_viewed(signer=signer, document_sha256="")
    elif event.event == "signed":
        _record_signature(
            signer, typed_name=signer.name, ip_address=event.ip_address, user_agent=event.user_agent
        )
    else:
        _record_decline(signer, reason=event.reason or f"Declined at {provider_name}.")
    return True


@transaction.atomic
def signature_request_void(
    *, request: SignatureRequest, voided_by, reason: str
) -> SignatureRequest:
    """Withdraw an open request (the creator or ``contracts.manage``): links die, every signer
    who was sent one is told."""
    request = SignatureRequest.objects.select_for_update().get(pk=request.pk)
    if voided_by is not None:
        require_contract_editor(contract=request.contract, user=voided_by)
    if request.status != RequestStatus.PENDING:
        raise Conflict(
            f"Only pending requests are voided; this one is '{request.status}'.",
            code="signature_request_closed",
        )
    _void(request, actor=voided_by, reason=reason)
    return request


def signature_requests_void_open(*, contract, actor, reason: str) -> None:
    """Void the contract's open requests (an amendment changes what would be signed)."""
    for request in SignatureRequest.objects.select_for_update().filter(
        contract=contract, status=RequestStatus.PENDING
    ):
        _void(request, actor=actor, reason=reason)


def _void(request: SignatureRequest, *, actor, reason: str) -> None:
    told = list(request.signers.exclude(sent_at=None))
    request.status, request.finished_at = RequestStatus.VOIDED, timezone.now()
    request.save(update_fields=["status", "finished_at"])
    audit_record(
        action="signature_voided",
        tenant=request.tenant_id,
        actor=actor,
        resource=request,
        changes={"status": [RequestStatus.PENDING, RequestStatus.VOIDED], "reason": [None, reason]},
    )
    _queue_for_signers(request, told, JobKind.SIGNER_VOIDED)


def _queue_for_signers(request: SignatureRequest, signers: list[Signer], kind: str) -> None:
    DocumentJob.objects.bulk_create(
        [
            DocumentJob(
                tenant_id=request.tenant_id,
                kind=kind,
                contract_id=request.contract_id,
                signature_request=request,
                signer=signer,
            )
            for signer in signers
        ]
    )


@transaction.atomic
def signature_requests_expire() -> int:
    """Pending requests past their expiry become ``expired`` (the worker runs this)."""
    expired = 0
    for request in SignatureRequest.objects.select_for_update(skip_locked=True).filter(
        status=RequestStatus.PENDING, expires_at__lte=timezone.now()
    ):
        request.status, request.finished_at = RequestStatus.EXPIRED, timezone.now()
        request.save(update_fields=["status", "finished_at"])
        audit_record(
            action="signature_expired",
            tenant=request.tenant_id,
            resource=request,
            changes={"status": [RequestStatus.PENDING, RequestStatus.EXPIRED]},
        )
        expired += 1
    return expired


def _run_signed_contract(job: DocumentJob) -> Document:
    existing = Document.objects.filter(signature_request_id=job.signature_request_id).first()
    if existing is not None:
        return existing
    request = SignatureRequest.objects.get(pk=job.signature_request_id)
    return document_create(
        tenant_id=job.tenant_id,
        contract_id=job.contract_id,
        kind=DocumentKind.SIGNED_CONTRACT,
        inputs=selectors.signed_contract_inputs(request=request),
        pdf=providers.provider(request.provider).fetch_signed_document(request=request),
        signature_request_id=request.pk,
    )


JOB_RUNNERS.update(
    {
        JobKind.SIGNED_CONTRACT: _run_signed_contract,
        JobKind.SIGNER_LINK: _run_signer_link,
        JobKind.SIGNER_VOIDED: _run_signer_voided,
    }
)
