"""System checks: every API viewset over a tenant-owned model scopes by tenant (E001); the
database's row-level security is whole (E002), the web's role cannot get around it (E003), and the
database checks scopes with the application's key (E004)."""

import uuid

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


# Tables under row-level security through a parent, having no tenant column of their own.
RLS_THROUGH_PARENT = {
    "workflows_workflowstagedefinition": "workflows.WorkflowStageDefinition",
    "token_blacklist_outstandingtoken": "token_blacklist.OutstandingToken (through its user)",
    "token_blacklist_blacklistedtoken": "token_blacklist.BlacklistedToken (through its token)",
}
# The owner's SECURITY DEFINER functions: the signed scope, the two account look-ups, and the
# tenant of an approval link (approvals/migrations/0005).
RLS_FUNCTIONS = (
    "app_current_tenant()",
    "app_account_by_email(text)",
    "app_account_by_id(uuid)",
    "app_approval_link_tenant(text)",
)
RLS_KEY_TABLE = "rls_signing_key"
HINT_MIGRATION = "Add it in a migration, as tenancy/migrations/0008 does."
HINT_ROLES = "Connect as the app role (config/database.py, docs/database-roles.md)."

# Raw SQL, here and below: the system catalogs have no models. Every name is a parameter.
_TABLES_SQL = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       pg_get_userbyid(c.relowner) = session_user,
       EXISTS (SELECT FROM pg_policies p WHERE p.tablename = c.relname
               AND p.schemaname = n.nspname AND p.policyname = 'tenant_isolation'
               AND p.cmd = 'ALL'
               AND (NOT c.relname = ANY(%(tenant_tables)s)
                    OR (p.qual LIKE '%%app_current_tenant()%%'
                        AND p.with_check LIKE '%%app_current_tenant()%%')))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relname = ANY(%(tables)s)
"""
# Policies that read a setting themselves: any session may set any setting.
_SETTING_POLICIES_SQL = """
SELECT tablename, policyname FROM pg_policies
WHERE schemaname = current_schema()
  AND (coalesce(qual, '') || coalesce(with_check, '')) LIKE '%%current_setting%%'
ORDER BY 1, 2
"""
# What the web's login role (session_user) is, may become, and may read.
_ROLE_SQL = """
SELECT session_user, r.rolsuper, r.rolbypassrls,
       ARRAY(SELECT other.rolname FROM pg_roles other
             WHERE other.rolname <> session_user
               AND pg_has_role(session_user, other.oid, 'MEMBER')
               AND (other.rolsuper OR other.rolbypassrls
                    OR other.oid = (SELECT relowner FROM pg_class
                                    WHERE oid = to_regclass(%(users)s)))
             ORDER BY 1),
       CASE WHEN to_regclass(%(key)s) IS NULL THEN false
            ELSE has_table_privilege(session_user, %(key)s, 'SELECT, INSERT, UPDATE, DELETE')
       END
FROM pg_roles r WHERE r.rolname = session_user
"""
# Each function: SECURITY DEFINER, owned by the tables' owner, which bypasses RLS.
_FUNCTIONS_SQL = """
SELECT wanted.signature, p.prosecdef,
       p.proowner = (SELECT relowner FROM pg_class WHERE oid = to_regclass(%(users)s)),
       owner.rolbypassrls
