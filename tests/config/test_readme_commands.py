"""Every management-command line in README's code blocks runs as written in a checkout (issue 15).

Each line runs in a shell at the checkout's root with the environment a developer's shell has
after `make run`: no SECRET_KEY or JWT_SIGNING_KEY exported (the settings read the key file `make`
wrote), only DATABASE_URL pointing at this test's database, which holds the demo tenant and one
contract in review. A new documented line adds its expected output to DOCUMENTED below.
"""

import io
import os
import re
import shlex
import signal
import subprocess

import pytest
from django.core.management import call_command

from config import secret_key
from contracts import services as contract_services
from tenancy.models import Tenant, User
from tests.support import ROOT, child_database_url

COMMAND_TIMEOUT = 120
CODE_BLOCK = re.compile(r"^```(?:sh|cron)\n(.*?)^```", re.MULTILINE | re.DOTALL)
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
}
RUN_UNTIL_STOPPED = {
    ".venv/bin/python manage.py deliver_notifications": "deliver_notifications: running",
}


def documented_lines() -> list[str]:
    """The `manage.py` lines of README's sh and cron blocks, comments and cron schedule dropped."""
    found = []
    for block in CODE_BLOCK.findall((ROOT / "README.md").read_text()):
        for line in block.splitlines():
            if "manage.py" not in line:
                continue
            words = shlex.split(line, comments=True)
            if line.lstrip().startswith("*/"):  # a crontab line: five schedule fields first
                words = words[CRON_SCHEDULE_FIELDS:]
            found.append(" ".join(words))
    return found


def test_the_readme_documents_these_commands():
    assert sorted(documented_lines()) == sorted({**DOCUMENTED, **RUN_UNTIL_STOPPED})


@pytest.fixture
def checkout_after_make_run(transactional_db):
    """Committed demo data (child processes only see committed rows) and the key file."""
    secret_key.local_secret_key()  # what `make` creates before anything else
    call_command("seed_demo", stdout=io.StringIO())
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
        assert "deliver_notifications: stopped" in worker.stdout.read()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        worker.stdout.close()
        worker.stderr.close()
