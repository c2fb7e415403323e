"""Benchmark workflow analytics (GET /api/analytics/workflows/) against a naive Python aggregation.

Run from the repository root: ``python bench/bench_analytics.py`` (or ``make bench``);
``--instances N`` changes the data size (default 100,000 instances, 5 approvals each).

Data, generated server-side with ``INSERT ... SELECT generate_series`` (bench database, see
``bench/_django.py``): 4 tenants (the biggest holds 40 % of everything, the others 20 % each),
5 definitions per tenant (20 in all) of 5 stages each (Legal Review 48 h SLA, Finance Approval
24 h, Security Review 24 h, Procurement 24 h, Executive Sign-Off 48 h), 10 approvers per tenant.
Each instance has its 5 stage rows and exactly 5 approval rows (so 500,000 for 100,000):

* 70 % completed (each stage approved by one approver), 12 % rejected at a random stage (its
  remaining rows cancelled), 6 % cancelled at a random stage, 12 % active (a random stage
  pending); instances started over the past year (active ones within the last 30 days);
* hours to decision 0.2x..1.8x a per-stage base (Executive Sign-Off slowest, then Legal);
  decisions after the due time were breached (80 % recorded), as were overdue pending rows.

Measured for the biggest tenant, all time and for the last 90 days:

* **ours**: ``approvals.analytics.workflow_analytics()``: SQL aggregates, three queries;
* **naive**: the same figures computed in Python from the rows (instances, and approvals joined
  to their stage, decider and breach, fetched with ``values_list``: the cheapest way to get rows
  into Python), checked to agree with ours.

Times are the median of several runs after a warm-up (the data is in the buffer cache); queries
are the statements Django sends, counted by ``measured`` of ``bench/_util.py`` (BEGIN/COMMIT not
counted, as Django's ``connection.queries`` lists them).
"""

import argparse
import os
import statistics
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

import _django
from _util import measured, percentile_cont, print_table, stopwatch

TENANTS = 4
TENANT_SHARE = (4, 2, 2, 2)  # tenth parts of the instances: tenant 0 is the biggest
DEFINITIONS_PER_TENANT = 5
APPROVERS_PER_TENANT = 10
DEFAULT_INSTANCES = 100_000
APPROVALS_PER_INSTANCE = 5
STAGES = (  # name, SLA hours, base hours to decision
    ("Legal Review", 48, 30),
    ("Finance Approval", 24, 12),
    ("Security Review", 24, 16),
    ("Procurement", 24, 8),
    ("Executive Sign-Off", 48, 40),
)
REPEAT = 5
STATUSES = ("active", "completed", "rejected", "cancelled")


# --- data ------------------------------------------------------------------------------------


def create_parents() -> list[dict]:
    """Tenants, their users and definitions (through the services); returns ids per tenant."""
    from tenancy.models import Tenant, User
    from tenancy.roles import role_create
    from workflows.services import definition_create

    tenants = []
    for number in range(TENANTS):
        tenant = Tenant.objects.create(
            name=f"Bench analytics {number}", slug=f"bench-analytics-{number}"
        )

        def user(name: str, tenant=tenant, **fields):
            return User.objects.create_user(
                f"{name}@{tenant.slug}.example",
                password=None,
                tenant=tenant,
                full_name=name.replace("-", " ").title(),
                **fields,
            )

        admin = user("admin", is_tenant_admin=True)
        requester = user("requester")
        approvers = [user(f"approver-{index}") for index in range(APPROVERS_PER_TENANT)]
        for sequence in range(1, len(STAGES) + 1):  # a stage may name only a catalog role
            slug = f"role-{sequence}"
            role_create(tenant=tenant, slug=slug, name=slug, description="", created_by=admin)
        definitions = []
        for index in range(DEFINITIONS_PER_TENANT):
            definition = definition_create(
                tenant=tenant,
                created_by=admin,
                name=f"Bench workflow {index}",
                trigger_conditions={"contract_type": f"BENCH{index}"},
                stages=[
                    {
                        "stage_name": name,
                        "sequence": sequence,
                        "approvers": [f"role-{sequence}"],
                        "sla_hours": sla,
                    }
                    for sequence, (name, sla, _) in enumerate(STAGES, start=1)
                ],
            )
            version = definition.versions.get(version=definition.version)
            definitions.append((definition.pk, version.pk))
        tenants.append(
            {
                "tenant": tenant.pk,
                "requester": requester.pk,
                "approvers": [approver.pk for approver in approvers],
                "definitions": definitions,
            }
        )
    return tenants


