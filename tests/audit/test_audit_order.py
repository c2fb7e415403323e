"""Audit rows are listed in the order they were written: by `(created_at, seq)`, newest first.

`created_at` is the statement's time: every row of one INSERT shares it (a workflow transition
writes all of its rows in one). `seq` comes from a PostgreSQL sequence, numbered by the database
as rows are inserted, so it breaks those ties in insertion order; the random UUID that broke
them before listed the rows of one INSERT in any order.
"""

from datetime import timedelta

import pytest
from django.db import ProgrammingError, connection, transaction

from approvals.models import WorkflowStageApproval
from approvals.services import sla_check_breaches, sla_rule_create
from audit.models import SEQ_SEQUENCE, AuditLog
from audit.services import audit_record, audit_record_many
from tests.factories import UserFactory
from tests.fixtures import define, holder, stage, start
from workflows import services as workflow_services

pytestmark = pytest.mark.django_db

URL = "/api/audit-logs/"


def listed(client, params=None, page_size=50) -> list[dict]:
    """Every row the listing returns, following `next` links."""
    rows = []
    response = client.get(URL, {"page_size": page_size, **(params or {})})
    while True:
        assert response.status_code == 200, response.content
        rows += response.json()["results"]
        if response.json()["next"] is None:
            return rows
        response = client.get(response.json()["next"])


def test_rows_of_one_insert_are_listed_in_reverse_of_writing(auditor_client, tenant):
    written = [f"step_{number:02d}" for number in range(40)]

    rows = audit_record_many([{"action": action, "tenant": tenant} for action in written])

    # One INSERT: one created_at for all, so only seq orders them.
    assert len({row.created_at for row in rows}) == 1
    assert [row.seq for row in rows] == sorted(row.seq for row in rows)
    for page_size in (1, 7, 50):
        actions = [row["action"] for row in listed(auditor_client, page_size=page_size)]
        assert actions == written[::-1], page_size


def test_seq_is_set_by_the_database_in_insertion_order(tenant):
    with transaction.atomic():
        first = audit_record(action="login", tenant=tenant)
        many = audit_record_many(
            [{"action": "a", "tenant": tenant}, {"action": "b", "tenant": tenant}]
        )
        last = audit_record(action="logout", tenant=tenant)

    seqs = [first.seq, *(row.seq for row in many), last.seq]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 4
    stored = AuditLog.objects.filter(tenant=tenant).order_by("created_at", "seq")
    assert [row.action for row in stored] == ["login", "a", "b", "logout"]


def test_a_contract_create_is_listed_in_reverse_of_what_it_wrote(
    api_client_for, auditor_client, tenant, role_holder
):
    """`contract_create` writes contract_created, workflow_started, stage_started in one INSERT."""
    workflow_services.definition_create(
        tenant=tenant,
        created_by=UserFactory(tenant=tenant, is_tenant_admin=True),
        name="Ordered",
        trigger_conditions={"contract_type": "ORDERED"},
        stages=[
            {
                "stage_name": "Legal",
                "sequence": 1,
                "approvers": ["legal"],
                "approval_type": "all",
                "sla_hours": 24,
                "is_required": True,
            }
        ],
    )
    role_holder("legal")
    requester = UserFactory(tenant=tenant)
    response = api_client_for(requester).post(
        "/api/contracts/", {"title": "Ordered", "contract_type": "ORDERED"}, format="json"
    )
    assert response.status_code == 201, response.content

    rows = listed(auditor_client)
    newest = rows[:3]
    assert [row["action"] for row in newest] == [
        "stage_started",
        "workflow_started",
        "contract_created",
    ]
    assert len({row["created_at"] for row in newest}) == 1  # a tie that only seq breaks
    assert rows[3]["action"] == "workflow_definition_created"


def test_the_sla_checks_rows_are_numbered_as_things_happened(auditor_client, tenant):
    """Approvals in the order they fell due, each one's breach before its escalation."""
    sla_rule_create(
        tenant=tenant,
        created_by=UserFactory(tenant=tenant, is_tenant_admin=True),
        contract_type="SLA",
        stage_name="Legal Review",
        sla_hours=10,
        escalation_enabled=True,
        escalate_to_role="legal-lead",
    )
    define(tenant, [stage("Legal Review", ["legal"])])
    holder(tenant, "legal")
    for title in ("First", "Second", "Third"):
        start(tenant, title=title)
    approvals = list(WorkflowStageApproval.objects.order_by("id"))
    # Due in the reverse of their ids' order, so neither the key nor chance gives the order.
    now = max(approval.due_at for approval in approvals) + timedelta(hours=1)
    for hours, approval in enumerate(approvals):
        approval.due_at = now - timedelta(hours=1 + hours)
        WorkflowStageApproval.objects.filter(pk=approval.pk).update(due_at=approval.due_at)

    result = sla_check_breaches(tenant=tenant, now=now)

    assert (result.breached, result.escalated) == (3, 3)
    rows = [
        row for row in listed(auditor_client) if row["action"] in ("sla_breached", "sla_escalated")
    ]
    assert len({row["created_at"] for row in rows}) == 1  # one statement
    due_order = sorted(approvals, key=lambda approval: approval.due_at)
    written = [
        (action, str(approval.pk))
        for approval in due_order
        for action in ("sla_breached", "sla_escalated")
    ]
    assert [(row["action"], row["resource_id"]) for row in rows] == written[::-1]


def test_the_app_role_numbers_rows_but_cannot_set_the_sequence(tenant):
    """The suite runs as the app role: it may call nextval (every insert does), not setval."""
    audit_record(action="login", tenant=tenant)

    def rewind():
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval(%s, 1)", [SEQ_SEQUENCE])

    with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
        rewind()
