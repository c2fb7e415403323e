"""What `make run` tells and gives a newcomer (issue 15), read from the Makefile itself."""

import os
import subprocess

from tests.support import ROOT

HOST, PORT = "203.0.113.5", "8123"


def make(*args: str, env: dict | None = None) -> str:
    """``make`` at the checkout's root (``-n`` prints recipes instead of running them), in this
    environment without PUBLIC_BASE_URL unless ``env`` is given."""
    result = subprocess.run(  # noqa: S603 (fixed arguments)
        ["make", "--no-print-directory", *args],  # noqa: S607 (make from PATH, as a developer's)
        cwd=ROOT,
        env=env or {name: value for name, value in os.environ.items() if name != "PUBLIC_BASE_URL"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def test_make_run_prints_the_api_docs_first():
    printed = make("-n", "run", f"HOST={HOST}", f"PORT={PORT}").splitlines()
    urls = [line for line in printed if line.startswith("echo") and f"http://{HOST}:{PORT}" in line]

    assert urls[0] == f'echo "  API docs   http://{HOST}:{PORT}/api/docs/"'


def test_make_run_links_e_mails_to_the_server_it_starts():
    show = "show-public-base-url: ; @echo $$PUBLIC_BASE_URL"

    printed = make("--eval", show, "show-public-base-url", f"HOST={HOST}", f"PORT={PORT}")

    assert printed.strip() == f"http://{HOST}:{PORT}"
