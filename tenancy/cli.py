"""Shared pieces of the management commands that take ``--tenant``."""

from django.core.management.base import CommandError

from tenancy.models import Tenant
from tenancy.selectors import tenant_by_slug_or_id


def tenant_option(value: str) -> Tenant:
    """The tenant ``--tenant`` names (slug or id), or a clean command error."""
    tenant = tenant_by_slug_or_id(value)
    if tenant is None:
        raise CommandError(f"No tenant with slug or id {value!r}.")
    return tenant
