"""Revision 1 for every existing contract; revisions are tenant-isolated and immutable.

Existing contracts get their canonical content hashed as revision 1 (their history before this
migration is in the audit log). ``contracts_contractrevision`` gets the same row-level security
as every tenant table (``tenancy`` migration 0004), and a trigger refusing UPDATE: a revision is
what approvers decided on. DELETE stays possible only through the contract's own deletion
(cascade), which the API does not offer.
"""

from django.db import migrations

from contracts.revisions import canonical_content, content_hash

TABLE = "contracts_contractrevision"
CONDITION = (
    "tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
    " OR (SELECT current_setting('app.rls_bypass', true)) = 'on'"
)
IMMUTABLE = f"""
CREATE FUNCTION contract_revision_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{TABLE} is immutable: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER contract_revision_immutable
    BEFORE UPDATE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION contract_revision_refuse_update();
ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON {TABLE} USING ({CONDITION}) WITH CHECK ({CONDITION});
"""
MUTABLE = f"""
DROP POLICY IF EXISTS tenant_isolation ON {TABLE};
ALTER TABLE {TABLE} NO FORCE ROW LEVEL SECURITY;
ALTER TABLE {TABLE} DISABLE ROW LEVEL SECURITY;
DROP TRIGGER IF EXISTS contract_revision_immutable ON {TABLE};
DROP FUNCTION IF EXISTS contract_revision_refuse_update();
"""


def first_revisions(apps, schema_editor):
    Contract = apps.get_model("contracts", "Contract")
    ContractRevision = apps.get_model("contracts", "ContractRevision")
    schema_editor.execute("SELECT set_config('app.rls_bypass', 'on', true)")
    contracts = Contract.objects.order_by("pk").iterator(chunk_size=500)
    batch = []
    for contract in contracts:
        content = canonical_content(contract)
        contract.content_hash = content_hash(content)
        contract.save(update_fields=["content_hash"])
        batch.append(
            ContractRevision(
                tenant_id=contract.tenant_id,
                contract_id=contract.pk,
                number=1,
                content_hash=contract.content_hash,
                content=content,
                changed_fields=[],
                created_by_id=contract.created_by_id,
            )
        )
        if len(batch) >= 500:
            ContractRevision.objects.bulk_create(batch)
            batch = []
    ContractRevision.objects.bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [
        ("contracts", "0004_contract_revisions"),
        ("tenancy", "0004_row_level_security"),
    ]
    operations = [
        migrations.RunPython(first_revisions, migrations.RunPython.noop, elidable=False),
        migrations.RunSQL(IMMUTABLE, MUTABLE),
    ]
