"""Load benchmark: the API under gunicorn with concurrent clients, against its own SQL replayed raw.

Run from the repository root: ``python bench/bench_load.py`` (or ``python bench/run.py load``;
about 2.5 minutes). ``--help`` lists the sizes; ``--sql`` also prints each recorded request;
``--profile SCENARIO`` measures instead every endpoint's cost in-process (CPU and wall ms, SQL
statements and Python function calls per request) and prints a cProfile of SCENARIO.

The database (``clm_bench_load``, re-created) holds one tenant shaped like the demo: the example
workflow of docs/api.md (legal, then finance or cfo, then ceo; two holders of legal and ceo, one of
finance and cfo), the demo's two-rule clause playbook, five requesters and 100,000 contracts,
written by a few INSERT ... SELECT statements that clone rows the services wrote (so every column
is what the code writes): 90% have no workflow (approved, draft, rejected or cancelled), 10% are
in review with their instance, stages and approvals, at stage 1 (7%: pending for legal), 2 (1%)
or 3 (2%: pending for the ceo), spread over two weeks, each contract with its
``contract_created`` audit row. Then ANALYZE.

Scenarios, each driven by ``--concurrency`` asyncio clients (``bench/_http.py``) on loopback for
``--duration`` seconds after 10 warm-up requests per client, against gunicorn
(``bench/_server.py``: production settings, sync workers) with 2 and with 4 workers:

* create: ``POST /api/contracts/`` of an MSA above the trigger value, so the match engine starts
  the workflow in the same transaction (contract, instance, 3 stages, the legal approval, audit
  rows and notifications);
* approve: ``POST /api/contracts/{id}/approve/`` ``{"action": "approve"}`` by a legal holder, each
  request on a different contract pending at stage 1 (so stage 2 opens);
* pending: ``GET /api/approvals/pending/`` of a ceo holder (2,000 pending approvals: a page of 50
  and the count). Neither other scenario changes that list.

Every answer must be 2xx; others are counted and printed. The server's CPU time per answer is
read from /proc for its process group (master and workers).

Same-run baseline, the raw-SQL limit: each scenario's request is first run in-process with
``django.test.Client`` while a connection ``execute_wrapper`` records every statement Django sends
(with its parameters, SAVEPOINTs and the row-level security scope included, and the BEGIN and
COMMIT the backend sends). The recording is replayed with psycopg as the same database role, on
connections with the recording's nonce (its scopes are signed for it), in autocommit, so the
recorded BEGIN and COMMIT make the transactions: the same statements in the same transactions
with the same parameters, except ids. Ids of rows the request created get fresh UUIDs per replay;
for approve, the ids of the template contract's rows (contract, instance, stages, approval) are
replaced by those of the next unused contract of the pool, so every replay decides a different
pending approval, as the HTTP run does. (Which ids are pre-existing is decided in a REPEATABLE
READ snapshot taken before the recorded request.) The replay runs in as many OS processes as
gunicorn has workers, one connection each: the same number of transactions in flight as the
server can have, so the ratio measures what HTTP, Django, DRF and the service code cost per
request, not a difference in concurrency. It needs no Python beyond psycopg: it is the most this
machine's PostgreSQL does for those transactions at that concurrency (on the same two cores).
A check after the replays verifies they did the work (contracts inserted, approvals decided).

Never asserts a timing: it measures and prints.
"""

import argparse
import asyncio
import cProfile
import enum
import itertools
import json
import os
import pstats
import re
import sys
import time
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from psycopg import IsolationLevel
from psycopg.pq import PipelineStatus
from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("BENCH_DATABASE_NAME", "clm_bench_load")

import _django
from _http import HttpConnection, LoadResult, Response, run_load
from _server import start_gunicorn
from _util import WireTap, ms, print_profile, print_table, run_worker_processes

