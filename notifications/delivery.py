"""The delivery worker's claim / send / record loop (``manage.py deliver_notifications``).

Claim: one statement leases the due e-mails and the due rows of ONE webhook endpoint (rows and
endpoint locked ``FOR UPDATE SKIP LOCKED``, so workers never wait on, nor take, each other's; the
lease is ``locked_until`` and ``claim_token`` on each row and on the endpoint). Other claims skip
a leased endpoint, so at most one delivery is in flight per endpoint, and a slow endpoint holds
one worker only. Send: outside any transaction, so no row lock is held during network I/O; each
webhook POST has an overall deadline (``WEBHOOK_TIMEOUT_SECONDS``: lookup, connect, TLS, request
and every read). Record: each row is marked sent / retried / failed right after its send, only if
this claim still holds it (``claim_token``); a success is recorded while the next POST is answered
(``_Deferred``). The endpoint is released after the last row.

A worker killed mid-batch loses nothing: its rows stay ``pending`` and become claimable again
when the lease expires (the endpoint's with them). That, and a crash between a send and its
record, make delivery at-least-once; ``X-Event-Id`` is the same on every attempt so receivers can
de-duplicate. A worker never starts a send unless its lease outlasts the longest send plus a
margin (it releases the rest of its batch), so two live workers never send the same row, nor to
the same endpoint at once.

Results are recorded with ``synchronous_commit`` off (see ``_synchronous_commit``).

Failures are retried with exponential backoff and jitter up to ``NOTIFICATION_MAX_ATTEMPTS``,
then the row is ``failed`` and audited (``notification_failed``). A webhook endpoint is disabled
after ``WEBHOOK_DISABLE_AFTER_FAILURES`` consecutive failed attempts (audited
``webhook_disabled``; its pending deliveries fail with it).
"""

import functools
import http.client
import ipaddress
import json
import logging
import random
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import SplitResult

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit.services import audit_record
from core.links import contract_url
from core.sql import sql
from notifications.formats import formatted_body
from notifications.links import decide_url, preferences_url
from notifications.models import (
    Delivery,
    DeliveryChannel,
    DeliveryStatus,
    Notification,
    WebhookEndpoint,
)
from notifications.signing import signature_headers
from notifications.targets import (
    UnsafeTarget,
    parse_webhook_url,
    private_targets_allowed,
    resolve_target,
)

logger = logging.getLogger(__name__)

USER_AGENT = "clm-webhooks/1.0"
ERROR_MAX_LENGTH = 1000
# A row is sent only while its lease has at least the send timeout plus this margin left.
LEASE_MARGIN_SECONDS = 5


# --- results ---------------------------------------------------------------------------------


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    released: int = 0

    def __iadd__(self, other: "BatchResult") -> "BatchResult":
        self.claimed += other.claimed
        self.sent += other.sent
        self.retrying += other.retrying
        self.failed += other.failed
        self.released += other.released
        return self

    def __str__(self) -> str:
        return (
            f"claimed {self.claimed}, sent {self.sent}, retrying {self.retrying}, "
            f"failed {self.failed}, released {self.released}"
        )


@dataclass(frozen=True)
class SendResult:
    """``error`` is shown to the tenant (``last_error``, audit); ``detail`` only logged."""

    ok: bool
    status: int | None = None
    error: str = ""
    permanent: bool = False  # retrying cannot help (inactive endpoint or recipient)
    detail: str = ""


@dataclass
class Claim:
    token: uuid.UUID
    locked_until: datetime
    rows: list[Delivery] = field(default_factory=list)
    endpoint_id: uuid.UUID | None = None  # the one webhook endpoint this claim sends to


# --- settings --------------------------------------------------------------------------------


