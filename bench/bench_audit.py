"""Benchmark the audit listing (GET /api/audit-logs/) on a table of 1,000,000 rows.

Run from the repository root: ``python bench/bench_audit.py`` (or ``make bench``);
``--rows 20000`` for a quick run. It uses a benchmark database of its own (``clm_bench_audit``, see
``bench/_django.py``), re-created each run.

Data: 1,000,000 audit rows written server-side (``INSERT ... SELECT generate_series``) over 90
days, in time order as a live table grows (``seq`` follows), for 20 tenants of skewed size (the
largest holds about a fifth of the rows), 50 users each (a few heavy actors: integration accounts,
busy approvers; 10 % of rows have no actor), 25 actions of realistic frequency with their resource
types, and a few thousand resources per type and tenant. Rows about a contract, its workflow
instance, stages and approvals carry the contract (the one numbered like the resource), as
``audit.services`` records them; the others have none. The indexes are dropped for the load and
rebuilt from their own definitions (what the migrations created), then ANALYZE.

For each filter combination, on the largest tenant, the time per page of 50 rows:

* ours: the API's own path: ``audit.selectors.audit_log_list`` + ``AuditLogFilterSet`` +
  ``KeysetCursorPagination`` (``(created_at, seq) < cursor ORDER BY created_at DESC, seq DESC``);
  the deep page's cursor is the key of the row before it, exactly as the `next` link carries it;
* ours + OFFSET: the same queryset and indexes, paged with OFFSET (what page-number pagination
  would do), to separate what the index buys from what the cursor buys;
* baseline: the same filters and ORDER BY with LIMIT/OFFSET on ``audit_baseline``, a copy of the
  table with no index at all (``CREATE TABLE ... AS SELECT``).

"deep" is page 500 (rows 24,951-25,000), or the last page when the filter matches fewer rows.
Times are medians of several runs on a warm cache. Then the EXPLAIN (ANALYZE, BUFFERS) of our deep
page for two combinations: an action, and a contract's trail (``?contract=``).
"""

import argparse
import functools
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("BENCH_DATABASE_NAME", "clm_bench_audit")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _django
from _util import median_of, ms, print_table

ROWS = 1_000_000  # --rows
TENANTS = 20
USERS_PER_TENANT = 50
DAYS = 90
PAGE_SIZE = 50
DEEP_PAGE = 500
RESOURCES_PER_TYPE = 3000

# The resource types whose rows are about a contract (``AuditLog.contract`` is set).
ABOUT_A_CONTRACT = ("contract", "workflowinstance", "workflowstage", "workflowstageapproval")
# (action, resource type, relative frequency)
ACTIONS = [
    ("login", "user", 14),
    ("logout", "user", 4),
    ("login_failed", "user", 2),
    ("contract_created", "contract", 6),
    ("contract_updated", "contract", 9),
    ("workflow_started", "workflowinstance", 5),
    ("stage_started", "workflowstage", 12),
    ("stage_completed", "workflowstage", 11),
    ("approval_approved", "workflowstageapproval", 13),
    ("approval_rejected", "workflowstageapproval", 2),
    ("approval_delegated", "workflowstageapproval", 1),
    ("approval_skipped", "workflowstageapproval", 4),
    ("workflow_completed", "workflowinstance", 4),
    ("workflow_rejected", "workflowinstance", 1),
    ("workflow_cancelled", "workflowinstance", 1),
    ("sla_breached", "workflowstageapproval", 2),
    ("sla_escalated", "workflowstageapproval", 1),
    ("notification_failed", "notification", 1),
    ("user_created", "user", 1),
    ("user_registered", "user", 1),
    ("role_assigned", "userrole", 1),
    ("role_revoked", "userrole", 1),
    ("workflow_definition_created", "workflowdefinition", 1),
    ("workflow_definition_updated", "workflowdefinition", 1),
    ("workflow_definition_deleted", "workflowdefinition", 1),
]


