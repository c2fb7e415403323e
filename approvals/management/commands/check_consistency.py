"""Check workflow state against the orchestrator's invariants: every tenant, or one.

Read-only and safe on a live system (each rule is one SQL statement over one snapshot). Lists
each violation, then a summary line. Exit status 0 when nothing is wrong, 1 when something is (so
it can gate a deploy or page someone from cron), other non-zero values on bad arguments or a
database error.
"""

import sys

from approvals.consistency import consistency_check
from audit.services import audited_rls_bypass
from tenancy.cli import tenant_option
from tenancy.models import Tenant
from tenancy.worker import WorkerCommand


class Command(WorkerCommand):
    help = (
        "Check that every workflow's stages, approvals and contract status agree "
        "(exit status 1 when something does not)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Only this tenant (slug or id).")

    def handle(self, *args, tenant=None, **options):
        only = tenant_option(tenant) if tenant is not None else None
        # Unscoped, the tenant policies would hide every row and the check would find nothing;
        # a tenant's scope would hide the other side of a cross-tenant row.
        with audited_rls_bypass(reason="check_consistency: reads workflow state across tenants"):
            report = consistency_check(tenant_id=only.pk if only else None)
        slugs = dict(
            Tenant.objects.filter(
                pk__in={violation.tenant_id for violation in report.violations}
            ).values_list("pk", "slug")
        )
        for violation in report.violations:
            self.stdout.write(
                f"{violation.code}: tenant {slugs.get(violation.tenant_id, violation.tenant_id)} "
                f"contract {violation.contract_id} workflow {violation.instance_id}: "
                f"{violation.detail}"
            )
        scope = f"tenant {only.slug}" if only else "all tenants"
        found = len(report.violations)
        self.stdout.write(
            f"Consistency check ({scope}): {found} violation(s) in {report.contracts} "
            f"contract(s), {report.instances} workflow(s), {report.active_instances} active"
        )
        if found:
            sys.exit(1)
