"""Delete expired Idempotency-Key records (and claims abandoned by a dead request), all tenants.

Each new claim already purges its own user's expired keys, so this only keeps the table small
for users who stopped sending keys; run it from cron, e.g. hourly. Idempotent.
"""

from audit.services import audited_rls_bypass
from tenancy.idempotency import purge_expired
from tenancy.worker import WorkerCommand


class Command(WorkerCommand):
    help = "Delete expired Idempotency-Key records; prints how many."

    def handle(self, *args, **options):
        with audited_rls_bypass(reason="purge_idempotency_keys: every tenant"):
            deleted = purge_expired()
        self.stdout.write(f"purged {deleted} idempotency key(s)")