def create_tenants_and_users() -> None:
    from tenancy.models import Tenant, User

    tenants = Tenant.objects.bulk_create(
        Tenant(name=f"Bench tenant {number:02d}", slug=f"bench-{number:02d}")
        for number in range(TENANTS)
    )
    User.objects.bulk_create(
        User(
            tenant=tenant,
            email=f"user{user_no:02d}@tenant{tenant_no:02d}.bench",
            full_name=f"User {user_no}",
            password="!",  # unusable
        )
        for tenant_no, tenant in enumerate(tenants)
        for user_no in range(USERS_PER_TENANT)
    )
    with _cursor() as cursor:
        cursor.execute(
            """
            CREATE TEMP TABLE bench_tenant AS
                SELECT row_number() OVER (ORDER BY slug) - 1 AS tenant_no, id FROM tenancy_tenant;
            CREATE TEMP TABLE bench_user AS
                SELECT t.tenant_no,
                       row_number() OVER (PARTITION BY u.tenant_id ORDER BY u.email) - 1 AS user_no,
                       u.id
                FROM tenancy_user u JOIN bench_tenant t ON t.id = u.tenant_id;
            CREATE TEMP TABLE bench_action (slot int, action text, resource_type text);
            """
        )
        slots = [(action, kind) for action, kind, weight in ACTIONS for _ in range(weight)]
        cursor.executemany(
            "INSERT INTO bench_action VALUES (%s, %s, %s)",
            [(number, action, kind) for number, (action, kind) in enumerate(slots)],
        )
        cursor.execute("ANALYZE bench_tenant; ANALYZE bench_user; ANALYZE bench_action")


@functools.cache
def _owner_session():
    return _django.maintenance_connection()


def _cursor():
    """A cursor of one owner session: the load drops and rebuilds the table's indexes (only the
    owner may), and its temporary tables must outlive each statement."""
    return _owner_session().cursor()


def load_rows(rows: int) -> dict[str, float]:
    """``rows`` rows in time order, indexes dropped meanwhile; seconds per phase."""
    phases = {}
    started = time.perf_counter()
    with _cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename = 'audit_auditlog' AND indexname <> 'audit_auditlog_pkey'"
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        # The primary key too: one sorted build instead of a million random-UUID inserts.
        cursor.execute("ALTER TABLE audit_auditlog DROP CONSTRAINT audit_auditlog_pkey")
        cursor.execute("SELECT count(*) FROM bench_action")
        (slots,) = cursor.fetchone()
        # Per row: a skewed tenant (random()^2: tenant 0 is the largest), a skewed actor
        # (random()^3: user 0 of each tenant is the heaviest; 10 % without actor), an action by
        # frequency, a resource among a few thousand per type, a time rising over 90 days.
        cursor.execute(
            """
            WITH ref AS (
                SELECT ARRAY(SELECT id FROM bench_tenant ORDER BY tenant_no) AS tenants,
                       ARRAY(SELECT id FROM bench_user ORDER BY tenant_no, user_no) AS users,
                       ARRAY(SELECT action FROM bench_action ORDER BY slot) AS actions,
                       ARRAY(SELECT resource_type FROM bench_action ORDER BY slot) AS kinds
            )
            INSERT INTO audit_auditlog
                (id, tenant_id, action, actor_id, resource_type, resource_id, contract_id,
                 changes, ip_address, user_agent, request_id, created_at)
            SELECT gen_random_uuid(),
                   ref.tenants[g.tenant_no + 1],
                   ref.actions[g.slot + 1],
                   ref.users[g.tenant_no * %(users)s + g.user_no + 1],
                   ref.kinds[g.slot + 1],
                   md5(g.tenant_no || ref.kinds[g.slot + 1] || g.resource_no)::uuid::text,
                   CASE WHEN ref.kinds[g.slot + 1] = ANY(%(about_a_contract)s)
                        THEN md5(g.tenant_no || 'contract' || g.resource_no)::uuid END,
                   jsonb_build_object('status', jsonb_build_array('pending', 'approved')),
                   ('10.' || (g.n %% 250) || '.' || (g.n %% 199) || '.1')::inet,
                   'Mozilla/5.0 (X11; Linux x86_64) bench/' || (g.n %% 7),
                   md5(g.n::text),
                   now() - make_interval(days => %(days)s)
                       + make_interval(secs => g.n * %(days)s * 86400.0 / %(rows)s)
            FROM ref, (
                SELECT n,
                       floor(%(tenants)s * random() ^ 2)::int AS tenant_no,
                       CASE WHEN random() < 0.1 THEN NULL
                            ELSE floor(%(users)s * random() ^ 3)::int END AS user_no,
                       floor(%(slots)s * random())::int AS slot,
                       floor(%(resources)s * random())::int AS resource_no
                FROM generate_series(1, %(rows)s) AS n
            ) AS g
            """,
            {
                "rows": rows,
                "days": DAYS,
                "about_a_contract": list(ABOUT_A_CONTRACT),
                "tenants": TENANTS,
                "users": USERS_PER_TENANT,
                "slots": slots,
                "resources": RESOURCES_PER_TYPE,
            },
        )
        phases["insert"] = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute("SET maintenance_work_mem = '256MB'")
        cursor.execute(
            "ALTER TABLE audit_auditlog ADD CONSTRAINT audit_auditlog_pkey PRIMARY KEY (id)"
        )
        for _, definition in indexes:
            cursor.execute(definition)
        phases["index"] = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute("ANALYZE audit_auditlog")
        cursor.execute("CREATE TABLE audit_baseline AS SELECT * FROM audit_auditlog")
        cursor.execute("ANALYZE audit_baseline")
        phases["analyze + baseline copy"] = time.perf_counter() - started
    return phases


