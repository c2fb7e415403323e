"""Row-level security against SQL that runs as the web's role, and who may run as the worker.

The attacker here is an SQL injection in a request of tenant A: a separate raw psycopg session
logged in as the app role (``role_url("app")``), holding a genuine signed scope for A on its own
connection, and free to run any SQL, set any setting and read ``pg_stat_activity``. Whatever it
does, no row of tenant B (nor a platform row) becomes visible or writable, in any table under
row-level security. The rows are committed first (a transactional test) so another session sees
them.
"""

import hashlib
import hmac
import importlib
import os
import secrets
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from approvals.models import SLASettings
from audit.services import audit_record
from config.database import admin_url, role_name, role_url
from core import rls, rls_key
from documents.models import Document, DocumentJob, SignatureRequest, Signer
from notifications.models import NotificationPreference, NotificationType
from tenancy.models import IdempotencyRecord, User
from tenancy.tokens import SessionRefreshToken
from tenancy.worker import WorkerCommand
from tests.factories import ContractFactory, TenantFactory, UserFactory
from tests.fixtures import OBJECT_ENDPOINTS

ROOT = Path(__file__).resolve().parent.parent.parent
pytestmark = pytest.mark.rls_bypass(
    "tests of the database roles themselves: raw rows of every tenant, scopes entered explicitly"
)
RLS_MIGRATION = importlib.import_module("tenancy.migrations.0008_signed_rls_scope")
DOCUMENTS_RLS_MIGRATION = importlib.import_module(
    "documents.migrations.0002_row_level_security_and_immutable_documents"
)
TENANT_TABLES = [*RLS_MIGRATION.TENANT_TABLES, *DOCUMENTS_RLS_MIGRATION.TABLES, "tenancy_user"]
# The tables without a tenant column, and how a row of theirs belongs to a tenant.
THROUGH_PARENT = {
    "workflows_workflowstagedefinition": (
        "JOIN workflows_workflowdefinition parent ON parent.id = row.definition_id",
        "parent.tenant_id",
    ),
    "token_blacklist_outstandingtoken": (
        "JOIN tenancy_user account ON account.id = row.user_id",
        "account.tenant_id",
    ),
    "token_blacklist_blacklistedtoken": (
        "JOIN token_blacklist_outstandingtoken token ON token.id = row.token_id"
        " JOIN tenancy_user account ON account.id = token.user_id",
        "account.tenant_id",
    ),
}
ALL_TABLES = [*TENANT_TABLES, *THROUGH_PARENT]
WORKER_COMMANDS = {
    "check_consistency",
    "check_sla_breaches",
    "deliver_notifications",
    "generate_documents",
    "purge_idempotency_keys",
}


