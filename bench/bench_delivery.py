"""Benchmark webhook delivery by ``deliver_notifications`` with 1 and 2 worker processes.

Run from the repository root: ``python bench/bench_delivery.py`` (or ``make bench``); ``--deliveries
N`` and ``--latency-ms L`` change the load. N webhook deliveries (one endpoint, one event each,
queued by ``notify_many``) are drained by worker processes running
``call_command("deliver_notifications", "--once")`` started together on a barrier. The receiver
(``WebhookReceiver`` of ``bench/_util.py``) is a ``ThreadingHTTPServer`` on 127.0.0.1 in this
process: it verifies every signature and counts ``X-Event-Id``s per endpoint, so duplicates (the
same event received twice) and bad signatures are counted, not assumed. At most one delivery is in
flight per endpoint, so one endpoint is served by one worker at a time; the same N deliveries spread
over ``--endpoints E`` endpoints (N/E events, each to every endpoint) show workers sharing the load
again. A second set of runs has the receiver answer after ``--latency-ms`` (a real endpoint is never
0 ms away).

Baselines in the same run:

* the HTTP floor: the same POSTs (same bodies, urllib, one connection each) with no database at all;
* a naive worker: one row per transaction, ``SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1``, the POST
  made while the row lock is held, then the UPDATE and COMMIT (no batching, no lease).
"""

