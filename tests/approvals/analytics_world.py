"""A hand-built set of workflows with exact durations, for the analytics tests (the table in
``tests/approvals/test_analytics.py``); the dashboard's tests draw the same world."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from approvals.orchestrator import approval_act, workflow_cancel
from approvals.services import sla_check_breaches
from core import rls
from tests.approvals.sla_helpers import define, holder, stage, start
from tests.factories import TenantFactory, UserFactory

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
DEAL_STAGES = [
    stage("Legal Review", ["legal"], sequence=1, sla_hours=48),
    stage("Finance Approval", ["finance", "cfo"], sequence=2, sla_hours=24, approval_type="any"),
]
NDA_STAGES = [stage("Legal Review", ["legal"], sequence=1, sla_hours=24)]


@dataclass
class World:
    tenant: object
    deal: object
    nda: object
    requester: object
    legal: object
    stand_in: object
    finance: object
    cfo: object
    contracts: list


def decide(clock, moment, contract, actor, action="approve", **extra):
    with clock(moment), rls.tenant_scope(contract.tenant):
        approval_act(
            tenant=contract.tenant, contract_id=contract.pk, actor=actor, action=action, **extra
        )


def started(clock, moment, tenant, contract_type, creator):
    with clock(moment):
        return start(tenant, contract_type=contract_type, creator=creator)


def build_world(tenant, clock) -> World:
    deal = define(tenant, DEAL_STAGES, contract_type="MSA", name="Deal Review")
    nda = define(tenant, NDA_STAGES, contract_type="NDA", name="NDA Fast Track")
    requester = UserFactory(tenant=tenant, email=f"requester@{tenant.slug}.example")
    legal = holder(tenant, "legal")
    stand_in = UserFactory(tenant=tenant)
    finance = holder(tenant, "finance")
    cfo = holder(tenant, "cfo")
    w = World(tenant, deal, nda, requester, legal, stand_in, finance, cfo, [])

    def begin(day: int, contract_type="MSA"):
        s = T0 + timedelta(days=day)
        contract = started(clock, s, tenant, contract_type, requester)
        w.contracts.append(contract)
        return s, contract

    s, c = begin(0)  # W1
    decide(clock, s + 10 * H, c, legal)
    decide(clock, s + 14 * H, c, finance)

    s, c = begin(1)  # W2
    decide(clock, s + 20 * H, c, legal)
    decide(clock, s + 50 * H, c, cfo, "reject")

    s, c = begin(2)  # W3
    assert sla_check_breaches(tenant=tenant, now=s + 49 * H).breached == 1
    decide(clock, s + 60 * H, c, legal, "reject")

    s, c = begin(3)  # W4
    with clock(s + 5 * H):
        workflow_cancel(tenant=tenant, contract_id=c.pk, actor=requester)

    s, c = begin(4)  # W5
    decide(clock, s + 6 * H, c, legal, "delegate", delegate_to=stand_in)
    decide(clock, s + 16 * H, c, stand_in)
    assert sla_check_breaches(tenant=tenant, now=s + 41 * H).breached == 2

    s, c = begin(5, "NDA")  # W6
    decide(clock, s + 2 * H, c, legal)
    return w


def build_other_tenant(clock):
    """Tenant B: one Deal Review with a 1000-hour, breached Legal decision."""
    tenant = TenantFactory()
    define(tenant, DEAL_STAGES, contract_type="MSA", name="Deal Review")
    legal, finance = holder(tenant, "legal"), holder(tenant, "finance")
    contract = started(clock, T0, tenant, "MSA", UserFactory(tenant=tenant))
    with rls.tenant_scope(tenant):
        sla_check_breaches(tenant=tenant, now=T0 + 49 * H)
    decide(clock, T0 + 1000 * H, contract, legal)
    decide(clock, T0 + 1001 * H, contract, finance)
    return tenant, {legal.pk, finance.pk}
