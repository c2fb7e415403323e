"""``app_current_tenant()`` without a parameter in its query, so its plan is made once a session.

Every policy calls the function once per statement and table, a hundred times in a contract's
approval process. Its query read the scope from a PL/pgSQL variable, that is a query parameter,
and PostgreSQL planned such a query anew on every call (a custom plan), which cost more than the
two SHA-256 computations it runs. Reading the settings in the query itself leaves it without
parameters: one plan per session, kept. The checks are the same (migration ``0008``).
"""

from django.db import migrations

FUNCTION = r"""
CREATE OR REPLACE FUNCTION public.app_current_tenant() RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    signed boolean;
BEGIN
    -- No PL/pgSQL variable in the query: a query without parameters keeps its first plan.
    SELECT encode(sha256(k.outer_pad || sha256(k.inner_pad || convert_to(
               split_part(current_setting('app.tenant_id', true), '.', 1) || ':'
               || current_setting('app.session_nonce', true), 'UTF8'))), 'hex')
           = split_part(current_setting('app.tenant_id', true), '.', 2)
    INTO signed FROM public.rls_signing_key k;
    IF signed THEN
        RETURN split_part(current_setting('app.tenant_id', true), '.', 1)::uuid;
    END IF;
    RETURN NULL;
END
$$;
"""

PREVIOUS = r"""
CREATE OR REPLACE FUNCTION public.app_current_tenant() RETURNS uuid
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
"""


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0009_role_catalog_managers_out_of_office")]

    operations = [migrations.RunSQL(FUNCTION, PREVIOUS, elidable=False)]
