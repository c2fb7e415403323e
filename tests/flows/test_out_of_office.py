"""Out-of-office windows through the API: the matrix of window times, personal and role rows,
covers who are away or own the contract, overlapping windows, real time zones, and the move of
the away user's pending rows when the window starts (first read or SLA job, once)."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from approvals.assignment import covers_apply_due
from approvals.models import WorkflowStageApproval
from audit.models import AuditLog
from notifications.models import Notification
from tenancy.models import OutOfOffice
from tests.factories import UserFactory
from tests.support import run_together

pytestmark = pytest.mark.django_db

ME = "/api/auth/me/out-of-office/"


def iso(moment: datetime) -> str:
    return moment.isoformat()


def window(client, cover, *, start=-1, end=24, note="", url=ME, now=None):
    """PUT a window from ``start`` to ``end`` hours from ``now``."""
    now = now or timezone.now()
    body = {
        "starts_at": iso(now + timedelta(hours=start)),
        "ends_at": iso(now + timedelta(hours=end)),
        "cover": str(cover.pk),
        "note": note,
    }
    return client.put(url, body, format="json")


@pytest.fixture
def people(tenant, role_holder):
    return {
        "requester": UserFactory(tenant=tenant),
        "away": role_holder("legal"),
        "cover": UserFactory(tenant=tenant),
        "other_legal": role_holder("legal"),
    }


@pytest.fixture
def clients(api_client_for, people):
    return {name: api_client_for(user) for name, user in people.items()}


def define(admin_client, approvers, name="Named"):
    body = {
        "name": name,
        "trigger_conditions": {"contract_type": name.upper()},
        "stages": [{"stage_name": "Review", "sequence": 1, "approvers": approvers}],
    }
    response = admin_client.post("/api/workflows/config/", body, format="json")
    assert response.status_code == 201, response.json()


def contract(client, kind="NAMED"):
    response = client.post(
        "/api/contracts/", {"title": "Supply", "contract_type": kind}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def rows(contract_id):
    return list(
        WorkflowStageApproval.objects.filter(contract_id=contract_id).order_by("created_at")
    )


def pending_ids(client):
    response = client.get("/api/approvals/pending/")
    assert response.status_code == 200
    return [row["id"] for row in response.json()["results"]]


def test_set_read_and_clear_my_window(clients, people):
    response = window(clients["away"], people["cover"], note="Holiday")
    assert response.status_code == 200, response.json()
    body = clients["away"].get(ME).json()
    assert (body["cover"], body["note"], body["is_active"]) == (
        str(people["cover"].pk),
        "Holiday",
        True,
    )
    (row,) = AuditLog.objects.filter(action="out_of_office_set")
    assert row.changes["cover"] == [None, str(people["cover"].pk)]
    assert clients["away"].delete(ME).status_code == 204
    assert clients["away"].get(ME).status_code == 404
    assert clients["away"].delete(ME).status_code == 404
    assert AuditLog.objects.filter(action="out_of_office_cleared").count() == 1


@pytest.mark.parametrize(
    ("cover_kind", "start", "end", "field"),
    [
        ("self", -1, 2, "cover"),
        ("other_tenant", -1, 2, "cover"),
        ("inactive", -1, 2, "cover"),
        ("cover", 5, 2, "ends_at"),  # ends before it starts
        ("cover", -5, -2, "ends_at"),  # a window in the past
    ],
)
def test_a_window_is_refused_with_the_reason(
    clients, people, other_tenant, tenant, cover_kind, start, end, field
):
    cover = {
        "self": people["away"],
        "other_tenant": UserFactory(tenant=other_tenant),
        "inactive": UserFactory(tenant=tenant, is_active=False),
        "cover": people["cover"],
    }[cover_kind]
    response = window(clients["away"], cover, start=start, end=end)
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not OutOfOffice.objects.exists()
    assert not AuditLog.objects.filter(action="out_of_office_set").exists()


def test_no_chains_overlapping_windows(clients, people, api_client_for, tenant):
    """A cover away during the window is refused; so is going away while covering."""
    third = UserFactory(tenant=tenant)
    now = timezone.now()
    assert window(clients["cover"], third, start=10, end=20, now=now).status_code == 200
    # The cover is away from +10h: a window reaching into that is refused, one ending before
    # it is fine (windows that only touch do not overlap).
    response = window(clients["away"], people["cover"], start=-1, end=11, now=now)
    assert response.status_code == 400
    assert "away during that time" in response.json()["fields"]["cover"][0]
    assert window(clients["away"], people["cover"], start=-1, end=10, now=now).status_code == 200
    # Now "cover" covers for "away" until +10h: their own window may not overlap that either.
    response = window(clients["cover"], third, start=5, end=20, now=now)
    assert response.status_code == 400
    assert "covers for" in response.json()["fields"]["starts_at"][0]
    assert window(clients["cover"], third, start=10, end=20, now=now).status_code == 200


def test_a_window_in_the_future_changes_nothing_until_it_starts(admin_client, clients, people):
    define(admin_client, [f"user:{people['away'].pk}"])
    assert window(clients["away"], people["cover"], start=2, end=26).status_code == 200
    contract_id = contract(clients["requester"])
    (row,) = rows(contract_id)
    assert (row.assigned_to_id, row.on_behalf_of_id) == (people["away"].pk, None)
    assert pending_ids(clients["cover"]) == []
    assert pending_ids(clients["away"]) == [str(row.pk)]

    # Two hours later the window has started: the first read moves the row to the cover.
    OutOfOffice.objects.update(starts_at=timezone.now() - timedelta(minutes=1))
    due_at = row.due_at
    assert pending_ids(clients["cover"]) == [str(row.pk)]
    row.refresh_from_db()
    assert (row.assigned_to_id, row.on_behalf_of_id, row.due_at) == (
        people["cover"].pk,
        people["away"].pk,
        due_at,
    )
    assert pending_ids(clients["away"]) == []
    (moved,) = AuditLog.objects.filter(action="approval_reassigned")
    assert moved.changes["assigned_to"] == [str(people["away"].pk), str(people["cover"].pk)]
    assert moved.changes["reason"] == [None, "out_of_office"]
    assert Notification.objects.filter(
        recipient=people["cover"], notification_type="approval_assigned"
    ).exists()
    # Idempotent: more reads (and the SLA job) move nothing again.
    assert pending_ids(clients["cover"]) == [str(row.pk)]
    assert AuditLog.objects.filter(action="approval_reassigned").count() == 1
    status = clients["requester"].get(f"/api/contracts/{contract_id}/workflow/status/").json()
    assert status["stages"][0]["approvals"][0]["on_behalf_of"] == str(people["away"].pk)


def test_a_window_now_assigns_new_personal_rows_to_the_cover(admin_client, clients, people):
    define(admin_client, [f"user:{people['away'].pk}"])
    assert window(clients["away"], people["cover"]).status_code == 200
    contract_id = contract(clients["requester"])
    (row,) = rows(contract_id)
    assert (row.assigned_to_id, row.on_behalf_of_id) == (people["cover"].pk, people["away"].pk)
    response = clients["cover"].post(
        f"/api/contracts/{contract_id}/approve/", {"action": "approve"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "completed"
    assert clients["away"].post(
        f"/api/contracts/{contract_id}/approve/", {"action": "approve"}, format="json"
    ).status_code in (403, 409)


def test_a_past_window_leaves_rows_with_the_user(admin_client, clients, people):
    define(admin_client, [f"user:{people['away'].pk}"])
    assert window(clients["away"], people["cover"], start=-3, end=1).status_code == 200
    OutOfOffice.objects.update(ends_at=timezone.now() - timedelta(minutes=1))
    contract_id = contract(clients["requester"])
    (row,) = rows(contract_id)
    assert (row.assigned_to_id, row.on_behalf_of_id) == (people["away"].pk, None)
    assert pending_ids(clients["cover"]) == []


def test_role_rows_stay_with_the_role_and_skip_the_away_holder(admin_client, clients, people):
    define(admin_client, ["legal"], name="Roles")
    assert window(clients["away"], people["cover"]).status_code == 200
    contract_id = contract(clients["requester"], kind="ROLES")
    (row,) = rows(contract_id)
    assert (row.role, row.assigned_to_id) == ("legal", None)
    told = set(
        Notification.objects.filter(notification_type="approval_assigned").values_list(
            "recipient_id", flat=True
        )
    )
    assert told == {people["other_legal"].pk}  # not the away holder, not the cover
    # The away holder keeps the role: nothing stops them acting if they choose to.
    assert pending_ids(clients["away"]) == [str(row.pk)]


def test_the_cover_never_gets_their_own_contract(admin_client, clients, people, api_client_for):
    define(admin_client, [f"user:{people['away'].pk}"])
    assert window(clients["away"], people["cover"], start=2, end=26).status_code == 200
    before = contract(clients["cover"])  # assigned before the window starts
    OutOfOffice.objects.update(starts_at=timezone.now() - timedelta(minutes=1))
    during = contract(clients["cover"])
    for contract_id in (before, during):
        (row,) = rows(contract_id)
        assert (row.assigned_to_id, row.on_behalf_of_id) == (people["away"].pk, None)
    pending_ids(clients["cover"])  # the first read: nothing of theirs to move
    assert not AuditLog.objects.filter(action="approval_reassigned").exists()


def test_a_delegation_to_someone_away_lands_with_their_cover(admin_client, clients, people):
    define(admin_client, ["legal"], name="Roles")
    assert window(clients["away"], people["cover"]).status_code == 200
    contract_id = contract(clients["requester"], kind="ROLES")
    response = clients["other_legal"].post(
        f"/api/contracts/{contract_id}/approve/",
        {"action": "delegate", "delegate_to": str(people["away"].pk)},
        format="json",
    )
    assert response.status_code == 200, response.json()
    delegated, successor = rows(contract_id)
    assert delegated.delegated_to_id == people["away"].pk
    assert (successor.assigned_to_id, successor.on_behalf_of_id) == (
        people["cover"].pk,
        people["away"].pk,
    )


def test_the_sla_job_moves_rows_when_the_window_starts(admin_client, clients, people, tenant_admin):
    define(admin_client, [f"user:{people['away'].pk}"])
    assert window(clients["away"], people["cover"], start=1, end=26).status_code == 200
    contract_id = contract(clients["requester"])
    OutOfOffice.objects.update(starts_at=timezone.now() - timedelta(minutes=1))
    for _ in range(2):
        response = admin_client.post("/api/admin/sla-breaches/check_breaches/", {}, format="json")
        assert response.status_code == 200, response.json()
    (row,) = rows(contract_id)
    assert row.assigned_to_id == people["cover"].pk
    assert AuditLog.objects.filter(action="approval_reassigned").count() == 1
    assert OutOfOffice.objects.get().applied_at is not None


def test_windows_in_real_time_zones(admin_client, clients, people):
    """Offsets are instants: Tokyo's 09:00 is 00:00 UTC; a window given in two zones works."""
    define(admin_client, [f"user:{people['away'].pk}"])
    now = timezone.now()
    body = {
        "starts_at": (now - timedelta(hours=1)).astimezone(ZoneInfo("Asia/Tokyo")).isoformat(),
        "ends_at": (now + timedelta(hours=1)).astimezone(ZoneInfo("America/New_York")).isoformat(),
        "cover": str(people["cover"].pk),
    }
    response = clients["away"].put(ME, body, format="json")
    assert response.status_code == 200, response.json()
    stored = OutOfOffice.objects.get()
    assert abs(stored.starts_at - (now - timedelta(hours=1))) < timedelta(seconds=1)
    assert datetime.fromisoformat(response.json()["ends_at"]) == stored.ends_at
    assert response.json()["is_active"] is True
    (row,) = rows(contract(clients["requester"]))
    assert row.assigned_to_id == people["cover"].pk


