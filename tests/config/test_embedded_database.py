"""`make stop` (issue 15): there was no documented way to stop the embedded PostgreSQL."""

import os

import pytest

from config.database import _embedded_server, stop_embedded
from tests.fixtures import make


@pytest.fixture
def embedded(tmp_path, monkeypatch):
    """A private embedded server (not the one the tests use), as `make run` starts one."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    data_dir = tmp_path / "pg"
    _embedded_server(data_dir)
    yield data_dir
    stop_embedded(data_dir)  # whatever the test did


def test_stop_stops_the_embedded_server_and_keeps_its_data(embedded):
    assert (embedded / "postmaster.pid").exists()

    said = stop_embedded(embedded)

    assert said.startswith("Stopped the embedded PostgreSQL")
    assert not (embedded / "postmaster.pid").exists()
    assert (embedded / "PG_VERSION").exists()
    assert stop_embedded(embedded).startswith("The embedded PostgreSQL is not running")


def test_make_stop_is_a_no_op_with_a_message_when_database_url_is_set():
    env = {**os.environ, "DATABASE_URL": "postgres://somebody@db.example:5432/clm"}

    said = make("stop", env=env)

    assert said.strip() == (
        "DATABASE_URL is set, so the project runs no embedded PostgreSQL: nothing to stop."
    )