def sql(statement: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


def ids_of(table: str, tenant_id) -> set[str]:
    """The ids of ``tenant_id``'s rows of ``table`` (None: the platform's), seen past RLS."""
    join, column = THROUGH_PARENT.get(table, ("", "row.tenant_id"))
    rows = sql(
        f"SELECT row.id::text FROM {table} row {join} WHERE {column} IS NOT DISTINCT FROM %s",  # noqa: S608
        [tenant_id],
    )
    return {row_id for (row_id,) in rows}


def _populate(tenant) -> None:
    """A row of ``tenant`` in every table under row-level security."""
    for endpoint in OBJECT_ENDPOINTS:
        endpoint.make(tenant)
    user = UserFactory(tenant=tenant)
    IdempotencyRecord.objects.create(
        tenant=tenant,
        user=user,
        key=f"key-{uuid.uuid4()}",
        fingerprint="0" * 64,
        expires_at=timezone.now() - timedelta(hours=1),
    )
    SLASettings.objects.create(tenant=tenant)
    _populate_documents(tenant)
    NotificationPreference.objects.create(
        tenant=tenant, user=user, notification_type=NotificationType.APPROVAL_ASSIGNED
    )
    with rls.tenant_scope(tenant):
        SessionRefreshToken.for_user(user).blacklist()
        SessionRefreshToken.for_user(user)


def _populate_documents(tenant) -> None:
    contract = ContractFactory(tenant=tenant)
    request = SignatureRequest.objects.create(
        tenant=tenant,
        contract=contract,
        revision=1,
        content_hash="0" * 64,
        expires_at=timezone.now(),
    )
    signer = Signer.objects.create(
        tenant=tenant, request=request, position=1, name="Sam", email="sam@example.com"
    )
    Document.objects.create(
        tenant=tenant,
        contract=contract,
        kind="signed_contract",
        revision=1,
        sha256="0" * 64,
        inputs_sha256="0" * 64,
        size=1,
        storage_name="none.pdf",
        signature_request=request,
    )
    DocumentJob.objects.create(tenant=tenant, kind="signer_link", contract=contract, signer=signer)


@pytest.fixture
def populated(transactional_db):
    """Tenants A and B with rows everywhere, and platform rows (a superuser, a platform audit
    row), all committed; ``{table: B's ids}`` and the same for platform rows."""
    ours, theirs = TenantFactory(), TenantFactory()
    _populate(ours)
    _populate(theirs)
    root = User.objects.create_superuser("root@example.com", "a-long-enough-passphrase")
    with rls.platform_scope():
        audit_record(action="login_failed", tenant=None, changes={"email": [None, "x@y.z"]})
    hidden = {table: ids_of(table, theirs.pk) | ids_of(table, None) for table in ALL_TABLES}
    empty = [table for table in ALL_TABLES if not ids_of(table, theirs.pk)]
    assert not empty, f"not populated for tenant B: {empty}"  # not vacuous
    assert str(root.pk) in hidden["tenancy_user"]
    return ours, theirs, hidden


def database_url(role_url_: str) -> str:
    """``role_url_`` on this test process's database."""
    parts = urlsplit(role_url_)
    return urlunsplit(parts._replace(path=f"/{connection.settings_dict['NAME']}"))


class Attacker:
    """A session as the app role with its own nonce, like a web connection serving tenant A."""

    def __init__(self) -> None:
        self.nonce = secrets.token_hex(16)
        config = dj_database_url.parse(database_url(role_url("app")))
        params = {
            "dbname": config["NAME"],
            "user": config["USER"],
            "password": config.get("PASSWORD"),
            "host": config.get("HOST"),
            "port": config.get("PORT"),
            **config.get("OPTIONS", {}),  # the embedded server's socket directory (?host=...)
        }
        self.connection = psycopg.connect(
            **{key: value for key, value in params.items() if value},
            options=f"-c {rls.NONCE_SETTING}={self.nonce}",
            autocommit=True,
        )

    def run(self, *statements: str) -> list:
        """``statements`` in one transaction, rolled back; the last one's rows (or rowcount)."""
        with self.connection.cursor() as cursor:
            cursor.execute("BEGIN")
            try:
                for statement in statements:
                    cursor.execute(statement)
                    while cursor.nextset():  # a string of several: the last one's result
                        pass
                return cursor.fetchall() if cursor.description else cursor.rowcount
            finally:
                cursor.execute("ROLLBACK")

    def own_scope(self, tenant_id) -> str:
        """The genuine statement the web would send for tenant A on this connection."""
        return rls.Scope(tenant_id=str(tenant_id)).sql(roles=None, nonce=self.nonce)

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def attacker():
    session = Attacker()
    yield session
    session.close()


def _signed(tenant_id, nonce: str) -> str:
    return f"{tenant_id}.{rls_key.signature(str(tenant_id), nonce)}"


def _setting(value: str) -> str:
    return f"SELECT set_config('{rls.TENANT_SETTING}', '{value}', true)"


def test_no_setting_reveals_or_reaches_another_tenants_rows(populated, attacker):
    ours, theirs, hidden = populated
    our_signature = _signed(ours.pk, attacker.nonce).split(".")[1]
    attacks = {
        "no scope": [],
        "their id, unsigned": [_setting(str(theirs.pk))],
        "their id, signed for another connection": [
            _setting(_signed(theirs.pk, secrets.token_hex(16)))
        ],
        "their id with our signature": [_setting(f"{theirs.pk}.{our_signature}")],
        "our scope, then their id": [attacker.own_scope(ours.pk), _setting(str(theirs.pk))],
        "our scope and the old bypass setting": [
            attacker.own_scope(ours.pk),
            "SELECT set_config('app.rls_bypass', 'on', true)",
        ],
        "the platform's id, unsigned": [_setting(rls.PLATFORM)],
        "our scope and RESET ROLE": [attacker.own_scope(ours.pk), "RESET ROLE"],
    }
    for name, statements in attacks.items():
        for table in ALL_TABLES:
            visible = {
                row_id
                for (row_id,) in attacker.run(*statements, f"SELECT id::text FROM {table}")  # noqa: S608
            }
            assert not visible & hidden[table], (name, table)
            theirs_ids = "ARRAY[" + ",".join(f"'{i}'" for i in hidden[table]) + "]::text[]"
            for write in (
                f"UPDATE {table} SET id = id WHERE id::text = ANY({theirs_ids})",  # noqa: S608
                f"DELETE FROM {table} WHERE id::text = ANY({theirs_ids})",  # noqa: S608
            ):
                assert attacker.run(*statements, write) == 0, (name, table, write)


def test_our_own_scope_sees_exactly_our_rows(populated, attacker):
    """The control: the attacker's genuine scope works, so the zeros above are not vacuous."""
    ours, _theirs, _hidden = populated
    for table in ALL_TABLES:
        visible = attacker.run(attacker.own_scope(ours.pk), f"SELECT id::text FROM {table}")  # noqa: S608
        assert {row_id for (row_id,) in visible} == ids_of(table, ours.pk), table


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT set_config('role', '{worker}', true)",
        "SELECT set_config('role', '{owner}', false)",
        "SET ROLE {worker}",
        "SET ROLE {owner}",
        "SET SESSION AUTHORIZATION {worker}",
        "SELECT set_config('session_authorization', '{owner}', true)",
    ],
)
def test_the_web_role_cannot_become_another_role(attacker, transactional_db, statement):
    statement = statement.format(worker=role_name("worker"), owner=role_name("owner"))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        attacker.run(statement)
    [(current, session)] = attacker.run("SELECT current_user, session_user")
    assert current == session == settings.DATABASE_APP_ROLE


