"""GET /api/analytics/workflows/ and ``approvals.analytics.workflow_analytics``.

The figures are checked against a hand-built set of workflows, run through the services (as in
production) with the clock frozen at chosen instants, so every duration is an exact number of
hours. Six workflows of tenant A, starting one day apart at 09:00 UTC from Monday 2 March 2026
(``S`` is each one's start; Legal Review is due after 48 h on Deal Review, 24 h on NDA):

========  ==========  ===================================================================
W1        Deal Review Legal approves at S+10; Finance (F) approves at S+14: completed, 14 h
W2        Deal Review Legal approves at S+20; CFO rejects at S+50 (due S+44): rejected, 50 h
W3        Deal Review breach check at S+49 (Legal overdue), Legal rejects at S+60: rejected
W4        Deal Review cancelled by its creator at S+5 (Legal never decided): cancelled, 5 h
W5        Deal Review Legal delegates to L2 at S+6, L2 approves at S+16; Finance due S+40,
                      breach check at S+41 (finance and cfo rows breach): active
W6        NDA         Legal approves at S+2: completed, 2 h
========  ==========  ===================================================================

Tenant B runs a Deal Review of its own (a 1000-hour decision, a breach): never counted for A.
"""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.analytics import analytics_period, workflow_analytics
from approvals.models import SLABreach, WorkflowInstance
from approvals.orchestrator import approval_act
from approvals.services import sla_check_breaches
from core import rls
from tests.factories import TenantFactory, UserFactory, UserRoleFactory
from tests.fixtures import DEAL_STAGES, T0, H, build_other_tenant, define, holder, start, started

pytestmark = pytest.mark.django_db

URL = "/api/analytics/workflows/"


def workflow_row(world, definition, **figures):
    return {"definition": {"id": definition.pk, "name": definition.name}, **figures}


def approver_row(user, decided, hours):
    return {
        "user": {"id": user.pk, "email": user.email, "full_name": user.full_name},
        "decided": decided,
        "avg_hours_to_decision": hours,
    }


# --- the figures -------------------------------------------------------------------------------


def test_workflow_figures(world, other):
    figures = workflow_analytics(tenant_id=world.tenant.pk)

    assert figures["workflows"] == [
        workflow_row(
            world,
            world.deal,
            started=5,
            active=1,
            completed=1,
            rejected=2,
            cancelled=1,
            completion_rate=0.25,  # 1 of the 4 finished
            avg_cycle_hours=32.25,  # (14 + 50 + 60 + 5) / 4
        ),
        workflow_row(
            world,
            world.nda,
            started=1,
            active=0,
            completed=1,
            rejected=0,
            cancelled=0,
            completion_rate=1.0,
            avg_cycle_hours=2.0,
        ),
    ]


def test_stage_figures_put_the_bottleneck_first(world, other):
    figures = workflow_analytics(tenant_id=world.tenant.pk)

    assert figures["stages"] == [
        {
            # Decisions 10, 20, 60 (late), 16 (W5, from the stage's start: the delegation
            # included) and 2 (NDA); W4's was never made, W5's delegation is not a decision.
            "stage_name": "Legal Review",
            "decided": 5,
            "avg_hours_to_decision": 21.6,
            # Sorted 2, 10, 16, 20, 60: rank 0.9 * 4 = 3.6, so 20 + 0.6 * (60 - 20).
            "p90_hours_to_decision": 44.0,
            "sla_compliance_rate": 0.8,
            "breaches": 1,
        },
        {
            # 4 (on time) and 30 (late: due after 24 h); W5's two rows breached, undecided.
            "stage_name": "Finance Approval",
            "decided": 2,
            "avg_hours_to_decision": 17.0,
            "p90_hours_to_decision": 27.4,  # 4 + 0.9 * (30 - 4)
            "sla_compliance_rate": 0.5,
            "breaches": 2,
        },
    ]


def test_approver_figures_count_a_delegate_from_the_delegation(world, other):
    figures = workflow_analytics(tenant_id=world.tenant.pk)

    assert figures["approvers"] == [
        approver_row(world.cfo, 1, 30.0),
        approver_row(world.legal, 4, 23.0),  # 10, 20, 60, 2; the delegation is no decision
        approver_row(world.stand_in, 1, 10.0),  # S+6 (delegated) to S+16
        approver_row(world.finance, 1, 4.0),
    ]


def test_a_stage_with_breaches_but_no_decision_is_listed(tenant, clock):
    define(tenant, DEAL_STAGES, contract_type="MSA", name="Deal Review")
    holder(tenant, "legal")
    started(clock, T0, tenant, "MSA", UserFactory(tenant=tenant))
    sla_check_breaches(tenant=tenant, now=T0 + 49 * H)

    figures = workflow_analytics(tenant_id=tenant.pk)

    assert figures["stages"] == [
        {
            "stage_name": "Legal Review",
            "decided": 0,
            "avg_hours_to_decision": None,
            "p90_hours_to_decision": None,
            "sla_compliance_rate": None,
            "breaches": 1,
        }
    ]
    assert figures["workflows"][0]["completion_rate"] is None
    assert figures["workflows"][0]["avg_cycle_hours"] is None
    assert figures["approvers"] == []