CONTRACTS = 100_000
CONCURRENCY = 8
DURATION = 12.0
WORKER_COUNTS = (2, 4)
RAW_DURATION = 6.0
PROFILE_REQUESTS = 200
PROFILE_BLOCKS = 5
WARMUP_PER_CLIENT = 10
REQUESTERS = 5
# Per 100 contracts (by contract number modulo 100): which template it is cloned from.
KIND_BUCKETS = (("stage1", 7), ("stage2", 1), ("stage3", 2), ("plain", 90))
CREATE_BODY = {
    "title": "Load test MSA",
    "contract_type": "MSA",
    "value": "750000.00",
    "currency": "USD",
    "counterparty": "Globex Corporation",
    "department": "sales",
    "region": "EMEA",
    "start_date": "2026-07-01",
    "end_date": "2028-06-30",
    "text": "\n\n".join(
        [
            *(
                f"{number}. The Supplier shall provide the Services described in Schedule "
                f"{number} with due skill and care; the Customer shall pay valid invoices within "
                "thirty (30) days."
                for number in range(1, 13)
            ),
            "13. Limitation of liability. Each party's liability is capped at the fees paid in "
            "the twelve (12) months before the claim.",
        ]
    ),
    "metadata": {"tier": "gold", "seats": 120},
}
PLAIN_VALUE = "25000.00"  # below the example workflow's trigger (500,000): stays a draft
UUID_TEXT = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
UUID_PATTERN = re.compile(UUID_TEXT + r"\Z")
# An array literal (``core.sql.Prepared.bound`` sends a list of ids as one), split at its ids.
ARRAY_IDS = re.compile(f"({UUID_TEXT})")


# --- fixtures and data -------------------------------------------------------------------------


def create_fixtures() -> dict:
    """The demo-shaped tenant: roles, requesters, the example workflow, the demo's clause
    playbook; and the four template contracts the bulk data is cloned from (a draft, and one in
    review at each stage)."""
    from approvals.lifecycle import contract_create
    from approvals.orchestrator import approval_act
    from contracts.clause_services import clause_rule_create
    from tenancy.models import Tenant, User, UserRole
    from workflows.management.commands.seed_demo import DEMO_CLAUSES, DEMO_WORKFLOW
    from workflows.services import definition_create

    tenant = Tenant.objects.create(name="Bench load", slug="bench-load")

    def user(name: str, *roles: str, **fields):
        created = User.objects.create_user(
            f"{name}@bench.example", password=None, tenant=tenant, full_name=name, **fields
        )
        for role in roles:
            UserRole.objects.create(tenant=tenant, user=created, role=role)
        return created

    admin = user("admin", is_tenant_admin=True)
    requesters = [user(f"requester-{number}") for number in range(REQUESTERS)]
    holders = {
        "legal": [user("legal-1", "legal"), user("legal-2", "legal")],
        "finance": [user("finance-1", "finance")],
        "cfo": [user("cfo-1", "cfo")],
        "ceo": [user("ceo-1", "ceo"), user("ceo-2", "ceo")],
    }
    definition_create(tenant=tenant, created_by=admin, **DEMO_WORKFLOW)
    for clause in DEMO_CLAUSES:  # every create checks its text against the playbook
        clause_rule_create(tenant=tenant, created_by=admin, **clause)

    fields = {key: value for key, value in CREATE_BODY.items() if key not in ("value", "title")}
    for key in ("start_date", "end_date"):
        fields[key] = date.fromisoformat(fields[key])

    def contract(title: str, value: str):
        return contract_create(
            tenant=tenant, created_by=requesters[0], title=title, value=Decimal(value), **fields
        )

    templates = {"plain": contract("Template draft", PLAIN_VALUE).pk}
    stage_approvers = {"stage1": [], "stage2": ["legal"], "stage3": ["legal", "finance"]}
    for kind, approvers in stage_approvers.items():
        created = contract(f"Template {kind}", CREATE_BODY["value"])
        for role in approvers:
            approval_act(
                tenant=tenant, contract_id=created.pk, actor=holders[role][0], action="approve"
            )
        templates[kind] = created.pk
    return {
        "tenant": tenant.pk,
        "requesters": [requester.pk for requester in requesters],
        "holders": {role: [holder.pk for holder in users] for role, users in holders.items()},
        "templates": templates,
    }


