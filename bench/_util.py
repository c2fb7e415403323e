"""The benchmarks' shared harness: timing, statement counting, worker processes, a local webhook
receiver and the printed tables. Each ``bench_*.py`` holds only its workload and its baseline.

Django is imported lazily, inside the functions that need it, so a script can import this module
before ``_django.setup()``.
"""

import gc
import hashlib
import hmac
import io
import math
import multiprocessing
import os
import pstats
import queue
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

# --- timing ----------------------------------------------------------------------------------


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Best wall-clock time of ``repeat`` calls, in seconds: the least noisy single number."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def median_of(fn: Callable[[], object], repeat: int = 25, warmup: int = 3) -> float:
    """Median wall-clock time of ``repeat`` calls after ``warmup`` untimed ones, in seconds."""
    for _ in range(warmup):
        fn()
    gc.collect()  # start clean: garbage of the set-up is not the measured code's cost
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class Stopwatch:
    """Wall-clock ``seconds`` of a ``with stopwatch()`` block, set when the block ends."""

    seconds = 0.0


@contextmanager
def stopwatch():
    """Time the block (``time.perf_counter``): ``with stopwatch() as took: ...``, then
    ``took.seconds``."""
    watch = Stopwatch()
    started = time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - started


class Measured(NamedTuple):
    """One measured call: its time, its statements two ways, and what it returned."""

    seconds: float
    statements: int  # on the wire, BEGIN/COMMIT included (``StatementCounter.total``)
    queries: int  # as Django sent them, BEGIN/COMMIT not included (``StatementCounter.queries``)
    result: object


def measured(fn: Callable[[], object], *, repeat: int = 0, warmup: int = 0) -> Measured:
    """Call ``fn`` once, timed, with its statements counted on Django's connection and on every
    connection opened meanwhile (the threads of a parallel run). With ``repeat``, the time is
    instead the median of ``repeat`` more calls after ``warmup`` untimed ones (``median_of``), for
    work that can run again unchanged; the counted call is then a warm-up too."""
    from django.db import connection

    counter = StatementCounter()
    with counter.installed(connection, new_connections=True), stopwatch() as took:
        result = fn()
    seconds = median_of(fn, repeat=repeat, warmup=warmup) if repeat else took.seconds
    return Measured(seconds, counter.total, counter.queries, result)


def percentile_cont(values: Sequence[float], fraction: float) -> float | None:
    """PostgreSQL's ``percentile_cont(fraction)``: linear interpolation between the closest
    ranks (None without values), so a figure computed in Python can be compared with SQL's."""
    if not values:
        return None
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


# --- what goes on the wire -------------------------------------------------------------------


def _transaction_open(raw) -> bool:
    """Whether psycopg's connection ``raw`` has a transaction open (so COMMIT would be sent)."""
    from psycopg.pq import TransactionStatus

    return raw is not None and raw.info.transaction_status != TransactionStatus.IDLE


