"""Every command line README and docs/ show runs as written in a checkout (issue 15).

The management-command lines of their code blocks run in a shell at the checkout's root with the
environment a developer's shell has after `make run`: no SECRET_KEY or JWT_SIGNING_KEY exported
(the settings read the key file `make` wrote), only DATABASE_URL pointing at this test's database,
which holds the demo tenant and one contract in review. A new documented line adds its expected
output to DOCUMENTED below.

README's five-minute tour runs against a live server holding the demo tenant, and prints what
its `# -> ` comments say it prints.
"""

import io
import os
import re
import shlex
import signal
import subprocess
import sys

import pytest
from django.core.management import call_command

from approvals import lifecycle as contract_services
from config import secret_key
from tenancy.models import Tenant, User
from tests.support import ROOT, child_database_url, manage_environment

COMMAND_TIMEOUT = 120
CODE_BLOCK = re.compile(r"^```(?:sh|cron)\n(.*?)^```", re.MULTILINE | re.DOTALL)
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CRON_SCHEDULE_FIELDS = 5
README_CHECKOUT = "/srv/clm"  # the cron line's example checkout

# Command (README comments dropped) -> a line its output contains. Lines that run until stopped
# are in RUN_UNTIL_STOPPED instead, with the line they print once they are running.
DOCUMENTED = {
    ".venv/bin/python manage.py check_sla_breaches": (
        "SLA check (all tenants): checked 0, breached 0, escalated 0, reminded 0"
    ),
    ".venv/bin/python manage.py check_sla_breaches --tenant acme --dry-run": (
        "[dry run] SLA check (tenant acme): checked 0"
    ),
    f"cd {README_CHECKOUT} && .venv/bin/python manage.py check_sla_breaches": (
        "SLA check (all tenants): checked 0"
    ),
    ".venv/bin/python manage.py check_consistency": (
        "Consistency check (all tenants): 0 violation(s) in 1 contract(s), 1 workflow(s), 1 active"
    ),
    ".venv/bin/python manage.py check_consistency --tenant acme": (
        "Consistency check (tenant acme): 0 violation(s) in 1 contract(s)"
    ),
    ".venv/bin/python manage.py deliver_notifications --once": (
        "deliver_notifications: claimed 1, sent 1, retrying 0, failed 0"
    ),
    ".venv/bin/python manage.py purge_idempotency_keys": "purged 0 idempotency key(s)",
    ".venv/bin/python manage.py generate_documents --once": (
        "generate_documents: 0 done, 0 to retry, 0 given up"
    ),
    ".venv/bin/python manage.py unlock_login requester@acme.example": "unlocked 1 address(es)",
}
RUN_UNTIL_STOPPED = {
    ".venv/bin/python manage.py deliver_notifications": "deliver_notifications: running",
    ".venv/bin/python manage.py generate_documents": "generate_documents: running",
}


def documented_lines() -> list[str]:
    """The `manage.py` lines of the documents' sh and cron blocks, comments and cron schedule
    dropped."""
    found = []
    blocks = [block for path in DOCUMENTS for block in CODE_BLOCK.findall(path.read_text())]
    for block in blocks:
        for line in block.splitlines():
            if "manage.py" not in line:
                continue
            words = shlex.split(line, comments=True)
            if line.lstrip().startswith("*/"):  # a crontab line: five schedule fields first
                words = words[CRON_SCHEDULE_FIELDS:]
            found.append(" ".join(words))
    return found


def test_the_documents_show_these_commands():
    assert sorted(documented_lines()) == sorted({**DOCUMENTED, **RUN_UNTIL_STOPPED})


@pytest.fixture
def demo_tenant(transactional_db):
    """What `make run` loads, committed (child processes and the live server see only that)."""
    call_command("seed_demo", stdout=io.StringIO())