def seed(ids: dict, contracts: int) -> dict:
    """Clone the templates into ``contracts`` contracts (the templates count) in one transaction.

    Every column is copied from the template row except ids, foreign keys to cloned rows, titles,
    values, statuses of plain contracts and times, which are moved back by the contract's age.
    """
    from django.db import connection, transaction

    from approvals.models import WorkflowInstance, WorkflowStage, WorkflowStageApproval
    from audit.models import SEQ_SEQUENCE, AuditLog
    from contracts.models import Contract

    clones = contracts - len(ids["templates"])
    buckets, low = [], 0
    for kind, share in KIND_BUCKETS:
        buckets.append(f"WHEN mod(n, 100) < {low + share} THEN '{kind}'")
        low += share
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE seed_template (kind text, contract uuid, instance uuid) "
            "ON COMMIT DROP"
        )
        for kind, contract_id in ids["templates"].items():
            cursor.execute(
                "INSERT INTO seed_template SELECT %s, %s, (SELECT id FROM "
                f"{WorkflowInstance._meta.db_table} WHERE contract_id = %s)",
                [kind, contract_id, contract_id],
            )
        # Plain contracts spread over a year, those in review over the last two weeks.
        cursor.execute(
            f"""
            CREATE TEMP TABLE seed ON COMMIT DROP AS
            SELECT n, kind, gen_random_uuid() AS contract, gen_random_uuid() AS instance,
                   (%(clones)s - n) * CASE kind WHEN 'plain' THEN interval '365 days'
                                                ELSE interval '14 days' END / %(clones)s AS age
              FROM (SELECT n, CASE {" ".join(buckets)} END AS kind
                      FROM generate_series(1, %(clones)s) AS n) numbered
            """,
            {"clones": clones},
        )
        cursor.execute(
            "CREATE TEMP TABLE seed_stage ON COMMIT DROP AS "
            "SELECT m.contract, m.instance, m.age, s.id AS template, "
            "gen_random_uuid() AS id FROM seed m JOIN seed_template t ON t.kind = m.kind "
            f"JOIN {WorkflowStage._meta.db_table} s ON s.instance_id = t.instance"
        )
        requesters = "ARRAY[" + ", ".join(["%s::uuid"] * len(ids["requesters"])) + "]"
        _clone(
            cursor,
            Contract,
            "JOIN seed_template st ON t.id = st.contract JOIN seed m ON m.kind = st.kind",
            {
                "id": "m.contract",
                "title": "'Contract ' || m.n",
                "counterparty": "'Counterparty ' || mod(m.n, 997)",
                "value": "CASE WHEN m.kind = 'plain' THEN round((random() * 400000)::numeric, 2)"
                " ELSE t.value END",
                "status": "CASE WHEN m.kind <> 'plain' THEN t.status WHEN mod(m.n, 20) < 12 THEN "
                "'approved' WHEN mod(m.n, 20) < 17 THEN 'draft' WHEN mod(m.n, 20) < 19 THEN "
                "'rejected' ELSE 'cancelled' END",
                "created_by_id": f"({requesters})[1 + mod(m.n, {len(ids['requesters'])})]",
            },
            ids["requesters"],
        )
        _clone(
            cursor,
            WorkflowInstance,
            "JOIN seed_template st ON t.id = st.instance JOIN seed m ON m.kind = st.kind",
            {"id": "m.instance", "contract_id": "m.contract"},
        )
        _clone(
            cursor,
            WorkflowStage,
            "JOIN seed_stage m ON t.id = m.template",
            {"id": "m.id", "instance_id": "m.instance"},
        )
        _clone(
            cursor,
            WorkflowStageApproval,
            "JOIN seed_stage m ON t.stage_id = m.template",
            {
                "id": "gen_random_uuid()",
                "stage_id": "m.id",
                "instance_id": "m.instance",
                "contract_id": "m.contract",
            },
        )
        _clone(
            cursor,
            AuditLog,
            "JOIN seed_template st ON t.resource_id = st.contract::text "
            "AND t.action = 'contract_created' JOIN seed m ON m.kind = st.kind",
            {
                "id": "gen_random_uuid()",
                "resource_id": "m.contract::text",
                "contract_id": "m.contract",
                # Numbered as inserted, like every row (copying it would repeat the template's).
                "seq": f"nextval('{SEQ_SEQUENCE}')",
            },
        )
    _django.analyze()
    return {"contracts": row_count(Contract._meta.db_table, "tenant_id = %s", [ids["tenant"]])}


def _clone(cursor, model, join: str, overrides: dict, params=()) -> None:
    """INSERT copies of ``model``'s template rows ``t`` joined to the seed rows ``m``."""
    from django.db import models

    columns, values = [], []
    for model_field in model._meta.concrete_fields:
        column = model_field.column
        columns.append(column)
        if column in overrides:
            values.append(overrides[column])
        elif isinstance(model_field, models.DateTimeField):
            values.append(f"t.{column} - m.age")
        else:
            values.append(f"t.{column}")
    table = model._meta.db_table
    cursor.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM {table} t {join}",
        list(params),
    )


def pool_cases(ids: dict) -> list[dict]:
    """Every contract pending at stage 1 (not a template), oldest first, as ``case_ids``."""
    from approvals.models import WorkflowStageApproval

    contracts = (
        WorkflowStageApproval.objects.filter(
            tenant_id=ids["tenant"], status="pending", role="legal"
        )
        .exclude(contract_id__in=ids["templates"].values())
        .order_by("created_at", "id")
        .values_list("contract_id", flat=True)
    )
    return case_ids(list(contracts))