def retry_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before retry number ``attempt`` (1 = after the first failure).

    Exponential (``base * 2**(attempt - 1)``, capped) with "equal jitter": between half and all of
    it, so endpoints recovering from an outage are not hit by every retry at once.
    """
    base = settings.NOTIFICATION_RETRY_BASE_SECONDS
    cap = settings.NOTIFICATION_RETRY_MAX_SECONDS
    delay = min(cap, base * 2 ** max(attempt - 1, 0))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


def _lease_seconds(lease_seconds: float | None) -> float:
    return settings.NOTIFICATION_LEASE_SECONDS if lease_seconds is None else lease_seconds


def _timeout() -> float:
    return settings.WEBHOOK_TIMEOUT_SECONDS


def longest_send_seconds() -> float:
    """The longest one send may take: the webhook or the SMTP timeout."""
    return max(_timeout(), getattr(settings, "EMAIL_TIMEOUT", None) or 0)


# --- claim -----------------------------------------------------------------------------------


def claim_due(
    *, batch_size: int, now: datetime | None = None, lease_seconds: float | None = None
) -> Claim:
    """Lease the due e-mails and the due rows of one webhook endpoint, each up to
    ``batch_size``, to a new claim (one statement, then one read of the rows)."""
    now = now or timezone.now()
    claim = Claim(
        token=uuid.uuid4(), locked_until=now + timedelta(seconds=_lease_seconds(lease_seconds))
    )
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM,
            {
                "now": now,
                "until": claim.locked_until,
                "token": str(claim.token),
                "batch": batch_size,
            },
        )
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return claim
    rows = Delivery.objects.filter(pk__in=ids).select_related("endpoint", "notification__recipient")
    # E-mails first: they never wait behind a slow endpoint's sends.
    claim.rows = sorted(
        rows, key=lambda row: (row.channel != DeliveryChannel.EMAIL, row.next_attempt_at, row.pk)
    )
    claim.endpoint_id = next((row.endpoint_id for row in claim.rows if row.endpoint_id), None)
    return claim


# At most one delivery is in flight per webhook endpoint: a claim leases ONE endpoint (its
# ``locked_until`` and ``claim_token``, like the rows') with up to a batch of its due rows, and
# other claims skip a leased endpoint, or one being leased (SKIP LOCKED; a lease committed
# meanwhile fails the re-checked condition). The endpoint is the one with the earliest due row:
# one probe of ``delivery_endpoint_due_idx`` per endpoint nobody holds, whatever the backlog or
# the history behind it. E-mails are claimed alongside (``delivery_email_due_idx``). ``FOR NO KEY
# UPDATE`` lets deliveries referencing the endpoint be inserted meanwhile. Rows tied on their due
# time (one ``notify_many``) come in index order.
# Raw SQL: one statement per claim, the delivery worker's hot path (bench/bench_delivery.py).
_CLAIM = sql(
    """
WITH endpoint AS MATERIALIZED (
    SELECT {e.pk}
      FROM {e}
     CROSS JOIN LATERAL (
           SELECT {d.next_attempt_at}
             FROM {d}
            WHERE {d.endpoint} = {e.pk} AND {d.status} = 'pending'
              AND {d.next_attempt_at} <= %(now)s
              AND ({d.locked_until} IS NULL OR {d.locked_until} <= %(now)s)
            ORDER BY {d.next_attempt_at}
            LIMIT 1) first_due
     WHERE {e.locked_until} IS NULL OR {e.locked_until} <= %(now)s
     ORDER BY first_due.next_attempt_at, {e.pk}
     LIMIT 1
       FOR NO KEY UPDATE OF e SKIP LOCKED
), webhook_rows AS MATERIALIZED (
    SELECT {d.pk}
      FROM {d}
     WHERE {d.endpoint} = (SELECT id FROM endpoint)
       AND {d.status} = 'pending' AND {d.next_attempt_at} <= %(now)s
       AND ({d.locked_until} IS NULL OR {d.locked_until} <= %(now)s)
     ORDER BY {d.next_attempt_at}
     LIMIT %(batch)s
       FOR UPDATE SKIP LOCKED
), email_rows AS MATERIALIZED (
    SELECT {d.pk}
      FROM {d}
     WHERE {d.channel} = 'email' AND {d.status} = 'pending' AND {d.next_attempt_at} <= %(now)s
       AND ({d.locked_until} IS NULL OR {d.locked_until} <= %(now)s)
     ORDER BY {d.next_attempt_at}
     LIMIT %(batch)s
       FOR UPDATE SKIP LOCKED
), leased_endpoint AS (
    UPDATE {e}
       SET {e.locked_until:column} = %(until)s, {e.claim_token:column} = %(token)s::uuid
     WHERE {e.pk} = (SELECT id FROM endpoint) AND EXISTS (SELECT 1 FROM webhook_rows)
)
UPDATE {d}
   SET {d.locked_until:column} = %(until)s, {d.claim_token:column} = %(token)s::uuid,
       {d.attempts:column} = {d.attempts} + 1
 WHERE {d.pk} IN (SELECT id FROM webhook_rows UNION ALL SELECT id FROM email_rows)
