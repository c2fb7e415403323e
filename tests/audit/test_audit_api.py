"""GET /api/audit-logs/: permissions, filters, bad input, keyset cursor pagination, query count."""

import base64
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.services import audit_record
from core import rls
from tests.factories import TenantFactory, UserFactory, UserRoleFactory
from tests.fixtures import BASE_TIME

pytestmark = pytest.mark.django_db

URL = "/api/audit-logs/"
FIELDS = {
    "id",
    "action",
    "actor",
    "actor_email",
    "resource_type",
    "resource_id",
    "changes",
    "ip_address",
    "user_agent",
    "request_id",
    "contract",
    "created_at",
}


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def walk(client, url, params=None, direction="next") -> list[str]:
    """Follow `direction` links from the first page; every page's ids, in order."""
    seen, pages = [], 0
    response = client.get(url, params)
    while True:
        seen.extend(ids(response))
        link = response.json()[direction]
        if link is None:
            return seen
        pages += 1
        assert pages < 1000, "the cursor does not advance"
        response = client.get(link)


def expected_order(rows) -> list[str]:
    ordered = sorted(rows, key=lambda row: (row.created_at, row.seq), reverse=True)
    return [str(row.pk) for row in ordered]


# --- permissions and shape -----------------------------------------------------------------


def test_anonymous_is_401(api_client, db):
    assert api_client.get(URL).status_code == 401


def test_plain_member_is_403(client, tenant, write_rows):
    write_rows(tenant, 1)
    response = client.get(URL)
    assert response.status_code == 403
    assert "audit.view" in response.json()["detail"]


def test_member_with_another_capability_is_403(api_client_for, tenant):
    holder = UserRoleFactory(user=UserFactory(tenant=tenant), permissions=["workflows.manage"]).user
    assert api_client_for(holder).get(URL).status_code == 403


def test_expired_audit_role_is_403(api_client_for, tenant):
    holder = UserRoleFactory(
        user=UserFactory(tenant=tenant),
        permissions=["audit.view"],
        expires_at=datetime.now(UTC) - timedelta(minutes=1),
    ).user
    assert api_client_for(holder).get(URL).status_code == 403


def test_audit_view_holder_and_tenant_admin_read(auditor_client, admin_client, tenant, write_rows):
    rows = write_rows(tenant, 2)
    assert ids(auditor_client.get(URL)) == expected_order(rows)
    assert ids(admin_client.get(URL)) == expected_order(rows)


def test_response_shape(auditor_client, tenant, user):
    row = audit_record(
        action="contract_updated",
        tenant=tenant,
        actor=user,
        resource_type="contract",
        resource_id="c-1",
        changes={"title": ["Old", "New"]},
    )
    body = auditor_client.get(URL).json()
    assert set(body) == {"next", "previous", "results"}
    (listed,) = body["results"]
    assert set(listed) == FIELDS
    assert listed["id"] == str(row.pk)
    assert listed["actor"] == str(user.pk)
    assert listed["actor_email"] == user.email
    assert listed["changes"] == {"title": ["Old", "New"]}
    assert listed["resource_type"] == "contract"
    assert listed["resource_id"] == "c-1"
    assert listed["contract"] is None  # named by type and id, not by a contract object
    assert datetime.fromisoformat(listed["created_at"]) == row.created_at


def test_rows_without_actor_list_null_actor(auditor_client, tenant):
    audit_record(action="login_failed", tenant=tenant, resource_type="user", resource_id="")
    (listed,) = auditor_client.get(URL).json()["results"]
    assert listed["actor"] is None
    assert listed["actor_email"] is None


# --- isolation -------------------------------------------------------------------------------


def test_other_tenants_rows_are_never_listed(auditor_client, tenant, write_rows):
    ours = write_rows(tenant, 3)
    other = TenantFactory()
    theirs = write_rows(other, 4)
    with rls.platform_scope():  # no tenant at all (unknown email)
        audit_record(action="login_failed", tenant=None)

    assert walk(auditor_client, URL, {"page_size": 2}) == expected_order(ours)
    assert ids(auditor_client.get(URL, {"resource_id": theirs[0].resource_id})) == []