def test_empty_tenant_has_empty_sections(other):
    lonely = TenantFactory()

    assert workflow_analytics(tenant_id=lonely.pk) == {
        "period": {"start": None, "end": None},
        "workflows": [],
        "stages": [],
        "approvers": [],
    }


def test_other_tenants_workflows_never_count(world, clock):
    alone = workflow_analytics(tenant_id=world.tenant.pk)
    other_tenant, other_people = build_other_tenant(clock)

    assert workflow_analytics(tenant_id=world.tenant.pk) == alone
    with rls.tenant_scope(other_tenant):
        theirs = workflow_analytics(tenant_id=other_tenant.pk)
    assert [row["started"] for row in theirs["workflows"]] == [1]
    assert theirs["stages"][0]["avg_hours_to_decision"] == 1000.0
    assert theirs["stages"][0]["breaches"] == 1
    assert {row["user"]["id"] for row in theirs["approvers"]} == other_people
    assert not {row["user"]["id"] for row in alone["approvers"]} & other_people
    # The other tenant's breach exists and still is not A's.
    with rls.bypass("the other tenant's breach, seen from outside both"):
        assert SLABreach.objects.exclude(tenant=world.tenant).count() == 1


# --- the period --------------------------------------------------------------------------------


def test_date_range_includes_both_whole_days(world):
    figures = workflow_analytics(
        tenant_id=world.tenant.pk, date_from=date(2026, 3, 4), date_to=date(2026, 3, 5)
    )

    # W3 (4 March, rejected after 60 h with a breach) and W4 (5 March, cancelled after 5 h).
    assert figures["workflows"] == [
        workflow_row(
            world,
            world.deal,
            started=2,
            active=0,
            completed=0,
            rejected=1,
            cancelled=1,
            completion_rate=0.0,
            avg_cycle_hours=32.5,
        )
    ]
    assert figures["stages"] == [
        {
            "stage_name": "Legal Review",
            "decided": 1,
            "avg_hours_to_decision": 60.0,
            "p90_hours_to_decision": 60.0,
            "sla_compliance_rate": 0.0,
            "breaches": 1,
        }
    ]
    assert figures["approvers"] == [approver_row(world.legal, 1, 60.0)]
    assert figures["period"] == {
        "start": datetime(2026, 3, 4, tzinfo=UTC),
        "end": datetime(2026, 3, 6, tzinfo=UTC),
    }


def started_counts(figures) -> dict:
    return {row["definition"]["name"]: row["started"] for row in figures["workflows"]}


def test_date_time_bounds_from_inclusive_to_exclusive(world):
    w3_start = T0 + timedelta(days=2)

    before = workflow_analytics(tenant_id=world.tenant.pk, date_to=w3_start)
    after = workflow_analytics(tenant_id=world.tenant.pk, date_from=w3_start)

    assert started_counts(before) == {"Deal Review": 2}  # W1, W2
    assert started_counts(after) == {"Deal Review": 3, "NDA Fast Track": 1}  # W3 .. W6


def test_dates_are_days_of_the_tenants_time_zone(world):
    # W4 started 5 March 09:00 UTC, which is 4 March 23:00 in Honolulu (UTC-10); W3 (4 March
    # 09:00 UTC) was still 3 March there.
    figures = workflow_analytics(
        tenant_id=world.tenant.pk,
        date_from=date(2026, 3, 4),
        date_to=date(2026, 3, 4),
        timezone="Pacific/Honolulu",
    )

    assert [row["cancelled"] for row in figures["workflows"]] == [1]
    assert started_counts(figures) == {"Deal Review": 1}


def test_period_edges_and_errors():
    assert analytics_period() == analytics_period(None, None)
    whole_range = analytics_period(date(1, 1, 1), date(9999, 12, 31), timezone="Asia/Tokyo")
    assert whole_range.start == datetime.min.replace(tzinfo=UTC)  # clamped, not an error
    assert whole_range.end is None
    naive = analytics_period(datetime(2026, 3, 4, 12, 0), timezone="Europe/Berlin")
    assert naive.start == datetime(2026, 3, 4, 11, 0, tzinfo=UTC)
    with pytest.raises(ValidationError, match="date_to"):
        analytics_period(date(2026, 3, 5), date(2026, 3, 4))
    with pytest.raises(ValidationError, match="date_to"):
        analytics_period(T0, T0)  # an empty period


# --- the endpoint ------------------------------------------------------------------------------


def test_endpoint_returns_the_figures(world, other, api_client_for, tenant_admin):
    response = api_client_for(tenant_admin).get(URL)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["period"] == {"start": None, "end": None}
    assert body["workflows"][0]["definition"] == {"id": str(world.deal.pk), "name": "Deal Review"}
    assert body["workflows"][0]["avg_cycle_hours"] == 32.25
    assert [row["stage_name"] for row in body["stages"]] == ["Legal Review", "Finance Approval"]
    assert body["stages"][0]["p90_hours_to_decision"] == 44.0
    assert body["approvers"][0]["user"] == {
        "id": str(world.cfo.pk),
        "email": world.cfo.email,
        "full_name": world.cfo.full_name,
    }