class WireTap:
    """What a Django connection puts on the wire, statement by statement.

    A connection ``execute_wrapper`` sees every statement Django sends, SAVEPOINT / RELEASE
    SAVEPOINT included (Django runs those through the cursor), and hands it to ``statement``.
    The backend (``tenancy.rls_backend``) sends each transaction's COMMIT or ROLLBACK through the
    same wrappers, and its BEGIN in front of the transaction's first statement: an outermost tap
    sees the statement before the BEGIN is put in front of it, and hands that BEGIN to
    ``carried`` (it costs no round trip of its own). Every round trip goes through ``wait``.

    ``outermost`` taps first of the connection's execute wrappers, so each statement is seen as
    its caller sent it (the row-level security scope's ``set_config``, ``core.pipeline``'s
    queued writes and the BEGIN join it further in, in the same round trip); otherwise last, as
    it is sent.

    ``begin_if_idle`` and ``end`` count the same for a plain psycopg connection with autocommit
    off, which sends BEGIN (a round trip of its own) and COMMIT itself (the raw-SQL floor).
    """

    outermost = True

    def statement(self, sql, params=None, many=False) -> None:
        raise NotImplementedError

    def control(self, kind: str) -> None:
        raise NotImplementedError

    def carried(self, kind: str) -> None:
        """A statement that travels in the round trip of the next one (a BEGIN)."""

    def wait(self, round_trip: Callable[[], object]):
        return round_trip()

    def begin_if_idle(self, raw) -> None:
        if not raw.autocommit and not _transaction_open(raw):
            self.control("BEGIN")  # psycopg sends it right before this statement

    def end(self, raw, kind: str, finish: Callable[[], object]):
        """A COMMIT or ROLLBACK: on the wire only when a transaction is open."""
        if _transaction_open(raw):
            self.control(kind)
        return self.wait(finish)

    def __call__(self, execute, sql, params, many, context):
        if self.outermost and context["connection"].transaction_unopened:
            self.carried("BEGIN")
        self.statement(sql, params, many)
        return self.wait(lambda: execute(sql, params, many, context))

    def _attach(self, connection) -> bool:
        """Tap ``connection``; False when it is tapped already (a reconnection of the same one)."""
        if self in connection.execute_wrappers:
            return False
        if self.outermost:
            connection.execute_wrappers.insert(0, self)
        else:
            connection.execute_wrappers.append(self)
        return True

    @contextmanager
    def installed(self, connection, *, new_connections: bool = False):
        """Tap Django's ``connection`` while the block runs, and with ``new_connections`` every
        connection opened meanwhile in this process (another thread's, say)."""
        from django.db.backends.signals import connection_created

        attached = [connection]

        def on_connect(sender, connection, **kwargs):
            if self._attach(connection):
                attached.append(connection)

        self._attach(connection)
        uid = f"bench-wiretap-{id(self)}"
        if new_connections:
            connection_created.connect(on_connect, weak=False, dispatch_uid=uid)
        try:
            yield self
        finally:
            connection_created.disconnect(dispatch_uid=uid)
            for tapped in attached:
                tapped.execute_wrappers.remove(self)


class StatementCounter(WireTap):
    """Statements on the wire by first keyword, round trips, and the time spent waiting for the
    database, on every connection it is installed on (thread-safe).

    ``kinds`` counts what each round trip was sent for, COMMIT and ROLLBACK included;
    ``queries`` only the statements Django sent (what ``connection.queries`` would list).
    ``carried`` (a callable returning a running ``Counter``) adds the statements that travelled
    in front of them (the writes queued by ``core.pipeline``), and the BEGINs the backend put in
    front of them, so ``total`` is every statement and ``round_trips`` every wait for the server.
    """

    def __init__(self, carried: Callable[[], Counter] = Counter) -> None:
        self.kinds: Counter = Counter()
        self.carried_kinds: Counter = Counter()
        self.queries = 0
        self.db_seconds = 0.0
        self.lock = threading.Lock()
        self._carried, self._carried_start = carried, carried()

    @property
    def all_kinds(self) -> Counter:
        return self.kinds + self.carried_kinds + (self._carried() - self._carried_start)

    @property
    def total(self) -> int:
        return sum(self.all_kinds.values())

    @property
    def round_trips(self) -> int:
        return sum(self.kinds.values())

    def statement(self, sql, params=None, many=False) -> None:
        with self.lock:
            self.kinds[sql.lstrip().split(None, 1)[0].upper()] += 1
            self.queries += 1

    def control(self, kind: str) -> None:
        with self.lock:
            self.kinds[kind] += 1

    def carried(self, kind: str) -> None:
        with self.lock:
            self.carried_kinds[kind] += 1

    def wait(self, round_trip: Callable[[], object]):
        started = time.perf_counter()
        try:
            return round_trip()
        finally:
            with self.lock:
                self.db_seconds += time.perf_counter() - started


# --- worker processes ------------------------------------------------------------------------


