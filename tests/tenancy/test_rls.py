"""Row-level security: the database alone keeps tenants apart, whatever the application asks.

These tests go around the application's scoping on purpose: raw SQL through the app's own
connection (the app role, as in production), and the endpoint tables of
``tests/tenancy/test_tenant_isolation.py`` (in ``tests/fixtures.py``) with the shared scoping
switched off.
"""

import importlib
import io
import logging
import os

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from psycopg import sql as psycopg_sql

from audit.models import AuditLog
from config.database import ROLES, role_name
from core import rls
from tenancy.api.views import MeView
from tenancy.checks import RLS_THROUGH_PARENT, check_row_level_security, row_level_security_errors
from tenancy.rls_backend.base import DatabaseWrapper
from tenancy.scoping import TenantQuerySet, TenantScopedViewSetMixin
from tests.factories import ContractFactory
from tests.fixtures import LIST_ENDPOINTS, OBJECT_ENDPOINTS, call, listed_ids, tenant_state

RLS_MIGRATION = importlib.import_module("tenancy.migrations.0008_signed_rls_scope")
TENANT_TABLES = [*RLS_MIGRATION.TENANT_TABLES, "tenancy_user"]

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.rls_bypass(
        "tests of row-level security itself: raw rows of every tenant, scopes entered explicitly"
    ),
]