def case_ids(contract_ids: list) -> list[dict]:
    """For each contract, the ids of its rows by what they are: ``("contract",)``,
    ``("instance",)``, ``("stage", sequence)``, ``("approval", sequence, approver)``."""
    from approvals.models import WorkflowStage, WorkflowStageApproval

    cases = {contract: {("contract",): contract} for contract in contract_ids}
    stages = WorkflowStage.objects.filter(instance__contract_id__in=contract_ids).values_list(
        "instance__contract_id", "instance_id", "sequence", "id"
    )
    for contract, instance, sequence, stage in stages:
        cases[contract][("instance",)] = instance
        cases[contract][("stage", sequence)] = stage
    approvals = WorkflowStageApproval.objects.filter(contract_id__in=contract_ids).values_list(
        "contract_id", "stage__sequence", "approver", "id"
    )
    for contract, sequence, approver, approval in approvals:
        cases[contract][("approval", sequence, approver)] = approval
    return [cases[contract] for contract in contract_ids]


# --- scenarios ---------------------------------------------------------------------------------


@dataclass
class Scenario:
    """One endpoint: how its n-th request looks, the same for HTTP and for ``django.test``."""

    name: str
    method: str
    token: str
    cases: list[dict] = field(default_factory=list)  # approve: contracts to decide, in order
    used: int = 0

    def next_request(self) -> tuple[str, dict | None]:
        if self.name == "create":
            return "/api/contracts/", CREATE_BODY
        if self.name == "pending":
            return "/api/approvals/pending/", None
        case = self.take(1)[0]
        return f"/api/contracts/{case[('contract',)]}/approve/", {"action": "approve"}

    def take(self, count: int) -> list[dict]:
        """The next ``count`` unused contracts of the pool (approve)."""
        taken = self.cases[self.used : self.used + count]
        if len(taken) < count:
            raise RuntimeError(f"{self.name}: the pool of {len(self.cases)} contracts ran out")
        self.used += count
        return taken

    @property
    def left(self) -> int | None:
        return len(self.cases) - self.used if self.name == "approve" else None

    async def http(self, client: HttpConnection, worker: int, iteration: int) -> Response:
        path, body = self.next_request()
        headers = {"Authorization": f"Bearer {self.token}"}
        return await client.request(self.method, path, json_body=body, headers=headers)

    def in_process(self, client) -> None:
        """One request through ``django.test.Client`` (same middleware, no HTTP); must be 2xx."""
        path, body = self.next_request()
        response = client.generic(
            self.method,
            path,
            json.dumps(body) if body is not None else "",
            content_type="application/json",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        if response.status_code // 100 != 2:
            raise RuntimeError(f"{self.name}: {response.status_code} {response.content[:500]!r}")


def make_scenarios(ids: dict) -> list[Scenario]:
    from tenancy.models import User
    from tenancy.tokens import SessionRefreshToken

    def token(user_id) -> str:
        return str(SessionRefreshToken.for_user(User.objects.get(pk=user_id)).access_token)

    return [
        Scenario("create", "POST", token(ids["requesters"][1])),
        Scenario("approve", "POST", token(ids["holders"]["legal"][1]), cases=pool_cases(ids)),
        Scenario("pending", "GET", token(ids["holders"]["ceo"][1])),
    ]


# --- recording a request's SQL -----------------------------------------------------------------


class Recorder(WireTap):
    """Every statement Django sends, as it is sent (last of the connection's execute wrappers:
    the row-level security scope's ``set_config`` and the backend's BEGIN in front of a
    transaction's first statement included, and its COMMIT/ROLLBACK; ``WireTap`` of
    ``bench/_util.py``), in order, in ``ops``: ``(sql, params, many, pipelined)``.

    ``core.pipeline`` streams the writes it queues in an open transaction (libpq's pipeline
    mode) without going through the wrappers: the recorder takes them from its queue, marked
    ``STREAMED``, and marks ``CLOSES`` the statement that joined them in the pipeline and
    waited for all of it, so that the replay sends them as the app did."""

    outermost = False

    def __init__(self) -> None:
        self.ops: list = []

    def statement(self, sql, params=None, many=False) -> None:
        self.ops.append((sql, params, many, None))

    def __call__(self, execute, sql, params, many, context):
        if context["connection"].connection.pgconn.pipeline_status != PipelineStatus.OFF:
            self.ops.append((sql, params, many, CLOSES))
            return execute(sql, params, many, context)
        return super().__call__(execute, sql, params, many, context)

    @contextmanager
    def installed(self, connection, *, new_connections: bool = False):
        from core import pipeline

        stream = pipeline._Queue._stream

        def recorded(queue, wrapper, statement, params):
            self.ops.append((statement, params, False, STREAMED))
            return stream(queue, wrapper, statement, params)

        pipeline._Queue._stream = recorded
        try:
            with super().installed(connection, new_connections=new_connections):
                yield self
        finally:
            pipeline._Queue._stream = stream


# How a recorded statement was sent (``Recorder``): streamed in the pipeline, or the statement
# that joined the pipeline last and waited for everything in it.
STREAMED, CLOSES = "streamed", "closes"


@dataclass(frozen=True)
class Slot:
    """A parameter replaced per replay: a fresh UUID (``key`` is its number) or the id of the
    replay's case (``key`` as in ``case_ids``); ``text`` when it was sent as a string."""

    kind: str
    key: object
    text: bool


@dataclass(frozen=True)
class ArrayText:
    """An array literal sent as text, its ids replaced per replay: its pieces, texts between
    ``Slot``s (or ids that stay the same)."""

    pieces: tuple


@dataclass(frozen=True)
class JsonText:
    """A JSON parameter (Django sends ``Jsonb`` objects, which hold its encoder): its text."""

    text: str


@dataclass
class Program:
    """A recorded request, ready to replay: ops with ``Slot`` parameters, and the nonce of the
    connection it was recorded on (its scopes are signed for it, ``core.rls``)."""

    ops: list
    fresh: int
    statements: int
    transactions: int
    nonce: str
    # The PREPAREs of the statements it EXECUTEs (``core.sql.Prepared``): the app's connection
    # sent them once, before the recording; each replaying connection sends them before timing.
    prepares: list


def record(scenario: Scenario, client) -> Program:
    """Run the scenario's next request in-process, recording its statements, and turn the
    recording into a ``Program`` (which ids are fresh and which belong to the case)."""
    from django.db import connection

    from core.rls import Scope
    from core.sql import Prepared

    case = scenario.cases[scenario.used] if scenario.name == "approve" else {}
    snapshot, bypass_sql = _django.scoped_connection(Scope(bypass=True))
    snapshot.isolation_level = IsolationLevel.REPEATABLE_READ
    recorder = Recorder()
    try:
        with snapshot.cursor() as cursor:
            # Every tenant's rows (the worker role), as of now: the first statement takes
            # the transaction's snapshot.
            cursor.execute(bypass_sql)
            connection.ensure_connection()
            with recorder.installed(connection):
                scenario.in_process(client)
            mentioned = set()
            for op in recorder.ops:
                if isinstance(op, tuple):
                    _collect_uuids(op[1], mentioned)
            existed = _existing(cursor, mentioned)
    finally:
        snapshot.close()
    by_id = {value: key for key, value in case.items()}
    fresh: dict[uuid.UUID, int] = {}

    def slot(value: uuid.UUID, text: bool):
        if value in by_id:
            return Slot("case", by_id[value], text)
        if value in existed:
            return None  # a fixture row (tenant, user, definition...): the same every time
        return Slot("fresh", fresh.setdefault(value, len(fresh)), text)

    ops = [
        (sql, _slotted(params, slot), many, pipelined)
        for sql, params, many, pipelined in recorder.ops
    ]
    statements = transactions = 0
    in_transaction = False
    for sql, _, _, _ in ops:
        opens = sql.startswith("BEGIN")
        transactions += opens or not in_transaction  # not in one: an autocommitted statement
        in_transaction = (in_transaction or opens) and not sql.endswith(("COMMIT", "ROLLBACK"))
        statements += sql not in ("COMMIT", "ROLLBACK")
    executed = " ".join(str(sql) for sql, _, _, _ in ops)
    prepares = [
        Prepared.by_name[name].prepare
        for name in sorted(set(re.findall(r"EXECUTE (clm_\w+)\(", executed)))
    ]
    return Program(ops, len(fresh), statements, transactions, connection.rls_nonce, prepares)


def _as_uuid(value) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str) and UUID_PATTERN.match(value):
        return uuid.UUID(value)
    return None


