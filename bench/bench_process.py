"""Benchmark a whole approval process at the service layer, against django-viewflow and the floor.

Run from the repository root: ``python bench/bench_process.py`` (or ``make bench``);
``--profile`` adds a cProfile of the one-process run. One process is: a contract created with
``approvals.lifecycle.contract_create`` that matches a 3-stage workflow (legal, finance, ceo; one
role approver and one holder per stage) and starts it in the same transaction, then each stage
approved with ``approvals.orchestrator.approval_act(action="approve")`` to completion. Every
process writes its 12 audit rows. N processes after a warm-up, on one OS process and on two in
parallel (separate connections, one shared tenant and definition).

Two baselines are measured in the same run. django-viewflow (``bench/peers/viewflow``, driven by
``bench/_viewflow.py``) takes the same three-stage approval through its engine on the same server,
alternating rounds with ours; the ratio of the medians is the headline figure. The physical floor:
the rows the process writes (contract, instance, 3 stages, 3 approvals, 12 audit rows and the
status updates), issued directly with psycopg in the same 4 transactions, with no reads at all
(no rule match, no locking, no eligibility check).
It writes no notification rows; the second table shows the rows each side inserts per process.

Both sides run on analyzed databases, as production's autovacuum keeps them: each run starts
with an ANALYZE of its database (``_django.analyze``, ``_viewflow.analyze``), and before the
first round each side runs ``SEED`` processes, so no run plans against near-empty tables.
Without statistics the planner reads a tenant's rows through the row-level security policy's
``tenant_id`` index instead of the key a query names: every statement then costs more as the
run adds rows. With statistics of near-empty tables it picks sequential scans, which cost little
there; our prepared statements keep the plan a connection made first (``core.sql.Prepared``),
so on a table a run fills from a few dozen rows to a few thousand, they would cost more with
every process. A database in use holds rows, and autovacuum re-analyzes a table whose size
changes (which also makes connections re-plan), so neither effect is what users get.

How statements are counted (``StatementCounter`` of ``bench/_util.py``): a connection
``execute_wrapper`` sees every statement Django sends, SAVEPOINT / RELEASE SAVEPOINT included
(Django runs those through the cursor), and the COMMIT and ROLLBACK the backend
(``tenancy.rls_backend``) sends the same way. The backend's BEGIN travels in front of a
transaction's first statement: the counter counts it as a statement, not as a round trip. So the
totals are the statements on the wire. The floor's psycopg connection sends BEGIN (a round trip
of its own) and COMMIT itself; it counts them in the same way.
Statements sent in the round trip of another (the writes ``core.pipeline`` queues, and the
signal receivers' savepoint) are counted as statements, from the pipeline's own tally, but not as
round trips; the row-level security scope's ``set_config``, sent with each transaction's first
statement, is counted as neither.
"""

import argparse
import cProfile
import hashlib
import json
import os
import sys
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _django
import _viewflow
from _util import (
    StatementCounter,
    backend_cpu_seconds,
    print_profile,
    print_table,
    run_worker_processes,
)

PROCESSES = 200
WARMUP = 20
# Processes each side runs once before the first round: a database in use holds rows, and the
# plans a connection prepares (and keeps) are made for the tables' sizes when it prepares them.
SEED = 500
PARALLEL = 2
STAGES = (("Legal review", "legal"), ("Finance review", "finance"), ("CEO sign-off", "ceo"))
SLA_HOURS = 48
# Each round runs ours, then django-viewflow (bench/peers/viewflow), on one and two OS processes;
# every figure is the median round, and the ratio compares medians of the same run.
ROUNDS = 3
TARGET_RATIO = 2.0
STATEMENTS = 7  # the table's column of statements per process
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK")

