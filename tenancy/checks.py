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


# Tenant tables deliberately without row-level security, and why.
RLS_EXEMPT = {
    "tenancy.User": "logging in looks a user up by e-mail before any tenant is known",
}


@checks.register(checks.Tags.database, checks.Tags.security, deploy=True)
def check_row_level_security(app_configs=None, databases=None, **kwargs):
    """Every tenant table has RLS, FORCE and its policy; the app role cannot get around them.

    A deploy check (``check --deploy --database default``, run by ``make test``), because
    ``migrate`` runs the plain database checks before it creates what this one looks for.
    """
    from django.apps import apps
    from django.db import connections

    errors = []
    tables = {
        model._meta.db_table: model._meta.label
        for model in apps.get_models()
        if is_tenant_owned(model) and model._meta.label not in RLS_EXEMPT
    }
    for alias in databases or ():
        with connections[alias].cursor() as cursor:
            cursor.execute(
                """
                SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                       pg_get_userbyid(c.relowner) = current_user,
                       EXISTS (SELECT FROM pg_policies p WHERE p.tablename = c.relname
                               AND p.schemaname = n.nspname AND p.policyname = 'tenant_isolation'
                               AND p.cmd = 'ALL' AND p.qual LIKE '%%app.tenant_id%%'
                               AND p.with_check LIKE '%%app.tenant_id%%')
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = current_schema() AND c.relname = ANY(%s)
                """,
                [list(tables)],
            )
            found = {row[0]: row[1:] for row in cursor.fetchall()}
            cursor.execute(
                "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles"
                " WHERE rolname = current_user"
            )
            role, superuser, bypassrls = cursor.fetchone()
        for table, label in sorted(tables.items()):
            enabled, forced, owned, policy = found.get(table, (False, False, False, False))
            missing = [
                name
                for name, present in (("ENABLE", enabled), ("FORCE", forced), ("policy", policy))
                if not present
            ]
            if missing:
                errors.append(
                    checks.Error(
                        f"Tenant table {table} ({label}) lacks row-level security: "
                        f"{', '.join(missing)} missing.",
                        hint="Add it in a migration, as tenancy/migrations/0004 does.",
                        id="tenancy.E002",
                    )
                )
            if owned:
                errors.append(
                    checks.Error(
                        f"The database role {role!r} owns {table}; row-level security does not "
                        "bind an owner the way it binds the app role.",
                        hint="Connect as the app role (config/database.py).",
                        id="tenancy.E003",
                    )
                )
        if superuser or bypassrls:
            errors.append(
                checks.Error(
                    f"The database role {role!r} is a superuser or has BYPASSRLS: row-level "
                    "security does not apply to it.",
                    hint="Connect as the app role (config/database.py).",
                    id="tenancy.E003",
                )
            )
    return errors