def test_users_manage_sets_a_window_for_someone_else(admin_client, clients, people, other_tenant):
    url = f"/api/admin/users/{people['away'].pk}/out-of-office/"
    assert window(clients["requester"], people["cover"], url=url).status_code == 403
    response = window(admin_client, people["cover"], url=url)
    assert response.status_code == 200, response.json()
    assert clients["away"].get(ME).json()["cover"] == str(people["cover"].pk)
    assert clients["requester"].get(url).status_code == 200  # any member may read
    stranger = UserFactory(tenant=other_tenant)
    response = window(
        admin_client, people["cover"], url=f"/api/admin/users/{stranger.pk}/out-of-office/"
    )
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_reads_move_each_row_once(api_client_for, tenant, role_holder):
    admin = UserFactory(tenant=tenant, is_tenant_admin=True)
    away, cover = UserFactory(tenant=tenant), UserFactory(tenant=tenant)
    define(api_client_for(admin), [f"user:{away.pk}"])
    requester = api_client_for(UserFactory(tenant=tenant))
    ids = [contract(requester) for _ in range(3)]
    assert window(api_client_for(away), cover, start=1, end=26).status_code == 200
    OutOfOffice.objects.update(starts_at=timezone.now() - timedelta(minutes=1))
    results = run_together(*[lambda: covers_apply_due(tenant_ids=[tenant.pk])] * 3)
    assert sorted(value for _, value in results) == [0, 0, 3]
    assert AuditLog.objects.filter(action="approval_reassigned").count() == 3
    assert {row.assigned_to_id for contract_id in ids for row in rows(contract_id)} == {cover.pk}


def test_sla_notices_to_a_role_skip_the_away_holder(admin_client, clients, people):
    define(admin_client, ["legal"], name="Roles")
    assert window(clients["away"], people["cover"]).status_code == 200
    contract_id = contract(clients["requester"], kind="ROLES")
    WorkflowStageApproval.objects.filter(contract_id=contract_id).update(
        due_at=timezone.now() - timedelta(hours=1)
    )
    response = admin_client.post("/api/admin/sla-breaches/check_breaches/", {}, format="json")
    assert response.json()["breached"] == 1
    told = set(
        Notification.objects.filter(notification_type="sla_breached").values_list(
            "recipient_id", flat=True
        )
    )
    assert told == {people["other_legal"].pk}
