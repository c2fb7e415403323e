"""Row-level security on every tenant table, and the app role's table privileges.

Each table below gets ``ENABLE`` and ``FORCE ROW LEVEL SECURITY`` (FORCE: the policy binds the
table's owner too) and one policy ``tenant_isolation`` for every command, USING and WITH CHECK:
the row's tenant is the transaction's ``app.tenant_id``, or the transaction is an explicit bypass
(``core/rls.py``). The settings are read in scalar subqueries so PostgreSQL evaluates them
once per statement, not once per row. Stage definitions carry no tenant column: they are visible
through their definition, whose own policy applies inside the subquery.

``tenancy_user`` is left out on purpose: logging in looks a user up by e-mail before any tenant is
known (docs/security.md). ``tenancy.checks`` fails ``make test`` when a tenant table
lacks RLS, FORCE or the policy.

The app role (``settings.DATABASE_APP_ROLE``) gets row privileges on every table, now and (default
privileges) on the tables later migrations create; it owns nothing and cannot change the schema.
"""

from django.conf import settings
from django.db import migrations

TENANT_TABLES = [
    "tenancy_userrole",
    "tenancy_idempotencyrecord",
    "audit_auditlog",
    "contracts_contract",
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
BYPASS = "(SELECT current_setting('app.rls_bypass', true)) = 'on'"
TENANT = "(SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
CHILD_TABLES = {
    "workflows_workflowstagedefinition": (
        "EXISTS (SELECT 1 FROM workflows_workflowdefinition parent WHERE parent.id = definition_id)"
    ),
}


def _policies():
    for table in TENANT_TABLES:
        yield table, f"tenant_id = {TENANT} OR {BYPASS}"
    yield from CHILD_TABLES.items()


def forward(apps, schema_editor):
    quote = schema_editor.quote_name
    app_role = quote(settings.DATABASE_APP_ROLE)
    for statement in (
        f"GRANT USAGE ON SCHEMA public TO {app_role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app_role}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {app_role}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public"
        f" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app_role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {app_role}",
    ):
        schema_editor.execute(statement)
    for table, condition in _policies():
        table = quote(table)
        schema_editor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        schema_editor.execute(
            f"CREATE POLICY tenant_isolation ON {table} USING ({condition}) WITH CHECK ({condition})"
        )


def backward(apps, schema_editor):
    quote = schema_editor.quote_name
    for table, _condition in _policies():
        table = quote(table)
        schema_editor.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0003_idempotencyrecord"),
        ("audit", "0003_audit_listing_indexes"),
        ("contracts", "0003_contract_clause_findings"),
        ("workflows", "0001_initial"),
        ("approvals", "0002_sla_rules_calendar_breaches"),
        ("notifications", "0002_delivery_claim_token_and_log_index"),
    ]
    operations = [migrations.RunPython(forward, backward, elidable=False)]