FROM unnest(%(functions)s::text[]) AS wanted(signature)
LEFT JOIN pg_proc p ON p.oid = to_regprocedure(current_schema() || '.' || wanted.signature)
LEFT JOIN pg_roles owner ON owner.oid = p.proowner
"""


@checks.register(checks.Tags.database, checks.Tags.security, deploy=True)
def check_row_level_security(app_configs=None, databases=None, **kwargs):
    """Row-level security is whole, and the web's role (the one this runs as) cannot escape it.

    A deploy check (``check --deploy --database default``, run by ``make test``), because
    ``migrate`` runs the plain database checks before it creates what this one looks for.
    """
    from django.db import connections

    errors = []
    for alias in databases or ():
        errors += row_level_security_errors(connections[alias])
    return errors


def row_level_security_errors(connection) -> list[checks.Error]:
    """The check's findings on one connection: as which role it logged in is what is judged."""
    from django.apps import apps

    from tenancy.models import User

    users = User._meta.db_table  # the tables' owner owns this one too
    tenant_tables = {
        model._meta.db_table: model._meta.label
        for model in apps.get_models()
        if is_tenant_owned(model)
    }
    tables = {**tenant_tables, **RLS_THROUGH_PARENT}
    with connection.cursor() as cursor:
        cursor.execute(_TABLES_SQL, {"tables": list(tables), "tenant_tables": list(tenant_tables)})
        found = {row[0]: row[1:] for row in cursor.fetchall()}
        cursor.execute(_SETTING_POLICIES_SQL)
        setting_policies = cursor.fetchall()
        cursor.execute(_ROLE_SQL, {"key": RLS_KEY_TABLE, "users": users})
        role, superuser, bypassrls, escapes, reads_key = cursor.fetchone()
        cursor.execute(_FUNCTIONS_SQL, {"functions": list(RLS_FUNCTIONS), "users": users})
        functions = cursor.fetchall()
    errors = []
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
                    f"Table {table} ({label}) lacks row-level security: "
                    f"{', '.join(missing)} missing.",
                    hint=HINT_MIGRATION,
                    id="tenancy.E002",
                )
            )
        if owned:
            errors.append(
                checks.Error(
                    f"The database role {role!r} owns {table}; row-level security does not "
                    "bind an owner the way it binds the app role.",
                    hint=HINT_ROLES,
                    id="tenancy.E003",
                )
            )
    for table, policy in setting_policies:
        errors.append(
            checks.Error(
                f"Policy {policy} on {table} reads a setting (current_setting): any session may "
                "set any setting, so it can be switched off or pointed at another tenant.",
                hint="Policies read the tenant from app_current_tenant() only (core/rls.py).",
                id="tenancy.E002",
            )
        )
    if superuser or bypassrls:
        errors.append(
            checks.Error(
                f"The database role {role!r} is a superuser or has BYPASSRLS (the worker or "
                "owner role?): row-level security does not apply to it.",
                hint=HINT_ROLES,
                id="tenancy.E003",
            )
        )
    if escapes:
        errors.append(
            checks.Error(
                f"The database role {role!r} may become {', '.join(escapes)} (SET ROLE), which "
                "row-level security does not bind.",
                hint="REVOKE those roles from it (docs/database-roles.md).",
                id="tenancy.E003",
            )
        )
    if reads_key:
        errors.append(
            checks.Error(
                f"The database role {role!r} has privileges on {RLS_KEY_TABLE}: it could read "
                "the key and sign any tenant's scope.",
                hint=f"REVOKE ALL ON {RLS_KEY_TABLE} FROM {role} (docs/database-roles.md).",
                id="tenancy.E003",
            )
        )
    functions_ok = True
    for signature, definer, owned_by_owner, owner_bypasses in functions:
        if not (definer and owned_by_owner and owner_bypasses):
            functions_ok = False
            errors.append(
                checks.Error(
                    f"Function {signature} is missing, not SECURITY DEFINER, or not owned by the "
                    "tables' owner (with BYPASSRLS).",
                    hint=HINT_MIGRATION,
                    id="tenancy.E003",
                )
            )
    if functions_ok:
        errors += _signing_key_errors(connection)
    return errors


def _signing_key_errors(connection) -> list[checks.Error]:
    """A scope this application signs is believed by the database (same key, same HMAC)."""
    from core import rls

    probe = uuid.uuid4()
    with rls.tenant_scope(probe), connection.cursor() as cursor:
        cursor.execute("SELECT app_current_tenant()")  # Raw SQL: a database function, no model
        (believed,) = cursor.fetchone()
    if believed == probe:
        return []
    return [
        checks.Error(
            "The database does not accept this application's row-level security signatures: "
            "its key (rls_signing_key) is not RLS_SIGNING_KEY, so every tenant table looks empty.",
            hint="Run `manage.py migrate` as the owner with this RLS_SIGNING_KEY/SECRET_KEY.",
            id="tenancy.E004",
        )
    ]