TEXT = "\n\n".join(
    f"{number}. Clause {number}. The Supplier shall provide the Services described in "
    f"Schedule {number} with due skill and care, and the Customer shall pay the fees within "
    "thirty (30) days of a valid invoice. " * 3
    for number in range(1, 13)
)
CONTRACT_FIELDS = {
    "contract_type": "MSA",
    "value": Decimal("250000.00"),
    "currency": "USD",
    "counterparty": "Globex Corporation",
    "department": "sales",
    "region": "EMEA",
    "start_date": date(2026, 7, 1),
    "end_date": date(2028, 6, 30),
    "text": TEXT,
    "metadata": {"tier": "gold", "seats": 120, "auto_renew": True},
}
TRIGGER = {"value__gte": 100000, "contract_type__in": ["MSA", "SOW"]}


# --- fixtures ------------------------------------------------------------------------------


def create_fixtures() -> dict:
    """One tenant: a requester, an admin, one holder per role, one 3-stage definition."""
    from tenancy.models import Tenant, User, UserRole
    from workflows.services import definition_create

    tenant = Tenant.objects.create(name="Bench process", slug="bench-process")

    def user(name: str, **fields):
        return User.objects.create_user(
            f"{name}@bench.example", password=None, tenant=tenant, full_name=name, **fields
        )

    admin = user("admin", is_tenant_admin=True)
    requester = user("requester")
    approvers = []
    for _, role in STAGES:
        holder = user(f"{role}-holder")
        UserRole.objects.create(tenant=tenant, user=holder, role=role)
        approvers.append(holder)
    definition = definition_create(
        tenant=tenant,
        created_by=admin,
        name="Three-stage approval",
        trigger_conditions=TRIGGER,
        priority=10,
        stages=[
            {"stage_name": name, "sequence": number, "approvers": [role], "sla_hours": SLA_HOURS}
            for number, (name, role) in enumerate(STAGES, start=1)
        ],
    )
    return {
        "tenant": tenant.pk,
        "requester": requester.pk,
        "approvers": [holder.pk for holder in approvers],
        "definition": definition.pk,
        "version": definition.versions.get(version=definition.version).pk,
    }


# --- ours ------------------------------------------------------------------------------------


class Ours:
    """The process through the services, exactly as the API views call them."""

    label = "ours (services)"

    def __init__(self, ids: dict) -> None:
        from tenancy.models import Tenant, User

        self.tenant = Tenant.objects.get(pk=ids["tenant"])
        self.requester = User.objects.get(pk=ids["requester"])
        self.approvers = [User.objects.get(pk=pk) for pk in ids["approvers"]]
        self.count = 0

    def __call__(self) -> None:
        from core import rls

        with rls.tenant_scope(self.tenant):  # as a request runs them: the app role, one tenant
            self._process()

    def _process(self) -> None:
        from approvals.lifecycle import contract_create
        from approvals.orchestrator import approval_act

        self.count += 1
        contract = contract_create(
            tenant=self.tenant,
            created_by=self.requester,
            title=f"Services agreement {uuid.uuid4().hex[:8]} #{self.count}",
            **CONTRACT_FIELDS,
        )
        for approver in self.approvers:
            # Each decision is its own request, which loads the actor's roles afresh.
            approver.__dict__.pop("_active_roles_cache", None)
            approval_act(
                tenant=self.tenant, contract_id=contract.pk, actor=approver, action="approve"
            )

    @staticmethod
    def carried() -> Counter:
        from core import pipeline

        return pipeline.carried_statements()

    @contextmanager
    def counting(self, counter: StatementCounter):
        from django.db import connection

        with counter.installed(connection):
            yield

    def backend_pid(self) -> int:
        from django.db import connection

        connection.ensure_connection()
        return connection.connection.info.backend_pid

    def close(self) -> None:
        from django.db import connections

        connections.close_all()


# --- the raw-SQL floor -----------------------------------------------------------------------


def _audit_row(action: str, actor, resource_type: str, resource_id, changes: dict) -> tuple:
    from psycopg.types.json import Jsonb

    return (uuid.uuid4(), action, resource_type, str(resource_id), Jsonb(changes), actor)


