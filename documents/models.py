"""Documents (sealed PDFs), the jobs that generate them, and signature requests with signers."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenancy.scoping import TenantOwnedModel


class DocumentKind(models.TextChoices):
    APPROVAL_CERTIFICATE = "approval_certificate", "Approval certificate"
    SIGNED_CONTRACT = "signed_contract", "Signed contract"


class Document(TenantOwnedModel):
    """One generated, sealed PDF. Immutable: a database trigger refuses UPDATE.

    ``sha256`` is the digest of the stored (sealed) bytes; ``inputs_sha256`` the digest of the
    canonical JSON the PDF was rendered from, the same whenever the same trail is rendered again.
    """

    # Indexed by document_contract_idx, which leads with it.
    contract = models.ForeignKey(
        "contracts.Contract", on_delete=models.CASCADE, related_name="documents", db_index=False
    )
    kind = models.CharField(max_length=32, choices=DocumentKind.choices)
    revision = models.PositiveIntegerField(help_text="The contract revision the document is of.")
    sha256 = models.CharField(max_length=64, db_index=True)
    inputs_sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    storage_name = models.CharField(max_length=255, editable=False)
    workflow_instance = models.ForeignKey(
        "approvals.WorkflowInstance",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    signature_request = models.ForeignKey(
        "SignatureRequest",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["contract", "-created_at"], name="document_contract_idx")]
        constraints = [
            # At most one certificate per workflow instance and one signed copy per request:
            # a job that runs twice finds the document already there.
            models.UniqueConstraint(
                fields=["workflow_instance"],
                condition=Q(workflow_instance__isnull=False),
                name="document_one_per_instance",
            ),
            models.UniqueConstraint(
                fields=["signature_request"],
                condition=Q(signature_request__isnull=False),
                name="document_one_per_signature_request",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.contract_id} (r{self.revision})"


class JobKind(models.TextChoices):
    APPROVAL_CERTIFICATE = "approval_certificate", "Generate an approval certificate"
    SIGNED_CONTRACT = "signed_contract", "Generate a signed contract"
    SIGNER_LINK = "signer_link", "Send a signer their signing link"
    SIGNER_VOIDED = "signer_voided", "Tell a signer the request was voided"


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    FAILED = "failed", "Failed (gave up)"


class DocumentJob(TenantOwnedModel):
    """A unit of work for ``manage.py generate_documents``, written in the transaction that
    calls for it (so a rolled-back decision queues nothing) and claimed FOR UPDATE SKIP LOCKED."""

    kind = models.CharField(max_length=20, choices=JobKind.choices)
    contract = models.ForeignKey("contracts.Contract", on_delete=models.CASCADE, related_name="+")
    workflow_instance = models.ForeignKey(
        "approvals.WorkflowInstance",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    signature_request = models.ForeignKey(
        "SignatureRequest",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    signer = models.ForeignKey(
        "Signer", on_delete=models.CASCADE, null=True, blank=True, related_name="+", db_index=False
    )
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True, default="")
    document = models.ForeignKey(
        Document, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="documentjob_due_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow_instance"],
                condition=Q(kind="approval_certificate"),
                name="documentjob_one_certificate_per_instance",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} ({self.status}, {self.attempts} attempts)"


class SigningOrder(models.TextChoices):
    PARALLEL = "parallel", "Parallel"
    SEQUENTIAL = "sequential", "Sequential"


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    COMPLETED = "completed", "Completed"
    DECLINED = "declined", "Declined"
    VOIDED = "voided", "Voided"
    EXPIRED = "expired", "Expired"


class SignatureRequest(TenantOwnedModel):
    """Signatures asked for one approved revision of a contract."""

    # Indexed by sigrequest_contract_idx, which leads with it.
    contract = models.ForeignKey(
        "contracts.Contract",
        on_delete=models.CASCADE,
        related_name="signature_requests",
        db_index=False,
    )
    revision = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64)
    order = models.CharField(
        max_length=10, choices=SigningOrder.choices, default=SigningOrder.PARALLEL
    )
    message = models.TextField(blank=True, default="")
    status = models.CharField(
        max_length=10, choices=RequestStatus.choices, default=RequestStatus.PENDING
    )
    provider = models.CharField(max_length=40, default="builtin")
    provider_reference = models.CharField(max_length=200, blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["contract", "-created_at"], name="sigrequest_contract_idx"),
            models.Index(
                fields=["tenant", "expires_at"],
                condition=Q(status="pending"),
                name="sigrequest_pending_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["contract"],
                condition=Q(status="pending"),
                name="sigrequest_one_open_per_contract",
            ),
        ]

    def __str__(self) -> str:
        return f"Signature request on {self.contract_id} ({self.status})"


class SignerStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    SENT = "sent", "Sent"
    VIEWED = "viewed", "Viewed"
    SIGNED = "signed", "Signed"
    DECLINED = "declined", "Declined"


class Signer(TenantOwnedModel):
    """One person asked to sign: a member (``user``) or someone outside (name and e-mail).

    The link's token is never stored: only its SHA-256 (``token_sha256``), cleared once used.
    """

    # Indexed by signer_position_uq (request, position).
    request = models.ForeignKey(
        SignatureRequest, on_delete=models.CASCADE, related_name="signers", db_index=False
    )
    position = models.PositiveSmallIntegerField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    name = models.CharField(max_length=200)
    email = models.EmailField()
    status = models.CharField(
        max_length=10, choices=SignerStatus.choices, default=SignerStatus.WAITING
    )
    token_sha256 = models.CharField(max_length=64, null=True, blank=True, unique=True)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    viewed_at = models.DateTimeField(null=True, blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    decline_reason = models.TextField(blank=True, default="")
    typed_name = models.CharField(max_length=200, blank=True, default="")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True, default="")
    document_sha256 = models.CharField(
        max_length=64, blank=True, default="", help_text="SHA-256 of the PDF the signer was shown."
    )

    class Meta:
        ordering = ["request", "position"]
        constraints = [
            models.UniqueConstraint(fields=["request", "position"], name="signer_position_uq"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}> ({self.status})"
