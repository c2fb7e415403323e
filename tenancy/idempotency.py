"""``Idempotency-Key`` for the POST endpoints that create or decide (IETF
draft-ietf-httpapi-idempotency-key-header, and Stripe's API).

A client sends ``Idempotency-Key: <1-255 printable ASCII characters>`` (a structured-field string
in quotes is accepted too). The key belongs to the caller's tenant and user and lives
``IDEMPOTENCY_KEY_TTL_HOURS`` (24):

* the first request claims the key (an INSERT committed in its own short transaction, before
  the action runs), then the action runs, then its response is stored;
* a retry with the same key and the same request (method, path and the SHA-256 of the canonical
  JSON body) gets the first response again, same status and body, plus ``Idempotent-Replayed:
  true``; nothing is done twice;
* the same key with a different request is a 422 (``idempotency_key_reused``);
* a retry while the first is still running is a 409 (``idempotency_key_in_flight``);
* a first attempt that fails with a 5xx or an exception releases the key (the retry runs anew);
  a 4xx is stored and replayed, as Stripe does: the request was processed and refused, and
  retrying the same request cannot succeed (a corrected request needs a new key). Refusals before
  the view runs (401, 403 from permissions, 429, a malformed body) claim nothing;
* expired keys are ignored: each claim first deletes the caller's expired records (one indexed
  DELETE), and ``manage.py purge_idempotency_keys`` deletes everyone's (cron). A claim whose
  request died without answering (a killed worker) blocks its key for
  ``IDEMPOTENCY_STALE_CLAIM_SECONDS`` (300), then it is purged like an expired one.

Requests without the header run exactly as before: no query, no overhead. Applied with the
``@idempotent`` decorator, which also documents the header in the OpenAPI schema.
"""

import hashlib
import json
import logging
import re
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import DateTimeField, Func, Q
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status

from config.exceptions import Conflict
from tenancy.models import IdempotencyRecord

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
_KEY_PATTERN = re.compile(rf"[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}")
_CLAIM_ATTEMPTS = 3

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=HEADER,
    location=OpenApiParameter.HEADER,
    required=False,
    type={"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    description=(
        "Makes a retry safe: a repeat of the same request with the same key returns the first "
        "response (header `Idempotent-Replayed: true`) without acting again. 1-255 printable "
        "ASCII characters, e.g. a UUID; kept 24 hours per user. The same key with a different "
        "request: 422; while the first request is still running: 409. A first attempt that "
        "failed with a 5xx is not kept."
    ),
)


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used with a different request."
    default_code = "idempotency_key_reused"


class IdempotencyKeyInFlight(Conflict):
    default_detail = "A request with this Idempotency-Key is still being processed; retry shortly."
    default_code = "idempotency_key_in_flight"


