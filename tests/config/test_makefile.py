"""What `make run` tells and gives a newcomer (issue 15), read from the Makefile itself."""

from tests.fixtures import make

HOST, PORT = "203.0.113.5", "8123"


def test_make_run_prints_the_api_docs_first():
    printed = make("-n", "run", f"HOST={HOST}", f"PORT={PORT}").splitlines()
    urls = [line for line in printed if line.startswith("echo") and f"http://{HOST}:{PORT}" in line]

    assert urls[0] == f'echo "  API docs   http://{HOST}:{PORT}/api/docs/"'


def test_make_run_links_e_mails_to_the_server_it_starts():
    show = "show-public-base-url: ; @echo $$PUBLIC_BASE_URL"

    printed = make("--eval", show, "show-public-base-url", f"HOST={HOST}", f"PORT={PORT}")

    assert printed.strip() == f"http://{HOST}:{PORT}"


def _script(path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def test_make_run_starts_the_delivery_worker_and_stops_it_with_the_server(tmp_path):
    """The recipe itself, with stand-ins for manage.py and gunicorn: the worker starts beside
    the server and is stopped (SIGTERM) when the server exits."""
    manage = _script(
        tmp_path / "manage",
        f"""#!/bin/sh
if [ "$1" = deliver_notifications ]; then
    trap 'echo "$*" > {tmp_path}/worker.stopped; exit 0' TERM
    echo $$ > {tmp_path}/worker.pid
    while :; do sleep 0.1; done
fi
""",
    )
    _script(
        tmp_path / "gunicorn",
        f"""#!/bin/sh
while [ ! -s {tmp_path}/worker.pid ]; do sleep 0.1; done
echo served > {tmp_path}/server.done
""",
    )

    make("-o", "db", "run", f"MANAGE={manage}", f"BIN={tmp_path}", "DEBUG=0")

    assert (tmp_path / "server.done").exists()
    assert (tmp_path / "worker.stopped").read_text().strip() == "deliver_notifications"