def _collect_uuids(params, found: set) -> None:
    if isinstance(params, list | tuple):
        for value in params:
            _collect_uuids(value, found)
    elif isinstance(params, dict):
        _collect_uuids(list(params.values()), found)
    elif (value := _as_uuid(params)) is not None:
        found.add(value)
    elif _is_array_text(params):
        found.update(uuid.UUID(text) for text in ARRAY_IDS.findall(params))


def _is_array_text(value) -> bool:
    return isinstance(value, str) and value.startswith("{") and value.endswith("}")


def _slotted(params, slot):
    """``params`` with each replaced id as its ``Slot``, and JSON values (which hold their
    encoder) as their ``JsonText``."""
    if isinstance(params, list | tuple):
        return type(params)(_slotted(value, slot) for value in params)
    if isinstance(params, dict):
        return {key: _slotted(value, slot) for key, value in params.items()}
    if isinstance(params, Jsonb):
        return JsonText(params.dumps(params.obj))
    if isinstance(params, enum.Enum):  # model choices: plain values, picklable without Django
        params = params.value
    if _is_array_text(params):
        pieces = ARRAY_IDS.split(params)
        for index in range(1, len(pieces), 2):  # the ids, between the texts
            pieces[index] = slot(uuid.UUID(pieces[index]), True) or pieces[index]
        return ArrayText(tuple(pieces))
    value = _as_uuid(params)
    if value is None:
        return params
    replacement = slot(value, isinstance(params, str))
    return params if replacement is None else replacement


