"""JSON-lines logging, every line carrying the request id of the request that wrote it."""

import json
import logging
from datetime import UTC, datetime

from core.context import current_request_context

# Attributes every LogRecord has; anything else was passed through `extra=` and is logged too.
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


class RequestContextFilter(logging.Filter):
    """Stamps each record with the request id of the request being served, if any.

    Django logs a response's status (``django.request``: every 4xx and 5xx) after the middleware
    chain has returned, when the request's context is gone; those records carry the request
    itself, which ``audit.middleware.RequestContextMiddleware`` gave its id.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        context = current_request_context()
        record.request_id = (
            context.request_id
            if context
            else getattr(getattr(record, "request", None), "request_id", None)
        )
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
