"""Counters shared by every worker and machine, for the throttles of ``tenancy.throttling``.

Two operations, each atomic in the store, so concurrent requests are counted one by one:

* ``hit(key, limit, period)``: a fixed window. A key's window opens at its first hit and lasts
  ``period`` seconds; every hit in it (refused ones too) adds one, and a caller over the limit
  waits until the window closes. Across a boundary a client may get up to twice the limit within
  one period; in exchange a check is one statement (or one Redis script), with no list of
  timestamps to read and rewrite.
* ``attempt(key, free, schedule, window)``: exponential back-off for logins. An attempt while the
  key is blocked is refused and not counted. Otherwise it counts, and from the ``free``-th counted
  attempt on it blocks the key for ``schedule[n - free]`` seconds (the last entry repeats), before
  the password is even checked, so a burst of simultaneous attempts cannot slip through. The
  count is forgotten ``window`` seconds after the first attempt (never before a block ends), or
  at ``clear`` (a successful login).

Two stores keep the same contract (``tests/tenancy/test_ratelimit.py`` runs it against both):

* ``PostgresStore`` (default): the UNLOGGED table ``tenancy_ratelimitcounter``; a hit is one
  ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``, whose row lock serializes concurrent hits of
  a key. The database's clock decides, so every machine agrees. Each process deletes expired rows
  at most once per ``PURGE_INTERVAL_SECONDS``.
* ``RedisStore`` when ``REDIS_URL`` is set: one Lua script per operation, keys under
  ``RATE_LIMIT_REDIS_PREFIX``, Redis's clock; Redis expires the keys.

A store that fails (the database or Redis down or too slow) lets the request through and logs a
warning: a throttle must not turn an outage of its store into an outage of every write. After a
failure the store is left alone for ``RETRY_AFTER_FAILURE_SECONDS``, so a dead Redis does not
cost every request a connection timeout.
"""

import logging
import math
import time
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.core.signals import setting_changed
from django.db import DatabaseError, connection, transaction
from django.dispatch import receiver

from core.sql import sql
from tenancy.models import RateLimitCounter

logger = logging.getLogger("clm.security")

PURGE_INTERVAL_SECONDS = 60
RETRY_AFTER_FAILURE_SECONDS = 5
REDIS_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class Window:
    count: int  # hits in the current window, this one included
    reset_in: float  # seconds until the window closes


