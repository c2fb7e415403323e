"""Request guards that apply before any view runs."""

from django.http import JsonResponse

from config.exceptions import error_body


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
