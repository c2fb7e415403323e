"""GET /api/: where a newcomer (or a client discovering the API) starts. No authentication."""

from functools import cache

from django.urls import URLPattern, URLResolver
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

# The public ways in: log in, refresh, register.
AUTH_ROUTES = {"token": "auth-token", "refresh": "auth-token-refresh", "register": "auth-register"}


def _answers_get(pattern: URLPattern) -> bool:
    callback = pattern.callback
    actions = getattr(callback, "actions", None)  # a viewset route: {method: action}
    if actions is not None:
        return "get" in actions
    return hasattr(getattr(callback, "view_class", None), "get")


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern).lstrip("^").rstrip("$")
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and pattern.pattern.regex.groups == 0:
            yield route, pattern


@cache
def resource_routes() -> dict[str, str]:
    """Every route under /api/ that answers GET without a parameter: `{path: URL name}`.

    Derived from the URL configuration, so a new list endpoint is listed without an edit here.
    """
    from config.urls import api_patterns  # config.urls imports this module

    return dict(
        sorted(
            (route.rstrip("/"), pattern.name)
            for route, pattern in _walk(api_patterns)
            if route and pattern.name and _answers_get(pattern)  # route "": this root
        )
    )


class ApiRootView(APIView):
    """The API's index: its documentation, how to sign in, and every resource listing."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["auth"],
        responses=inline_serializer(
            "ApiRoot",
            {
                "docs": serializers.URLField(help_text="Swagger UI."),
                "schema": serializers.URLField(help_text="The OpenAPI 3 schema."),
                "auth": serializers.DictField(
                    child=serializers.URLField(), help_text="Log in, refresh, register."
                ),
                "resources": serializers.DictField(
                    child=serializers.URLField(),
                    help_text="Every listing, by its path under /api/ (a Bearer token needed).",
                ),
            },
        ),
    )
    def get(self, request):
        def link(name: str) -> str:
            return reverse(name, request=request)

        return Response(
            {
                "docs": link("docs"),
                "schema": link("schema"),
                "auth": {key: link(name) for key, name in AUTH_ROUTES.items()},
                "resources": {path: link(name) for path, name in resource_routes().items()},
            }
        )