def sql(statement: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def rowcount(statement: str, params=None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def counts_by_tenant(table: str) -> dict[str, int]:
    rows = sql(f"SELECT tenant_id::text, count(*) FROM {table} GROUP BY 1")  # noqa: S608
    return dict(rows)


@pytest.fixture
def two_populated_tenants(tenant, other_tenant):
    """Both tenants get a row in (nearly) every tenant table, through the endpoint makers."""
    for endpoint in OBJECT_ENDPOINTS:
        endpoint.make(tenant)
        endpoint.make(other_tenant)
    return str(tenant.pk), str(other_tenant.pk)


def test_requests_run_as_the_app_role_which_rls_binds(client, monkeypatch):
    """What a request's queries run as, seen from inside a real request."""
    seen = {}
    original = MeView.get

    def get(self, request):
        [seen["roles"]] = sql("SELECT current_user, session_user")
        return original(self, request)

    monkeypatch.setattr(MeView, "get", get)
    assert client.get("/api/auth/me/").status_code == 200

    current, session = seen["roles"]
    assert current == settings.DATABASE_APP_ROLE
    assert session != role_name("worker")  # the tests log in as their own role (conftest)
    with rls.request_scope():
        [(superuser, bypassrls, owned)] = sql(
            "SELECT rolsuper, rolbypassrls, (SELECT count(*) FROM pg_class"
            " WHERE relowner = pg_roles.oid) FROM pg_roles WHERE rolname = current_user"
        )
    assert (superuser, bypassrls, owned) == (False, False, 0)


def test_raw_reads_see_only_the_scoped_tenant_in_every_table(two_populated_tenants):
    ours, theirs = two_populated_tenants
    everything = {table: counts_by_tenant(table) for table in TENANT_TABLES}
    # Not vacuous: the makers put both tenants into the tables that matter most.
    for table in ("contracts_contract", "approvals_workflowstageapproval", "audit_auditlog"):
        assert everything[table].get(theirs, 0) > 0, table

    with rls.tenant_scope(ours):
        for table in TENANT_TABLES:
            assert counts_by_tenant(table) == {
                key: n for key, n in everything[table].items() if key == ours
            }, table
            # Naming the other tenant explicitly does not help either.
            assert sql(f"SELECT count(*) FROM {table} WHERE tenant_id = %s", [theirs]) == [(0,)]  # noqa: S608


def test_the_policies_leave_parallel_plans_possible():
    """A PARALLEL UNSAFE function (PostgreSQL's default) in the policies would keep every query on
    a tenant table out of parallel plans, the analytics' among them. Restricted, the leader
    evaluates the policies' InitPlans and hands their value to the workers."""
    [(parallel,)] = sql(
        "SELECT proparallel FROM pg_proc WHERE oid = 'app_current_tenant()'::regprocedure"
    )
    assert parallel == "r"


def test_stage_definitions_are_visible_through_their_definition_only(two_populated_tenants):
    ours, _theirs = two_populated_tenants
    query = (
        "SELECT d.tenant_id::text, count(*) FROM workflows_workflowstagedefinition s"
        " JOIN workflows_workflowdefinition d ON d.id = s.definition_id GROUP BY 1"
    )
    assert len(sql(query)) == 2
    with rls.tenant_scope(ours):
        assert [tenant for tenant, _ in sql(query)] == [ours]
        [(visible,)] = sql("SELECT count(*) FROM workflows_workflowstagedefinition")
        assert visible == sum(n for _, n in sql(query))


def test_raw_writes_cannot_touch_another_tenants_rows(tenant, other_tenant):
    mine, theirs = ContractFactory(tenant=tenant), ContractFactory(tenant=other_tenant)

    with rls.tenant_scope(tenant):
        assert rowcount("UPDATE contracts_contract SET title = 'x' WHERE id = %s", [theirs.pk]) == 0
        assert rowcount("DELETE FROM contracts_contract WHERE id = %s", [theirs.pk]) == 0
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            sql(  # moving my row into their tenant
                "UPDATE contracts_contract SET tenant_id = %s WHERE id = %s",
                [other_tenant.pk, mine.pk],
            )
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            # An INSERT (a factory's own writes bypass, so it only builds the row).
            ContractFactory.build(tenant=other_tenant, created_by=theirs.created_by).save()

    theirs.refresh_from_db()
    assert theirs.title != "x"


def test_with_no_tenant_set_nothing_is_visible_or_writable(tenant):
    contract = ContractFactory(tenant=tenant)
    with rls.request_scope():  # what a request has before authentication
        for table in TENANT_TABLES:
            assert sql(f"SELECT count(*) FROM {table}") == [(0,)], table  # noqa: S608
        assert rowcount("DELETE FROM contracts_contract WHERE id = %s", [contract.pk]) == 0
        [(tenant_setting,)] = sql("SELECT NULLIF(current_setting('app.tenant_id', true), '')")
        assert tenant_setting is None


def test_composed_psycopg_sql_is_scoped_too(tenant, other_tenant):
    ContractFactory(tenant=tenant)
    ContractFactory(tenant=other_tenant)
    query = psycopg_sql.SQL("SELECT count(*) FROM {}").format(
        psycopg_sql.Identifier("contracts_contract")
    )
    with rls.tenant_scope(tenant):
        assert sql(query) == [(1,)]


def test_a_rolled_back_savepoint_does_not_lose_the_scope(tenant, other_tenant):
    ContractFactory(tenant=tenant)
    ContractFactory(tenant=other_tenant)
    with rls.tenant_scope(tenant), transaction.atomic():
        assert sql("SELECT count(*) FROM contracts_contract") == [(1,)]
        with pytest.raises(DatabaseError), transaction.atomic():
            sql("SELECT 1 / 0")
        # ROLLBACK TO SAVEPOINT undid nothing the scope needs: it is sent again.
        assert sql("SELECT count(*) FROM contracts_contract") == [(1,)]


@pytest.mark.django_db(transaction=True)
def test_the_scope_ends_with_its_transaction_on_a_reused_connection(tenant):
    ContractFactory(tenant=tenant)
    with rls.tenant_scope(tenant):
        with transaction.atomic():
            assert sql("SELECT count(*) FROM contracts_contract") == [(1,)]
        assert sql("SELECT count(*) FROM contracts_contract") == [(1,)]  # autocommit
    with rls.request_scope():
        # The same physical connection, as the next request of a pooled worker would get it.
        assert sql("SELECT current_setting('app.tenant_id', true)") in ([("",)], [(None,)])
        assert sql("SELECT count(*) FROM contracts_contract") == [(0,)]
        with transaction.atomic():
            assert sql("SELECT count(*) FROM contracts_contract") == [(0,)]


def test_a_bypass_needs_a_reason_and_is_logged(caplog):
    with pytest.raises(ValueError, match="reason"):
        rls.bypass("")
    with caplog.at_level(logging.INFO, logger="clm.security"), rls.bypass("nightly export"):
        pass
    [record] = [r for r in caplog.records if r.name == "clm.security"]
    assert (record.event, record.reason) == ("rls_bypass", "nightly export")


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (["check_sla_breaches"], "check_sla_breaches: all tenants"),
        (["deliver_notifications", "--once"], "deliver_notifications: every tenant's queue"),
        (["generate_documents", "--once"], "generate_documents: every tenant's document jobs"),
        (["purge_idempotency_keys"], "purge_idempotency_keys: every tenant"),
        (["check_consistency"], "check_consistency: reads workflow state across tenants"),
    ],
)
def test_cross_tenant_jobs_leave_a_platform_audit_row(command, reason):
    call_command(*command, stdout=io.StringIO())
    [row] = AuditLog.objects.filter(action="rls_bypass")
    assert (row.tenant_id, row.changes) == (None, {"reason": [None, reason]})


def test_a_one_tenant_sla_check_runs_in_that_tenants_scope(tenant):
    call_command("check_sla_breaches", "--tenant", tenant.slug, stdout=io.StringIO())
    assert not AuditLog.objects.filter(action="rls_bypass").exists()


# --- the make-test check ---------------------------------------------------------------------


