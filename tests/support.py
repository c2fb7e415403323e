"""Helpers for tests that go beyond one request: racing threads and child processes."""

import contextvars
import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.db import connection

from config.database import admin_url

ROOT = Path(__file__).resolve().parent.parent
THREAD_TIMEOUT = 60


def start_thread(target, *args) -> threading.Thread:
    """A started thread running ``target(*args)`` in a copy of this context.

    A new thread starts with an empty context; the copy carries the test's row-level security
    scope (``core.rls``) and request context, as the code under test would see them.
    """
    thread = threading.Thread(target=contextvars.copy_context().run, args=(target, *args))
    thread.start()
    return thread


def run_together(*calls):
    """Run the callables in threads released at once; ("ok", value) or ("error", exc) each.

    Each thread connects before the barrier, so only the calls themselves race.
    """
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def worker(index, call):
        try:
            connection.ensure_connection()
            barrier.wait(timeout=THREAD_TIMEOUT)
            results[index] = ("ok", call())
        except Exception as exc:
            results[index] = ("error", exc)
        finally:
            connection.close()

    threads = [start_thread(worker, index, call) for index, call in enumerate(calls)]
    for thread in threads:
        thread.join(THREAD_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (deadlock?)"
    return results


def child_database_url() -> str:
    """``DATABASE_URL`` for a child process working on this test's database."""
    url = urlsplit(admin_url())
    return urlunsplit(url._replace(path=f"/{connection.settings_dict['NAME']}"))


def manage_environment(**env: str) -> dict[str, str]:
    """The environment of a ``manage.py`` child process on this test's database (so only
    committed rows count), connecting as the app role, as the deployed commands do."""
    child_env = {
        **os.environ,
        "DATABASE_URL": child_database_url(),
        "DATABASE_ROLE": "app",
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    child_env.pop("TEST_DATABASE_NAME", None)
    return child_env


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """``manage.py`` run to its end in a child process (see ``manage_environment``)."""
    return subprocess.run(  # noqa: S603 (our own interpreter and manage.py, fixed arguments)
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=manage_environment(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
