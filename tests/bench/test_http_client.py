"""The benchmarks' stdlib HTTP client (``bench/_http.py``) against a tiny in-process server.

The load and fault benchmarks trust its numbers, so what it must never get wrong is checked here:
keep-alive reuse, reconnecting after ``Connection: close`` and after errors, chunked bodies,
``status=0`` instead of an exception, and ``run_load``'s bounds and percentiles.
"""

import asyncio
import importlib.util
import json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "bench_http", Path(__file__).resolve().parents[2] / "bench" / "_http.py"
)
http = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(http)


class Server:
    """Answers by path: /json (keep-alive), /close (Connection: close), /chunked, /slow."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[tuple[str, str, bytes]] = []

    async def handle(self, reader, writer) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode().split("\r\n")
                method, path, _ = request_line.split(" ")
                headers = {
                    name.lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                self.requests.append((method, path, body))
                if path == "/slow":
                    await asyncio.sleep(1)
                if path == "/chunked":
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b'4\r\n{"a"\r\n3;ext=1\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n'
                    )
                else:
                    payload = json.dumps({"path": path, "echo": body.decode()}).encode()
                    close = b"Connection: close\r\n" if path == "/close" else b""
                    writer.write(
                        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                        + close
                        + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                        + payload
                    )
                await writer.drain()
                if path == "/close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        finally:
            writer.close()


def serve(test):
    """Run ``test(server, base_url)`` with a server on a free loopback port."""

    async def main():
        server = Server()
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        async with listener:
            return await test(server, f"http://127.0.0.1:{port}")

    return asyncio.run(main())


def test_keep_alive_reuses_the_connection_and_sends_json():
    async def test(server, base_url):
        client = http.HttpConnection(base_url)
        first = await client.request("POST", "/json", json_body={"x": 1}, headers={"X-A": "b"})
        second = await client.request("GET", "/json?page=2")
        await client.close()
        return first, second, server.connections

    first, second, connections = serve(test)
    assert (first.status, second.status) == (201, 201)
    assert first.json() == {"path": "/json", "echo": '{"x": 1}'}
    assert second.json()["path"] == "/json?page=2"
    assert first.seconds > 0
    assert connections == 1


def test_connection_close_and_errors_reconnect_on_the_next_request():
    async def test(server, base_url):
        client = http.HttpConnection(base_url)
        statuses = [(await client.request("GET", "/close")).status for _ in range(3)]
        timed_out = await client.request("GET", "/slow", timeout=0.2)
        after = await client.request("GET", "/json")
        await client.close()
        return statuses, timed_out, after, server.connections

    statuses, timed_out, after, connections = serve(test)
    assert statuses == [201, 201, 201]
    assert timed_out.status == 0
    assert b"TimeoutError" in timed_out.body
    assert after.status == 201
    assert connections == 5  # three closed by the server, one dropped after the timeout, one


def test_chunked_body_is_decoded():
    async def test(server, base_url):
        client = http.HttpConnection(base_url)
        response = await client.request("GET", "/chunked")
        again = await client.request("GET", "/json")  # the connection is still in step
        await client.close()
        return response, again

    response, again = serve(test)
    assert response.status == 200
    assert response.json() == {"a": 1}
    assert again.json()["path"] == "/json"


def test_a_refused_connection_is_status_zero_not_an_exception():
    async def test(server, base_url):
        return await http.HttpConnection().request("GET", "http://127.0.0.1:9/nothing")

    response = serve(test)
    assert response.status == 0
    assert response.body


def test_run_load_stops_at_total_with_unique_iterations():
    seen = []

    async def test(server, base_url):
        async def make_request(client, worker, iteration):
            seen.append((worker, iteration))
            return await client.request("GET", f"/json?i={iteration}")

        return await http.run_load(make_request, concurrency=3, total=20, base_url=base_url)

    result = serve(test)
    assert result.count == 20
    assert result.statuses == {201: 20}
    assert sorted(iteration for _, iteration in seen) == list(range(20))
    assert {worker for worker, _ in seen} == {0, 1, 2}
    assert len(result.timeline) == 20
    assert result.per_second > 0
    assert not result.non_2xx


def test_run_load_stops_at_the_deadline():
    async def test(server, base_url):
        async def make_request(client, worker, iteration):
            return await client.request("GET", "/json")

        return await http.run_load(make_request, concurrency=2, duration=0.3, base_url=base_url)

    result = serve(test)
    assert result.count > 0
    assert result.elapsed < 2


def test_run_load_needs_a_bound():
    async def make_request(client, worker, iteration):
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="bound"):
        asyncio.run(http.run_load(make_request, concurrency=1))


def test_percentiles_are_nearest_rank():
    result = http.LoadResult(latencies=[float(n) for n in range(100, 0, -1)], elapsed=2.0)
    assert (result.p50, result.p99, result.percentile(100)) == (50.0, 99.0, 100.0)
    assert result.per_second == 50.0
