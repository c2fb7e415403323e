"""The shared rate-limit store's contract (``tenancy.ratelimit``), on PostgreSQL and on Redis.

Both stores answer the same calls the same way: fixed windows for ``hit``, exponential back-off
for ``attempt``; counts are shared by every connection (so every worker and machine), and never
let more through than the limit, however many requests arrive at once. A store that fails lets
requests through and says so in the log.
"""

import logging
import threading

import pytest
from django.db import connection, transaction

from core.sql import sql
from tenancy import ratelimit
from tenancy.models import RateLimitCounter
from tests.support import THREAD_TIMEOUT, run_together, start_thread

pytestmark = pytest.mark.django_db

SCHEDULE = [30, 60, 120, 900]


def attempt(key: str, free: int = 3) -> int:
    return ratelimit.attempt(key, free=free, schedule=SCHEDULE, window=86400)


# --- hit: fixed windows -------------------------------------------------------------------------


def test_hits_up_to_the_limit_pass_then_wait_for_the_window(backend):
    waits = [ratelimit.hit("k", 3, 60) for _ in range(5)]

    assert waits[:3] == [0, 0, 0]
    assert all(55 <= wait <= 60 for wait in waits[3:]), waits


def test_each_key_has_its_own_window(backend):
    for _ in range(2):
        ratelimit.hit("a", 2, 60)

    assert ratelimit.hit("a", 2, 60) > 0
    assert ratelimit.hit("b", 2, 60) == 0


def test_a_new_window_starts_the_count_over(backend):
    for _ in range(3):
        ratelimit.hit("k", 2, 60)
    backend.close_window("k")

    assert [ratelimit.hit("k", 2, 60) for _ in range(3)][:2] == [0, 0]


def test_clear_forgets_a_key(backend):
    for _ in range(3):
        ratelimit.hit("k", 2, 60)
    ratelimit.clear("k")

    assert ratelimit.hit("k", 2, 60) == 0


# --- attempt: back-off ------------------------------------------------------------------------


def test_attempts_back_off_exponentially_up_to_the_cap(backend):
    assert [attempt("acct") for _ in range(2)] == [0, 0]
    blocks = []
    for _ in range(6):
        assert attempt("acct") == 0  # the attempt that blocks is itself let through
        blocks.append(attempt("acct"))  # the next one is refused for the block's length
        backend.pass_block("acct")

    expected = [30, 60, 120, 900, 900, 900]
    assert all(e - 5 < got <= e for got, e in zip(blocks, expected, strict=True)), blocks


def test_refused_attempts_do_not_count(backend):
    for _ in range(3):
        attempt("acct")
    for _ in range(10):
        assert attempt("acct") > 0
    backend.pass_block("acct")

    attempt("acct")  # the 4th counted attempt: the second block, not the 13th
    assert 55 < attempt("acct") <= 60


def test_clear_ends_the_back_off(backend):
    for _ in range(3):
        attempt("acct")
    assert attempt("acct") > 0

    ratelimit.clear("acct")

    assert [attempt("acct") for _ in range(2)] == [0, 0]


def test_the_count_is_forgotten_after_the_window(backend):
    for _ in range(2):
        attempt("acct")
    backend.close_window("acct")

    assert [attempt("acct") for _ in range(2)] == [0, 0]  # the 1st and 2nd again, not 3rd
    assert attempt("acct") == 0
    assert attempt("acct") > 0


# --- shared, and atomic under concurrency -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_counts_are_shared_between_connections(backend):
    """A count made on one connection (one worker) binds another (any other worker)."""
    assert [ratelimit.hit("k", 2, 60) for _ in range(2)] == [0, 0]

    ((_, wait_elsewhere),) = run_together(lambda: ratelimit.hit("k", 2, 60))

    assert wait_elsewhere > 0


@pytest.mark.django_db(transaction=True)
def test_simultaneous_hits_never_pass_more_than_the_limit(backend):
    results = run_together(*[lambda: ratelimit.hit("k", 5, 60)] * 12)

    waits = [value for kind, value in results if kind == "ok"]
    assert len(waits) == 12, results
    assert waits.count(0) == 5


@pytest.mark.django_db(transaction=True)
def test_simultaneous_attempts_never_pass_more_than_the_free_ones(backend):
    results = run_together(*[lambda: attempt("acct", free=3)] * 12)

    waits = [value for kind, value in results if kind == "ok"]
    assert len(waits) == 12, results
    assert waits.count(0) == 3


# --- a store that fails -----------------------------------------------------------------------


def test_an_unreachable_redis_lets_requests_through_and_logs_it(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    with caplog.at_level(logging.WARNING, logger="clm.security"):
        assert [ratelimit.hit("k", 1, 60) for _ in range(3)] == [0, 0, 0]
        assert attempt("acct", free=1) == 0

    (warning,) = [
        r for r in caplog.records if getattr(r, "event", None) == "rate_limit_store_unavailable"
    ]
    assert "left alone" in warning.getMessage()  # one warning: then the store is not retried


_LOCK_COUNTERS = sql("LOCK TABLE {c:table} IN ACCESS EXCLUSIVE MODE", c=RateLimitCounter)


@pytest.mark.django_db(transaction=True)
def test_a_locked_table_lets_requests_through_and_logs_it(settings, caplog):
    """PostgreSQL failing the statement (here: cancelled by the statement timeout while another
    session holds the table) is treated like an outage: the request goes ahead."""
    settings.REDIS_URL = ""
    locked, release = threading.Event(), threading.Event()

    def hold_the_table():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(_LOCK_COUNTERS)
                locked.set()
                release.wait(THREAD_TIMEOUT)
        finally:
            connection.close()

    holder = start_thread(hold_the_table)
    assert locked.wait(THREAD_TIMEOUT)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 200")
        with caplog.at_level(logging.WARNING, logger="clm.security"):
            assert ratelimit.hit("k", 1, 60) == 0
            assert ratelimit.hit("k", 1, 60) == 0  # resting: not even tried
    finally:
        release.set()
        holder.join(THREAD_TIMEOUT)
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")

    assert [getattr(r, "event", None) for r in caplog.records].count(
        "rate_limit_store_unavailable"
    ) == 1