def _values(rows: list[tuple], columns: str, params) -> str:
    cells = ", ".join(
        "(" + ", ".join(params.add(v, t) if t else str(v) for v, t in row) + ")" for row in rows
    )
    return f"(VALUES {cells}) AS {columns}"


def generate(tenants: list[dict], instances: int) -> None:
    """Contracts, instances, stages, approvals and breaches by INSERT ... SELECT generate_series.

    Two temporary tables hold the plan (per instance: tenant, definition, outcome, the stage it
    got to, start; per stage: start, due and decision times), the real rows are made from them.
    """
    from django.db import connection

    from approvals.models import (
        SLABreach,
        WorkflowInstance,
        WorkflowStage,
        WorkflowStageApproval,
    )
    from contracts.models import Contract
    from core.sql import Params, insert_select

    params = Params()
    tenant_rows, definition_rows, approver_rows = [], [], []
    for k, ids in enumerate(tenants):
        tenant_rows.append(((k, None), (ids["tenant"], "uuid"), (ids["requester"], "uuid")))
        for d, (definition, version) in enumerate(ids["definitions"]):
            definition_rows.append(((k, None), (d, None), (definition, "uuid"), (version, "uuid")))
        for j, approver in enumerate(ids["approvers"]):
            approver_rows.append(((k, None), (j, None), (approver, "uuid")))
    share_case = (
        "CASE "
        + " ".join(f"WHEN i %% 10 < {sum(TENANT_SHARE[: k + 1])} THEN {k}" for k in range(TENANTS))
        + " END"
    )
    stage_values = ", ".join(
        f"({s}, '{name}', {sla}, {base})" for s, (name, sla, base) in enumerate(STAGES, start=1)
    )

    def h(expression: str, salt: str) -> str:
        """A deterministic pseudo-random non-negative int of ``expression``."""
        return f"(hashtext(({expression})::text || '{salt}') & 2147483647)"

    # Finished instances start 373 to 8 days ago (the slowest takes under 8 days); an active
    # one reached its current stage up to 10 days ago (its start is worked out backwards).
    plan = f"""
        CREATE TEMP TABLE bench_plan AS
        SELECT i, k, d, outcome,
            CASE WHEN outcome = 'completed' THEN 5 ELSE r END AS reached,
            now() - interval '373 days'
                + ({h("i", "t")} %% 525600) * interval '1 minute' AS started
        FROM (
            SELECT i, {share_case} AS k, {h("i", "d")} %% {DEFINITIONS_PER_TENANT} AS d,
                CASE WHEN {h("i", "o")} %% 100 < 70 THEN 'completed'
                     WHEN {h("i", "o")} %% 100 < 82 THEN 'rejected'
                     WHEN {h("i", "o")} %% 100 < 88 THEN 'cancelled'
                     ELSE 'active' END AS outcome,
                1 + {h("i", "r")} %% 5 AS r
            FROM generate_series(0, {instances - 1}) AS i
        ) AS base;
        CREATE TEMP TABLE bench_stage_plan AS
        SELECT p.i, st.s, st.name, st.sla, st.hours,
            coalesce(sum(st.hours) OVER w, 0) AS offset_hours
        FROM bench_plan p
        CROSS JOIN LATERAL (
            SELECT s, name, sla,
                base * (0.2 + ({h("p.i * 8 + s", "h")} %% 1000) / 625.0) AS hours
            FROM (VALUES {stage_values}) AS v (s, name, sla, base)
        ) AS st
        WINDOW w AS (PARTITION BY p.i ORDER BY st.s ROWS BETWEEN UNBOUNDED PRECEDING
                     AND 1 PRECEDING);
        CREATE UNIQUE INDEX ON bench_stage_plan (i, s);
        CREATE UNIQUE INDEX ON bench_plan (i);
        UPDATE bench_plan p SET started = now()
            - ({h("p.i", "w")} %% 14400) * interval '1 minute'
            - sp.offset_hours * interval '1 hour'
        FROM bench_stage_plan sp
        WHERE p.outcome = 'active' AND sp.i = p.i AND sp.s = p.reached;
        ALTER TABLE bench_stage_plan ADD COLUMN started_at timestamptz,
            ADD COLUMN due_at timestamptz, ADD COLUMN decided_at timestamptz;
        UPDATE bench_stage_plan sp
            SET started_at = p.started + sp.offset_hours * interval '1 hour'
            FROM bench_plan p WHERE p.i = sp.i;
        UPDATE bench_stage_plan SET due_at = started_at + sla * interval '1 hour',
            decided_at = started_at + hours * interval '1 hour';
        ANALYZE bench_plan; ANALYZE bench_stage_plan;
    """

    def uuid_of(kind: str, number: str) -> str:
        return f"md5('{kind}' || ({number}))::uuid"

    tenants_sql = _values(tenant_rows, "t (k, tenant_id, requester_id)", params)
    definitions_sql = _values(definition_rows, "df (k, d, definition_id, version_id)", params)
    approvers_sql = _values(approver_rows, "ap (k, j, user_id)", params)
    instance_source = (
        f"bench_plan p JOIN {tenants_sql} ON t.k = p.k"
        f" JOIN {definitions_sql} ON df.k = p.k AND df.d = p.d"
        " JOIN bench_stage_plan last ON last.i = p.i AND last.s = p.reached"
    )
    contract_status = (
        "CASE p.outcome WHEN 'completed' THEN 'approved' WHEN 'active' THEN 'in_review'"
        " ELSE p.outcome END"
    )
    # Cancelled instances end halfway into the stage they got to.
    finished_at = (
        "CASE p.outcome WHEN 'active' THEN NULL"
        " WHEN 'cancelled' THEN last.started_at + last.hours * interval '30 minutes'"
        " ELSE last.decided_at END"
    )
    stage_status = (
        "CASE WHEN sp.s < p.reached THEN 'approved'"
        " WHEN sp.s > p.reached THEN CASE WHEN p.outcome = 'active' THEN 'waiting'"
        " ELSE 'cancelled' END"
        " WHEN p.outcome = 'completed' THEN 'approved' WHEN p.outcome = 'active' THEN 'pending'"
        " ELSE p.outcome END"
    )
    # Approval slot n (0-4) of instance i is at stage least(n + 1, reached): one row per stage
    # before the one it got to, the rest at that stage (its approvers).
    approval_status = (
        "CASE WHEN sp.s < p.reached OR p.outcome = 'completed' THEN 'approved'"
        " WHEN p.outcome = 'rejected' THEN CASE WHEN n = sp.s - 1 THEN 'rejected'"
        " ELSE 'cancelled' END"
        " WHEN p.outcome = 'cancelled' THEN 'cancelled' ELSE 'pending' END"
    )
    decided = f"({approval_status}) IN ('approved', 'rejected')"
    approval_source = (
        f"bench_plan p CROSS JOIN generate_series(0, {APPROVALS_PER_INSTANCE - 1}) AS n"
        " JOIN bench_stage_plan sp ON sp.i = p.i AND sp.s = least(n + 1, p.reached)"
        f" JOIN {tenants_sql} ON t.k = p.k"
        f" JOIN {approvers_sql} ON ap.k = p.k AND ap.j = {h('p.i * 8 + n', 'a')} %% 10"
    )
    statements = [
        insert_select(
            Contract,
            {
                "id": uuid_of("contract", "p.i"),
                "tenant_id": "t.tenant_id",
                "title": "'Bench contract ' || p.i",
                "contract_type": "'BENCH' || p.d",
                "created_by_id": "t.requester_id",
                "status": contract_status,
            },
            instance_source,
            params,
        ),
        insert_select(
            WorkflowInstance,
            {
                "id": uuid_of("instance", "p.i"),
                "tenant_id": "t.tenant_id",
                "contract_id": uuid_of("contract", "p.i"),
                "definition_id": "df.definition_id",
                "definition_version_id": "df.version_id",
                "status": "p.outcome",
                "current_sequence": "CASE WHEN p.outcome = 'active' THEN p.reached END",
                "started_by_id": "t.requester_id",
                "started_at": "p.started",
                "completed_at": finished_at,
            },
            instance_source,
            params,
        ),
        insert_select(
            WorkflowStage,
            {
                "id": uuid_of("stage", "sp.i * 8 + sp.s"),
                "tenant_id": "t.tenant_id",
                "instance_id": uuid_of("instance", "p.i"),
                "sequence": "sp.s",
                "stage_name": "sp.name",
                "approval_type": "'all'",
                "approvers": "ARRAY['role-' || sp.s]::varchar[]",
                "sla_hours": "sp.sla",
                "status": stage_status,
                "started_at": "CASE WHEN sp.s <= p.reached THEN sp.started_at END",
                "completed_at": (
                    f"CASE WHEN ({stage_status}) IN ('approved', 'rejected') THEN sp.decided_at"
                    " WHEN p.outcome = 'cancelled' THEN last.started_at"
                    " + last.hours * interval '30 minutes' END"
                ),
                "due_at": "CASE WHEN sp.s <= p.reached THEN sp.due_at END",
            },
            f"bench_stage_plan sp JOIN bench_plan p ON p.i = sp.i JOIN {tenants_sql}"
            " ON t.k = p.k JOIN bench_stage_plan last ON last.i = p.i AND last.s = p.reached",
            params,
        ),
        insert_select(
            WorkflowStageApproval,
            {
                "id": uuid_of("approval", "p.i * 8 + n"),
                "tenant_id": "t.tenant_id",
                "stage_id": uuid_of("stage", "sp.i * 8 + sp.s"),
                "instance_id": uuid_of("instance", "p.i"),
                "contract_id": uuid_of("contract", "p.i"),
                "approver": "'role-' || sp.s",
                "role": "'role-' || sp.s",
                "status": approval_status,
                "due_at": "sp.due_at",
                "decided_by_id": f"CASE WHEN {decided} THEN ap.user_id END",
                "decided_at": f"CASE WHEN {decided} THEN sp.decided_at END",
                "overdue_at": (
                    f"CASE WHEN ({decided} AND sp.decided_at > sp.due_at"
                    f" AND {h('p.i * 8 + n', 'b')} %% 5 <> 0)"
                    f" OR (({approval_status}) = 'pending' AND sp.due_at < now())"
                    " THEN sp.due_at + interval '10 minutes' END"
                ),
                "created_at": "sp.started_at",
            },
            approval_source,
            params,
        ),
    ]
    breaches = insert_select(
        SLABreach,
        {
            "tenant_id": "a.tenant_id",
            "approval_id": "a.id",
            "contract_id": "a.contract_id",
            "stage_name": "s.stage_name",
            "due_at": "a.due_at",
            "breached_at": "a.overdue_at",
        },
        "approvals_workflowstageapproval a JOIN approvals_workflowstage s ON s.id = a.stage_id"
        " WHERE a.overdue_at IS NOT NULL",
        params,
    )
    with connection.cursor() as cursor:
        # ("%%" is the modulo operator where the SQL goes through psycopg's parameter
        # formatting; the plan takes no parameters, so it is sent as written.)
        cursor.execute(plan.replace("%%", "%"))
        for sql in statements:
            cursor.execute(sql, params)
        cursor.execute(breaches, params)
        cursor.execute("DROP TABLE bench_plan, bench_stage_plan")
    with _django.maintenance_cursor() as cursor:  # VACUUM: the tables' owner only
        for table in (
            "tenancy_user",  # too few rows for autovacuum ever to analyze them
            "contracts_contract",
            "approvals_workflowinstance",
            "approvals_workflowstage",
            "approvals_workflowstageapproval",
            "approvals_slabreach",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")


# --- the naive aggregation -------------------------------------------------------------------


def _hours(delta) -> float:
    return delta.total_seconds() / 3600


def _instance_rows(instances, objects: bool):
    """(definition id, name, status, started_at, completed_at) per instance."""
    if not objects:
        yield from instances.values_list(
            "definition_id", "definition__name", "status", "started_at", "completed_at"
        ).iterator(chunk_size=10_000)
        return
    for instance in instances.select_related("definition").iterator(chunk_size=2_000):
        yield (
            instance.definition_id,
            instance.definition.name,
            instance.status,
            instance.started_at,
            instance.completed_at,
        )


def _approval_rows(approvals, objects: bool):
    """(stage name, status, decided_at, stage started_at, due_at, created_at, decider id, email,
    full name, breach id) per approval."""
    if not objects:
        yield from approvals.values_list(
            "stage__stage_name",
            "status",
            "decided_at",
            "stage__started_at",
            "due_at",
            "created_at",
            "decided_by_id",
            "decided_by__email",
            "decided_by__full_name",
            "sla_breach__id",
        ).iterator(chunk_size=10_000)
        return
    from approvals.models import SLABreach

    related = approvals.select_related("stage", "decided_by", "sla_breach")
    for approval in related.iterator(chunk_size=2_000):
        try:
            breach_id = approval.sla_breach.pk
        except SLABreach.DoesNotExist:
            breach_id = None
        user = approval.decided_by
        yield (
            approval.stage.stage_name,
            approval.status,
            approval.decided_at,
            approval.stage.started_at,
            approval.due_at,
            approval.created_at,
            approval.decided_by_id,
            user.email if user else None,
            user.full_name if user else None,
            breach_id,
        )


def naive_analytics(*, tenant_id, date_from=None, date_to=None, objects=False) -> dict:
    """The figures of ``workflow_analytics``, from the rows, in Python: fetched as tuples
    (``values_list``), or as model instances with ``select_related`` (``objects``)."""
    from approvals.analytics import _hours as rounded_hours
    from approvals.analytics import _rate, analytics_period
    from approvals.models import WorkflowInstance, WorkflowStageApproval

    period = analytics_period(date_from, date_to)
    instances = WorkflowInstance.objects.filter(tenant_id=tenant_id)
    approvals = WorkflowStageApproval.objects.filter(tenant_id=tenant_id)
    if period.start is not None:
        instances = instances.filter(started_at__gte=period.start)
        approvals = approvals.filter(instance__started_at__gte=period.start)
    if period.end is not None:
        instances = instances.filter(started_at__lt=period.end)
        approvals = approvals.filter(instance__started_at__lt=period.end)

    workflows: dict = {}
    for definition_id, name, status, started_at, completed_at in _instance_rows(instances, objects):
        row = workflows.setdefault(
            definition_id, {"name": name, "cycles": [], **dict.fromkeys(STATUSES, 0)}
        )
        row[status] += 1
        if status != "active":
            row["cycles"].append(_hours(completed_at - started_at))

    stages: dict = defaultdict(lambda: {"waits": [], "with_due": 0, "on_time": 0, "breaches": 0})
    approvers: dict = {}
    for (
        stage_name,
        status,
        decided_at,
        stage_started_at,
        due_at,
        created_at,
        user_id,
        email,
        full_name,
        breach_id,
    ) in _approval_rows(approvals, objects):
        stage = stages[stage_name]
        stage["breaches"] += breach_id is not None
        if status not in ("approved", "rejected"):
            continue
        stage["waits"].append(_hours(decided_at - stage_started_at))
        if due_at is not None:
            stage["with_due"] += 1
            stage["on_time"] += decided_at <= due_at
        if user_id is not None:
            person = approvers.setdefault(
                user_id, {"user": {"id": user_id, "email": email, "full_name": full_name}, "w": []}
            )
            person["w"].append(_hours(decided_at - created_at))

    def mean(values):
        return statistics.fmean(values) if values else None

    workflow_rows = [
        {
            "definition": {"id": definition_id, "name": row["name"]},
            "started": sum(row[key] for key in STATUSES),
            "active": row["active"],
            "completed": row["completed"],
            "rejected": row["rejected"],
            "cancelled": row["cancelled"],
            "completion_rate": _rate(row["completed"], len(row["cycles"])),
            "avg_cycle_hours": rounded_hours(mean(row["cycles"])),
        }
        for definition_id, row in workflows.items()
    ]
    workflow_rows.sort(key=lambda r: (-r["started"], r["definition"]["name"]))
    stage_rows = [
        {
            "stage_name": name,
            "decided": len(row["waits"]),
            "avg_hours_to_decision": rounded_hours(mean(row["waits"])),
            "p90_hours_to_decision": rounded_hours(percentile_cont(row["waits"], 0.9)),
            "sla_compliance_rate": _rate(row["on_time"], row["with_due"]),
            "breaches": row["breaches"],
        }
        for name, row in stages.items()
        if row["waits"] or row["breaches"]
    ]
    stage_rows.sort(key=lambda r: (-(r["avg_hours_to_decision"] or -1), r["stage_name"]))
    approver_rows = [
        {
            "user": person["user"],
            "decided": len(person["w"]),
            "avg_hours_to_decision": rounded_hours(mean(person["w"])),
        }
        for person in approvers.values()
    ]
    approver_rows.sort(key=lambda r: (-r["avg_hours_to_decision"], r["user"]["email"]))
    return {
        "period": {"start": period.start, "end": period.end},
        "workflows": workflow_rows,
        "stages": stage_rows,
        "approvers": approver_rows,
    }


def assert_agree(ours: dict, naive: dict) -> None:
    """Same rows in the same order; numbers equal up to the last rounded digit (the two sum in
    different orders and may round a borderline value apart). Approvers are ordered by their
    average, so two whose averages tie within that rounding may come in either order: they are
    compared by user, and each side's own order is checked to be by descending average."""
    for rows in (ours["approvers"], naive["approvers"]):
        averages = [row["avg_hours_to_decision"] for row in rows]
        assert all(a >= b - 0.0101 for a, b in itertools.pairwise(averages)), averages
    ours = {**ours, "approvers": sorted(ours["approvers"], key=lambda row: str(row["user"]["id"]))}
    naive = {
        **naive,
        "approvers": sorted(naive["approvers"], key=lambda row: str(row["user"]["id"])),
    }

    def close(a, b, path):
        if isinstance(a, dict):
            assert a.keys() == b.keys(), path
            for key in a:
                close(a[key], b[key], f"{path}.{key}")
        elif isinstance(a, list):
            assert len(a) == len(b), (path, len(a), len(b))
            for index, (x, y) in enumerate(zip(a, b, strict=True)):
                close(x, y, f"{path}[{index}]")
        elif isinstance(a, float) or isinstance(b, float):
            assert a is not None, path
            assert b is not None, path
            assert abs(a - b) <= 0.0101, (path, a, b)
        else:
            assert a == b, (path, a, b)

    close(ours, naive, "")


# --- measuring -------------------------------------------------------------------------------


def in_scope(fn, *, tenant_id, **kwargs):
    """``fn`` as the API's request runs it: in the tenant's row-level security scope."""
    from core import rls

    with rls.tenant_scope(tenant_id):
        return fn(tenant_id=tenant_id, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=DEFAULT_INSTANCES)
    options = parser.parse_args()
    load = os.getloadavg()[0]
    _django.setup()

    from django.utils import timezone

    from approvals.analytics import analytics_period, workflow_analytics
    from approvals.models import SLABreach, WorkflowInstance, WorkflowStageApproval

    with stopwatch() as generation:
        tenants = create_parents()
        generate(tenants, options.instances)

    biggest = tenants[0]["tenant"]
    total_instances = WorkflowInstance.objects.count()
    total_approvals = WorkflowStageApproval.objects.count()
    own_instances = WorkflowInstance.objects.filter(tenant_id=biggest).count()
    own_approvals = WorkflowStageApproval.objects.filter(tenant_id=biggest).count()
    print(
        f"{_django.database_description()}; load average {load:.1f} at start on "
        f"{os.cpu_count()} CPUs. {total_instances:,} instances, {total_approvals:,} approvals, "
        f"{SLABreach.objects.count():,} breaches of {TENANTS} tenants, "
        f"{TENANTS * DEFINITIONS_PER_TENANT} definitions "
        f"(generated in {generation.seconds:.0f} s); "
        f"the biggest tenant: {own_instances:,} instances, {own_approvals:,} approvals."
    )

    today = timezone.now().date()
    periods = [  # label, date_from, date_to (inclusive)
        ("all time", None, None),
        ("last 90 days", today - timedelta(days=90), None),
        ("30 days, 4 months ago", today - timedelta(days=120), today - timedelta(days=91)),
    ]
    runs = [  # label, function of (tenant_id, date_from), timed calls
        ("ours: SQL aggregates", workflow_analytics, REPEAT),
        ("naive: rows as tuples (values_list)", naive_analytics, REPEAT),
        ("naive: rows as model objects", partial(naive_analytics, objects=True), 1),
    ]
    header = ["period", "run", "instances", "approvals", "rows to Python", "median s", "queries"]
    rows = [[*header, "vs ours"]]
    for label, date_from, date_to in periods:
        period = analytics_period(date_from, date_to)
        start = period.start or datetime.min.replace(tzinfo=UTC)
        end = period.end or datetime.max.replace(tzinfo=UTC)
        counted = (
            WorkflowInstance.objects.filter(
                tenant_id=biggest, started_at__gte=start, started_at__lt=end
            ).count(),
            WorkflowStageApproval.objects.filter(
                tenant_id=biggest, instance__started_at__gte=start, instance__started_at__lt=end
            ).count(),
        )
        counts = [f"{count:,}" for count in counted]
        ours_s = None
        for run, fn, repeat in runs:
            took, _, queries, figures = measured(
                lambda fn=fn, date_from=date_from, date_to=date_to: in_scope(
                    fn, tenant_id=biggest, date_from=date_from, date_to=date_to
                ),
                repeat=repeat,
                warmup=1 if repeat > 1 else 0,
            )
            if ours_s is None:
                ours_s, ours = took, figures
                assert ours["workflows"], "no data in the period"
                fetched = sum(len(ours[key]) for key in ("workflows", "stages", "approvers"))
                ratio = ""
            else:
                assert_agree(ours, figures)
                fetched = sum(counted)
                ratio = f"{took / ours_s:.1f}x"
            rows.append([label, run, *counts, f"{fetched:,}", f"{took:.3f}", queries, ratio])
    print_table("Workflow analytics of the biggest tenant (figures agree)", rows)
    bottleneck = workflow_analytics(tenant_id=biggest)["stages"][0]
    print(
        f"Bottleneck (all time): {bottleneck['stage_name']}, "
        f"avg {bottleneck['avg_hours_to_decision']} h, "
        f"p90 {bottleneck['p90_hours_to_decision']} h, "
        f"SLA compliance {bottleneck['sla_compliance_rate']:.1%}, "
        f"{bottleneck['breaches']:,} breaches."
    )


if __name__ == "__main__":
    main()