def _existing(cursor, candidates: set) -> set:
    """Which of ``candidates`` are the primary key of some row, in the cursor's snapshot."""
    from django.apps import apps
    from django.db import models

    found = set()
    for model in apps.get_models():
        if isinstance(model._meta.pk, models.UUIDField) and not model._meta.proxy:
            cursor.execute(
                f"SELECT {model._meta.pk.column} FROM {model._meta.db_table} "
                f"WHERE {model._meta.pk.column} = ANY(%s::uuid[])",
                [[str(value) for value in candidates]],
            )
            found.update(uuid.UUID(str(row[0])) for row in cursor.fetchall())
    return found


# --- replaying it raw --------------------------------------------------------------------------


def _resolve(params, fresh: list, case: dict):
    if isinstance(params, Slot):
        value = fresh[params.key] if params.kind == "fresh" else case[params.key]
        return str(value) if params.text else value
    if isinstance(params, JsonText):
        return Jsonb(params.text, dumps=str)  # the text as it is
    if isinstance(params, ArrayText):
        return "".join(str(_resolve(piece, fresh, case)) for piece in params.pieces)
    if isinstance(params, list | tuple):
        return type(params)(_resolve(value, fresh, case) for value in params)
    if isinstance(params, dict):
        return {key: _resolve(value, fresh, case) for key, value in params.items()}
    return params


def replay_once(cursor, program: Program, case: dict) -> None:
    """The recorded statements, the streamed ones in a pipeline (``Recorder``) as the app
    sent them."""
    fresh = [uuid.uuid4() for _ in range(program.fresh)]
    pipeline = None
    for sql, params, many, pipelined in program.ops:
        params = _resolve(params, fresh, case)
        if pipelined and pipeline is None:
            pipeline = cursor.connection.pipeline()
            pipeline.__enter__()
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
        if pipelined == CLOSES:
            pipeline.__exit__(None, None, None)
            pipeline = None


def _replay_worker(connect: dict, program: Program, cases, duration, barrier, results) -> None:
    import psycopg

    # Values bound on the client, as Django's cursors bind them; transactions are the
    # recorded BEGIN/COMMIT.
    connection = psycopg.connect(**connect, autocommit=True, cursor_factory=psycopg.ClientCursor)
    cursor = connection.cursor()
    for prepare in program.prepares:
        cursor.execute(prepare)
    latencies = []
    barrier.wait()
    started = time.perf_counter()
    deadline = started + duration
    for case in itertools.repeat({}) if cases is None else cases:
        if time.perf_counter() >= deadline:
            break
        began = time.perf_counter()
        replay_once(cursor, program, case)
        latencies.append(time.perf_counter() - began)
    results.put({"started": started, "finished": time.perf_counter(), "latencies": latencies})
    connection.close()


def replay(
    program: Program, processes: int, duration: float, cases: list[dict] | None
) -> LoadResult:
    """Replay ``program`` from ``processes`` OS processes, one connection each, for
    ``duration`` seconds or until each process has used its share of ``cases`` (approve)."""
    from django.db import connection

    from core.rls import NONCE_SETTING

    # The recorded scopes are signed for the recording connection's nonce (core.rls): the
    # replaying connections get the same one, so the database believes them as it did there.
    connect = connection.get_connection_params()
    for django_only in ("context", "cursor_factory"):  # Django's adapters, set per process
        connect.pop(django_only, None)
    nonce = f"-c {NONCE_SETTING}={program.nonce}"
    connect["options"] = " ".join(filter(None, [connect.get("options"), nonce]))
    shares = [None if cases is None else cases[index::processes] for index in range(processes)]
    seconds, outcomes = run_worker_processes(
        _replay_worker,
        [(connect, program, share, duration) for share in shares],
        processes,
        setup_timeout=120,
        timeout=duration + 600,
    )
    result = LoadResult()
    result.elapsed = seconds
    for outcome in outcomes:
        result.latencies += outcome["latencies"]
    return result