def test_endpoint_reads_dates_in_the_tenants_time_zone(world, api_client_for, tenant_admin):
    world.tenant.timezone = "Pacific/Honolulu"
    world.tenant.save(update_fields=["timezone"])

    response = api_client_for(tenant_admin).get(
        URL, {"date_from": "2026-03-04", "date_to": "2026-03-04"}
    )

    assert response.status_code == 200, response.json()
    assert [row["cancelled"] for row in response.json()["workflows"]] == [1]
    assert response.json()["period"] == {
        "start": "2026-03-04T10:00:00Z",
        "end": "2026-03-05T10:00:00Z",
    }


def test_endpoint_date_time_with_offset(world, api_client_for, tenant_admin):
    response = api_client_for(tenant_admin).get(
        URL, {"date_from": "2026-03-04T10:00:00+01:00", "date_to": ""}
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["period"] == {"start": "2026-03-04T09:00:00Z", "end": None}
    assert sum(row["started"] for row in body["workflows"]) == 4  # W3 .. W6


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date_from": "2026-02-30"}, "date_from"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_to": "2026-03-04T25:00"}, "date_to"),
        ({"date_to": "2" * 65}, "date_to"),
        ({"date_from": "2026-03-05", "date_to": "2026-03-04"}, "date_to"),
        ({"date_from": "2026-03-04T10:00:00Z", "date_to": "2026-03-04T10:00:00Z"}, "date_to"),
    ],
)
def test_bad_dates_are_400(admin_client, params, field):
    response = admin_client.get(URL, params)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert list(body["fields"]) == [field]


def test_nul_byte_is_400(admin_client):
    response = admin_client.get(URL, {"date_to": "2026-03-04\x00"})

    assert response.status_code == 400
    assert "detail" in response.json()


@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "0001-01-01", "date_to": "9999-12-31"},
        {"date_from": "0001-01-01T00:00:00+05:00"},
        {"date_to": "9999-12-31T23:59:59-05:00"},
        {"date_from": "2026-01-01T00:00:00+23:59"},  # beyond PostgreSQL's offsets: converted
    ],
)
def test_extreme_dates_are_answered(admin_client, params):
    response = admin_client.get(URL, params)

    assert response.status_code == 200, response.json()
    assert response.json()["workflows"] == []


def test_plain_member_is_403(client):
    response = client.get(URL)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_role_with_analytics_view_may_read(tenant, api_client_for):
    analyst = UserRoleFactory(
        user=UserFactory(tenant=tenant), role="analyst", permissions=["analytics.view"]
    ).user

    assert api_client_for(analyst).get(URL).status_code == 200


def test_anonymous_is_401(api_client):
    assert api_client.get(URL).status_code == 401


def test_endpoint_of_an_empty_tenant(other, api_client_for):
    lonely_admin = UserFactory(tenant=TenantFactory(), is_tenant_admin=True)

    response = api_client_for(lonely_admin).get(URL)

    assert response.status_code == 200
    assert response.json() == {
        "period": {"start": None, "end": None},
        "workflows": [],
        "stages": [],
        "approvers": [],
    }


# --- query count -------------------------------------------------------------------------------


def approve_n(tenant, count: int) -> None:
    """``count`` Deal Reviews with their Legal Review approved (the Finance rows pending)."""
    legal = holder(tenant, "legal")
    requester = UserFactory(tenant=tenant)
    for _ in range(count):
        contract = start(tenant, contract_type="MSA", creator=requester)
        approval_act(tenant=tenant, contract_id=contract.pk, actor=legal, action="approve")


@pytest.fixture
def grown(tenant, api_client_for, tenant_admin):
    """``grown(n)``: tenant A holds ``n`` more instances; returns (selector, endpoint) queries."""
    define(tenant, DEAL_STAGES, contract_type="MSA", name="Deal Review")
    client = api_client_for(tenant_admin)

    def measure(count: int) -> tuple[int, int]:
        approve_n(tenant, count)
        with CaptureQueriesContext(connection) as selector:
            figures = workflow_analytics(tenant_id=tenant.pk, date_from=T0 - 1000 * 24 * H)
        with CaptureQueriesContext(connection) as endpoint:
            response = client.get(URL, {"date_from": "2020-01-01"})
        assert response.status_code == 200
        total = WorkflowInstance.objects.filter(tenant=tenant).count()
        assert figures["workflows"][0]["started"] == total
        assert response.json()["stages"][0]["decided"] == total
        return len(selector), len(endpoint)

    return measure


def test_query_count_does_not_grow_with_the_data(grown):
    one = grown(1)
    fifty = grown(49)

    assert one[0] == fifty[0] == 3  # one query per section
    assert one[1] == fifty[1]