RETURNING {d.pk}
""",
    e=WebhookEndpoint,
    d=Delivery,
)


def release(claim: Claim, rows: list[Delivery]) -> int:
    """Give unsent rows back (their attempt is not counted): another worker may take them."""
    if not rows:
        return 0
    return Delivery.objects.filter(pk__in=[row.pk for row in rows], claim_token=claim.token).update(
        locked_until=None, claim_token=None, attempts=F("attempts") - 1
    )


def release_endpoint(claim: Claim) -> None:
    """End the claim's lease of its endpoint: the next claim may send to it."""
    if claim.endpoint_id is not None:
        WebhookEndpoint.objects.filter(pk=claim.endpoint_id, claim_token=claim.token).update(
            locked_until=None, claim_token=None
        )


# --- send: email -----------------------------------------------------------------------------


def render_email(notification: Notification, event_id=None) -> EmailMultiAlternatives:
    """The email for a notification: plain text with an HTML alternative, linking the contract
    and, when it asks for a decision, the recipient's personal approval link."""
    payload = notification.payload or {}
    due_at = parse_datetime(payload["due_at"]) if payload.get("due_at") else None
    context = {
        "notification": notification,
        "recipient": notification.recipient,
        "payload": payload,
        "due_at": due_at,
        "contract_url": contract_url(payload["contract_id"]) if payload.get("contract_id") else "",
        "decide_url": decide_url(notification),
        "inbox_url": preferences_url(),
    }
    subject = " ".join(f"[CLM] {notification.title}".split())  # no newlines in a header
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("notifications/email/notification.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.recipient.email],
        headers={"X-Event-Id": str(event_id)} if event_id else None,
    )
    message.attach_alternative(
        render_to_string("notifications/email/notification.html", context), "text/html"
    )
    return message


def send_email(row: Delivery, connection) -> SendResult:
    recipient = row.notification.recipient
    if not recipient.is_active or not recipient.email:
        return SendResult(False, error="the recipient is inactive or has no email", permanent=True)
    try:
        message = render_email(row.notification, row.event_id)
        connection.open()  # once per batch: a no-op while the connection is open
        message.connection = connection
        sent = connection.send_messages([message])
    except Exception as exc:  # any backend failure (SMTP, DNS, TLS) is retried
        return SendResult(False, error=public_error(exc), detail=_detail(exc))
    if not sent:
        return SendResult(False, error="the email backend sent nothing")
    return SendResult(True)


# --- send: webhooks --------------------------------------------------------------------------


def webhook_request_body(row: Delivery) -> bytes:
    """The queued event in the endpoint's format (``notifications.formats``), compact JSON."""
    body = formatted_body(row.endpoint.format, row.payload)
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


class DeadlineExceeded(TimeoutError):
    """The send's overall deadline passed before this socket operation could start."""


class Deadline:
    """A wall-clock limit on a whole send: DNS, connect, TLS, the request and every read.

    A socket timeout alone limits each call: a receiver trickling one byte per call never trips
    it, so each operation is given the time left until the deadline instead, never more.
    """

    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:  # never 0 as a timeout: that would make the socket non-blocking
            raise DeadlineExceeded("deadline exceeded")
        return left

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.at


class _DeadlineIO:
    """Socket methods that each run within the time left until ``deadline``."""

    deadline: Deadline | None = None

    def _limit(self) -> None:
        if self.deadline is not None:
            self.settimeout(self.deadline.remaining())

    def recv(self, *args, **kwargs):
        self._limit()
        return super().recv(*args, **kwargs)

    def recv_into(self, *args, **kwargs):
        self._limit()
        return super().recv_into(*args, **kwargs)

    def send(self, *args, **kwargs):
        self._limit()
        return super().send(*args, **kwargs)

    def sendall(self, *args, **kwargs):
        self._limit()
        return super().sendall(*args, **kwargs)


