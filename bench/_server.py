"""Run the service under gunicorn for a benchmark: production's server, on loopback.

``start_gunicorn(workers=2)`` is a context manager: it starts ``python -m gunicorn config.wsgi``
(the interpreter running the benchmark, so the project's venv) in its own process group, bound to
127.0.0.1 on a free port, with the benchmark's environment (``bench/_django.py``'s ``setup()``
puts the benchmark database's URL in ``os.environ``, and the child inherits it) plus production
settings: ``DEBUG=0``, ``ALLOWED_HOSTS=127.0.0.1``, the cookie flags off (plain HTTP on loopback),
no access log. One benchmark client writes far faster than a person, so the per-user write limit
is raised out of reach (``BENCH_USER_WRITE_THROTTLE_RATE``): the throttle still runs on every
write, and its cost is measured, but it never refuses. It waits until ``/healthz`` answers 200
and yields a ``RunningServer``; on exit it stops the whole process group (master and workers),
forcefully if it does not stop in time.

The server's output (its error log and the service's JSON log lines) goes to a temporary file;
when the server fails to start, the tail of that file is in the exception.
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BENCH_USER_WRITE_THROTTLE_RATE = "1000000/min"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class RunningServer:
    base_url: str
    port: int
    process: subprocess.Popen

    def pids(self) -> list[int]:
        """The master and its workers: every live process of the server's process group."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                fields = _stat_fields(entry)
                if fields is not None and int(fields[2]) == self.process.pid:  # pgrp
                    found.append(int(entry.name))
        return found

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by the live processes of the server."""
        total = 0
        for pid in self.pids():
            fields = _stat_fields(Path("/proc") / str(pid))
            if fields is not None:
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / _CLOCK_TICKS


def _stat_fields(proc_dir: Path) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name (which may contain spaces): field 3 on."""
    try:
        text = (proc_dir / "stat").read_text()
    except OSError:  # the process ended meanwhile
        return None
    return text.rpartition(")")[2].split()


@contextmanager
def start_gunicorn(
    *, port: int | None = None, workers: int = 2, env: dict | None = None, timeout: float = 60.0
) -> Iterator[RunningServer]:
    """Serve ``config.wsgi`` with ``workers`` sync workers until the block exits."""
    port = port or free_port()
    child_env = {
        **os.environ,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "USER_WRITE_THROTTLE_RATE": BENCH_USER_WRITE_THROTTLE_RATE,
        **(env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--error-logfile",
        "-",
    ]
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(  # noqa: S603 (our interpreter, fixed arguments)
            command,
            cwd=ROOT,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole
        )
        try:
            _wait_until_healthy(process, port, timeout, log)
            yield RunningServer(base_url=f"http://127.0.0.1:{port}", port=port, process=process)
        finally:
            _stop(process)


def _wait_until_healthy(process: subprocess.Popen, port: int, timeout: float, log) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{_tail(log)}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass  # not listening yet
        finally:
            connection.close()
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer /healthz within {timeout:.0f} s:\n{_tail(log)}")


def _tail(log, characters: int = 4000) -> str:
    log.flush()
    log.seek(0)
    return log.read()[-characters:]


def _stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    """TERM the process group (gunicorn's graceful stop), then KILL whatever is left of it."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return  # the whole group is gone already
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    with suppress(ProcessLookupError):  # a stuck master, or workers that outlived it
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
