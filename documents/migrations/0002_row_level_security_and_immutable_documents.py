"""Row-level security on every table of the app (as tenancy/migrations/0008 does for the others),
and documents are immutable: a trigger refuses UPDATE (their bytes are addressed by SHA-256)."""

from django.db import migrations

TABLES = [
    "documents_document",
    "documents_documentjob",
    "documents_signaturerequest",
    "documents_signer",
]
TENANT = "tenant_id = (SELECT app_current_tenant())"

IMMUTABLE = """
CREATE FUNCTION documents_document_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'documents are immutable: a stored document is never changed';
END
$$;
CREATE TRIGGER documents_document_immutable BEFORE UPDATE ON documents_document
    FOR EACH ROW EXECUTE FUNCTION documents_document_refuse_update();
"""
DROP_IMMUTABLE = """
DROP TRIGGER IF EXISTS documents_document_immutable ON documents_document;
DROP FUNCTION IF EXISTS documents_document_refuse_update();
"""


def forward(apps, schema_editor):
    for table in TABLES:
        schema_editor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        schema_editor.execute(
            f"CREATE POLICY tenant_isolation ON {table} USING ({TENANT}) WITH CHECK ({TENANT})"
        )
    schema_editor.execute(IMMUTABLE)


def backward(apps, schema_editor):
    schema_editor.execute(DROP_IMMUTABLE)
    for table in TABLES:
        schema_editor.execute(f"DROP POLICY tenant_isolation ON {table}")
        schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0001_initial"),
        ("tenancy", "0008_signed_rls_scope"),
    ]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