class _DeadlineSocket(_DeadlineIO, socket.socket):
    pass


class _DeadlineSSLSocket(_DeadlineIO, ssl.SSLSocket):
    pass


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Verified TLS; its sockets keep to the deadline (the handshake gets the time left, and
    Python bounds a whole handshake by the socket timeout)."""
    context = ssl.create_default_context()
    context.sslsocket_class = _DeadlineSSLSocket
    return context


class _DeadlineConnection:
    """An ``http.client`` connection to addresses resolved (and checked) beforehand, connecting
    to them instead of resolving the host again; the Host header and TLS use the host name."""

    def __init__(self, host: str, port: int, *, addresses: list[str], deadline: Deadline, **kw):
        super().__init__(host, port, timeout=deadline.remaining(), **kw)
        self._addresses = addresses
        self._deadline = deadline
        self._create_connection = self._open

    def set_deadline(self, deadline: Deadline) -> None:
        """The next send's deadline, for a kept connection (and a reconnect)."""
        self._deadline = deadline
        if self.sock is not None:
            self.sock.deadline = deadline

    def _open(self, host_port, timeout, source_address=None) -> socket.socket:
        error: OSError = DeadlineExceeded("deadline exceeded")
        for address in self._addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = _DeadlineSocket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(self._deadline.remaining())
                sock.connect((address, host_port[1]))
                sock.settimeout(self._deadline.remaining())  # what is left, for TLS
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error

    def connect(self) -> None:
        super().connect()
        self.sock.deadline = self._deadline


class _HTTPConnection(_DeadlineConnection, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnection, http.client.HTTPSConnection):
    pass


class WebhookConnections:
    """The connection a claim's webhook sends share (HTTP keep-alive): a claim sends to one
    endpoint, one POST after another, so the next reuses the last one's connection, without a
    new TCP or TLS handshake. Each send still has its own deadline."""

    def __init__(self):
        self._key: tuple | None = None
        self._connection: http.client.HTTPConnection | None = None

    def take(self, key: tuple) -> http.client.HTTPConnection | None:
        """The kept connection to ``key`` (TLS or not, host, port), if any; no longer kept."""
        connection, self._connection = self._connection, None
        if connection is not None and key != self._key:
            connection.close()
            return None
        return connection

    def keep(self, key: tuple, connection: http.client.HTTPConnection) -> None:
        self._key, self._connection = key, connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


# An answer is read whole, and its connection kept, only up to this size (and not chunked).
KEEP_ALIVE_MAX_BODY = 65536


def _drained(response: http.client.HTTPResponse) -> bool:
    """Whether a 2xx answer was read whole, so its connection can carry the next POST."""
    if response.will_close or response.length is None or response.length > KEEP_ALIVE_MAX_BODY:
        return False
    try:
        response.read()
    except (OSError, http.client.HTTPException):
        return False
    return True


def _exchange(conn, target: str, body: bytes, headers: dict, *, reused: bool, while_waiting):
    try:
        conn.request("POST", target, body=body, headers=headers)
        while_waiting()
        return conn.getresponse()
    except (ConnectionResetError, BrokenPipeError):  # RemoteDisconnected is a ConnectionResetError
        if not reused:
            raise
    # The receiver closed the kept connection meanwhile (an idle timeout): once more, on a new
    # one. Should it have processed the first POST after all, X-Event-Id tells the two apart.
    conn.close()
    conn.request("POST", target, body=body, headers=headers)
    while_waiting()
    return conn.getresponse()


# Name lookups run here so that a slow resolver counts against the deadline too.
_resolver = ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook-dns")


def _addresses(parts: SplitResult, port: int) -> list[str]:
    """Where to connect: the checked public address, or (private targets allowed) any."""
    if not private_targets_allowed():
        return [resolve_target(parts)[0]]
    infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _resolve(parts: SplitResult, port: int, deadline: Deadline) -> list[str]:
    try:
        ipaddress.ip_address(parts.hostname)
    except ValueError:
        return _resolver.submit(_addresses, parts, port).result(timeout=deadline.remaining())
    return _addresses(parts, port)  # a literal address: no lookup to wait for