def test_actor_filter_with_other_tenants_user_is_like_an_unknown_id(
    auditor_client, tenant, write_rows
):
    stranger = UserFactory(tenant=TenantFactory())
    write_rows(stranger.tenant, 2, actor=stranger)
    write_rows(tenant, 2)
    for_theirs = auditor_client.get(URL, {"actor": str(stranger.pk)})
    for_unknown = auditor_client.get(URL, {"actor": str(uuid.uuid4())})
    assert for_theirs.status_code == for_unknown.status_code == 200
    assert (
        for_theirs.json() == for_unknown.json() == {"next": None, "previous": None, "results": []}
    )


# --- filters ---------------------------------------------------------------------------------


@pytest.fixture
def varied(tenant, write_rows, user, tenant_admin):
    """Rows differing in every filtered column, one hour apart (BASE_TIME onwards)."""
    specs = [
        ("login", user, "user", str(user.pk)),
        ("contract_created", user, "contract", "c-1"),
        ("contract_updated", user, "contract", "c-1"),
        ("contract_updated", tenant_admin, "contract", "c-2"),
        ("workflow_started", tenant_admin, "workflowinstance", "w-1"),
        ("approval_approved", tenant_admin, "workflowstageapproval", "a-1"),
    ]
    rows = []
    for hour, (action, actor, resource_type, resource_id) in enumerate(specs):
        rows += write_rows(
            tenant,
            1,
            action=action,
            actor=actor,
            resource_type=resource_type,
            resource_id=resource_id,
            created_at=BASE_TIME + timedelta(hours=hour),
        )
    return rows


def _where(rows, **conditions):
    return expected_order([row for row in rows if all(check(row) for check in conditions.values())])


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"action": "contract_updated"}, lambda row: row.action == "contract_updated"),
        (
            {"action": "login,workflow_started"},
            lambda row: row.action in ("login", "workflow_started"),
        ),
        ({"action": " login , login "}, lambda row: row.action == "login"),
        ({"action": "never_written"}, lambda row: False),
        ({"resource_type": "contract"}, lambda row: row.resource_type == "contract"),
        (
            {"resource_type": "contract", "resource_id": "c-1"},
            lambda row: row.resource_type == "contract" and row.resource_id == "c-1",
        ),
        ({"resource_id": "c-2"}, lambda row: row.resource_id == "c-2"),
        # date_from inclusive; date_to inclusive; a date means the whole day.
        ({"date_from": "2026-03-01T14:00:00Z"}, lambda row: row.created_at.hour >= 14),
        ({"date_to": "2026-03-01T14:00:00Z"}, lambda row: row.created_at.hour <= 14),
        (
            {"date_from": "2026-03-01T13:00:00+00:00", "date_to": "2026-03-01T15:30:00+00:00"},
            lambda row: 13 <= row.created_at.hour <= 15,
        ),
        # The same instant written with another offset.
        ({"date_from": "2026-03-01T15:00:00+01:00"}, lambda row: row.created_at.hour >= 14),
        # An unencoded "+" arrives as a space.
        ({"date_from": "2026-03-01T15:00:00 01:00"}, lambda row: row.created_at.hour >= 14),
        ({"date_from": "2026-03-01", "date_to": "2026-03-01"}, lambda row: True),
        ({"date_to": "2026-02-28"}, lambda row: False),
        ({"date_from": "2026-03-02"}, lambda row: False),
        (
            {"action": "contract_updated", "date_from": "2026-03-01T14:00:00Z"},
            lambda row: row.action == "contract_updated" and row.created_at.hour >= 14,
        ),
    ],
    ids=lambda value: str(value) if isinstance(value, dict) else "",
)
def test_filters(auditor_client, varied, params, keep):
    assert ids(auditor_client.get(URL, params)) == _where(varied, keep=keep)


def test_actor_filter(auditor_client, varied, user, tenant_admin):
    assert ids(auditor_client.get(URL, {"actor": str(user.pk)})) == _where(
        varied, keep=lambda row: row.actor_id == user.pk
    )
    combined = auditor_client.get(
        URL, {"actor": str(tenant_admin.pk), "action": "contract_updated"}
    )
    assert ids(combined) == _where(
        varied,
        keep=lambda row: row.actor_id == tenant_admin.pk and row.action == "contract_updated",
    )


