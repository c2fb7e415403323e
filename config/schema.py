"""OpenAPI post-processing: every operation documents the errors it can answer with.

Views declare their success responses; the error responses are the same everywhere (one shape,
from ``config.exceptions``), so they are added here once instead of on every view. A response a view
declares itself is never overwritten.
"""

ERROR_COMPONENT = "Error"

ERROR_SCHEMA = {
    "type": "object",
    "description": (
        "Every error response. `fields` is present on validation errors only, `quota` and "
        "`limit` on `quota_exceeded` only."
    ),
    "properties": {
        "code": {"type": "string", "description": "Machine-readable, e.g. `validation_error`."},
        "detail": {"type": "string", "description": "Human-readable summary."},
        "fields": {
            "type": "object",
            "description": (
                'Messages per input field, dotted for nested input ("stages[0].sla_hours").'
            ),
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "quota": {
            "type": "string",
            "description": "On `quota_exceeded` only: the tenant quota, e.g. `webhooks`.",
        },
        "limit": {"type": "integer", "description": "On `quota_exceeded` only: the quota's limit."},
        "request_id": {"type": "string", "description": "Also sent as the X-Request-ID header."},
    },
    "required": ["code", "detail", "request_id"],
}

# Status -> description; added to every operation.
STANDARD_ERRORS = {
    "400": (
        "Invalid input: malformed JSON, wrong types, unknown filter values (see `fields`); or "
        "`quota_exceeded` (see `quota`)."
    ),
    "401": "Missing, invalid or expired credentials.",
    "403": "Authenticated, but not allowed to do this.",
    "404": "Not found, or belonging to another tenant.",
    "406": "The `Accept` header asks for something other than JSON.",
    "409": "The object's current state does not allow this.",
    "413": (
        "The request body is larger than the service accepts (`DATA_UPLOAD_MAX_MEMORY_SIZE`), "
        "whatever the method."
    ),
    "414": "The URL (path and query string) is longer than `MAX_URL_LENGTH` characters.",
    "429": "Too many requests; retry after the `Retry-After` header's seconds.",
    "503": "The database is unavailable or a statement took too long; retry shortly.",
}
# Added to operations that take a request body.
BODY_ERRORS = {
    "415": "The request body is not `application/json`.",
}


def _error_response(description: str) -> dict:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}
        },
    }


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook (registered in SPECTACULAR_SETTINGS)."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            errors = dict(STANDARD_ERRORS)
            if "requestBody" in operation:
                errors.update(BODY_ERRORS)
            for status, description in errors.items():
                operation["responses"].setdefault(status, _error_response(description))
    return result


# DRF renders a TimeField as "09:00:00" (a local time of day, no offset). drf-spectacular calls it
# `format: time`, which JSON Schema defines as RFC 3339 `full-time`: an offset is required, so
# validators and generated clients reject what the API really sends and accepts.
LOCAL_TIME = {
    "type": "string",
    "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?$",
    "example": "09:00:00",
}


def _local_times(node) -> None:
    if isinstance(node, dict):
        if node.get("type") == "string" and node.get("format") == "time":
            del node["format"]
            for key, value in LOCAL_TIME.items():
                node.setdefault(key, value)
        for value in node.values():
            _local_times(value)
    elif isinstance(node, list):
        for value in node:
            _local_times(value)


def describe_local_times(result, generator, request, public):
    """drf-spectacular postprocessing hook: `format: time` becomes an `HH:MM[:SS]` pattern."""
    _local_times(result)
    return result


IDEMPOTENCY_HEADER = "Idempotency-Key"


def describe_idempotency(result, generator, request, public):
    """drf-spectacular postprocessing hook: operations taking `Idempotency-Key` (the
    ``tenancy.idempotency.idempotent`` decorator adds the parameter) also document the 422 of a
    reused key and the `Idempotent-Replayed` header of a replayed response."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            parameters = operation.get("parameters", [])
            if not any(
                p.get("in") == "header" and p.get("name") == IDEMPOTENCY_HEADER for p in parameters
            ):
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault(
                "422",
                _error_response(
                    "The `Idempotency-Key` was already used with a different request "
                    "(`idempotency_key_reused`)."
                ),
            )
            if "409" in responses:
                responses["409"]["description"] += (
                    " Also: a request with the same `Idempotency-Key` is still being processed "
                    "(`idempotency_key_in_flight`)."
                )
            for code, response in responses.items():
                if code.startswith("2"):
                    response.setdefault("headers", {})["Idempotent-Replayed"] = {
                        "description": "`true` when this is the stored first response to a "
                        "repeated `Idempotency-Key` (any stored status is replayed).",
                        "schema": {"type": "string", "enum": ["true"]},
                    }
    return result
