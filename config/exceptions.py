"""One JSON error shape for every failure: ``{code, detail, fields?, request_id}``.

``fields`` maps a field (dotted for nested input) to its messages on validation errors.
"""

import logging
from contextlib import contextmanager

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework_simplejwt.exceptions import AuthenticationFailed as TokenAuthenticationFailed

from core.context import current_request_context

logger = logging.getLogger(__name__)


@contextmanager
def clash_is_invalid(errors):
    """The block's writes in a savepoint; a unique index refusing them (a concurrent create that
    passed the same checks first) becomes a 400 with ``errors``, not a 500, and the caller's
    transaction goes on."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        raise exceptions.ValidationError(errors) from exc


class Conflict(exceptions.APIException):
    """409: the request is valid but the object's state does not allow it."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class QuotaExceeded(exceptions.APIException):
    """400: the tenant already holds as much of a resource as its quota allows.

    The body names the quota: ``{code: "quota_exceeded", detail, quota, limit, request_id}``.
    """

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "A quota of the tenant is exceeded."
    default_code = "quota_exceeded"

    def __init__(self, quota: str, limit: int, detail: str | None = None) -> None:
        super().__init__(detail or f"Quota '{quota}' exceeded: the limit is {limit}.")
        self.quota = quota
        self.limit = limit


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service is temporarily unavailable; retry shortly."
    default_code = "service_unavailable"


def _request_id() -> str | None:
    context = current_request_context()
    return context.request_id if context else None


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into ``{"field.sub": [messages]}``."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(key, int):  # DRF's list errors are {index: errors}: `items[0].field`
                flat.update(_flatten(value, f"{prefix}[{key}]"))
                continue
            name = "non_field_errors" if key in ("non_field_errors", "__all__") else str(key)
            flat.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        flat = {}
        for index, item in enumerate(detail):
            if item:
                flat.update(_flatten(item, f"{prefix}[{index}]" if prefix else f"[{index}]"))
        return flat
    return {prefix or "non_field_errors": [str(detail)]}


def error_message(detail) -> str:
    """The first message of an exception's detail (a string, or DRF's nested lists and dicts)."""
    fields = _flatten(detail)
    return next(iter(fields.values()))[0] if fields else "Invalid input."


def error_body(code: str, detail: str, fields: dict | None = None) -> dict:
    body = {"code": code, "detail": detail}
    if fields:
        body["fields"] = fields
    body["request_id"] = _request_id()
    return body


def _token_failure(detail: dict) -> tuple[str, str]:
    """simplejwt's failures carry ``{detail, code[, messages]}`` as their detail; the first of
    ``messages`` says what is wrong with the token ("Token is expired"), the rest is noise."""
    messages = detail.get("messages") or []
    text = str(messages[0]["message"] if messages else detail["detail"])
    return str(detail["code"]), text if text.endswith(".") else f"{text}."


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, OperationalError | InterfaceError):
        # A lost connection or a statement timeout is the database's trouble, not a bug to hide.
        logger.exception("database error while serving a request")
        exc = ServiceUnavailable()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first = next(iter(fields.values()))[0] if fields else "Invalid input."
        body = error_body(
            "validation_error", first if len(fields) == 1 else "Invalid input.", fields
        )
    elif isinstance(exc, TokenAuthenticationFailed):
        body = error_body(*_token_failure(exc.detail))
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        if isinstance(detail, dict | list):
            body = error_body(
                code if isinstance(code, str) else "error", "Error.", _flatten(detail)
            )
        else:
            body = error_body(code if isinstance(code, str) else "error", str(detail))
    if isinstance(exc, QuotaExceeded):
        body |= {"quota": exc.quota, "limit": exc.limit}
    return Response(body, status=response.status_code, headers=dict(response.headers))


def json_not_found(request, exception=None):
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def json_server_error(request):
    return JsonResponse(error_body("server_error", "Internal server error."), status=500)


def request_too_large() -> JsonResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return JsonResponse(
        error_body("request_too_large", f"The request body exceeds {limit} bytes."), status=413
    )


def json_bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        return request_too_large()
    return JsonResponse(error_body("bad_request", "Bad request."), status=400)


def json_permission_denied(request, exception=None):
    return JsonResponse(error_body("permission_denied", "Permission denied."), status=403)