def idempotency_key(request) -> str | None:
    """The request's key; None without the header; 400 when it is malformed."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':  # RFC 8941 sf-string, as the draft writes it
        key = key[1:-1]
    if not key.strip() or not _KEY_PATTERN.fullmatch(key):
        raise exceptions.ValidationError(
            {HEADER: [f"Must be 1-{MAX_KEY_LENGTH} printable ASCII characters."]}
        )
    return key


def request_fingerprint(request) -> str:
    """SHA-256 over the method, the path (with query) and the body as canonical JSON."""
    data = request.data
    if hasattr(data, "lists"):  # a QueryDict (an empty body)
        data = dict(data.lists())
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    material = f"{request.method}\n{request.get_full_path()}\n{body}"
    return hashlib.sha256(material.encode()).hexdigest()


def _stale_or_expired(now) -> Q:
    """Expired keys, and claims whose request can no longer be running.

    A claim stays unanswered when its request died, or when the database went away before the
    request could release it (the 503 of an outage). The first kind goes stale after
    ``IDEMPOTENCY_STALE_CLAIM_SECONDS``; a claim older than the database server's last start is
    stale at once, because the restart ended every transaction that request could have had.
    """
    stale = now - timedelta(seconds=settings.IDEMPOTENCY_STALE_CLAIM_SECONDS)
    server_start = Func(function="pg_postmaster_start_time", output_field=DateTimeField())
    return Q(expires_at__lte=now) | Q(
        Q(created_at__lte=stale) | Q(created_at__lt=server_start),
        status_code__isnull=True,
    )


def purge_expired(*, now=None, **filters) -> int:
    """Delete expired records and abandoned claims (of `filters`, e.g. one user); the count."""
    now = now or timezone.now()
    deleted, _ = IdempotencyRecord.objects.filter(_stale_or_expired(now), **filters).delete()
    return deleted


def claim(*, user, key: str, fingerprint: str) -> tuple[bool, IdempotencyRecord]:
    """``(True, record)`` when this request now owns the key, ``(False, record)`` to replay.

    Raises 422 for the same key with a different request, 409 while the first is in flight.
    """
    scope = {"tenant_id": user.tenant_id, "user": user, "key": key}
    for _attempt in range(_CLAIM_ATTEMPTS):
        now = timezone.now()
        try:
            # Its own transaction, committed before the action runs, so a concurrent duplicate
            # finds the key taken (it waits on this uncommitted row at most for this INSERT).
            with transaction.atomic():
                purge_expired(now=now, tenant_id=user.tenant_id, user=user)
                record = IdempotencyRecord.objects.create(
                    **scope,
                    fingerprint=fingerprint,
                    created_at=now,
                    expires_at=now + timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS),
                )
            return True, record
        except IntegrityError:
            pass
        existing = IdempotencyRecord.objects.filter(**scope).first()
        if existing is None or existing.expires_at <= now:
            continue  # released or expired meanwhile: claim again
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        if existing.status_code is None:
            raise IdempotencyKeyInFlight()
        return False, existing
    raise IdempotencyKeyInFlight()


def store(record: IdempotencyRecord, response) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status_code=response.status_code,
        response_body=response.content.decode(response.charset or "utf-8"),
        content_type=response.get("Content-Type", ""),
    )


def release(record: IdempotencyRecord) -> None:
    """Give the key back after a failed attempt; if even that fails, the claim goes stale."""
    try:
        IdempotencyRecord.objects.filter(pk=record.pk, status_code__isnull=True).delete()
    except DatabaseError:
        logger.warning("could not release idempotency key %s", record.pk, exc_info=True)


def replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(
        record.response_body, status=record.status_code, content_type=record.content_type
    )
    response[REPLAYED_HEADER] = "true"
    return response


def idempotent(view_method):
    """Decorate a DRF view(set) handler (outermost, above ``@extend_schema`` and ``@action``).

    The handler runs after authentication, permissions and throttling, so the key is scoped to
    an authenticated tenant user and refusals before the action claim nothing.
    """

    @wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        key = idempotency_key(request)
        if key is None:
            return view_method(self, request, *args, **kwargs)
        owned, record = claim(user=request.user, key=key, fingerprint=request_fingerprint(request))
        if not owned:
            return replay(record)
        try:
            try:
                response = view_method(self, request, *args, **kwargs)
            except Exception as exc:
                # The error response the client would get (re-raises what maps to no response).
                response = self.handle_exception(exc)
        except BaseException:
            release(record)
            raise
        if response.status_code >= 500:
            release(record)
            return response
        # Render now, exactly as DRF will send it, so a replay is byte-for-byte the same body.
        response = self.finalize_response(request, response, *args, **kwargs)
        if hasattr(response, "render"):
            response.render()
        try:
            store(record, response)
        except DatabaseError:
            # The action happened; answer it. The unanswered claim keeps retries at 409 until it
            # goes stale, rather than letting them act a second time at once.
            logger.exception("could not store the response of idempotency key %s", record.pk)
        return response

    return extend_schema(parameters=[IDEMPOTENCY_KEY_PARAMETER])(wrapper)