@pytest.mark.parametrize(
    "statement",
    [
        f"SELECT * FROM {rls_key.KEY_TABLE}",  # noqa: S608
        f"UPDATE {rls_key.KEY_TABLE} SET inner_pad = inner_pad",  # noqa: S608
        "CREATE OR REPLACE FUNCTION app_current_tenant() RETURNS uuid LANGUAGE sql"
        " AS $$ SELECT NULL::uuid $$",
        "ALTER TABLE contracts_contract DISABLE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON tenancy_user",
        "CREATE POLICY open ON contracts_contract USING (true)",
    ],
)
def test_the_key_functions_and_policies_are_out_of_reach(attacker, transactional_db, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        attacker.run(statement)


def test_a_temporary_key_table_does_not_stand_in_for_the_real_one(populated, attacker):
    """The SECURITY DEFINER function pins its search_path and names its table: a key of the
    attacker's own, in a temporary table that would come first in the path, is never read."""
    _ours, theirs, hidden = populated
    key = b"the-attackers-own-key"
    inner, outer = rls_key.pads(key)
    message = f"{theirs.pk}:{attacker.nonce}".encode()
    forged = f"{theirs.pk}.{hmac.new(key, message, hashlib.sha256).hexdigest()}"
    visible = attacker.run(
        "CREATE TEMPORARY TABLE rls_signing_key (id boolean, inner_pad bytea, outer_pad bytea)",
        f"INSERT INTO pg_temp.rls_signing_key VALUES (true, '\\x{inner.hex()}',"  # noqa: S608
        f" '\\x{outer.hex()}')",
        "SET LOCAL search_path = pg_temp, public",
        _setting(forged),
        "SELECT id::text FROM contracts_contract",
    )
    assert not {row_id for (row_id,) in visible} & hidden["contracts_contract"]


def test_the_scope_check_resolves_only_its_own_names_whatever_the_search_path(populated, attacker):
    """The function pins no search_path (a per-call cost); it names every schema instead. Types
    of the caller's own that a path putting ``pg_temp`` first would find change nothing: the
    genuine scope still shows exactly its own tenant's rows, and no other."""
    ours, theirs, hidden = populated
    shadows = [
        f"CREATE DOMAIN pg_temp.{name} AS {base}"
        for name, base in (("uuid", "text"), ("text", "varchar"), ("bytea", "text"))
    ]
    hostile = [*shadows, "SET LOCAL search_path = pg_temp, public"]
    forged = _setting(f"{theirs.pk}.{'0' * 64}")
    current = "SELECT app_current_tenant()::text"
    assert attacker.run(*hostile, attacker.own_scope(ours.pk), current) == [(str(ours.pk),)]
    assert attacker.run(*hostile, forged, current) == [(None,)]
    visible = attacker.run(
        *hostile,
        attacker.own_scope(ours.pk),
        "SELECT id::text FROM contracts_contract",
    )
    ids = {row_id for (row_id,) in visible}
    assert ids == ids_of("contracts_contract", ours.pk)
    assert not ids & hidden["contracts_contract"]


def test_rows_cannot_be_moved_into_another_tenant(populated, attacker):
    ours, theirs, _hidden = populated
    their_user = str(User.objects.filter(tenant=theirs).values_list("pk", flat=True).first())
    for move in (
        f"UPDATE contracts_contract SET tenant_id = '{theirs.pk}'",  # noqa: S608
        f"UPDATE tenancy_user SET tenant_id = '{theirs.pk}'",  # noqa: S608
        f"UPDATE token_blacklist_outstandingtoken SET user_id = '{their_user}'",  # noqa: S608
        "UPDATE tenancy_user SET tenant_id = NULL, is_superuser = true",  # into the platform
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            attacker.run(attacker.own_scope(ours.pk), move)


def test_a_signature_lifted_from_another_session_does_not_work(populated, attacker):
    """Statement texts, signatures included, are visible to every session of the same role;
    the nonce each is bound to is not, so replaying one shows nothing."""
    _ours, theirs, hidden = populated
    victim = Attacker()  # another web connection, serving tenant B
    try:
        marker = f"victim-{uuid.uuid4().hex}"
        with victim.connection.cursor() as cursor:  # as the backend sends it in autocommit
            cursor.execute(f"{victim.own_scope(theirs.pk)}; SELECT '{marker}'")
        [(text,)] = attacker.run(
            f"SELECT query FROM pg_stat_activity WHERE query LIKE '%{marker}%'"  # noqa: S608
            " AND pid <> pg_backend_pid()"
        )
        [lifted] = [part.split("'")[3] for part in text.split(";") if rls.TENANT_SETTING in part]
        assert lifted.startswith(f"{theirs.pk}.")  # the signature is there for anyone to read
        everything = attacker.run("SELECT row_to_json(a)::text FROM pg_stat_activity a")
        assert victim.nonce not in repr(everything)  # its nonce is not

        visible = attacker.run(_setting(lifted), "SELECT id::text FROM contracts_contract")
        assert not {row_id for (row_id,) in visible} & hidden["contracts_contract"]
    finally:
        victim.close()


def test_the_account_lookups_answer_id_and_tenant_only(populated, attacker):
    _ours, theirs, _hidden = populated
    their_user = User.objects.filter(tenant=theirs).first()
    by_email = f"app_account_by_email('{their_user.email.upper()}')"
    found = attacker.run(f"SELECT id::text, tenant_id::text FROM {by_email}")  # noqa: S608
    assert found == [(str(their_user.pk), str(theirs.pk))]
    by_id = f"app_account_by_id('{their_user.pk}')"
    assert attacker.run(f"SELECT id::text, tenant_id::text FROM {by_id}") == found  # noqa: S608


# --- who runs as the worker ------------------------------------------------------------------


def _project_commands() -> dict[str, str]:
    project_apps = {
        "tenancy",
        "audit",
        "contracts",
        "workflows",
        "approvals",
        "notifications",
        "documents",
    }
    return {name: app for name, app in get_commands().items() if app in project_apps}


def test_exactly_the_documented_commands_run_as_the_worker():
    worker_commands = {
        name
        for name, app in _project_commands().items()
        if isinstance(load_command_class(app, name), WorkerCommand)
    }
    assert worker_commands == WORKER_COMMANDS


def test_nothing_else_switches_to_the_worker_role():
    """Only ``WorkerCommand`` calls the switch (the benchmarks' fixture code aside)."""
    callers = {
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*.py")
        if not path.is_relative_to(ROOT / ".venv")
        and path.parts[len(ROOT.parts)] not in ("tests", "bench")
        and "connect_as_worker(" in path.read_text()
    }
    assert callers == {"tenancy/worker.py"}


def _run(*args: str) -> subprocess.CompletedProcess:
    """A fresh process of the project on this test database, configured like production: only
    ``DATABASE_URL`` (a role that may create roles; the process derives the role it runs as)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "PYTEST", "DJANGO_SETTINGS"))
    }
    env.update(DATABASE_URL=database_url(admin_url()), DJANGO_SETTINGS_MODULE="config.settings")
    return subprocess.run(  # noqa: S603
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


WEB_PROCESS = """
import config.wsgi  # the web's settings and application
from django.conf import settings
from django.db import connection
from core import rls
print(settings.DATABASES["default"]["USER"])
with connection.cursor() as cursor:
    cursor.execute("SELECT session_user, current_user")
    print(*cursor.fetchone())
try:
    with rls.bypass("probe"), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
except Exception as exc:
    print("refused:", str(exc).strip())
"""


def test_the_web_process_connects_as_the_app_role_and_cannot_bypass():
    result = _run("-c", WEB_PROCESS)
    assert result.returncode == 0, result.stderr
    app, worker = settings.DATABASE_APP_ROLE, role_name("worker")
    assert result.stdout.splitlines() == [
        app,
        f"{app} {app}",
        f'refused: permission denied to set role "{worker}"',
    ]


def test_a_worker_command_connects_as_the_worker_and_reaches_every_tenant(transactional_db):
    expired = timezone.now() - timedelta(hours=1)
    for tenant in (TenantFactory(), TenantFactory()):
        IdempotencyRecord.objects.create(
            tenant=tenant,
            user=UserFactory(tenant=tenant),
            key="k",
            fingerprint="0" * 64,
            expires_at=expired,
        )

    result = _run("manage.py", "purge_idempotency_keys")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "purged 2 idempotency key(s)"
    assert not IdempotencyRecord.objects.exists()


def test_createsuperuser_works_as_the_app_role_and_finds_emails_in_every_tenant(db, monkeypatch):
    taken = UserFactory(email="taken@example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-enough-passphrase")
    with rls.request_scope():  # as a command process runs it: no bypass
        call_command(
            "createsuperuser", interactive=False, email="root@example.com", full_name="Root"
        )
        with pytest.raises(CommandError, match="already taken"):
            call_command("createsuperuser", interactive=False, email=taken.email, full_name="Again")
    root = User.objects.get(email="root@example.com")
    assert (root.tenant_id, root.is_superuser) == (None, True)
