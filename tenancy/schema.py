"""OpenAPI description of our authentication class (drf-spectacular matches it by class path)."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class TenantJWTScheme(SimpleJWTScheme):
    target_class = "tenancy.authentication.TenantJWTAuthentication"