def run_worker_processes(
    target: Callable,
    args: tuple | list[tuple],
    workers: int,
    *,
    setup_timeout: float,
    timeout: float,
) -> tuple[float, list[dict]]:
    """Run ``target(*args, barrier, results)`` in ``workers`` spawned processes released together.

    ``args`` is the same tuple for every worker, or a list of one tuple per worker. Each worker
    waits on the barrier once it is set up and connected, then puts one dict holding at least
    ``started`` and ``finished`` (``time.perf_counter()``) into ``results``. Returns the wall time
    from the first start to the last finish, and every worker's dict; a worker that dies is an
    error as soon as it is seen (its traceback is above), not after ``timeout``.
    """
    from django.db import connections

    per_worker = args if isinstance(args, list) else [args] * workers
    connections.close_all()  # a spawned child must not share the parent's connections
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers + 1)
    results = context.Queue()
    children = [
        context.Process(target=target, args=(*worker_args, barrier, results), daemon=True)
        for worker_args in per_worker
    ]
    for child in children:
        child.start()
    barrier.wait(timeout=setup_timeout)
    deadline = time.monotonic() + timeout
    outcomes = []
    while len(outcomes) < workers:
        try:
            outcomes.append(results.get(timeout=1))
        except queue.Empty:
            failed = [child.exitcode for child in children if child.exitcode not in (None, 0)]
            if failed:
                raise RuntimeError(f"a worker failed (exit {failed[0]})") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"no result from a worker after {timeout:g} s") from None
    for child in children:
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"a worker failed (exit {child.exitcode})")
    seconds = max(o["finished"] for o in outcomes) - min(o["started"] for o in outcomes)
    return seconds, outcomes


# --- a webhook receiver ------------------------------------------------------------------------


class WebhookReceiver:
    """A webhook endpoint on 127.0.0.1, served by a ``ThreadingHTTPServer`` in this process.

    It counts every ``X-Event-Id`` it receives per path (the benchmarks give each endpoint its own
    path), checks each ``X-Signature`` (HMAC-SHA256 of the body with ``secret``), and answers 200
    with no body after ``latency`` seconds. So what arrived (distinct events, duplicates, bad
    signatures: ``tally()``) is counted, not assumed.
    """

    def __init__(self, secret: str, latency: float = 0.0) -> None:
        self.secret = secret.encode()
        self.lock = threading.Lock()
        self.reset(latency)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received_post(self.path, self.headers, body)
                if receiver.latency:
                    time.sleep(receiver.latency)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received_post(self, path: str, headers, body: bytes) -> None:
        expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(expected, headers.get("X-Signature", ""))
        with self.lock:
            self.events[path, headers.get("X-Event-Id")] += 1
            self.bad_signatures += not valid

    def reset(self, latency: float = 0.0) -> None:
        """Forget what arrived; answer after ``latency`` seconds from now on."""
        with self.lock:
            self.events: Counter = Counter()
            self.bad_signatures = 0
            self.latency = latency

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/clm"

    def received(self) -> int:
        """Requests received, duplicates included."""
        with self.lock:
            return sum(self.events.values())

    def event_ids(self) -> set[str]:
        with self.lock:
            return {event_id for _, event_id in self.events}

    def tally(self) -> tuple[int, int, int]:
        """(distinct events received, duplicates received, bad signatures)."""
        with self.lock:
            distinct = len(self.events)
            return distinct, sum(self.events.values()) - distinct, self.bad_signatures

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def backend_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a PostgreSQL backend has used so far, read from ``/proc``, or
    None when the server is not on this machine (or not readable): the database's own cost of
    what a connection sent, untouched by the time its statements waited for a CPU."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- printing ----------------------------------------------------------------------------------


def ms(seconds: float, *, fine: int = 1) -> str:
    """``seconds`` in milliseconds with one decimal, or ``fine`` decimals under 10 ms."""
    return f"{seconds * 1e3:.{fine if seconds < 0.01 else 1}f}"


def print_table(title: str, rows: Sequence[Sequence[object]]) -> None:
    """Print ``rows`` (the first one is the header) as an aligned plain-text table."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(cells[0]))]
    print(title)
    for number, row in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            print("  ".join("-" * width for width in widths))


def print_profile(profiler, title: str, limit: int) -> None:
    """The ``limit`` costliest functions of a ``cProfile.Profile``, by own time and then by
    cumulative time, each under ``title`` (``{order}`` in it names the order)."""
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(limit)
        print(f"\n{title.format(order=order)}")
        print("\n".join(out.getvalue().splitlines()[4:]))
