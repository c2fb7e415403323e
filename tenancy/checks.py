"""System check: every API viewset over a tenant-owned model must scope by tenant."""

from django.core import checks
from django.urls import URLPattern, URLResolver, get_resolver

from tenancy.scoping import TenantScopedViewSetMixin, is_tenant_owned


def _views(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _views(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            view_class = getattr(pattern.callback, "cls", None)
            if view_class is not None:
                yield view_class


@checks.register(checks.Tags.security)
def check_viewsets_are_tenant_scoped(app_configs=None, **kwargs):
    errors = []
    for view_class in set(_views(get_resolver().url_patterns)):
        queryset = getattr(view_class, "queryset", None)
        if queryset is None or not is_tenant_owned(queryset.model):
            continue
        if not issubclass(view_class, TenantScopedViewSetMixin):
            errors.append(
                checks.Error(
                    f"{view_class.__module__}.{view_class.__name__} serves the tenant-owned model "
                    f"{queryset.model._meta.label} without TenantScopedViewSetMixin.",
                    id="tenancy.E001",
                )
            )
    return errors
