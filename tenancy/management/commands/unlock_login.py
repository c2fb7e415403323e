"""Lift the login back-off of accounts at once (``tenancy.throttling``), e.g. for a user on the
phone to support. Works on the shared store, so every worker sees it; an address that is not
backed off (or does not exist) is a no-op. Per-client limits (``AUTH_THROTTLE_RATE``) are left.
"""

from django.core.management.base import BaseCommand

from tenancy import ratelimit
from tenancy.throttling import account_key


class Command(BaseCommand):
    help = "Forget the failed logins of the given e-mail addresses (their back-off ends now)."

    def add_arguments(self, parser):
        parser.add_argument("emails", nargs="+", metavar="EMAIL")

    def handle(self, *args, emails, **options):
        # The store itself, not the request path's fail-open wrapper: an outage is an error here.
        ratelimit.store().clear(*(account_key(email) for email in emails))
        self.stdout.write(f"unlocked {len(emails)} address(es)")
