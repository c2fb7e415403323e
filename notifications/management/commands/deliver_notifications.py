"""The email and webhook delivery worker.

    python manage.py deliver_notifications              # run until SIGTERM / SIGINT
    python manage.py deliver_notifications --once       # deliver what is due now, then exit

Several workers may run side by side (rows are claimed with FOR UPDATE SKIP LOCKED and a lease);
see notifications/delivery.py and docs/operations.md.
"""

import argparse
import logging
import signal
import threading

from django.db import DatabaseError, close_old_connections

from audit.services import audited_rls_bypass
from notifications.delivery import BatchResult, drain
from tenancy.worker import WorkerCommand

logger = logging.getLogger(__name__)

MAX_BATCH_SIZE = 1000


def _batch_size(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an integer: {raw!r}") from exc
    if not 1 <= value <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_BATCH_SIZE}")
    return value


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from exc
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 3600 seconds")
    return value


class Command(WorkerCommand):
    help = "Deliver queued notification emails and webhooks (several workers may run at once)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--once", action="store_true", help="deliver everything due now, then exit"
        )
        parser.add_argument(
            "--batch-size",
            type=_batch_size,
            default=50,
            help="rows claimed per transaction (default 50)",
        )
        parser.add_argument(
            "--sleep",
            type=_seconds,
            default=2.0,
            help="seconds to wait when nothing is due (default 2)",
        )

    def handle(self, *args, **options):
        # The queue holds every tenant's deliveries: the worker is a cross-tenant job.
        with audited_rls_bypass(reason="deliver_notifications: every tenant's queue"):
            self._deliver(**options)

    def _deliver(self, *, once: bool, batch_size: int, sleep: float, **options):
        stop = threading.Event()
        if once:
            result = drain(batch_size=batch_size, should_stop=stop.is_set)
            self.stdout.write(f"deliver_notifications: {result}")
            return
        self._stop_on_signals(stop)
        self.stdout.write(f"deliver_notifications: running (batch size {batch_size})")
        total = BatchResult()
        while not stop.is_set():
            close_old_connections()  # honour CONN_MAX_AGE and drop broken connections
            try:
                result = drain(batch_size=batch_size, should_stop=stop.is_set)
            except DatabaseError:
                logger.exception("delivery batch failed; retrying after a pause")
                close_old_connections()
                stop.wait(sleep)
                continue
            total += result
            if result.claimed:
                logger.info("delivered a batch", extra={"result": str(result)})
            else:
                stop.wait(sleep)
        self.stdout.write(f"deliver_notifications: stopped; {total}")

    @staticmethod
    def _stop_on_signals(stop: threading.Event) -> None:
        """Finish the row being sent, give the rest of the batch back, exit."""

        def handler(signum, frame):
            stop.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, handler)
            signal.signal(signal.SIGINT, handler)
