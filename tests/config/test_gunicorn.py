"""The service under gunicorn with the settings of `make run` and the image (config/gunicorn.py)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest

from tests.support import ROOT

STARTUP_DEADLINE_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn():
    """A one-worker gunicorn: yields its base URL and a list that, after the block, holds the
    access log it wrote."""
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(  # noqa: S603 (our own interpreter, fixed arguments)
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--config",
            "python:config.gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    access_log: list[str] = []
    try:
        wait_until_listening(server, port)
        yield f"http://127.0.0.1:{port}", access_log
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=STARTUP_DEADLINE_SECONDS)
        access_log.extend(out.splitlines())


def wait_until_listening(server: subprocess.Popen, port: int) -> None:
    """A deadline on start-up, not a timing assertion."""
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    while server.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("gunicorn did not start")


def get(url: str, **headers: str):
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (our own test server)
    return urllib.request.urlopen(request, timeout=30)  # noqa: S310


def test_access_lines_carry_the_request_id():
    with gunicorn() as (base, access_log), get(f"{base}/healthz", **{"X-Request-ID": "trace-1"}):
        pass

    [line] = access_log
    assert '"GET /healthz HTTP/1.1" 200' in line
    assert line.endswith(" request_id=trace-1")


def test_a_long_url_gets_the_services_json_414_not_gunicorns_html_page():
    """gunicorn's own limit (4094 bytes by default) answered these with an HTML page."""
    with gunicorn() as (base, _), pytest.raises(urllib.error.HTTPError) as refused:
        get(f"{base}/api/approvals/pending/?search={'x' * 5_000}")

    assert refused.value.code == 414
    assert refused.value.headers["Content-Type"] == "application/json"
    assert json.loads(refused.value.read())["code"] == "uri_too_long"