class PostgresStore:
    errors = (DatabaseError,)

    # Raw SQL: an upsert whose row lock serializes a key's hits, answering in one round trip
    # (INSERT ... ON CONFLICT DO UPDATE ... RETURNING on the database's clock): the ORM cannot.
    _HIT = sql(
        """
        INSERT INTO {c:table} AS c ({c.key:column}, {c.count:column}, {c.expires_at:column})
        VALUES (%s, 1, statement_timestamp() + make_interval(secs => %s))
        ON CONFLICT ({c.key:column}) DO UPDATE SET
            {c.count:column} = CASE WHEN {c.expires_at} > statement_timestamp()
                                    THEN {c.count} + 1 ELSE 1 END,
            {c.expires_at:column} = CASE WHEN {c.expires_at} > statement_timestamp()
                                         THEN {c.expires_at} ELSE EXCLUDED.{c.expires_at:column} END
        RETURNING {c.count}, EXTRACT(EPOCH FROM {c.expires_at} - statement_timestamp())
        """,
        c=RateLimitCounter,
    )
    # The key's row, created if need be (as expired) and locked until the transaction ends.
    _LOCK = sql(
        """
        INSERT INTO {c:table} AS c ({c.key:column}, {c.count:column}, {c.expires_at:column})
        VALUES (%s, 0, '-infinity')
        ON CONFLICT ({c.key:column}) DO UPDATE SET {c.count:column} = {c.count}
        RETURNING {c.count}, {c.expires_at} > statement_timestamp(),
                  EXTRACT(EPOCH FROM {c.blocked_until} - statement_timestamp())
        """,
        c=RateLimitCounter,
    )
    # GREATEST ignores NULL: the row outlives its window while a block lasts.
    _COUNT = sql(
        """
        UPDATE {c} SET
            {c.count:column} = %(count)s,
            {c.blocked_until:column} = CASE WHEN %(block)s > 0
                THEN statement_timestamp() + make_interval(secs => %(block)s) END,
            {c.expires_at:column} = GREATEST(
                CASE WHEN %(fresh)s THEN statement_timestamp() + make_interval(secs => %(window)s)
                     ELSE {c.expires_at} END,
                CASE WHEN %(block)s > 0
                     THEN statement_timestamp() + make_interval(secs => %(block)s) END)
        WHERE {c.key} = %(key)s
        """,
        c=RateLimitCounter,
    )
    _CLEAR = sql("DELETE FROM {c} WHERE {c.key} = ANY(%s)", c=RateLimitCounter)
    _PURGE = sql(
        "DELETE FROM {c} WHERE {c.expires_at} <= statement_timestamp()", c=RateLimitCounter
    )

    def __init__(self) -> None:
        self._next_purge = 0.0

    def hit(self, key: str, period: int) -> Window:
        with connection.cursor() as cursor:
            cursor.execute(self._HIT, [key, period])
            count, reset_in = cursor.fetchone()
            if time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + PURGE_INTERVAL_SECONDS
                cursor.execute(self._PURGE)
        return Window(count=count, reset_in=float(reset_in))

    def attempt(self, key: str, free: int, schedule: list[int], window: int) -> float:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(self._LOCK, [key])
            count, live, blocked_for = cursor.fetchone()
            if blocked_for is not None and blocked_for > 0:
                return float(blocked_for)
            count = count + 1 if live else 1
            cursor.execute(
                self._COUNT,
                {
                    "key": key,
                    "count": count,
                    "block": _block_seconds(count, free, schedule),
                    "fresh": not live,
                    "window": window,
                },
            )
        return 0.0

    def clear(self, *keys: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(self._CLEAR, [list(keys)])


def _block_seconds(count: int, free: int, schedule: list[int]) -> int:
    """How long the ``count``-th attempt blocks its key (0 while attempts are still free)."""
    if count < free:
        return 0
    return schedule[min(count - free, len(schedule) - 1)]


class RedisStore:
    _HIT = """
        local count = redis.call('INCR', KEYS[1])
        local ttl = redis.call('PTTL', KEYS[1])
        if ttl < 0 then
            redis.call('PEXPIRE', KEYS[1], ARGV[1])
            ttl = tonumber(ARGV[1])
        end
        return {count, ttl}
    """
    # ARGV: free, window (ms), then the schedule (ms). A hash {n: attempts, b: blocked until (ms
    # on Redis's clock)}; the key expires with its window, or its block if that ends later.
    _ATTEMPT = """
        local clock = redis.call('TIME')
        local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
        local state = redis.call('HMGET', KEYS[1], 'n', 'b')
        local blocked = tonumber(state[2]) or 0
        if blocked > now then
            return blocked - now
        end
        local count = (tonumber(state[1]) or 0) + 1
        local ttl = redis.call('PTTL', KEYS[1])
        if ttl < 0 then
            ttl = tonumber(ARGV[2])
        end
        local free = tonumber(ARGV[1])
        if count >= free then
            local block = tonumber(ARGV[math.min(count - free + 3, #ARGV)])
            blocked = now + block
            ttl = math.max(ttl, block)
        end
        redis.call('HSET', KEYS[1], 'n', count, 'b', blocked)
        redis.call('PEXPIRE', KEYS[1], ttl)
        return 0
    """

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self.errors = (redis.RedisError,)
        self.prefix = prefix
        self.client = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        self._hit = self.client.register_script(self._HIT)
        self._attempt = self.client.register_script(self._ATTEMPT)

    def hit(self, key: str, period: int) -> Window:
        count, ttl_ms = self._hit(keys=[self.prefix + key], args=[period * 1000])
        return Window(count=int(count), reset_in=int(ttl_ms) / 1000)

    def attempt(self, key: str, free: int, schedule: list[int], window: int) -> float:
        milliseconds = [seconds * 1000 for seconds in schedule]
        wait_ms = self._attempt(keys=[self.prefix + key], args=[free, window * 1000, *milliseconds])
        return int(wait_ms) / 1000

    def clear(self, *keys: str) -> None:
        self.client.delete(*(self.prefix + key for key in keys))


@cache
def store() -> PostgresStore | RedisStore:
    """This process's store, chosen by ``REDIS_URL``."""
    if settings.REDIS_URL:
        return RedisStore(settings.REDIS_URL, settings.RATE_LIMIT_REDIS_PREFIX)
    return PostgresStore()


# After a failure the store is left alone until then (per process; monotonic clock).
_resting_until = 0.0


@receiver(setting_changed, dispatch_uid="tenancy.ratelimit.reset")
def _reset(*, setting, **kwargs) -> None:
    global _resting_until
    if setting in ("REDIS_URL", "RATE_LIMIT_REDIS_PREFIX"):
        store.cache_clear()
        _resting_until = 0.0


def _guarded(operation: str, call, fallback):
    """``call(store())``, or ``fallback`` (with a warning) when the store fails or is resting."""
    global _resting_until
    if time.monotonic() < _resting_until:
        return fallback
    chosen = store()
    try:
        return call(chosen)
    except chosen.errors:
        _resting_until = time.monotonic() + RETRY_AFTER_FAILURE_SECONDS
        logger.warning(
            "rate limit store unavailable: %s allowed; store left alone for %s s",
            operation,
            RETRY_AFTER_FAILURE_SECONDS,
            exc_info=True,
            extra={"event": "rate_limit_store_unavailable"},
        )
        return fallback


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def hit(key: str, limit: int, period: int) -> int:
    """Count a request of ``key`` against ``limit`` per ``period`` seconds.

    Returns 0 when it may go ahead, else the whole seconds until the window closes.
    """
    window = _guarded("request", lambda chosen: chosen.hit(key, period), None)
    if window is None or window.count <= limit:
        return 0
    return _whole_seconds(window.reset_in)


def attempt(key: str, *, free: int, schedule: list[int], window: int) -> int:
    """Count an attempt of ``key`` (see the module docstring); 0 or the seconds it is blocked."""
    blocked_for = _guarded(
        "attempt", lambda chosen: chosen.attempt(key, free, schedule, window), 0.0
    )
    return _whole_seconds(blocked_for) if blocked_for > 0 else 0


def clear(*keys: str) -> None:
    _guarded("clear", lambda chosen: chosen.clear(*keys), None)