@pytest.fixture
def login_as():
    """``login_as("app")``: a connection of this backend logged in as that role (or role name)."""
    opened = []

    def make(role: str):
        name = role_name(role) if role in ROLES else role
        wrapper = DatabaseWrapper(
            {
                **connection.settings_dict,
                "USER": name,
                "PASSWORD": os.environ.get("DATABASE_ROLE_PASSWORD", ""),
                "SCOPE_ROLES": None if role == "owner" else connection.settings_dict["SCOPE_ROLES"],
            },
            f"as_{name}",
        )
        opened.append(wrapper)
        return wrapper

    yield make
    for wrapper in opened:
        wrapper.close()


def rls_errors(wrapper) -> list:
    """The check, as the web process runs it: outside any scope (a bypass would need the worker)."""
    with rls.request_scope():
        return row_level_security_errors(wrapper)


def test_the_web_role_passes_the_rls_check(login_as):
    assert rls_errors(login_as("app")) == []


def test_the_deploy_check_runs_it_on_the_default_database():
    """As the tests' own role, which may become the worker: exactly that is reported."""
    errors = check_row_level_security(databases=["default"])
    assert [error.id for error in errors] == ["tenancy.E003"]
    assert role_name("worker") in errors[0].msg


def test_the_rls_check_reports_a_table_without_rls(login_as, monkeypatch):
    monkeypatch.setitem(RLS_THROUGH_PARENT, "django_session", "sessions.Session")
    errors = rls_errors(login_as("app"))
    assert [(error.id, "django_session" in error.msg) for error in errors] == [
        ("tenancy.E002", True)
    ]
    assert "ENABLE, FORCE, policy missing" in errors[0].msg


def test_the_rls_check_reports_a_policy_that_reads_a_setting(login_as):
    """A policy that reads a setting itself, such as the bypass clause policies used to have."""
    owner = login_as("owner")
    owner.set_autocommit(False)
    try:
        with owner.cursor() as cursor:
            cursor.execute(
                "CREATE POLICY sneaky ON contracts_contract"
                " USING ((SELECT current_setting('app.rls_bypass', true)) = 'on')"
            )
        errors = rls_errors(owner)  # sees its own uncommitted policy
    finally:
        owner.rollback()
    assert [error.id for error in errors if "Policy sneaky on contracts_contract" in error.msg] == [
        "tenancy.E002"
    ]


def test_the_rls_check_reports_roles_that_escape_it(login_as):
    worker_errors = rls_errors(login_as("worker"))
    assert any("BYPASSRLS" in error.msg for error in worker_errors)
    assert {error.id for error in worker_errors} == {"tenancy.E003"}

    tests_errors = rls_errors(login_as(connection.settings_dict["USER"]))
    assert [error.id for error in tests_errors] == ["tenancy.E003"]
    assert "may become" in tests_errors[0].msg


def test_the_rls_check_reports_a_key_the_database_does_not_share(login_as, settings):
    settings.RLS_SIGNING_KEY = "a-key-the-database-has-never-seen-0123456789"
    errors = rls_errors(login_as("app"))
    assert [error.id for error in errors] == ["tenancy.E004"]


# --- the endpoint tables, with the application's scoping switched off ------------------------


@pytest.fixture
def app_scoping_off(monkeypatch):
    """The mixin and ``for_tenant`` stop filtering: as if every endpoint forgot its tenant."""

    def unfiltered_queryset(self):
        return self.scoped_queryset(self.request.user.tenant)

    monkeypatch.setattr(TenantScopedViewSetMixin, "get_queryset", unfiltered_queryset)
    monkeypatch.setattr(TenantQuerySet, "for_tenant", lambda self, tenant: self)


def test_switching_app_scoping_off_really_unfilters(app_scoping_off, tenant, other_tenant):
    """The control: without RLS in the way, the patched read would return both tenants."""
    ContractFactory(tenant=tenant)
    ContractFactory(tenant=other_tenant)
    from contracts.models import Contract

    assert Contract.objects.for_tenant(tenant).count() == 2  # the test's bypass scope


@pytest.mark.parametrize("endpoint", OBJECT_ENDPOINTS, ids=str)
def test_without_app_scoping_another_tenants_object_is_still_404_and_untouched(
    app_scoping_off, client_a, other_tenant, endpoint
):
    theirs = endpoint.make(other_tenant)
    before = tenant_state(other_tenant)

    response = call(client_a, endpoint, theirs.pk)

    assert response.status_code == 404, response.content
    assert tenant_state(other_tenant) == before


@pytest.mark.parametrize("endpoint", LIST_ENDPOINTS, ids=str)
def test_without_app_scoping_lists_still_hold_only_the_callers_rows(
    app_scoping_off, client_a, tenant, other_tenant, endpoint
):
    ours = {str(endpoint.make(tenant).pk) for _ in range(2)}
    theirs = {str(endpoint.make(other_tenant).pk) for _ in range(2)}

    ids = listed_ids(client_a, endpoint.url)

    assert ours <= ids
    assert not ids & theirs
