"""Run the django-viewflow peer benchmark (``bench/peers/viewflow``) on our PostgreSQL server.

The peer lives in a virtual environment of its own (``$VIEWFLOW_VENV``, default
``<temp dir>/clm-bench-viewflow/venv``, created on first use from the peer's pinned
requirements), and in a database of its own on the same server as ours
(``<BENCH_DATABASE_NAME>_viewflow``), dropped and re-created by ``prepare()``. It connects as the
server's admin role: viewflow has no row-level security to respect.

    python bench/_viewflow.py [bench.py run options]    # prepare, then one run; prints its line
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import _django

PEER_DIR = Path(__file__).resolve().parent / "peers" / "viewflow"
VENV = Path(
    os.environ.get("VIEWFLOW_VENV") or Path(tempfile.gettempdir()) / "clm-bench-viewflow" / "venv"
)
DATABASE_NAME = f"{_django.BENCH_DATABASE_NAME}_viewflow"


def _python() -> str:
    return str(VENV / "bin" / "python")


def _environment() -> dict[str, str]:
    """The peer's settings read libpq's variables: our server, as its admin role, its own DB.

    Nothing else of ours is passed on (our ``DJANGO_SETTINGS_MODULE`` and database URLs would
    point the peer at the service).
    """
    import dj_database_url

    from config.database import admin_url

    config = dj_database_url.parse(admin_url())
    host = config.get("HOST") or config.get("OPTIONS", {}).get("host") or ""
    inherited = {name: value for name, value in os.environ.items() if name in ("PATH", "HOME")}
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "benchproj.settings",
        "PGHOST": host,
        "PGPORT": str(config.get("PORT") or 5432),
        "PGUSER": config.get("USER") or "postgres",
        "PGPASSWORD": config.get("PASSWORD") or "",
        "BENCH_DB": DATABASE_NAME,
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _peer(*arguments: str, **kwargs) -> subprocess.CompletedProcess:
    # Our own script and options, never input.
    return subprocess.run(  # noqa: S603
        [_python(), "bench.py", *arguments],
        cwd=PEER_DIR,
        env=_environment(),
        check=True,
        **kwargs,
    )


def prepare() -> None:
    """The peer's venv (once), and a fresh, migrated database with its groups and users."""
    from config.database import admin_url

    if not Path(_python()).exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)  # noqa: S603
    installed = subprocess.run(  # noqa: S603
        [_python(), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-r", str(PEER_DIR / "requirements.txt")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if installed.returncode != 0:
        raise SystemExit(f"installing the viewflow peer failed:\n{installed.stderr}")
    _django.recreate_database(admin_url(), DATABASE_NAME)
    _peer("setup")


def analyze() -> None:
    """ANALYZE the peer's database, as ``_django.analyze`` does ours before each run."""
    from config.database import admin_url, connect

    connection = connect(admin_url(), dbname=DATABASE_NAME)
    try:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    finally:
        connection.close()


def run(*, processes: int, warmup: int, parallel: str = "1,2", repeat: int = 1) -> dict:
    """One run of the peer (each of ``parallel``'s worker counts, ``repeat`` times) on its
    database as it stands, analyzed first; its JSON."""
    analyze()
    with tempfile.NamedTemporaryFile(suffix=".json") as output:
        _peer(
            "run",
            *("-n", str(processes), "-w", str(warmup), "-p", parallel, "-r", str(repeat)),
            *("--json", output.name),
            stdout=subprocess.DEVNULL,
        )
        return json.loads(Path(output.name).read_text())


def main(argv: list[str]) -> None:
    prepare()
    _peer("run", *argv)


if __name__ == "__main__":
    main(sys.argv[1:])