def test_dates_and_naive_times_are_read_in_the_tenants_time_zone(auditor_client, tenant, varied):
    tenant.timezone = "Asia/Tokyo"  # UTC+9: the UTC day 2026-03-01 12:00-17:00 is 21:00-02:00
    tenant.save(update_fields=["timezone"])

    on_the_1st = ids(auditor_client.get(URL, {"date_to": "2026-03-01"}))
    assert on_the_1st == _where(varied, keep=lambda row: row.created_at.hour < 15)
    naive = ids(auditor_client.get(URL, {"date_from": "2026-03-02T00:00:00"}))
    assert naive == _where(varied, keep=lambda row: row.created_at.hour >= 15)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"actor": "not-a-uuid"}, "actor"),
        ({"actor": "1"}, "actor"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_from": "2026-02-30"}, "date_from"),
        ({"date_to": "2026-13-01T00:00:00Z"}, "date_to"),
        ({"date_to": "2026-03-01T25:00"}, "date_to"),
        ({"date_from": "2026-03-02", "date_to": "2026-03-01"}, "date_to"),
        ({"action": "DROP TABLE audit_auditlog"}, "action"),
        ({"action": "login,"}, "action"),
        ({"action": ",".join(f"a{n}" for n in range(51))}, "action"),
        ({"action": "x" * 65}, "action"),
        ({"action": "login\nlogout"}, "action"),
        ({"action": '":%De{c'}, "action"),  # a '%' in the message once made this a 500
        ({"resource_type": "x" * 65}, "resource_type"),
        ({"resource_id": "x" * 65}, "resource_id"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": "MXxub3QtYS1kYXRlfG5vcGU"}, "cursor"),  # "1|not-a-date|nope"
        ({"cursor": "MnwyMDI2LTAzLTAxVDEyOjAwOjAwKzAwOjAwfDEyMw"}, "cursor"),  # direction "2"
        ({"cursor": "é"}, "cursor"),
    ],
    ids=lambda value: str(value)[:60] if isinstance(value, dict) else value,
)
def test_bad_filter_values_are_400(auditor_client, tenant, write_rows, params, field):
    write_rows(tenant, 1)
    response = auditor_client.get(URL, params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in body["fields"]


def _forged_cursor(created_at: str, seq: object = 123) -> str:
    raw = f"0|{created_at}|{seq}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "seq",
    [
        uuid.UUID("6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"),  # a cursor from before seq: a row's id
        "-1",
        "+1",
        " 1",
        "1_0",
        "1.5",
        "",
        2**63,  # beyond bigint
        "9" * 20,
    ],
    ids=str,
)
def test_cursors_without_a_seq_are_400(auditor_client, tenant, write_rows, seq):
    write_rows(tenant, 1)
    response = auditor_client.get(URL, {"cursor": _forged_cursor("2026-03-01T12:00:00+00:00", seq)})
    assert response.status_code == 400, response.content
    assert response.json()["fields"] == {"cursor": ["Invalid cursor."]}


def test_the_largest_seq_is_a_cursor(auditor_client, tenant, write_rows):
    rows = write_rows(tenant, 2, created_at=BASE_TIME)
    cursor = _forged_cursor(BASE_TIME.isoformat(), 2**63 - 1)
    assert ids(auditor_client.get(URL, {"cursor": cursor})) == expected_order(rows)


@pytest.mark.parametrize(
    ("created_at", "status"),
    [
        ("2026-03-01T12:00:00", 400),  # no offset
        ("9999-12-31T23:59:59.999999-15:00", 400),  # beyond the calendar in UTC
        ("2026-03-01T12:00:00-22:06", 200),  # an offset PostgreSQL would refuse: sent in UTC
        ("2026-03-01T12:30:00+00:00", 200),
    ],
)
def test_forged_cursors_are_400_or_answered_never_500(
    auditor_client, tenant, write_rows, created_at, status
):
    write_rows(tenant, 1)
    response = auditor_client.get(URL, {"cursor": _forged_cursor(created_at)})
    assert response.status_code == status, response.content