def _short(text: str) -> str:
    return text[:ERROR_MAX_LENGTH]


def _detail(exc: BaseException) -> str:
    return _short(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}")


def public_error(exc: BaseException) -> str:
    """What a tenant may read about a failed send: its kind, never an address, port or host.

    Connection errors name the address they failed on (``[Errno 111] Connection refused`` from a
    resolved internal address, a TLS error naming a host, an SMTP server's reply), which would
    map our network for whoever reads the delivery log or the audit trail. Those details go to
    the server log only (``delivery attempt failed``, field ``detail``).
    """
    if isinstance(exc, UnsafeTarget):
        return f"refused target: {exc.public}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return "connection reset"
    if isinstance(exc, socket.gaierror):
        return "the host name cannot be resolved"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return "TLS error"
    if isinstance(exc, smtplib.SMTPException):
        return f"SMTP error ({type(exc).__name__})"
    if isinstance(exc, http.client.HTTPException):
        return "invalid HTTP response"
    if isinstance(exc, OSError):
        return "connection error"
    return f"send error ({type(exc).__name__})"


def post_json(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    connections: WebhookConnections | None = None,
    while_waiting: Callable[[], None] = lambda: None,
) -> SendResult:
    """POST ``body`` within ``timeout`` seconds in all; 2xx is success, anything else (3xx
    included: redirects are not followed) a failure to retry. No proxy is used. With
    ``connections``, a kept connection to the same endpoint is reused and a good one kept.
    ``while_waiting`` runs once the request is written, while the receiver works on it."""
    try:
        parts = parse_webhook_url(url)
    except ValidationError as exc:
        return SendResult(False, error=f"invalid URL: {' '.join(exc.messages)}", permanent=True)
    tls = parts.scheme.lower() == "https"
    port = parts.port or (443 if tls else 80)
    key = (tls, parts.hostname, port)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    deadline = Deadline(timeout)
    conn = connections.take(key) if connections is not None else None
    reused, kept = conn is not None, False
    try:
        if conn is None:
            addresses = _resolve(parts, port, deadline)
            if tls:
                conn = _HTTPSConnection(
                    parts.hostname,
                    port,
                    addresses=addresses,
                    deadline=deadline,
                    context=_tls_context(),
                )
            else:
                conn = _HTTPConnection(parts.hostname, port, addresses=addresses, deadline=deadline)
        else:
            conn.set_deadline(deadline)
        response = _exchange(
            conn, target, body, headers, reused=reused, while_waiting=while_waiting
        )
        if 200 <= response.status < 300:
            kept = connections is not None and _drained(response)
            return SendResult(True, response.status)
        excerpt = response.read(200).decode("utf-8", "replace")  # logged, not shown
        detail = _short(f"HTTP {response.status}: {excerpt}".strip())
        return SendResult(False, response.status, f"HTTP {response.status}", detail=detail)
    except UnsafeTarget as exc:  # may be transient (DNS); retried, and logged
        return SendResult(False, error=public_error(exc), detail=_short(f"refused target: {exc}"))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        error = f"deadline exceeded ({timeout:g} s)" if deadline.passed else public_error(exc)
        return SendResult(False, error=error, detail=_detail(exc))
    finally:
        if kept:
            connections.keep(key, conn)
        elif conn is not None:
            conn.close()


def send_webhook(
    row: Delivery,
    connections: WebhookConnections | None = None,
    while_waiting: Callable[[], None] = lambda: None,
) -> SendResult:
    endpoint = row.endpoint
    if not endpoint.is_active:
        return SendResult(False, error="the endpoint is inactive", permanent=True)
    body = webhook_request_body(row)
    event_id = str(row.event_id)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Event-Id": event_id,
        "X-Event-Type": row.event_type,
        "X-Delivery-Attempt": str(row.attempts),
        **signature_headers(endpoint, event_id, body, timezone.now()),
    }
    return post_json(endpoint.url, body, headers, _timeout(), connections, while_waiting)


# --- record ----------------------------------------------------------------------------------


