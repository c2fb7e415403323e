"""The documents worker: approval certificates, signed contracts, signers' links.

    python manage.py generate_documents           # run until SIGTERM / SIGINT
    python manage.py generate_documents --once    # run what is due now, then exit

Several workers may run side by side: each job is claimed FOR UPDATE SKIP LOCKED
(documents/services.py). It runs as the worker role: the queue holds every tenant's jobs.
"""

import logging
import signal
import threading

from django.db import DatabaseError, close_old_connections

from audit.services import audited_rls_bypass
from documents.services import JobsResult, jobs_run_due
from tenancy.worker import WorkerCommand

logger = logging.getLogger(__name__)


class Command(WorkerCommand):
    help = "Generate and seal documents and send signing links (several workers may run at once)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run what is due now, then exit")
        parser.add_argument(
            "--sleep",
            type=float,
            default=2.0,
            help="seconds to wait when nothing is due (default 2)",
        )

    def handle(self, *args, once: bool, sleep: float, **options):
        with audited_rls_bypass(reason="generate_documents: every tenant's document jobs"):
            if once:
                self.stdout.write(f"generate_documents: {jobs_run_due(limit=10**9)}")
                return
            self._run(max(sleep, 0.1))

    def _run(self, sleep: float) -> None:
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
        self.stdout.write("generate_documents: running")
        total = JobsResult()
        while not stop.is_set():
            close_old_connections()
            try:
                result = jobs_run_due(should_stop=stop.is_set)
            except DatabaseError:
                logger.exception("document jobs failed; retrying after a pause")
                stop.wait(sleep)
                continue
            total.done += result.done
            total.retried += result.retried
            total.failed += result.failed
            if not result.claimed:
                stop.wait(sleep)
        self.stdout.write(f"generate_documents: stopped; {total}")
