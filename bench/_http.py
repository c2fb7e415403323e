"""A small asyncio HTTP/1.1 client and a bounded load runner, standard library only.

Benchmarks drive a real server (``bench/_server.py``) from the benchmark process itself, so they
need no load tool (locust, wrk) and no dependency beyond the standard library.

* ``HttpConnection(base_url)`` is one keep-alive connection: ``await conn.request(method, path,
  json_body=..., headers=..., timeout=...)`` returns a ``Response(status, body, seconds)``. It
  never raises for the network: a refused or reset connection, a malformed answer or a timeout
  is ``status=0`` (``body`` then says what happened), the connection is dropped and the next
  request reconnects. A server answering ``Connection: close`` (gunicorn's default sync worker
  does, on every response) is handled the same way: the next request opens a new connection.
  ``path`` is relative to ``base_url``, or an absolute ``http://host:port/...`` URL. Nothing is
  retried (a retried POST could act twice): a kept-alive connection the server closed while idle
  shows as ``status=0`` on the request that finds it closed.
* ``run_load(make_request, concurrency=N, duration=..., total=..., base_url=...)`` runs N
  concurrent workers, each with its own ``HttpConnection(base_url)``, each awaiting
  ``make_request(client, worker_index, iteration)`` in a loop until ``duration`` seconds have
  passed or ``total`` requests were started (whichever comes first; at least one is required).
  ``iteration`` numbers the requests of the whole run, 0, 1, 2, ..., unique across workers, so a
  scenario can give every request its own object. A request in flight at the deadline completes
  (its own ``timeout`` bounds it).

Latencies are wall-clock seconds from sending the request to the last byte of the answer, as the
client sees them (connect included when the request had to open a connection).
"""

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["HttpConnection", "LoadResult", "Response", "run_load"]


@dataclass(frozen=True)
class Response:
    """One answer: ``status`` 0 means no HTTP answer (connection error or timeout)."""

    status: int
    body: bytes
    seconds: float

    def json(self):
        return json.loads(self.body)


class _ProtocolError(Exception):
    """The server's answer is not HTTP/1.1 we can read."""


# What ends a request with status 0. EOFError covers asyncio.IncompleteReadError (the peer closed
# mid-answer); TimeoutError is also what asyncio.wait_for raises.
_NETWORK_ERRORS = (OSError, EOFError, TimeoutError, asyncio.LimitOverrunError, _ProtocolError)


class HttpConnection:
    """One HTTP/1.1 connection to one server, reopened as needed. Not for concurrent use:
    one request at a time (``run_load`` gives each worker its own)."""

    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = base_url.rstrip("/") if base_url else ""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._address: tuple[str, int] | None = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body=None,
        headers: dict | None = None,
        timeout: float = 10.0,
    ) -> Response:
        url = urlsplit(path if "://" in path else self.base_url + path)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"not an http:// URL: {path!r} (base {self.base_url!r})")
        address = (url.hostname, url.port or 80)
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        body = b"" if json_body is None else json.dumps(json_body).encode()
        lines = [f"{method} {target} HTTP/1.1", f"Host: {address[0]}:{address[1]}"]
        if json_body is not None:
            lines.append("Content-Type: application/json")
        if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            lines.append(f"Content-Length: {len(body)}")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        started = time.perf_counter()
        try:
            status, answer = await asyncio.wait_for(
                self._exchange(address, raw, head_only=method == "HEAD"), timeout
            )
        except _NETWORK_ERRORS as exc:
            await self.close()
            seconds = time.perf_counter() - started
            return Response(0, f"{type(exc).__name__}: {exc}".encode(), seconds)
        return Response(status, answer, time.perf_counter() - started)

    async def _exchange(self, address, raw: bytes, *, head_only: bool) -> tuple[int, bytes]:
        if self._writer is None or self._address != address or self._writer.is_closing():
            await self.close()
            self._reader, self._writer = await asyncio.open_connection(*address)
            self._address = address
        self._writer.write(raw)
        await self._writer.drain()
        status, response_headers = await self._read_head()
        if head_only or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in response_headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked()
        elif "content-length" in response_headers:
            length = response_headers["content-length"]
            if not length.isdigit():
                raise _ProtocolError(f"bad Content-Length {length[:40]!r}")
            body = await self._reader.readexactly(int(length))
        else:  # delimited by the end of the connection
            body = await self._reader.read()
            response_headers["connection"] = "close"
        if response_headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def _read_head(self) -> tuple[int, dict[str, str]]:
        head = await self._reader.readuntil(b"\r\n\r\n")  # LimitOverrunError past 64 KiB
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise _ProtocolError(f"bad status line {status_line[:100]!r}")
        headers = {}
        for line in header_lines:
            name, separator, value = line.partition(":")
            if separator:
                headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers

    async def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size_line = await self._reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0], 16)
            except ValueError as exc:
                raise _ProtocolError(f"bad chunk size {size_line[:40]!r}") from exc
            if size == 0:
                # Trailers (rare) end with an empty line, as the last chunk does without them.
                while await self._reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                return b"".join(chunks)
            chunks.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with suppress(OSError):  # already reset by the peer: closed either way
                await writer.wait_closed()


@dataclass
class LoadResult:
    """What a ``run_load`` saw: every answer's status and latency, and when it came."""

    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    # (seconds since the start of the run when the answer arrived, its status), in arrival order.
    timeline: list[tuple[float, int]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def per_second(self) -> float:
        """Answers (any status, 0 included) per second of the run."""
        return self.count / self.elapsed if self.elapsed else 0.0

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    def percentile(self, percent: float) -> float:
        """Nearest-rank percentile of the latencies, in seconds (nan without answers)."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(percent / 100 * len(ordered)))
        return ordered[rank - 1]

    @property
    def non_2xx(self) -> Counter:
        return Counter({status: n for status, n in self.statuses.items() if status // 100 != 2})


async def run_load(
    make_request: Callable[[HttpConnection, int, int], Awaitable[Response]],
    *,
    concurrency: int,
    duration: float | None = None,
    total: int | None = None,
    base_url: str | None = None,
) -> LoadResult:
    """Run ``concurrency`` workers until ``duration`` seconds or ``total`` requests.

    Each worker owns an ``HttpConnection(base_url)`` (``base_url`` may be omitted when
    ``make_request`` passes absolute URLs) and closes it at the end.
    """
    if duration is None and total is None:
        raise ValueError("run_load needs a bound: duration, total or both")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    result = LoadResult()
    started = time.perf_counter()
    deadline = math.inf if duration is None else started + duration
    limit = math.inf if total is None else total
    issued = 0

    async def worker(index: int) -> None:
        nonlocal issued
        client = HttpConnection(base_url)
        try:
            while issued < limit and time.perf_counter() < deadline:
                iteration = issued
                issued += 1
                response = await make_request(client, index, iteration)
                result.statuses[response.status] += 1
                result.latencies.append(response.seconds)
                result.timeline.append((time.perf_counter() - started, response.status))
        finally:
            await client.close()

    await asyncio.gather(*(worker(index) for index in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    return result
