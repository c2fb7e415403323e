"""Overlapping SLA checks on real PostgreSQL, and the command as cron runs it (exit status).

Transactional tests: each thread (and the subprocess) has its own connection and sees only
committed rows, as concurrent cron runs and API calls do.
"""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import SLABreach, WorkflowStageApproval
from approvals.services import sla_check_breaches, sla_rule_create
from audit.models import AuditLog
from core import rls
from notifications.models import Delivery, Notification
from tests.factories import TenantFactory, UserFactory, WebhookEndpointFactory
from tests.fixtures import define, holder, stage, start
from tests.support import THREAD_TIMEOUT, manage, run_together, start_thread

pytestmark = pytest.mark.django_db(transaction=True)

SLA_TYPES = ("sla_reminder", "sla_breached", "sla_escalated")


def overdue_workflows(tenant, count: int) -> None:
    """``count`` contracts whose single approval is pending, with a 1 h escalating SLA."""
    admin = UserFactory(tenant=tenant, is_tenant_admin=True)
    with rls.tenant_scope(tenant):
        sla_rule_create(
            tenant=tenant,
            created_by=admin,
            sla_hours=1,
            escalation_enabled=True,
            escalate_to_role="lead",
        )
    define(tenant, [stage("Review", ["legal"])])
    holder(tenant, "legal")
    holder(tenant, "legal")
    holder(tenant, "lead")
    WebhookEndpointFactory(tenant=tenant, events=list(SLA_TYPES))
    for n in range(count):
        start(tenant, title=f"Contract {n}")


def written() -> dict:
    return {
        "breaches": SLABreach.objects.count(),
        "distinct_breached_approvals": SLABreach.objects.values("approval").distinct().count(),
        "notifications": {
            kind: Notification.objects.filter(notification_type=kind).count() for kind in SLA_TYPES
        },
        "deliveries": Delivery.objects.filter(event_type__in=SLA_TYPES).count(),
        "audit": AuditLog.objects.filter(action__in=["sla_breached", "sla_escalated"]).count(),
        "reminded": WorkflowStageApproval.objects.filter(reminded_at__isnull=False).count(),
    }


def test_racing_checks_act_on_each_breach_exactly_once(tenant):
    overdue_workflows(tenant, 30)
    now = timezone.now() + timedelta(hours=2)

    results = run_together(*[lambda: sla_check_breaches(now=now) for _ in range(4)])

    assert [kind for kind, _ in results] == ["ok"] * 4, results
    assert sum(result.breached for _, result in results) == 30
    assert sum(result.escalated for _, result in results) == 30
    found = written()
    assert found["breaches"] == found["distinct_breached_approvals"] == 30
    # Two legal holders per breach, one lead per escalation; audit: one of each per breach.
    assert found["notifications"] == {"sla_reminder": 0, "sla_breached": 60, "sla_escalated": 30}
    assert found["audit"] == 60
    # An email per notification, a webhook per event.
    assert found["deliveries"] == 90 + 60


def _wait_until_blocked(pattern: str) -> bool:
    """Whether another backend is waiting on a lock while running a statement like ``pattern``.

    Asked as the tests' login role, past the scope's role switch (a raw cursor, in autocommit):
    only a session's own role sees the statements of the others (the threads' sessions).
    """
    connections["default"].ensure_connection()
    with connections["default"].connection.cursor() as cursor:
        for _ in range(600):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE %s AND pid <> pg_backend_pid()",
                [pattern],
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.05)
    return False


