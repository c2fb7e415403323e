"""Record SLA breaches, escalate them and send due reminders: every tenant, or one.

Meant for cron (docs/operations.md: every five minutes). Idempotent and safe to overlap with
itself: a breach or a reminder is acted on by exactly one run. Exit status 0 when the check ran
(whether or not it found anything), non-zero on bad arguments or a database error.
"""

from approvals.services import sla_check_breaches
from audit.services import audited_rls_bypass
from core import rls
from tenancy.cli import tenant_option
from tenancy.models import Tenant
from tenancy.worker import WorkerCommand

# Two sessions use both cores of a small server; tenants are never split across sessions.
DEFAULT_JOBS = 2
MAX_JOBS = 16


class Command(WorkerCommand):
    help = "Record SLA breaches (with escalation) and send SLA reminders; prints what it found."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Only this tenant (slug or id).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be done; change nothing."
        )
        parser.add_argument(
            "--jobs",
            type=int,
            default=DEFAULT_JOBS,
            choices=range(1, MAX_JOBS + 1),
            metavar=f"1..{MAX_JOBS}",
            help="Database sessions checking groups of tenants at once (default: %(default)s).",
        )

    def handle(self, *args, tenant=None, dry_run=False, jobs=DEFAULT_JOBS, **options):
        only = tenant_option(tenant) if tenant is not None else None
        # One tenant runs in its scope; every tenant is the one cross-tenant job (a logged bypass).
        scope = (
            rls.tenant_scope(only)
            if only
            else audited_rls_bypass(reason="check_sla_breaches: all tenants")
        )
        with scope:
            result = sla_check_breaches(tenant=only, dry_run=dry_run, jobs=jobs)
        names = dict(Tenant.objects.filter(pk__in=list(result.by_tenant)).values_list("pk", "slug"))
        prefix = "[dry run] would record" if dry_run else "recorded"
        for tenant_id, counts in sorted(
            result.by_tenant.items(), key=lambda item: names.get(item[0], "")
        ):
            self.stdout.write(
                f"{names.get(tenant_id, tenant_id)}: {counts['checked']} past due, "
                f"{prefix} {counts['breached']} breaches ({counts['escalated']} escalated), "
                f"{counts['reminded']} reminders"
            )
        scope = f"tenant {only.slug}" if only else "all tenants"
        self.stdout.write(
            f"{'[dry run] ' if dry_run else ''}SLA check ({scope}): checked {result.checked}, "
            f"breached {result.breached}, escalated {result.escalated}, "
            f"reminded {result.reminded}"
        )