@pytest.fixture
def checkout_after_make_run(demo_tenant):
    """The demo tenant with one contract in review, and the key file."""
    secret_key.local_secret_key()  # what `make` creates before anything else
    tenant = Tenant.objects.get(slug="acme")
    contract_services.contract_create(
        tenant=tenant,
        created_by=User.objects.get(email="requester@acme.example"),
        title="Globex MSA",
        contract_type="MSA",
        value="750000.00",
        counterparty="Globex",
    )
    env = {
        name: value
        for name, value in os.environ.items()
        if name
        not in {
            "SECRET_KEY",
            "JWT_SIGNING_KEY",
            "DJANGO_SETTINGS_MODULE",
            "DATABASE_ROLE",
            "TEST_DATABASE_NAME",
        }
    }
    return {**env, "DATABASE_URL": child_database_url()}


def shell_line(command: str) -> str:
    return command.replace(f"cd {README_CHECKOUT} ", f"cd {shlex.quote(str(ROOT))} ")


@pytest.mark.parametrize("command", sorted(DOCUMENTED))
def test_a_documented_command_runs_as_written(checkout_after_make_run, command):
    result = subprocess.run(  # noqa: S603 (README's own lines, run by our shell)
        ["/bin/sh", "-c", shell_line(command)],
        cwd=ROOT,
        env=checkout_after_make_run,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert DOCUMENTED[command] in result.stdout, result.stdout


@pytest.mark.parametrize("command", sorted(RUN_UNTIL_STOPPED))
def test_a_documented_worker_runs_until_stopped(checkout_after_make_run, command):
    worker = subprocess.Popen(  # noqa: S603 (README's own line, run by our shell)
        ["/bin/sh", "-c", f"exec {shell_line(command)}"],
        cwd=ROOT,
        env={**checkout_after_make_run, "PYTHONUNBUFFERED": "1"},  # its first line, at once
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = worker.stdout.readline()
        assert RUN_UNTIL_STOPPED[command] in first_line, worker.stderr.read()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(COMMAND_TIMEOUT) == 0
        worker_name = command.split("manage.py ", 1)[1]
        assert f"{worker_name}: stopped" in worker.stdout.read()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        worker.stdout.close()
        worker.stderr.close()


README_SERVER = "http://127.0.0.1:8000"  # where `make run` serves, as the tour addresses it
EXPECTED_OUTPUT = "# -> "


def tour() -> str:
    """The sh blocks of README's five-minute tour, as one script."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## A five-minute tour\n", 1)[1].split("\n## ", 1)[0]
    return "".join(re.findall(r"^```sh\n(.*?)^```", section, re.MULTILINE | re.DOTALL))


def assert_printed_in_order(output: str, expected_lines: list[str]) -> None:
    """Each expected line appears after the previous one; `...` in a line stands for anything."""
    position = 0
    for line in expected_lines:
        for piece in filter(None, line.split("...")):
            found = output.find(piece, position)
            assert found >= 0, f"{piece!r} is not printed after offset {position}:\n{output}"
            position = found + len(piece)


def test_the_readme_tour_prints_what_it_shows(demo_tenant, live_server, tmp_path):
    script = tour()
    assert README_SERVER in script
    expected = [
        line.strip().removeprefix(EXPECTED_OUTPUT)
        for line in script.splitlines()
        if line.strip().startswith(EXPECTED_OUTPUT)
    ]
    assert len(expected) > 10, "the tour shows what it prints"

    # `make run` runs the documents worker beside the server; the tour waits for its certificate.
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "generate_documents", "--sleep", "0.5"],
        cwd=ROOT,
        env=manage_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        result = subprocess.run(  # noqa: S603 (README's own lines, run by bash)
            [
                "/bin/bash",
                "-e",
                "-o",
                "pipefail",
                "-c",
                script.replace(README_SERVER, live_server.url),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    finally:
        worker.terminate()
        worker.wait(COMMAND_TIMEOUT)

    assert result.returncode == 0, result.stdout + result.stderr
    assert_printed_in_order(result.stdout, expected)