# --- running -----------------------------------------------------------------------------------


def http_run(server, scenario: Scenario, options, total: int | None) -> tuple[LoadResult, float]:
    """Warm up, then load ``scenario``: the result and the server's CPU ms per answer."""

    async def load(duration, limit) -> LoadResult:
        return await run_load(
            scenario.http,
            concurrency=options.concurrency,
            duration=duration,
            total=limit,
            base_url=server.base_url,
        )

    warm_up = asyncio.run(load(None, options.concurrency * WARMUP_PER_CLIENT))
    if warm_up.non_2xx:
        raise RuntimeError(f"{scenario.name} warm-up answered {dict(warm_up.non_2xx)}")
    cpu = server.cpu_seconds()
    result = asyncio.run(load(options.duration, total))
    cpu_ms = (server.cpu_seconds() - cpu) / max(result.count, 1) * 1e3
    return result, cpu_ms


def row_count(table: str, where: str = "TRUE", params=()) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE {where}", list(params))
        return cursor.fetchone()[0]


def raw_run(scenario: Scenario, program: Program, processes: int, options, share: int):
    """Replay ``program`` and check the replays did the work; the result."""
    from approvals.models import WorkflowStageApproval
    from contracts.models import Contract

    cases = scenario.take(share) if scenario.name == "approve" else None
    contracts = row_count(Contract._meta.db_table)
    result = replay(program, processes, options.raw_duration, cases)
    if scenario.name == "create":
        done = row_count(Contract._meta.db_table) - contracts
    elif scenario.name == "approve":
        approvals = [str(case[("approval", 1, "legal")]) for case in cases]
        done = row_count(
            WorkflowStageApproval._meta.db_table,
            "id = ANY(%s::uuid[]) AND status = 'approved'",
            [approvals],
        )
    else:
        done = result.count
    if done != result.count:
        raise RuntimeError(f"{scenario.name}: {result.count} replays but {done} done")
    return result


def main() -> None:
    options = parse_options()
    # WhiteNoise (in-process requests) warns that collectstatic never ran: static files are no
    # part of this benchmark.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    _django.setup()
    from django.test import Client

    ids = create_fixtures()
    seeded = seed(ids, options.contracts)
    seconds_to_seed = time.perf_counter() - started
    scenarios = make_scenarios(ids)
    if options.profile:
        profile(scenarios, options.profile, options.requests)
        return

    # Record each request once, after one untimed request has warmed the process's caches.
    client = Client()
    programs = {}
    for scenario in scenarios:
        scenario.in_process(client)
        programs[scenario.name] = record(scenario, client)
    approve = next(s for s in scenarios if s.name == "approve")
    # Each worker count gets an equal share of the pool for its HTTP run and its replay.
    share = approve.left // (2 * len(options.workers))
    header = [
        "workers",
        "scenario",
        "answers",
        "gunicorn req/s",
        "p50 ms",
        "p99 ms",
        "server CPU ms/req",
        "raw SQL req/s",
        "raw p50 ms",
        "ratio",
    ]
    rows = [header]
    problems = []
    for workers in options.workers:
        with start_gunicorn(workers=workers) as server:
            results = {}
            for scenario in scenarios:
                total = share - options.concurrency * WARMUP_PER_CLIENT if scenario.left else None
                results[scenario.name] = http_run(server, scenario, options, total)
        for scenario in scenarios:
            result, cpu_ms = results[scenario.name]
            raw = raw_run(scenario, programs[scenario.name], workers, options, share)
            if result.non_2xx:
                problems.append(f"{workers} workers, {scenario.name}: {dict(result.non_2xx)}")
            rows.append(
                [
                    workers,
                    scenario.name,
                    result.count,
                    f"{result.per_second:.1f}",
                    ms(result.p50),
                    ms(result.p99),
                    f"{cpu_ms:.1f}",
                    f"{raw.per_second:.1f}",
                    ms(raw.p50),
                    f"{raw.per_second / result.per_second:.1f}x" if result.per_second else "-",
                ]
            )

    print(
        f"{_django.database_description()}; {seeded['contracts']:,} contracts seeded in "
        f"{seconds_to_seed:.0f} s; load average {load:.1f} at start on {os.cpu_count()} CPUs. "
        f"{options.concurrency} concurrent HTTP/1.1 clients per run (gunicorn's sync workers "
        f"close the connection after each answer), {options.duration:g} s after "
        f"{WARMUP_PER_CLIENT} warm-up requests each; raw SQL for {options.raw_duration:g} s "
        "from as many processes as gunicorn workers."
    )
    print_table("API under gunicorn (sync workers) vs. the same SQL replayed with psycopg", rows)
    print(
        "ratio: raw SQL req/s / gunicorn req/s (how many times more requests' worth of "
        "transactions PostgreSQL completes without the framework). server CPU: master and "
        "workers, per answer. Latencies as the clients see them."
    )
    print()
    print_table(
        "What one request sends (the replayed program)",
        [
            ["scenario", "statements", "transactions", "ids made per request"],
            *(
                [name, program.statements, program.transactions, program.fresh]
                for name, program in programs.items()
            ),
        ],
    )
    if problems:
        print("\nNON-2XX ANSWERS: " + "; ".join(problems))
    else:
        print("\nEvery answer was 2xx.")
    print(
        f"Whole run {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.1f} "
        "at the end."
    )
    if options.sql:
        for name, program in programs.items():
            print(f"\n{name}: the recorded statements")
            for op in program.ops:
                print(f"  {op if isinstance(op, str) else ' '.join(op[0].split())[:160]}")