def largest_tenant() -> tuple[object, int]:
    with _cursor() as cursor:
        cursor.execute(
            "SELECT tenant_id, count(*) FROM audit_auditlog GROUP BY tenant_id "
            "ORDER BY count(*) DESC LIMIT 1"
        )
        return cursor.fetchone()


def combinations(tenant_id) -> list[tuple[str, dict]]:
    """(label, API query parameters), values picked from the data for the largest tenant."""
    from django.db.models import Count

    from audit.models import AuditLog

    rows = AuditLog.objects.filter(tenant_id=tenant_id)

    def most_frequent(column: str, queryset) -> str:
        top = queryset.values(column).order_by().annotate(n=Count("id")).order_by("-n").first()
        return str(top[column])

    heaviest_actor = most_frequent("actor", rows.exclude(actor=None))
    busiest_contract = most_frequent("resource_id", rows.filter(resource_type="contract"))
    longest_trail = most_frequent("contract", rows.exclude(contract=None))
    newest = rows.order_by("-created_at").values_list("created_at", flat=True).first()
    month_ago = (newest - timedelta(days=30)).isoformat()
    week_ago = (newest - timedelta(days=7)).isoformat()
    return [
        ("tenant only", {}),
        ("tenant + action", {"action": "approval_approved"}),
        ("tenant + rare action", {"action": "role_revoked"}),
        ("tenant + 2 actions", {"action": "approval_rejected,workflow_rejected"}),
        ("tenant + actor", {"actor": heaviest_actor}),
        ("tenant + resource", {"resource_type": "contract", "resource_id": busiest_contract}),
        ("tenant + contract (trail)", {"contract": longest_trail}),
        ("tenant + rare resource_type", {"resource_type": "userrole"}),
        ("tenant + common resource_type", {"resource_type": "workflowstageapproval"}),
        ("tenant + last 30 days", {"date_from": month_ago}),
        ("tenant + action + 7 days", {"action": "login", "date_from": week_ago}),
    ]


