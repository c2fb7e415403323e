"""Time django-viewflow driving one contract through Start -> Legal -> Finance -> CEO -> End.

Each step is what viewflow's own views do on POST, minus HTTP, forms and templates:
  start:   ContractApprovalFlow.start.run(...)  (StartHandle: create Contract, process, first task)
  assign:  lock + transaction, load task, can_assign(user), activation.assign(user)
           (flow.utils.wrap_task_view + AssignTaskView.form_valid)
  approve: lock + transaction, load task, can_execute(user), activation.start(),
           process.save(), activation.execute()
           (flow.utils.wrap_view + UpdateProcessView.form_valid)
Before assign, the pending task of that node is looked up by process (what a client's task
list gives it). Users are loaded once; Django caches their permissions on the instance.

  python bench.py setup        migrate, create groups legal/finance/ceo and one user each
  python bench.py run [-n 200] [-w 20] [-p 1,2] [-r 3] [--json FILE] [--show-sql]
BENCH_LOCK=none swaps viewflow's PostgreSQL lock (select_for_update_lock) for its default no_lock.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from decimal import Decimal
from importlib.metadata import version

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproj.settings")

import django

django.setup()

from contracts.flows import ContractApprovalFlow as Flow  # noqa: E402
from django.contrib.auth.models import Group, Permission, User  # noqa: E402
from django.core.exceptions import PermissionDenied  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from viewflow.workflow import lock  # noqa: E402
from viewflow.workflow.models import Process, Task  # noqa: E402
from viewflow.workflow.status import PROCESS, STATUS  # noqa: E402

if os.environ.get("BENCH_LOCK") == "none":  # viewflow's default lock_impl, for comparison only
    Flow.lock_impl = lock.no_lock

ROLES = {"legal": "approve_legal", "finance": "approve_finance", "ceo": "approve_ceo"}
STAGES = [
    (Flow.legal_approval, "legal"),
    (Flow.finance_approval, "finance"),
    (Flow.ceo_approval, "ceo"),
]
CONTRACT_TYPES = ["MSA", "SOW", "NDA"]


def setup():
    call_command("migrate", verbosity=0)
    for group_name, codename in ROLES.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(
            Permission.objects.get(content_type__app_label="contracts", codename=codename)
        )
        user, created = User.objects.get_or_create(username=f"{group_name}_approver")
        if created:
            user.set_unusable_password()
            user.save()
        user.groups.add(group)


def load_users():
    return {name: User.objects.get(username=f"{name}_approver") for name in ROLES}


def _load_task(node, task_pk):
    task = Task.objects.get(pk=task_pk)
    if task.process.flow_class is not Flow:
        raise PermissionDenied("task of another flow")
    return task, node.activation_class(task)


def assign(node, process_pk, task_pk, user):
    with Flow.lock(process_pk), transaction.atomic():
        task, activation = _load_task(node, task_pk)
        if not node.can_assign(user, task):
            raise PermissionDenied(f"{user} may not take {node.name}")
        activation.assign(user)


def approve(node, process_pk, task_pk, user):
    with Flow.lock(process_pk), transaction.atomic():
        task, activation = _load_task(node, task_pk)
        if not node.can_execute(user, task):
            raise PermissionDenied(f"{user} may not execute {node.name}")
        activation.start(None)  # the request argument is unused by ViewActivation.start
        activation.process.data[node.name] = "approved"
        activation.process.save()
        activation.execute()


def start(seq):
    # As flow.utils.wrap_start_view does on POST: contract and process together.
    with transaction.atomic():
        return Flow.start.run(
            title=f"Contract {seq}",
            contract_type=CONTRACT_TYPES[seq % 3],
            value=Decimal(100_000 + seq),
        )


def run_one_process(seq, users):
    process = start(seq)
    for node, role in STAGES:
        task_pk = (
            Task.objects.filter(process_id=process.pk, flow_task=node, status=STATUS.NEW)
            .values_list("pk", flat=True)
            .get()
        )
        assign(node, process.pk, task_pk, users[role])
        approve(node, process.pk, task_pk, users[role])
    return process.pk


def check_group_gating(users):
    """A member of another group may neither take nor execute the legal task."""
    process = start(20_000_000)
    node = Flow.legal_approval
    task_pk = Task.objects.get(process_id=process.pk, flow_task=node).pk
    for action in (assign, approve):
        try:
            action(node, process.pk, task_pk, users["finance"])
        except PermissionDenied:
            continue
        raise AssertionError(f"finance user could {action.__name__} the legal task")
    assign(node, process.pk, task_pk, users["legal"])
    approve(node, process.pk, task_pk, users["legal"])
    for node, role in STAGES[1:]:
        task_pk = Task.objects.get(process_id=process.pk, flow_task=node).pk
        assign(node, process.pk, task_pk, users[role])
        approve(node, process.pk, task_pk, users[role])


TX_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def count_queries(users, samples=5):
    """Statements per full process (start + 3 x (lookup, assign, approve)), as Django counts them
    (CaptureQueriesContext, like assertNumQueries, includes BEGIN/COMMIT/SAVEPOINT since 4.2).
    check_group_gating() has already warmed the per-user permission and content-type caches."""
    counts = []
    for i in range(samples):
        with CaptureQueriesContext(connection) as ctx:
            run_one_process(10_000_000 + i, users)
        sql = [q["sql"] for q in ctx.captured_queries]
        tx = sum(1 for q in sql if q.startswith(TX_CONTROL))
        counts.append({"all": len(sql), "data": len(sql) - tx, "tx_control": tx})
    return counts, sql


def worker(worker_id, n, warmup, barrier, out):
    from django.db import connections

    connections.close_all()
    users = load_users()
    for i in range(warmup):
        run_one_process(worker_id * 1_000_000 + i, users)
    if barrier is not None:
        barrier.wait()
    latencies = []
    t0 = time.perf_counter()
    for i in range(n):
        s = time.perf_counter()
        run_one_process(worker_id * 1_000_000 + warmup + i, users)
        latencies.append(time.perf_counter() - s)
    t1 = time.perf_counter()
    out.put({"worker": worker_id, "t0": t0, "t1": t1, "latencies": latencies})


def measure(parallel, n, warmup, repeat):
    """Run the configuration `repeat` times (fresh workers each time) and keep the median run."""
    runs = sorted(
        (measure_once(parallel, n, warmup) for _ in range(repeat)),
        key=lambda r: r["processes_per_s"],
    )
    median = dict(runs[len(runs) // 2])
    median["all_processes_per_s"] = [r["processes_per_s"] for r in runs]
    return median


def measure_once(parallel, n, warmup):
    import multiprocessing as mp

    if parallel == 1:
        import queue

        out = queue.Queue()
        worker(0, n, warmup, None, out)
        results = [out.get()]
    else:
        ctx = mp.get_context("spawn")
        barrier, out = ctx.Barrier(parallel), ctx.Queue()
        procs = [
            ctx.Process(target=worker, args=(w + 1, n, warmup, barrier, out))
            for w in range(parallel)
        ]
        for p in procs:
            p.start()
        results = [out.get() for _ in procs]
        for p in procs:
            p.join()
            if p.exitcode:
                raise SystemExit(f"worker exited with {p.exitcode}")
    wall = max(r["t1"] for r in results) - min(r["t0"] for r in results)
    lat = sorted(x for r in results for x in r["latencies"])
    return {
        "parallel": parallel,
        "processes": n * parallel,
        "wall_s": round(wall, 3),
        "processes_per_s": round(n * parallel / wall, 1),
        "latency_ms_p50": round(1000 * statistics.median(lat), 2),
        "latency_ms_p95": round(1000 * lat[int(0.95 * (len(lat) - 1))], 2),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["setup", "run"])
    parser.add_argument("-n", type=int, default=200, help="timed processes per worker")
    parser.add_argument(
        "-w", "--warmup", type=int, default=20, help="untimed processes per worker first"
    )
    parser.add_argument("-p", "--parallel", default="1,2", help="comma-separated worker counts")
    parser.add_argument(
        "-r", "--repeat", type=int, default=3, help="runs per configuration; the median is kept"
    )
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--show-sql", action="store_true")
    args = parser.parse_args()

    if args.command == "setup":
        setup()
        return

    users = load_users()
    check_group_gating(users)
    load_before = os.getloadavg()[0]
    counts, sql = count_queries(users)
    if args.show_sql:
        print("\n".join(sql), file=sys.stderr)
    runs = [measure(int(p), args.n, args.warmup, args.repeat) for p in args.parallel.split(",")]

    expected = 1 + sum(r["processes"] * args.repeat for r in runs)
    done = Process.objects.filter(status=PROCESS.DONE).count()
    assert done >= expected, f"only {done} processes finished, expected at least {expected}"
    assert not Task.objects.exclude(status=STATUS.DONE).exists(), "tasks left open"

    with connection.cursor() as cur:
        cur.execute("show server_version")
        pg = cur.fetchone()[0].split()[0]
    result = {
        "viewflow": version("django-viewflow"),
        "django": django.get_version(),
        "python": platform.python_version(),
        "postgresql": pg,
        "lock": type(Flow.lock_impl).__name__,
        "cpus": os.cpu_count(),
        "loadavg_1min_before": round(load_before, 2),
        "queries_per_process": counts,
        "tasks_per_process": Task.objects.filter(
            process_id=Process.objects.latest("pk").pk
        ).count(),
        "runs": runs,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    steady = counts[-1]
    line = " | ".join(
        f"{r['parallel']} worker(s): {r['processes_per_s']} proc/s"
        f" (runs {r['all_processes_per_s']}),"
        f" p50 {r['latency_ms_p50']} ms, p95 {r['latency_ms_p95']} ms"
        for r in runs
    )
    print(
        f"viewflow {result['viewflow']} / Django {result['django']} / PG {pg}, {result['lock']}:"
        f" {steady['all']} queries/process ({steady['data']} data"
        f" + {steady['tx_control']} BEGIN/COMMIT/SAVEPOINT;"
        f" same in all {len(counts)} samples: {len({c['all'] for c in counts}) == 1}),"
        f" N={args.n}/worker after {args.warmup} warm-up, median of {args.repeat} | {line}"
    )


if __name__ == "__main__":
    main()
