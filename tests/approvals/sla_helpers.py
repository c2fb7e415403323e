"""Shared set-up for the SLA tests: workflows started through the services, as in production.

Each service call runs in the scope of the tenant it acts for, as a request of that tenant would.
"""

from datetime import datetime
from decimal import Decimal

from approvals.lifecycle import contract_create
from approvals.models import WorkflowStageApproval
from core import rls
from tests.factories import UserFactory, UserRoleFactory
from workflows.services import definition_create


def holder(tenant, role, **fields):
    """A new active user of ``tenant`` holding ``role``."""
    return UserRoleFactory(user=UserFactory(tenant=tenant), role=role, **fields).user


def stage(name, approvers, sequence=1, sla_hours=None, **fields):
    return {
        "stage_name": name,
        "sequence": sequence,
        "approvers": approvers,
        "sla_hours": sla_hours,
        **fields,
    }


def define(tenant, stages, contract_type="SLA", name=None):
    """An active definition matching contracts of ``contract_type``."""
    admin = UserFactory(tenant=tenant, is_tenant_admin=True)
    with rls.tenant_scope(tenant):
        return definition_create(
            tenant=tenant,
            created_by=admin,
            name=name or f"SLA flow {contract_type}",
            trigger_conditions={"contract_type": contract_type},
            stages=stages,
        )


def start(tenant, contract_type="SLA", creator=None, title="Globex MSA"):
    """A contract created through the service: the matching workflow starts with it."""
    creator = creator or UserFactory(tenant=tenant)
    with rls.tenant_scope(tenant):
        return contract_create(
            tenant=tenant,
            created_by=creator,
            title=title,
            contract_type=contract_type,
            value=Decimal("1000.00"),
        )


def pending_approvals(contract) -> list[WorkflowStageApproval]:
    return list(
        WorkflowStageApproval.objects.filter(contract=contract, status="pending").order_by("id")
    )


def freeze(monkeypatch, moment: datetime) -> None:
    """``timezone.now()`` returns ``moment`` (the orchestrator stamps stage starts with it)."""
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: moment)
