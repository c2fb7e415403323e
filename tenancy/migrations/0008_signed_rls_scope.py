"""Row-level security no setting can switch off: signed scopes, users and tokens under RLS.

Every policy now reads the tenant from ``app_current_tenant()`` and nothing else (the bypass
clause of ``0004`` is gone: cross-tenant jobs connect as the worker role, which has BYPASSRLS).
The function, SECURITY DEFINER and owned by the owner, returns the tenant of ``app.tenant_id``
only when its signature matches (``core/rls.py``): HMAC-SHA256 with the pads kept in
``rls_signing_key``, a table no other role may read. The key itself is written after every
``migrate`` (``core.rls_key.store_after_migrate``), so no key is ever in a migration.

``tenancy_user`` is under RLS too (with the platform's own rows, which have no tenant, visible in
the platform scope only, as are the audit rows without a tenant), and so are simplejwt's token
tables, through the user owning the token. Logging in finds an account across tenants only through
``app_account_by_email`` and ``app_account_by_id``: (id, tenant) and nothing else.

Policies read the function in a scalar sub-select, so PostgreSQL evaluates it once per query (an
InitPlan), not once per row.
"""

import uuid

import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models

TENANT_TABLES = [
    "tenancy_userrole",
    "tenancy_idempotencyrecord",
    "audit_auditlog",
    "contracts_contract",
    "contracts_contractrevision",
    "contracts_clauserule",
    "workflows_workflowdefinition",
    "workflows_workflowdefinitionversion",
    "approvals_workflowinstance",
    "approvals_workflowstage",
    "approvals_workflowstageapproval",
    "approvals_slarule",
    "approvals_slasettings",
    "approvals_holiday",
    "approvals_slabreach",
    "notifications_notification",
    "notifications_notificationpreference",
    "notifications_webhookendpoint",
    "notifications_delivery",
]
TENANT = "tenant_id = (SELECT app_current_tenant())"
# Rows of no tenant: platform operators and platform audit rows, in the platform scope only.
PLATFORM_ROWS = "tenant_id IS NULL AND (SELECT app_current_tenant()) = '00000000-0000-0000-0000-000000000000'::uuid"
PLATFORM_TABLES = ["tenancy_user", "audit_auditlog"]
# Tables newly under RLS, and their tenant_isolation condition.
NEW_TABLES = {
    "tenancy_user": TENANT,
    "token_blacklist_outstandingtoken": (
        "EXISTS (SELECT 1 FROM tenancy_user account"
        " WHERE account.id = token_blacklist_outstandingtoken.user_id)"
    ),
    "token_blacklist_blacklistedtoken": (
        "EXISTS (SELECT 1 FROM token_blacklist_outstandingtoken token"
        " WHERE token.id = token_blacklist_blacklistedtoken.token_id)"
    ),
}
OLD_TENANT = (
    "tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
    " OR (SELECT current_setting('app.rls_bypass', true)) = 'on'"
)

FUNCTIONS = r"""
CREATE TABLE public.rls_signing_key (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    inner_pad bytea NOT NULL CHECK (length(inner_pad) = 64),
    outer_pad bytea NOT NULL CHECK (length(outer_pad) = 64)
);
-- Only its owner reads it (0004's default privileges would have granted it to the app role).
REVOKE ALL ON public.rls_signing_key FROM PUBLIC, {app};

-- The tenant of app.tenant_id ('<uuid>.<hex HMAC-SHA256 of "<uuid>:<app.session_nonce>">') when
-- the signature is right, else NULL. Nothing is cast before the signature matched (so no value of
-- either setting can raise an error), and only the application signs, and only UUIDs.
-- PARALLEL RESTRICTED: the leader evaluates the policies' InitPlans and hands the value to the
-- workers; a PARALLEL UNSAFE function (the default) would keep every query on a tenant table
-- from running in parallel.
CREATE FUNCTION public.app_current_tenant() RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    scope text := current_setting('app.tenant_id', true);
    signed boolean;
BEGIN
    SELECT encode(sha256(k.outer_pad || sha256(k.inner_pad || convert_to(
               split_part(scope, '.', 1) || ':' || current_setting('app.session_nonce', true),
               'UTF8'))), 'hex') = split_part(scope, '.', 2)
    INTO signed FROM public.rls_signing_key k;
    IF signed THEN
        RETURN split_part(scope, '.', 1)::uuid;
    END IF;
    RETURN NULL;
END
$$;

-- Logging in: an account's id and tenant by e-mail (any case), before any tenant is known.
CREATE FUNCTION public.app_account_by_email(address text) RETURNS TABLE (id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT u.id, u.tenant_id FROM public.tenancy_user u
    WHERE lower(u.email) = lower($1)
    ORDER BY u.email = lower($1) DESC
    LIMIT 1
$$;

-- A session's user (the Django admin): its tenant, to load it in that tenant's scope.
CREATE FUNCTION public.app_account_by_id(account uuid) RETURNS TABLE (id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT u.id, u.tenant_id FROM public.tenancy_user u WHERE u.id = $1
$$;

REVOKE ALL ON FUNCTION public.app_current_tenant(), public.app_account_by_email(text),
    public.app_account_by_id(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.app_current_tenant(), public.app_account_by_email(text),
    public.app_account_by_id(uuid) TO {app};
"""
DROP_FUNCTIONS = """
DROP FUNCTION public.app_account_by_id(uuid);
DROP FUNCTION public.app_account_by_email(text);
DROP FUNCTION public.app_current_tenant();
DROP TABLE public.rls_signing_key;
"""


def _policy(table: str, name: str, condition: str) -> str:
    return f"CREATE POLICY {name} ON {table} USING ({condition}) WITH CHECK ({condition})"


def forward(apps, schema_editor):
    execute = schema_editor.execute
    execute(FUNCTIONS.format(app=schema_editor.quote_name(settings.DATABASE_APP_ROLE)))
    for table in TENANT_TABLES:
        execute(f"DROP POLICY tenant_isolation ON {table}")
        execute(_policy(table, "tenant_isolation", TENANT))
    for table, condition in NEW_TABLES.items():
        execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        execute(_policy(table, "tenant_isolation", condition))
    for table in PLATFORM_TABLES:
        execute(_policy(table, "platform_rows", PLATFORM_ROWS))


def backward(apps, schema_editor):
    execute = schema_editor.execute
    for table in PLATFORM_TABLES:
        execute(f"DROP POLICY platform_rows ON {table}")
    for table in NEW_TABLES:
        execute(f"DROP POLICY tenant_isolation ON {table}")
        execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    for table in TENANT_TABLES:
        execute(f"DROP POLICY tenant_isolation ON {table}")
        execute(_policy(table, "tenant_isolation", OLD_TENANT))
    execute(DROP_FUNCTIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("tenancy", "0007_ratelimitcounter"),
        ("audit", "0008_audit_contract_index"),
        ("contracts", "0005_revision_history"),
        ("workflows", "0002_distinct_approvers_reset_on_change"),
        ("approvals", "0004_approval_integrity"),
        ("notifications", "0004_approval_reset_and_changes_requested_types"),
        ("token_blacklist", "0013_alter_blacklistedtoken_options_and_more"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="user",
            index=models.Index(
                django.db.models.functions.text.Lower("email"), name="user_email_lower_idx"
            ),
        ),
        migrations.AddConstraint(
            model_name="tenant",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("id", uuid.UUID("00000000-0000-0000-0000-000000000000")), _negated=True
                ),
                name="tenant_id_not_nil",
            ),
        ),
        migrations.RunPython(forward, backward, elidable=False),
    ]