class _Recorder:
    """Marks rows of one claim after their send, and tracks the endpoints' failure streaks."""

    def __init__(self, claim: Claim, rng: random.Random | None):
        self.claim = claim
        self.rng = rng
        self.result = BatchResult(claimed=len(claim.rows))
        self.failing_endpoints: set = set()  # failed in this batch: a success must reset them
        self.reset_endpoints: set = set()  # reset in this batch: their loaded streak is stale
        self.disabled_endpoints: set = set()

    def held(self, row: Delivery):
        return Delivery.objects.filter(pk=row.pk, claim_token=self.claim.token)

    def sent(self, row: Delivery, outcome: SendResult) -> None:
        now = timezone.now()
        self.held(row).update(
            status=DeliveryStatus.SENT,
            sent_at=now,
            locked_until=None,
            claim_token=None,
            response_status=outcome.status,
            last_error="",
        )
        self.result.sent += 1
        endpoint = row.endpoint
        if endpoint is None:
            return
        # The streak as loaded with the claim, unless this batch already reset or extended it.
        streak = endpoint.consecutive_failures and endpoint.pk not in self.reset_endpoints
        if streak or endpoint.pk in self.failing_endpoints:
            WebhookEndpoint.objects.filter(pk=endpoint.pk, consecutive_failures__gt=0).update(
                consecutive_failures=0
            )
            self.failing_endpoints.discard(endpoint.pk)
            self.reset_endpoints.add(endpoint.pk)

    def failed(self, row: Delivery, outcome: SendResult) -> None:
        now = timezone.now()
        error = outcome.error or f"HTTP {outcome.status}"
        logger.warning(
            "delivery attempt failed",
            extra={
                "delivery_id": str(row.pk),
                "channel": row.channel,
                "event_id": str(row.event_id),
                "attempt": row.attempts,
                "error": error,
                "detail": outcome.detail or error,
            },
        )
        if outcome.permanent or row.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
            self.give_up(row, outcome, error, now)
        else:
            delay = retry_delay(row.attempts, self.rng)
            self.held(row).update(
                next_attempt_at=now + timedelta(seconds=delay),
                locked_until=None,
                claim_token=None,
                last_error=error,
                response_status=outcome.status,
            )
            self.result.retrying += 1
        if row.channel == DeliveryChannel.WEBHOOK and not outcome.permanent:
            self.endpoint_failed(row.endpoint, now)

    @transaction.atomic
    def give_up(self, row: Delivery, outcome: SendResult, error: str, now) -> None:
        updated = self.held(row).update(
            status=DeliveryStatus.FAILED,
            locked_until=None,
            claim_token=None,
            last_error=error,
            response_status=outcome.status,
        )
        self.result.failed += 1
        if updated:
            audit_record(
                action="notification_failed",
                tenant=row.tenant_id,
                resource=row,
                changes={
                    "status": [DeliveryStatus.PENDING, DeliveryStatus.FAILED],
                    "channel": [None, row.channel],
                    "event_type": [None, row.event_type],
                    "event_id": [None, str(row.event_id)],
                    "attempts": [None, row.attempts],
                    "error": [None, error],
                },
            )

    def endpoint_failed(self, endpoint: WebhookEndpoint, now) -> None:
        self.failing_endpoints.add(endpoint.pk)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            consecutive_failures=F("consecutive_failures") + 1
        )
        threshold = settings.WEBHOOK_DISABLE_AFTER_FAILURES
        if threshold > 0:
            self.maybe_disable(endpoint, threshold, now)

    @transaction.atomic
    def maybe_disable(self, endpoint: WebhookEndpoint, threshold: int, now) -> None:
        disabled = WebhookEndpoint.objects.filter(
            pk=endpoint.pk, is_active=True, consecutive_failures__gte=threshold
        ).update(is_active=False, disabled_at=now)
        if not disabled:
            return
        self.disabled_endpoints.add(endpoint.pk)
        dropped = Delivery.objects.filter(
            endpoint_id=endpoint.pk, status=DeliveryStatus.PENDING
        ).update(
            status=DeliveryStatus.FAILED,
            locked_until=None,
            claim_token=None,
            last_error=f"the endpoint was disabled after {threshold} consecutive failures",
        )
        audit_record(
            action="webhook_disabled",
            tenant=endpoint.tenant_id,
            resource=endpoint,
            changes={
                "is_active": [True, False],
                "disabled_at": [None, now.isoformat()],
                "consecutive_failures": [None, threshold],
                "pending_deliveries_failed": [None, dropped],
            },
        )
        logger.warning(
            "webhook endpoint disabled",
            extra={"endpoint_id": str(endpoint.pk), "pending_deliveries_failed": dropped},
        )


