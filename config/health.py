"""Liveness and readiness probes for load balancers and orchestrators (no auth)."""

from functools import wraps

from django.db import connection
from django.db.utils import Error as DatabaseError
from django.http import JsonResponse

from config.exceptions import error_body


def require_GET(view):
    """Like Django's ``require_GET`` (HEAD allowed too), but the 405 is JSON like every error."""

    @wraps(view)
    def guarded(request):
        if request.method not in ("GET", "HEAD"):
            response = JsonResponse(
                error_body("method_not_allowed", f'Method "{request.method}" not allowed.'),
                status=405,
            )
            response["Allow"] = "GET, HEAD"
            return response
        return view(request)

    return guarded


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request):
    try:
        with connection.cursor() as cursor:  # Raw SQL: a round trip that reads no table
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})