import argparse
import io
import os
import re
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("BENCH_DATABASE_NAME", "clm_bench_delivery")
# The receiver is on 127.0.0.1, which production settings refuse (SSRF); workers inherit this.
os.environ["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "1"
os.environ.setdefault("LOG_LEVEL", "ERROR")

import _django
from _util import StatementCounter, WebhookReceiver, print_table, run_worker_processes

DELIVERIES = 2000
SLOW_DELIVERIES = 400
LATENCY_MS = 5
BATCH_SIZE = 50
ENDPOINTS = 4
SECRET = "bench-webhook-secret-0123456789abcdef"


# --- fixtures ----------------------------------------------------------------------------------


def create_endpoints(url: str, count: int) -> list:
    from notifications.models import WebhookEndpoint
    from tenancy.models import Tenant

    tenant = Tenant.objects.create(name="Bench delivery", slug="bench-delivery")
    return [
        WebhookEndpoint.objects.create(
            tenant=tenant, url=f"{url}/{number}", events=["approval_assigned"], secret=SECRET
        )
        for number in range(count)
    ]


def use_endpoints(endpoints: list, active: int) -> None:
    """The first ``active`` endpoints receive the events; the others are switched off."""
    from notifications.models import WebhookEndpoint

    WebhookEndpoint.objects.filter(pk__in=[e.pk for e in endpoints[:active]]).update(is_active=True)
    WebhookEndpoint.objects.filter(pk__in=[e.pk for e in endpoints[active:]]).update(
        is_active=False
    )


def queue(endpoint, count: int, endpoints: int = 1) -> None:
    """``count`` webhook deliveries: ``count / endpoints`` events, each to every active endpoint
    (no recipients: no inbox rows, no emails)."""
    from notifications.models import Delivery
    from notifications.services import Message, notify_many

    Delivery.objects.all().delete()
    notify_many(
        tenant_id=endpoint.tenant_id,
        messages=[
            Message(
                notification_type="approval_assigned",
                title=f"Approval needed: Contract {number} (Legal Review)",
                message='"Legal Review" of contract awaits your decision.',
                payload={
                    "contract_id": f"00000000-0000-0000-0000-{number:012d}",
                    "contract_title": f"Contract {number}",
                    "stage_name": "Legal Review",
                    "due_at": "2026-12-01T12:00:00+00:00",
                },
            )
            for number in range(count // endpoints)
        ],
    )
    assert Delivery.objects.filter(status="pending").count() == count


# --- runs --------------------------------------------------------------------------------------


def _worker(batch_size: int, barrier, results) -> None:
    _django.setup(fresh=False)
    from django.core.management import call_command
    from django.db import connection

    connection.ensure_connection()
    counter = StatementCounter()
    barrier.wait()
    out = io.StringIO()
    started = time.perf_counter()
    with counter.installed(connection):
        call_command("deliver_notifications", "--once", "--batch-size", str(batch_size), stdout=out)
    finished = time.perf_counter()
    sent = int(re.search(r"sent (\d+)", out.getvalue()).group(1))
    results.put(
        {"started": started, "finished": finished, "sent": sent, "queries": counter.queries}
    )


def run_workers(workers: int, batch_size: int) -> dict:
    """``workers`` processes of ``deliver_notifications --once``; wall time from the barrier."""
    seconds, outcomes = run_worker_processes(
        _worker, (batch_size,), workers, setup_timeout=120, timeout=600
    )
    return {
        "seconds": seconds,
        "split": "/".join(str(o["sent"]) for o in outcomes),
        "queries": sum(o["queries"] for o in outcomes),
    }


def run_naive() -> dict:
    """One row per transaction; the POST is made while the row lock is held."""
    from django.db import connection, transaction
    from django.db.models import F
    from django.utils import timezone

    from notifications.delivery import send_webhook
    from notifications.models import Delivery

    counter = StatementCounter()
    started = time.perf_counter()
    sent = 0
    with counter.installed(connection):
        while True:
            with transaction.atomic():
                row = (
                    Delivery.objects.filter(status="pending")
                    .select_related("endpoint")
                    .order_by("next_attempt_at", "id")
                    .select_for_update(skip_locked=True, of=("self",))
                    .first()
                )
                if row is None:
                    break
                row.attempts += 1
                outcome = send_webhook(row)
                Delivery.objects.filter(pk=row.pk).update(
                    status="sent" if outcome.ok else "pending",
                    sent_at=timezone.now(),
                    attempts=F("attempts") + 1,
                )
                sent += outcome.ok
    return {
        "seconds": time.perf_counter() - started,
        "split": str(sent),
        "queries": counter.queries,
    }


def run_floor(endpoint, count: int) -> dict:
    """The same signed POSTs, no database: what the network and the receiver cost."""
    from notifications.delivery import webhook_request_body
    from notifications.models import Delivery
    from notifications.signing import x_signature

    rows = list(Delivery.objects.select_related("endpoint").order_by("created_at", "id")[:count])
    requests = []
    for row in rows:
        body = webhook_request_body(row)
        headers = {
            "Content-Type": "application/json",
            "X-Signature": x_signature(SECRET, body),
            "X-Event-Id": str(row.event_id),
            "X-Event-Type": row.event_type,
        }
        request = urllib.request.Request(endpoint.url, data=body, headers=headers)  # noqa: S310
        requests.append(request)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    started = time.perf_counter()
    for request in requests:
        with opener.open(request, timeout=10) as response:
            response.read()
    return {"seconds": time.perf_counter() - started, "split": str(len(requests)), "queries": 0}


def check(receiver: WebhookReceiver, count: int, expect_db: bool = True) -> tuple[int, int, int]:
    """(distinct events received, duplicates, bad signatures); every row must be sent."""
    from notifications.models import Delivery

    distinct, duplicates, bad = receiver.tally()
    if expect_db:
        statuses = Counter(Delivery.objects.values_list("status", flat=True))
        assert statuses == {"sent": count}, f"not every delivery was sent: {statuses}"
    assert distinct == count, f"{distinct} distinct events received, {count} expected"
    return distinct, duplicates, bad


def row(label: str, workers: str, count: int, outcome: dict, verified, baseline=None) -> list:
    distinct, duplicates, bad = verified
    per_second = count / outcome["seconds"]
    return [
        label,
        workers,
        count,
        f"{outcome['seconds']:.2f}",
        f"{per_second:.0f}",
        f"{per_second / baseline:.2f}x" if baseline else "1.00x",
        f"{outcome['queries'] / count:.2f}",
        outcome["split"],
        distinct,
        duplicates,
        bad,
    ]


def measure(
    endpoints: list, receiver: WebhookReceiver, count: int, latency_ms: float, batch_size: int
):
    header = [
        "run",
        "workers",
        "deliveries",
        "seconds",
        "per second",
        "vs naive",
        "queries/delivery",
        "sent per worker",
        "distinct ids",
        "duplicates",
        "bad sig",
    ]
    rows = [header]
    endpoint = endpoints[0]
    use_endpoints(endpoints, 1)

    queue(endpoint, count)
    receiver.reset(latency_ms / 1000)
    floor_outcome = run_floor(endpoint, count)
    floor_verified = check(receiver, count, expect_db=False)

    queue(endpoint, count)
    receiver.reset(latency_ms / 1000)
    outcome = run_naive()
    naive_rate = count / outcome["seconds"]
    rows.append(row("naive: 1 row per transaction", "1", count, outcome, check(receiver, count)))

    for workers in (1, 2):
        queue(endpoint, count)
        receiver.reset(latency_ms / 1000)
        outcome = run_workers(workers, batch_size)
        rows.append(
            row(
                f"deliver_notifications --once --batch-size {batch_size}",
                str(workers),
                count,
                outcome,
                check(receiver, count),
                naive_rate,
            )
        )
    if len(endpoints) > 1:
        use_endpoints(endpoints, len(endpoints))
        for workers in (1, 2):
            queue(endpoint, count, len(endpoints))
            receiver.reset(latency_ms / 1000)
            outcome = run_workers(workers, batch_size)
            rows.append(
                row(
                    f"the same, {len(endpoints)} endpoints",
                    str(workers),
                    count,
                    outcome,
                    check(receiver, count),
                    naive_rate,
                )
            )
    rows.append(
        row(
            "HTTP floor: urllib POSTs, no DB", "1", count, floor_outcome, floor_verified, naive_rate
        )
    )
    print_table(f"Webhook delivery, receiver latency {latency_ms:g} ms", rows)
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=DELIVERIES)
    parser.add_argument("--slow-deliveries", type=int, default=SLOW_DELIVERIES)
    parser.add_argument("--latency-ms", type=float, default=LATENCY_MS)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--endpoints", type=int, default=ENDPOINTS)
    options = parser.parse_args()

    _django.setup()
    receiver = WebhookReceiver(SECRET)
    endpoints = create_endpoints(receiver.url, max(options.endpoints, 1))
    print(
        f"{_django.database_description()}; webhook endpoints on {receiver.url}/<n> "
        "(ThreadingHTTPServer in the benchmark process, verifying each HMAC signature); worker "
        "processes start together after Django set-up, timed from the barrier to the last exit"
    )
    print()
    measure(endpoints, receiver, options.deliveries, 0, options.batch_size)
    if options.latency_ms > 0 and options.slow_deliveries > 0:
        measure(
            endpoints, receiver, options.slow_deliveries, options.latency_ms, options.batch_size
        )
    print(
        "duplicates: events received more than once by an endpoint (X-Event-Id seen twice); every "
        "run also checks that each delivery row ended `sent` and each event arrived. "
        "queries/delivery: statements Django sent (BEGIN/COMMIT not counted); ours is 5 per "
        "claimed batch (the claim's UPDATE ... RETURNING and the read of its rows, SET/RESET "
        "synchronous_commit, the endpoint's release) plus 1 UPDATE per row."
    )


if __name__ == "__main__":
    main()