def profile(scenarios: list[Scenario], hottest: str, requests: int) -> None:
    """Per request of every scenario, in-process (``django.test.Client``: the whole middleware
    and DRF stack, no HTTP server): CPU and wall time (the best of ``PROFILE_BLOCKS`` blocks,
    the least disturbed by whatever else the machine runs), SQL statements, and the Python
    function calls cProfile counts in one more block (exact, unlike the times: the figure to
    compare before and after a change on a busy machine). Then ``hottest``'s profile."""
    from django.db import connection
    from django.test import Client

    client = Client()
    header = ["scenario", "requests", "CPU ms", "wall ms", "SQL statements", "Python calls"]
    rows = [header]
    block = max(1, requests // PROFILE_BLOCKS)
    profiles = {}
    for scenario in scenarios:
        for _ in range(WARMUP_PER_CLIENT):
            scenario.in_process(client)
        cpu = wall = float("inf")
        recorder = Recorder()
        with recorder.installed(connection):
            for _ in range(PROFILE_BLOCKS):
                cpu_started, wall_started = time.process_time(), time.perf_counter()
                for _ in range(block):
                    scenario.in_process(client)
                cpu = min(cpu, time.process_time() - cpu_started)
                wall = min(wall, time.perf_counter() - wall_started)
        profiler = profiles[scenario.name] = cProfile.Profile()
        profiler.enable()
        for _ in range(block):
            scenario.in_process(client)
        profiler.disable()
        statements = sum(isinstance(op, tuple) for op in recorder.ops) / (block * PROFILE_BLOCKS)
        rows.append(
            [
                scenario.name,
                block * PROFILE_BLOCKS,
                f"{cpu / block * 1e3:.2f}",
                f"{wall / block * 1e3:.2f}",
                f"{statements:g}",
                f"{pstats.Stats(profiler).total_calls / block:,.0f}",
            ]
        )
    print_table("In-process cost per request", rows)
    print_profile(
        profiles[hottest],
        f"cProfile of {block} {hottest} requests, by {{order}} (wall clock: psycopg's "
        "execute and commit are the wait for the database):",
        40,
    )


def parse_options():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=CONTRACTS)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="HTTP clients")
    parser.add_argument("--duration", type=float, default=DURATION, help="seconds per HTTP run")
    parser.add_argument("--raw-duration", type=float, default=RAW_DURATION)
    parser.add_argument(
        "--workers",
        type=lambda text: [int(part) for part in text.split(",")],
        default=list(WORKER_COUNTS),
        help="gunicorn worker counts, comma-separated (default 2,4)",
    )
    parser.add_argument(
        "--profile",
        choices=["create", "approve", "pending"],
        help="instead of the load: in-process CPU per request of every scenario, and a "
        "cProfile of this one",
    )
    parser.add_argument("--requests", type=int, default=PROFILE_REQUESTS, help="for --profile")
    parser.add_argument("--sql", action="store_true", help="also print each recorded request")
    return parser.parse_args()


if __name__ == "__main__":
    main()