class Api:
    """The listing exactly as the viewset runs it, minus HTTP: selector, filterset, paginator."""

    def __init__(self, tenant_id) -> None:
        from rest_framework.request import Request
        from rest_framework.test import APIRequestFactory

        from tenancy.models import Tenant, User

        self.tenant = Tenant.objects.get(pk=tenant_id)
        self.user = User.objects.filter(tenant=self.tenant).select_related("tenant").first()
        self.factory = APIRequestFactory()
        self.request_class = Request

    def request(self, params: dict):
        request = self.request_class(self.factory.get("/api/audit-logs/", params))
        request.user = self.user
        return request

    def queryset(self, request):
        from audit.filtersets import AuditLogFilterSet
        from audit.selectors import audit_log_list

        filterset = AuditLogFilterSet(
            data=request.query_params, queryset=audit_log_list(tenant=self.tenant), request=request
        )
        assert filterset.is_valid(), filterset.errors
        return filterset.qs

    def page(self, params: dict) -> list:
        from audit.api.pagination import KeysetCursorPagination

        request = self.request({**params, "page_size": PAGE_SIZE})
        return KeysetCursorPagination().paginate_queryset(self.queryset(request), request)

    def cursor_before_row(self, params: dict, row_number: int) -> str:
        """The `next` cursor whose page starts at ``row_number`` (0-based)."""
        from audit.api.pagination import KeysetCursorPagination, Position

        previous = self.queryset(self.request(params))[row_number - 1]
        return KeysetCursorPagination.encode_position(Position(previous.created_at, previous.seq))

    def offset_page(self, params: dict, offset: int) -> list:
        return list(self.queryset(self.request(params))[offset : offset + PAGE_SIZE])


def baseline_sql(tenant_id, params: dict, offset: int) -> tuple[str, list]:
    """The same filters on the unindexed copy, paged with OFFSET."""
    where, values = ["tenant_id = %s"], [tenant_id]
    if "action" in params:
        actions = params["action"].split(",")
        where.append(f"action IN ({', '.join(['%s'] * len(actions))})")
        values += actions
    for column in ("resource_type", "resource_id"):
        if column in params:
            where.append(f"{column} = %s")
            values.append(params[column])
    if "actor" in params:
        where.append("actor_id = %s")
        values.append(params["actor"])
    if "contract" in params:
        where.append("contract_id = %s")
        values.append(params["contract"])
    if "date_from" in params:
        where.append("created_at >= %s")
        values.append(params["date_from"])
    sql = (
        f"SELECT * FROM audit_baseline WHERE {' AND '.join(where)} "
        f"ORDER BY created_at DESC, seq DESC LIMIT {PAGE_SIZE} OFFSET {offset}"
    )
    return sql, values


def run_baseline(tenant_id, params: dict, offset: int) -> None:
    sql, values = baseline_sql(tenant_id, params, offset)
    with _cursor() as cursor:
        cursor.execute(sql, values)
        cursor.fetchall()


