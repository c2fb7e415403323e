"""``app_current_tenant()`` with every name schema-qualified instead of a pinned search_path.

Policies call the function once per statement and table. A function's ``SET search_path``
makes PostgreSQL save, set and restore the setting on every call, which cost as much as the
HMAC itself. The function is still safe against a caller's search_path: every table, function,
operator and type it names carries its schema, so nothing a caller's path (a temporary schema
included) puts first is ever resolved. The key's pads are read by a query without parameters
(one plan per session, as in ``0010``); the signature is compared in a plain PL/pgSQL
expression. The checks are the same as ``0008``'s.
"""

from importlib import import_module

from django.db import migrations

previous = import_module("tenancy.migrations.0010_app_current_tenant_cached_plan")

FUNCTION = r"""
CREATE OR REPLACE FUNCTION public.app_current_tenant() RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
AS $$
DECLARE
    inner_pad pg_catalog.bytea;
    outer_pad pg_catalog.bytea;
    scope pg_catalog.text := pg_catalog.current_setting('app.tenant_id', true);
BEGIN
    SELECT k.inner_pad, k.outer_pad INTO inner_pad, outer_pad FROM public.rls_signing_key k;
    IF pg_catalog.encode(pg_catalog.sha256(outer_pad OPERATOR(pg_catalog.||) pg_catalog.sha256(
           inner_pad OPERATOR(pg_catalog.||) pg_catalog.convert_to(
               pg_catalog.split_part(scope, '.', 1) OPERATOR(pg_catalog.||) ':'
               OPERATOR(pg_catalog.||) pg_catalog.current_setting('app.session_nonce', true),
               'UTF8'))), 'hex')
       OPERATOR(pg_catalog.=) pg_catalog.split_part(scope, '.', 2) THEN
        RETURN pg_catalog.split_part(scope, '.', 1)::pg_catalog.uuid;
    END IF;
    RETURN NULL;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0010_app_current_tenant_cached_plan")]

    operations = [migrations.RunSQL(FUNCTION, previous.FUNCTION, elidable=False)]