@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "0001-01-01", "date_to": "9999-12-31"},
        {"date_from": "0001-01-01T00:00:00+14:00", "date_to": "9999-12-31T23:59:59.999999-14:00"},
        # Offsets Python accepts but PostgreSQL would refuse (beyond +-15:59): sent in UTC.
        {"date_from": "2026-02-28T10:00:00-22:06", "date_to": "2026-03-02T20:00:00+23:59"},
    ],
    ids=["dates", "offsets at the calendar's ends", "offsets beyond PostgreSQL's"],
)
def test_extreme_bounds_are_answered_not_500(auditor_client, tenant, write_rows, params):
    rows = write_rows(tenant, 2)
    assert ids(auditor_client.get(URL, params)) == expected_order(rows)


# --- cursor pagination -----------------------------------------------------------------------


def test_cursor_walks_every_row_once_across_identical_timestamps(
    auditor_client, tenant, write_rows
):
    """Ties on created_at (every row of one INSERT shares it) are broken by seq."""
    tied = write_rows(tenant, 37, created_at=BASE_TIME)
    newer = write_rows(tenant, 5, created_at=BASE_TIME + timedelta(seconds=1))
    older = write_rows(tenant, 8, created_at=BASE_TIME - timedelta(microseconds=1))
    everything = expected_order(tied + newer + older)

    for page_size in (1, 7, 10, 50):
        forward = walk(auditor_client, URL, {"page_size": page_size})
        assert forward == everything, page_size
        assert len(set(forward)) == len(forward)


def test_previous_links_walk_back_to_the_first_page(auditor_client, tenant, write_rows):
    rows = write_rows(tenant, 10, created_at=BASE_TIME) + write_rows(tenant, 13)
    everything = expected_order(rows)

    response = auditor_client.get(URL, {"page_size": 4})
    assert response.json()["previous"] is None
    pages = [ids(response)]
    while response.json()["next"]:
        response = auditor_client.get(response.json()["next"])
        pages.append(ids(response))
    assert response.json()["next"] is None
    assert [row for page in pages for row in page] == everything

    back = []
    while response.json()["previous"]:
        response = auditor_client.get(response.json()["previous"])
        back.append(ids(response))
    assert back == pages[-2::-1]  # the same pages, in reverse, ending with the first one


def test_cursor_links_keep_the_filters(auditor_client, tenant, write_rows):
    kept = write_rows(tenant, 9, action="login")
    write_rows(tenant, 9, action="logout")

    first = auditor_client.get(URL, {"action": "login", "page_size": 4})
    query = parse_qs(urlsplit(first.json()["next"]).query)
    assert query["action"] == ["login"]
    assert query["page_size"] == ["4"]
    assert walk(auditor_client, URL, {"action": "login", "page_size": 4}) == expected_order(kept)


def test_rows_written_while_paging_are_neither_repeated_nor_skipped(
    auditor_client, tenant, write_rows
):
    rows = write_rows(tenant, 6)
    first = auditor_client.get(URL, {"page_size": 3})
    write_rows(tenant, 4, created_at=BASE_TIME + timedelta(days=1))  # newer rows arrive

    second = auditor_client.get(first.json()["next"])
    assert ids(first) + ids(second) == expected_order(rows)


def test_page_size_defaults_to_50_and_is_capped_at_200(auditor_client, tenant, write_rows):
    write_rows(tenant, 230)
    assert len(ids(auditor_client.get(URL))) == 50
    assert len(ids(auditor_client.get(URL, {"page_size": 120}))) == 120
    assert len(ids(auditor_client.get(URL, {"page_size": 5000}))) == 200


# --- query count ---------------------------------------------------------------------------


def _queries_for_a_page(client) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL, {"page_size": 100})
    assert response.status_code == 200
    return len(queries), len(response.json()["results"])


def test_query_count_does_not_grow_with_rows(auditor_client, tenant, write_rows):
    actors = [UserFactory(tenant=tenant) for _ in range(5)]
    write_rows(tenant, 1, actor=actors[0])
    one_row = _queries_for_a_page(auditor_client)

    for number in range(49):
        write_rows(tenant, 1, actor=actors[number % 5], created_at=BASE_TIME + timedelta(hours=1))
    fifty_rows = _queries_for_a_page(auditor_client)

    assert one_row[1] == 1
    assert fifty_rows[1] == 50
    assert fifty_rows[0] == one_row[0]