def deep_page_of(api: Api, params: dict) -> tuple[int, int, int, dict]:
    """(matching rows, deep page number, its offset, its parameters with the cursor)."""
    matching = api.queryset(api.request(params)).count()
    deep_page = max(1, min(DEEP_PAGE, -(-matching // PAGE_SIZE)))
    offset = (deep_page - 1) * PAGE_SIZE
    deep_params = dict(params)
    if offset:
        deep_params["cursor"] = api.cursor_before_row(params, offset)
    return matching, deep_page, offset, deep_params


def measure(api: Api, tenant_id, label: str, params: dict) -> list[object]:
    matching, deep_page, offset, deep_params = deep_page_of(api, params)

    first_page = api.page(params)
    deep = api.page(deep_params)
    # The cursor page and the OFFSET page are the same rows: the comparison is like for like.
    assert [row.pk for row in deep] == [row.pk for row in api.offset_page(params, offset)]
    assert len(first_page) == min(PAGE_SIZE, matching)

    ours_first = median_of(lambda: api.page(params), repeat=9, warmup=2)
    ours_deep = median_of(lambda: api.page(deep_params), repeat=9, warmup=2)
    offset_deep = median_of(lambda: api.offset_page(params, offset), repeat=5, warmup=1)
    base_first = median_of(lambda: run_baseline(tenant_id, params, 0), repeat=3, warmup=1)
    base_deep = median_of(lambda: run_baseline(tenant_id, params, offset), repeat=3, warmup=1)
    plan, db_ms = plan_summary(api, deep_params)
    return [
        label,
        f"{matching:,}",
        deep_page,
        ms(ours_first, fine=2),
        ms(ours_deep, fine=2),
        f"{plan} {db_ms:.2f}",
        ms(offset_deep, fine=2),
        ms(base_first, fine=2),
        ms(base_deep, fine=2),
        f"{base_deep / ours_deep:,.0f}x",
    ]


def page_statement(api: Api, params: dict) -> str:
    """The very statement the paginator sends for this page (captured, not rebuilt)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from core import rls

    with CaptureQueriesContext(connection) as queries:
        api.page(params)
    (statement,) = [query["sql"] for query in queries.captured_queries]
    # What was sent, so with the RLS scope in front (core.rls); EXPLAIN wants the query alone.
    return statement.removeprefix(f"{connection.scope_sql(rls.current_scope())}; ")


def plan_summary(api: Api, params: dict) -> tuple[str, float]:
    """The audit indexes the page's plan reads (`+sort` when it sorts), and the DB's time."""
    statement = page_statement(api, params)
    with _cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}")
        (document,) = cursor.fetchone()
    document = document[0] if isinstance(document, list) else document
    indexes, sorts = [], False

    def walk(node: dict) -> None:
        nonlocal sorts
        index = node.get("Index Name", "")
        if index.startswith("audit_"):
            indexes.append(index)
        elif node.get("Relation Name") == "audit_auditlog" and node["Node Type"] == "Seq Scan":
            indexes.append("SEQ SCAN")
        sorts = sorts or "Sort" in node["Node Type"]
        for child in node.get("Plans", []):
            walk(child)

    walk(document["Plan"])
    summary = ",".join(name.removeprefix("audit_").removesuffix("_idx") for name in indexes)
    return summary + (" +sort" if sorts else ""), document["Execution Time"]


def explain(api: Api, params: dict) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the statement the paginator sends for this page."""
    statement = page_statement(api, params)
    with _cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {statement}")
        plan = "\n".join(line for (line,) in cursor.fetchall())
    return f"{statement}\n\n{plan}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS, help=f"audit rows (default {ROWS:,})")
    options = parser.parse_args()
    started = time.perf_counter()
    _django.setup()
    create_tenants_and_users()
    phases = load_rows(options.rows)
    tenant_id, tenant_rows = largest_tenant()
    load = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in phases.items())
    print(
        f"{_django.database_description()}; {options.rows:,} audit rows over {TENANTS} tenants "
        f"({load}); "
        f"measured on the largest tenant ({tenant_rows:,} rows). Page = {PAGE_SIZE} rows; times "
        "in ms (median), through the API's selector, filterset and paginator (ORM included); "
        "'plan' is the deep page's plan, with the database's own execution time."
    )
    api = Api(tenant_id)
    rows = [
        [
            "filters",
            "matching",
            "deep page",
            "ours p1",
            "ours deep",
            "plan (deep page): index, DB ms",
            "ours+OFFSET deep",
            "baseline p1",
            "baseline deep",
            "deep speed-up",
        ]
    ]
    combos = combinations(tenant_id)
    for label, params in combos:
        rows.append(measure(api, tenant_id, label, params))
    print()
    print_table(
        "Audit listing, time per page: ours (indexes + keyset cursor, the API's queryset) vs "
        "the unindexed copy paged with OFFSET",
        rows,
    )
    for label, params in (combos[1], next(combo for combo in combos if "contract" in combo[1])):
        _, deep_page, _, deep_params = deep_page_of(api, params)
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) of our page {deep_page}, {label} {params}:")
        print(explain(api, deep_params))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
