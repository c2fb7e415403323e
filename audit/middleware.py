from core.context import context_from_request, request_context


class RequestContextMiddleware:
    """Gives each request an id (``X-Request-ID`` in and out) and records IP and user agent."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with request_context(context_from_request(request)) as context:
            request.request_id = context.request_id
            response = self.get_response(request)
            response["X-Request-ID"] = context.request_id
            return response