class Floor:
    """The same writes in the same 4 transactions, straight through psycopg, no reads."""

    label = "raw SQL floor (psycopg)"
    carried = Counter  # one statement per round trip

    def __init__(self, ids: dict) -> None:

        from core.rls import Scope

        self.ids = ids
        # The app role's rows are bound by row-level security: like the app, the floor names its
        # tenant (and role) in the same round trip as each transaction's first statement.
        self.raw, scope_sql = _django.scoped_connection(Scope(tenant_id=str(ids["tenant"])))
        self.scope_sql = f"{scope_sql}; "
        self.cursor = self.raw.cursor()
        self.counter: StatementCounter | None = None

    def execute(self, sql: str, params) -> int:
        from psycopg.pq import TransactionStatus

        counter = self.counter
        scoped = (
            self.scope_sql + sql
            if self.raw.info.transaction_status == TransactionStatus.IDLE
            else sql
        )
        if counter is None:
            self.cursor.execute(scoped, params)
            return self.cursor.rowcount
        counter.begin_if_idle(self.raw)
        counter.statement(sql)
        counter.wait(lambda: self.cursor.execute(scoped, params))
        return self.cursor.rowcount

    def commit(self) -> None:
        if self.counter is None:
            self.raw.commit()
        else:
            self.counter.end(self.raw, "COMMIT", self.raw.commit)

    def audit(self, tenant, contract, rows: list[tuple]) -> None:
        """One INSERT; every row of a process is about its contract (as the app records it)."""
        values = ", ".join(["(%s, %s, %s, %s, %s, '', '', %s, %s, %s)"] * len(rows))
        params = [value for row in rows for value in (*row, tenant, contract)]
        self.execute(
            "INSERT INTO audit_auditlog (id, action, resource_type, resource_id, changes, "
            f"user_agent, request_id, actor_id, tenant_id, contract_id) VALUES {values}",
            params,
        )

    def __call__(self) -> None:
        from psycopg.types.json import Jsonb

        ids = self.ids
        tenant, requester = ids["tenant"], ids["requester"]
        now = datetime.now(UTC)
        due = now + timedelta(hours=SLA_HOURS)
        fields = CONTRACT_FIELDS
        contract, instance = uuid.uuid4(), uuid.uuid4()
        stages = [uuid.uuid4() for _ in STAGES]
        title = f"Services agreement {uuid.uuid4().hex[:8]}"
        snapshot = {
            "title": title,
            **{key: str(fields[key]) for key in ("contract_type", "value", "currency")},
            "text_sha256": hashlib.sha256(TEXT.encode()).hexdigest(),
        }
        # Revision 1: the canonical content and its SHA-256, as any implementation must keep.
        content = {
            **{
                key: value.isoformat() if isinstance(value, date) else value
                for key, value in fields.items()
            },
            "title": title,
            "value": f"{fields['value']:.2f}",
        }
        content_hash = hashlib.sha256(
            json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()

        # 1. create the contract and start its workflow
        self.execute(
            "INSERT INTO contracts_contract (id, title, contract_type, value, currency, "
            "counterparty, department, region, start_date, end_date, text, metadata, "
            "has_blocking_findings, status, revision, content_hash, created_at, updated_at, "
            "created_by_id, tenant_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, false, 'in_review', 1, "
            "%s, %s, %s, %s, %s)",
            [
                contract,
                title,
                fields["contract_type"],
                fields["value"],
                fields["currency"],
                fields["counterparty"],
                fields["department"],
                fields["region"],
                fields["start_date"],
                fields["end_date"],
                fields["text"],
                Jsonb(fields["metadata"]),
                content_hash,
                now,
                now,
                requester,
                tenant,
            ],
        )
        self.execute(
            "INSERT INTO contracts_contractrevision (id, number, content_hash, content, "
            "changed_fields, created_at, contract_id, created_by_id, tenant_id) "
            "VALUES (%s, 1, %s, %s, '{}', %s, %s, %s, %s)",
            [uuid.uuid4(), content_hash, Jsonb(content), now, contract, requester, tenant],
        )
        self.execute(
            "INSERT INTO approvals_workflowinstance (id, status, current_sequence, started_at, "
            "distinct_approvers, changes_requested_comments, contract_id, definition_id, "
            "definition_version_id, started_by_id, tenant_id) "
            "VALUES (%s, 'active', 1, %s, true, '', %s, %s, %s, %s, %s)",
            [instance, now, contract, ids["definition"], ids["version"], requester, tenant],
        )
        stage_rows = []
        for number, ((name, role), stage) in enumerate(zip(STAGES, stages, strict=True), 1):
            first = number == 1
            stage_rows += [stage, number, name, [role], SLA_HOURS]
            stage_rows += ["pending" if first else "waiting", now if first else None]
            stage_rows += [due if first else None, instance, tenant]
        self.execute(
            "INSERT INTO approvals_workflowstage (id, sequence, stage_name, approval_type, "
            "approvers, sla_hours, is_required, reset_on_change, status, started_at, due_at, "
            "instance_id, tenant_id) VALUES "
            + ", ".join(
                ["(%s, %s, %s, 'all', %s, %s, true, '\"any\"', %s, %s, %s, %s, %s)"] * len(STAGES)
            ),
            stage_rows,
        )
        approval = self.open_approval(0, stages[0], instance, contract, now, due)
        self.audit(
            tenant,
            contract,
            [
                _audit_row("contract_created", requester, "contract", contract, snapshot),
                _audit_row("workflow_started", requester, "workflowinstance", instance, {}),
                _audit_row("stage_started", requester, "workflowstage", stages[0], {}),
            ],
        )
        self.commit()

        # 2-4. one decision per stage
        for index, approver in enumerate(ids["approvers"]):
            now = datetime.now(UTC)
            decided = self.execute(
                "UPDATE approvals_workflowstageapproval SET status = 'approved', "
                "decided_by_id = %s, decided_at = %s, revision = 1 "
                "WHERE id = %s AND status = 'pending'",
                [approver, now, approval],
            )
            assert decided == 1
            self.execute(
                "UPDATE approvals_workflowstage SET status = 'approved', completed_at = %s "
                "WHERE id = %s",
                [now, stages[index]],
            )
            rows = [
                _audit_row("approval_approved", approver, "workflowstageapproval", approval, {}),
                _audit_row("stage_completed", approver, "workflowstage", stages[index], {}),
            ]
            if index + 1 < len(STAGES):
                due = now + timedelta(hours=SLA_HOURS)
                self.execute(
                    "UPDATE approvals_workflowstage SET status = 'pending', started_at = %s, "
                    "due_at = %s WHERE id = %s",
                    [now, due, stages[index + 1]],
                )
                approval = self.open_approval(
                    index + 1, stages[index + 1], instance, contract, now, due
                )
                self.execute(
                    "UPDATE approvals_workflowinstance SET current_sequence = %s WHERE id = %s",
                    [index + 2, instance],
                )
                rows.append(
                    _audit_row("stage_started", approver, "workflowstage", stages[index + 1], {})
                )
            else:
                self.execute(
                    "UPDATE approvals_workflowinstance SET status = 'completed', "
                    "completed_at = %s, current_sequence = NULL WHERE id = %s",
                    [now, instance],
                )
                self.execute(
                    "UPDATE contracts_contract SET status = 'approved', updated_at = %s "
                    "WHERE id = %s",
                    [now, contract],
                )
                rows.append(
                    _audit_row("workflow_completed", approver, "workflowinstance", instance, {})
                )
            self.audit(tenant, contract, rows)
            self.commit()

    def open_approval(self, index, stage, instance, contract, now, due):
        approval = uuid.uuid4()
        self.execute(
            "INSERT INTO approvals_workflowstageapproval (id, approver, role, status, due_at, "
            "comments, metadata, created_at, contract_id, instance_id, stage_id, tenant_id) "
            "VALUES (%s, %s, %s, 'pending', %s, '', '{}', %s, %s, %s, %s, %s)",
            [
                approval,
                STAGES[index][1],
                STAGES[index][1],
                due,
                now,
                contract,
                instance,
                stage,
                self.ids["tenant"],
            ],
        )
        return approval

    @contextmanager
    def counting(self, counter: StatementCounter):
        self.counter = counter
        try:
            yield
        finally:
            self.counter = None

    def backend_pid(self) -> int:
        return self.raw.info.backend_pid

    def close(self) -> None:
        self.raw.close()


RUNNERS = {"ours": Ours, "floor": Floor}


# --- running ---------------------------------------------------------------------------------


def run(kind: str, ids: dict, processes: int, warmup: int, barrier=None) -> dict:
    """Warm up, (wait for the others,) then run and count ``processes`` processes."""
    runner = RUNNERS[kind](ids)
    for _ in range(warmup):
        runner()
    if barrier is not None:
        barrier.wait()
    counter = StatementCounter(runner.carried)
    per_process = []
    backend = runner.backend_pid()
    with runner.counting(counter):
        server_started = backend_cpu_seconds(backend)
        started, cpu_started = time.monotonic(), time.process_time()
        for _ in range(processes):
            before = counter.total
            runner()
            per_process.append(counter.total - before)
        finished, cpu_seconds = time.monotonic(), time.process_time() - cpu_started
        server_finished = backend_cpu_seconds(backend)
    runner.close()
    server_seconds = (
        None if None in (server_started, server_finished) else server_finished - server_started
    )
    return {
        "started": started,
        "finished": finished,
        "processes": processes,
        "kinds": dict(counter.all_kinds),
        "round_trips": counter.round_trips,
        "db_seconds": counter.db_seconds,
        "cpu_seconds": cpu_seconds,
        "server_cpu_seconds": server_seconds,
        "per_process": (min(per_process), max(per_process)),
    }


def _worker(kind: str, ids: dict, processes: int, warmup: int, barrier, results) -> None:
    _django.setup(fresh=False)
    results.put(run(kind, ids, processes, warmup, barrier))


def run_parallel(kind: str, ids: dict, workers: int) -> list[dict]:
    """``workers`` OS processes with their own connections, started together after warm-up."""
    _, outcomes = run_worker_processes(
        _worker, (kind, ids, PROCESSES, WARMUP), workers, setup_timeout=600, timeout=600
    )
    return outcomes


def summarize(label: str, outcomes: list[dict]) -> list[object]:
    processes = sum(outcome["processes"] for outcome in outcomes)
    wall = max(o["finished"] for o in outcomes) - min(o["started"] for o in outcomes)
    busy = sum(outcome["finished"] - outcome["started"] for outcome in outcomes)
    kinds: Counter = Counter()
    for outcome in outcomes:
        kinds.update(outcome["kinds"])
    total = sum(kinds.values())
    data = sum(n for kind, n in kinds.items() if kind not in TRANSACTION_CONTROL)
    savepoints = kinds["SAVEPOINT"] + kinds["RELEASE"] + kinds["ROLLBACK"]
    low = min(o["per_process"][0] for o in outcomes)
    high = max(o["per_process"][1] for o in outcomes)
    statements = f"{total / processes:.0f}" if low == high else f"{low}-{high}"
    per_second = processes / wall
    db_ms = sum(o["db_seconds"] for o in outcomes) / processes * 1e3
    cpu_ms = sum(o["cpu_seconds"] for o in outcomes) / processes * 1e3
    server = [o["server_cpu_seconds"] for o in outcomes]
    server_ms = "-" if None in server else f"{sum(server) / processes * 1e3:.1f}"
    return [
        label,
        len(outcomes),
        f"{per_second:.1f}",
        f"{busy / processes * 1e3:.1f}",
        f"{db_ms:.1f}",
        f"{cpu_ms:.1f}",
        server_ms,
        statements,
        f"{sum(o['round_trips'] for o in outcomes) / processes:.0f}",
        f"{data / processes:.0f}",
        f"{kinds['BEGIN'] / processes:.0f}",
        f"{savepoints / processes:.0f}",
    ]


def median_round(rows: list[list[object]]) -> list[object]:
    """The round with the median processes/s (column 2)."""
    ordered = sorted(rows, key=lambda row: float(row[2]))
    return ordered[len(ordered) // 2]


def viewflow_row(result: dict, workers: int) -> list[object]:
    """A table row from one run of the peer bench (``bench/_viewflow.py``)."""
    (figures,) = (run for run in result["runs"] if run["parallel"] == workers)
    steady = result["queries_per_process"][-1]
    return [
        f"django-viewflow {result['viewflow']}",
        workers,
        f"{figures['processes_per_s']:.1f}",
        f"{figures['latency_ms_p50']:.1f} (p50)",
        "-",
        "-",
        "-",
        steady["all"],
        steady["all"],
        steady["data"],
        "-",
        "-",
    ]


def check_all_approved(ids: dict, expected: int) -> None:
    from contracts.models import Contract

    statuses = Counter(
        Contract.objects.filter(tenant_id=ids["tenant"]).values_list("status", flat=True)
    )
    assert statuses == {"approved": expected}, f"not every process completed: {statuses}"


def profile(ids: dict) -> None:
    runner = Ours(ids)
    for _ in range(WARMUP):
        runner()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(PROCESSES):
        runner()
    profiler.disable()
    print_profile(
        profiler, f"cProfile of {PROCESSES} processes (ours, one OS process), by {{order}}:", 25
    )


def table_rows() -> Counter:
    """Rows per table of the benchmark database (it is small: a few thousand rows); the models'
    tables, not the owner's row-level security key."""
    from django.db import connection
    from psycopg import sql

    counts: Counter = Counter()
    with connection.cursor() as cursor:
        for table in connection.introspection.django_table_names(only_existing=True):
            cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            counts[table] = cursor.fetchone()[0]
    return counts


def measured(kind: str, ids: dict, workers: int, written: dict) -> list[object]:
    """One table row for a run, on the database analyzed first; ``written[kind]`` gets the rows
    it inserted per process."""
    _django.analyze()
    before = table_rows()
    if workers == 1:
        outcomes = [run(kind, ids, PROCESSES, WARMUP)]
    else:
        outcomes = run_parallel(kind, ids, workers)
    delta = table_rows() - before
    done = (PROCESSES + WARMUP) * workers
    written[kind] = {table: count / done for table, count in delta.items()}
    label = RUNNERS[kind].label
    return summarize(label, outcomes)


def receivers_description() -> str:
    from approvals import signals

    connected = len(signals._batch_receivers)
    return f"{connected} domain-signal receivers connected (notifications in the same transaction)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="also cProfile the ours run")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds of ours and viewflow")
    options = parser.parse_args()

    load = os.getloadavg()[0]
    _django.setup()
    ids = create_fixtures()
    _viewflow.prepare()
    header = [
        "run",
        "OS procs",
        "processes/s",
        "ms/process",
        "in DB ms",
        "client CPU ms",
        "server CPU ms",
        "statements",
        "round trips",
        "w/o BEGIN/COMMIT/SAVEPOINT",
        "transactions",
        "savepoints",
    ]
    # Neither side starts its first round on near-empty tables: see SEED and the docstring.
    seed = Ours(ids)
    for _ in range(SEED):
        seed()
    seed.close()
    _viewflow.run(processes=SEED, warmup=0, parallel="1")
    written: dict[str, dict] = {}
    rounds: dict[tuple[str, int], list[list[object]]] = {}
    for _ in range(options.rounds):
        for workers in (1, PARALLEL):
            rounds.setdefault(("ours", workers), []).append(measured("ours", ids, workers, written))
        peer = _viewflow.run(processes=PROCESSES, warmup=WARMUP, parallel=f"1,{PARALLEL}")
        for workers in (1, PARALLEL):
            rounds.setdefault(("viewflow", workers), []).append(viewflow_row(peer, workers))
    check_all_approved(ids, SEED + (PROCESSES + WARMUP) * (1 + PARALLEL) * options.rounds)
    floor = [measured("floor", ids, workers, written) for workers in (1, PARALLEL)]
    check_all_approved(ids, SEED + (PROCESSES + WARMUP) * (1 + PARALLEL) * (options.rounds + 1))

    median = {key: median_round(rows) for key, rows in rounds.items()}
    rows = [header]
    for workers in (1, PARALLEL):
        rows += [median[("ours", workers)], median[("viewflow", workers)]]
    rows += floor
    print(
        f"{_django.database_description()}; load average {load:.1f} at start on "
        f"{os.cpu_count()} CPUs. One process = contract_create (auto-start) + "
        f"{len(STAGES)} approve decisions ({len(STAGES)} stages x 1 role approver); "
        f"{PROCESSES} processes per OS process after {WARMUP} warm-up; "
        f"{receivers_description()}. django-viewflow runs the same three-stage approval "
        f"(bench/peers/viewflow) on the same server, in the same {options.rounds} rounds."
    )
    print_table(f"Whole approval process, median of {options.rounds} rounds", rows)
    print(
        "ms/process: wall time per process in each OS process (viewflow: its p50); in DB ms: "
        "time waiting on execute/commit; client CPU ms: CPU time of the benchmark's Python "
        "process (the framework's own cost, least sensitive to other load on the machine); "
        "server CPU ms: CPU time of its PostgreSQL backend, read from /proc (- when the server "
        "is on another machine). "
        "Statements per process on the wire: BEGIN and COMMIT are counted (ours: BEGIN "
        "travels with a transaction's first statement, and its last writes with the COMMIT; "
        "the floor's psycopg sends both on their own), SAVEPOINT/RELEASE come from nested "
        "atomic blocks and signal receivers; round trips: waits for the server (ours sends its "
        "queued writes with the next statement)."
    )
    print()
    ratio_rows = [["OS procs", "ours/s", "viewflow/s", "ours / viewflow", "per round"]]
    for workers in (1, PARALLEL):
        ours, peer = median[("ours", workers)], median[("viewflow", workers)]
        per_round = [
            f"{float(mine[2]) / float(theirs[2]):.2f}"
            for mine, theirs in zip(
                rounds[("ours", workers)], rounds[("viewflow", workers)], strict=True
            )
        ]
        ratio_rows.append(
            [
                workers,
                ours[2],
                peer[2],
                f"{float(ours[2]) / float(peer[2]):.2f}x",
                ", ".join(per_round),
            ]
        )
    print_table("Ours / django-viewflow, measured in this run", ratio_rows)
    ours_one, peer_one = median[("ours", 1)], median[("viewflow", 1)]
    ratio = float(ours_one[2]) / float(peer_one[2])
    statements = max(int(part) for part in str(ours_one[STATEMENTS]).split("-"))
    fewer = statements < int(peer_one[STATEMENTS])
    verdict = "met" if ratio >= TARGET_RATIO and fewer else "MISSED"
    print(
        f"Target >= {TARGET_RATIO:.0f}x viewflow's processes/s on one OS process with fewer "
        f"statements than its {peer_one[STATEMENTS]}: {ratio:.2f}x with {ours_one[STATEMENTS]} "
        f"-> {verdict}."
    )
    print()
    tables = sorted(set(written["ours"]) | set(written["floor"]))
    print_table(
        "Rows inserted per process, by table (the floor writes only the workflow and audit rows)",
        [
            ["table", "ours", "floor"],
            *(
                [table, f"{written['ours'].get(table, 0):g}", f"{written['floor'].get(table, 0):g}"]
                for table in tables
                if written["ours"].get(table) or written["floor"].get(table)
            ),
        ],
    )
    if options.profile:
        profile(ids)


if __name__ == "__main__":
    main()