@pytest.mark.parametrize("kind", ["breach", "reminder"])
def test_a_run_overlapping_an_uncommitted_one_waits_then_skips(tenant, kind):
    """Run B starts while run A's writes are uncommitted: B waits on A's rows (the breach's
    unique index, or the reminder's row locks), then finds them taken and does nothing."""
    overdue_workflows(tenant, 5)
    rows = WorkflowStageApproval.objects.all()
    if kind == "breach":
        now = max(row.due_at for row in rows) + timedelta(microseconds=1)
    else:
        now = max(row.remind_at for row in rows)
    a_wrote, b_blocked = threading.Event(), threading.Event()
    results = {}

    def run_a():
        with transaction.atomic():
            results["a"] = sla_check_breaches(now=now)
            a_wrote.set()
            b_blocked.wait(THREAD_TIMEOUT)

    def run_b():
        a_wrote.wait(THREAD_TIMEOUT)
        results["b"] = sla_check_breaches(now=now)

    def in_thread(target):
        def body():
            try:
                target()
            finally:
                connection.close()

        return start_thread(body)

    thread_a, thread_b = in_thread(run_a), in_thread(run_b)
    assert a_wrote.wait(THREAD_TIMEOUT)
    table = "approvals_slabreach" if kind == "breach" else "FOR UPDATE"
    blocked = _wait_until_blocked(f"%{table}%")
    b_blocked.set()
    thread_a.join(THREAD_TIMEOUT)
    thread_b.join(THREAD_TIMEOUT)

    assert blocked, "run B never waited on run A"
    assert not thread_a.is_alive()
    assert not thread_b.is_alive()
    if kind == "breach":
        assert (results["a"].breached, results["b"].breached) == (5, 0)
        assert results["b"].checked == 5  # B saw them pending, and lost every one to A
    else:
        assert (results["a"].reminded, results["b"].reminded) == (5, 0)
    found = written()
    assert found["breaches"] == (5 if kind == "breach" else 0)
    assert found["notifications"]["sla_breached"] == (10 if kind == "breach" else 0)
    assert found["notifications"]["sla_reminder"] == (0 if kind == "breach" else 10)
    assert found["audit"] == (10 if kind == "breach" else 0)


@pytest.mark.rls_bypass("checks and counts every tenant's approvals, as the all-tenant check does")
def test_parallel_sessions_split_tenants_and_add_up(other_tenant, tenant):
    """``jobs=2``: the tenants with work are split over two sessions; together they do exactly
    what one session would (the same rows, once)."""
    third = TenantFactory()
    for owner, count in ((tenant, 6), (other_tenant, 4), (third, 3)):
        overdue_workflows(owner, count)
    now = timezone.now() + timedelta(hours=2)

    result = sla_check_breaches(now=now, jobs=2)

    assert (result.checked, result.breached, result.escalated) == (13, 13, 13)
    assert {tenant_id: counts["breached"] for tenant_id, counts in result.by_tenant.items()} == {
        tenant.pk: 6,
        other_tenant.pk: 4,
        third.pk: 3,
    }
    found = written()
    assert found["breaches"] == found["distinct_breached_approvals"] == 13
    assert found["notifications"] == {"sla_reminder": 0, "sla_breached": 26, "sla_escalated": 13}
    with CaptureQueriesContext(connection) as queries:
        again = sla_check_breaches(now=now, jobs=2)
    assert again.as_dict() == {"checked": 0, "breached": 0, "escalated": 0, "reminded": 0}
    # Nothing due: the workload finds no tenant, so the breach and reminder statements, which
    # would scan every breached row again, do not run.
    assert not [query for query in queries if "new_breaches AS" in query["sql"]]
    assert not [query for query in queries if "reminded AS" in query["sql"]]


# --- the command as cron runs it ------------------------------------------------------------


@pytest.mark.rls_bypass("sets and counts every tenant's approvals around the commands")
def test_command_exit_status(tenant, other_tenant):
    overdue_workflows(tenant, 2)
    overdue_workflows(other_tenant, 1)
    WorkflowStageApproval.objects.update(due_at=timezone.now() - timedelta(minutes=1))

    ran = manage("check_sla_breaches", "--tenant", tenant.slug)
    everyone = manage("check_sla_breaches", "--jobs", "2")  # the other tenant, in a second session
    again = manage("check_sla_breaches")
    unknown_tenant = manage("check_sla_breaches", "--tenant", "no-such-tenant")
    bad_option = manage("check_sla_breaches", "--every", "5")
    bad_jobs = manage("check_sla_breaches", "--jobs", "0")

    assert ran.returncode == 0, ran.stderr
    assert f"{tenant.slug}: 2 past due, recorded 2 breaches (2 escalated)" in ran.stdout
    assert everyone.returncode == 0, everyone.stderr
    assert f"{other_tenant.slug}: 1 past due, recorded 1 breaches" in everyone.stdout
    assert again.returncode == 0, again.stderr
    assert "checked 0, breached 0" in again.stdout
    assert unknown_tenant.returncode == 1
    assert "No tenant" in unknown_tenant.stderr
    assert bad_option.returncode == 2
    assert "unrecognized arguments" in bad_option.stderr
    assert bad_jobs.returncode == 2
    assert SLABreach.objects.count() == 3
