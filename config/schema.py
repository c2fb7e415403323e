"""OpenAPI post-processing: every operation documents the errors it can answer with.

Views declare their success responses; the error responses are the same everywhere (one shape,
from ``config.exceptions``), so they are added here once instead of on every view. A response a view
declares itself is never overwritten.
"""

ERROR_COMPONENT = "Error"

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error response. `fields` is present on validation errors only.",
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
        "request_id": {"type": "string", "description": "Also sent as the X-Request-ID header."},
    },
    "required": ["code", "detail", "request_id"],
}

# Status -> description; added to every operation.
STANDARD_ERRORS = {
    "400": "Invalid input: malformed JSON, wrong types, unknown filter values (see `fields`).",
    "401": "Missing, invalid or expired credentials.",
    "403": "Authenticated, but not allowed to do this.",
    "404": "Not found, or belonging to another tenant.",
    "409": "The object's current state does not allow this.",
    "429": "Too many requests; retry after the `Retry-After` header's seconds.",
}
# Added to operations that take a request body.
BODY_ERRORS = {
    "413": "The request body is larger than the service accepts.",
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