# --- the loop --------------------------------------------------------------------------------


class _Deferred:
    """The record of the last successful POST, made while the next POST's answer is awaited: the
    database and the receiver work at the same time, and still one POST is in flight."""

    def __init__(self):
        self._call: Callable[[], None] | None = None

    def defer(self, call: Callable[[], None]) -> None:
        self.run()
        self._call = call

    def run(self) -> None:
        call, self._call = self._call, None
        if call is not None:
            call()


def deliver_claim(
    claim: Claim,
    *,
    should_stop: Callable[[], bool] | None = None,
    rng: random.Random | None = None,
) -> BatchResult:
    """Send the claim's rows one by one, recording each (a success while the next POST is
    answered); release what is left on a stop, then the endpoint."""
    recorder = _Recorder(claim, rng)
    email_connection = None
    webhook_connections = WebhookConnections()
    last_success = _Deferred()
    margin = timedelta(seconds=longest_send_seconds() + LEASE_MARGIN_SECONDS)
    _synchronous_commit(False)
    try:
        for index, row in enumerate(claim.rows):
            if (should_stop and should_stop()) or timezone.now() + margin > claim.locked_until:
                last_success.run()
                recorder.result.released += release(claim, claim.rows[index:])
                break
            if row.channel == DeliveryChannel.EMAIL:
                if email_connection is None:
                    email_connection = get_connection()
                outcome = send_email(row, email_connection)
            elif row.endpoint_id in recorder.disabled_endpoints:
                recorder.result.failed += 1  # failed with its endpoint, already recorded
                continue
            else:
                outcome = send_webhook(row, webhook_connections, last_success.run)
            last_success.run()  # when the send failed before its request was written
            if outcome.ok:
                last_success.defer(functools.partial(recorder.sent, row, outcome))
            else:
                recorder.failed(row, outcome)
        last_success.run()
        release_endpoint(claim)
    finally:
        _synchronous_commit(True)
        webhook_connections.close()
        if email_connection is not None:
            email_connection.close()
    return recorder.result


def _synchronous_commit(on: bool) -> None:
    """Record results without waiting for the WAL flush (``synchronous_commit = off``).

    Commits stay atomic and are visible to other workers at once; only a crash of the database
    server itself can lose the last few hundred milliseconds of them, and a lost "sent" only means
    that row is delivered again, which at-least-once allows. Waiting for the flush of one commit
    per delivery costs about 3 ms on a typical disk, more than the POST itself (bench_delivery).
    """
    try:
        with connection.cursor() as cursor:  # Raw SQL: a session setting; the ORM has none
            cursor.execute("RESET synchronous_commit" if on else "SET synchronous_commit TO OFF")
    except DatabaseError:
        if not on:
            raise
        logger.warning("could not reset synchronous_commit", exc_info=True)


def deliver_due(
    *,
    batch_size: int = 50,
    should_stop: Callable[[], bool] | None = None,
    lease_seconds: float | None = None,
    rng: random.Random | None = None,
) -> BatchResult:
    """Claim one batch and deliver it."""
    claim = claim_due(batch_size=batch_size, lease_seconds=lease_seconds)
    if not claim.rows:
        return BatchResult()
    return deliver_claim(claim, should_stop=should_stop, rng=rng)


def drain(
    *,
    batch_size: int = 50,
    should_stop: Callable[[], bool] | None = None,
    lease_seconds: float | None = None,
    rng: random.Random | None = None,
) -> BatchResult:
    """Deliver batches until nothing is due (or a stop is asked for)."""
    total = BatchResult()
    while not (should_stop and should_stop()):
        result = deliver_due(
            batch_size=batch_size, should_stop=should_stop, lease_seconds=lease_seconds, rng=rng
        )
        total += result
        progress = result.sent + result.retrying + result.failed
        if result.claimed == 0 or (result.released and not progress):
            break
    return total
