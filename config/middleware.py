"""Request guards that apply before any view runs."""

from contextlib import ExitStack

from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from django.http import JsonResponse
from psycopg.pq import TransactionStatus

from config.exceptions import error_body, request_too_large


class RejectNulBytesMiddleware:
    """PostgreSQL cannot store or compare strings containing NUL; refuse them in query strings.

    Bodies are checked by the serializers (DRF's CharField refuses NUL, JSON fields are checked by
    ``config.validators``); a query parameter reaches filters directly, so it is stopped here.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        for key, values in request.GET.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                return JsonResponse(
                    error_body(
                        "invalid",
                        "Query parameters may not contain NUL characters.",
                        {key.replace("\x00", ""): ["NUL characters are not allowed."]},
                    ),
                    status=400,
                )
        return self.get_response(request)


class RequestLimitsMiddleware:
    """Refuses a URL longer than ``MAX_URL_LENGTH`` (414) and a body declared larger than
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (413) before anything reads them, for every path and method.

    Django itself checks the body size only when a view reads the body, so a GET would ignore a
    huge one. The URL limit stays below what gunicorn reads (``config/gunicorn.py``), so clients
    get the JSON error rather than the server's HTML one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        url_length = len(request.get_full_path())
        if url_length > settings.MAX_URL_LENGTH:
            return JsonResponse(
                error_body(
                    "uri_too_long",
                    f"The URL is {url_length} characters long; at most "
                    f"{settings.MAX_URL_LENGTH} are accepted.",
                ),
                status=414,
            )
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:  # not a number: Django reads no body at all
            declared = 0
        if declared > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return request_too_large()
        return self.get_response(request)


_APPLIED_TIMEOUT = "clm_statement_timeout_ms"  # on a DatabaseWrapper: what its session carries


@receiver(connection_created, dispatch_uid="config.middleware.forget_statement_timeout")
def _forget_statement_timeout(sender, connection, **kwargs):
    """A new physical connection starts with the server's default statement timeout."""
    setattr(connection, _APPLIED_TIMEOUT, None)


class _StatementTimeout:
    """``execute_wrapper``: before a query, give the session the API's timeout if it lacks it."""

    def __init__(self, milliseconds: int):
        self.milliseconds = milliseconds

    def __call__(self, execute, sql, params, many, context):
        wrapper = context["connection"]
        applied = getattr(wrapper, _APPLIED_TIMEOUT, None)
        wanted = self.milliseconds
        needed = applied != wanted and not (applied is None and wanted == 0)
        # Only outside a transaction: a SET inside one is undone if it rolls back, and the marker
        # would then lie. A transaction's first statement still finds none open (its BEGIN
        # travels with it: tenancy.rls_backend), so the SET runs just before it.
        if needed and wrapper.connection.info.transaction_status == TransactionStatus.IDLE:
            with wrapper.wrap_database_errors:  # Raw SQL: a session setting; the ORM has none
                context["cursor"].cursor.execute("SET statement_timeout = %s", [wanted])
            setattr(wrapper, _APPLIED_TIMEOUT, wanted)
        return execute(sql, params, many, context)


class StatementTimeoutMiddleware:
    """Bounds every SQL statement of a web request by ``API_STATEMENT_TIMEOUT_MS`` (0 = off).

    Why this way:

    * ``DATABASES[...]["OPTIONS"]["options"] = "-c statement_timeout=..."`` would be simplest, but
      it limits every process, so the SLA check, the delivery worker and migrations (which may
      legitimately run long statements) would be cancelled too. This middleware only runs for web
      requests; management commands never pass through it and keep the server default.
    * ``SET LOCAL`` needs a transaction around every request, which this service does not open
      (no ``ATOMIC_REQUESTS``). A plain ``SET`` at the start and ``RESET`` at the end of every
      request would cost two round trips per request and would open a connection even for
      requests that need none (``/healthz`` must answer while the database is down).
    * So a connection ``execute_wrapper`` sets the session's ``statement_timeout`` before the
      first query of a request when the session does not carry it yet: once per physical
      (persistent, ``CONN_MAX_AGE``) connection, not once per request. It is issued on the DB-API
      cursor, so it is not in Django's query log (a request's query count is unchanged), and only
      outside a transaction, so a rollback cannot undo it silently. A connection that is replaced
      starts over (``connection_created`` forgets the marker). The setting stays on a web
      thread's connection between requests; only requests use those connections.

    A statement cancelled by the timeout raises ``QueryCanceled`` (an ``OperationalError``), which
    ``config.exceptions`` answers with a 503 JSON error.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        milliseconds = max(0, settings.API_STATEMENT_TIMEOUT_MS)
        with ExitStack() as stack:
            for alias in connections:
                stack.enter_context(
                    connections[alias].execute_wrapper(_StatementTimeout(milliseconds))
                )
            return self.get_response(request)
