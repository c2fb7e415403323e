"""Idempotency-Key on the POST endpoints that create or decide (tenancy.idempotency)."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import SLABreach, WorkflowInstance, WorkflowStageApproval
from audit.models import AuditLog
from contracts.models import Contract
from core import rls
from tenancy.models import IdempotencyRecord
from tests.factories import ContractFactory, TenantFactory, UserFactory, UserRoleFactory
from tests.support import run_together
from workflows.services import definition_create

pytestmark = pytest.mark.django_db

CONTRACTS = "/api/contracts/"
CHECK = "/api/admin/sla-breaches/check_breaches/"
BODY = {"title": "Cloud MSA", "contract_type": "MSA", "value": "1000.00"}


def post(client, url, body=None, key=None, **extra):
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(url, body if body is not None else {}, format="json", **extra)


def replayed(response) -> bool:
    return response.headers.get("Idempotent-Replayed") == "true"


@pytest.fixture
def legal(role_holder):
    return role_holder("legal")


@pytest.fixture
def definition(tenant, tenant_admin):
    """Every MSA starts Legal (role `legal`), then Exec (role `ceo`)."""
    return definition_create(
        tenant=tenant,
        created_by=tenant_admin,
        name="Review",
        trigger_conditions={"contract_type": "MSA"},
        stages=[
            {"stage_name": "Legal", "sequence": 1, "approvers": ["legal"], "sla_hours": 24},
            {"stage_name": "Exec", "sequence": 2, "approvers": ["ceo"]},
        ],
    )


# --- contract create -------------------------------------------------------------------------


def test_same_request_three_times_creates_one_contract(client, user, definition):
    responses = [post(client, CONTRACTS, BODY, key="create-1") for _ in range(3)]

    assert [r.status_code for r in responses] == [201, 201, 201]
    assert [replayed(r) for r in responses] == [False, True, True]
    assert responses[0].content == responses[1].content == responses[2].content
    assert Contract.objects.count() == 1
    assert WorkflowInstance.objects.count() == 1
    assert AuditLog.objects.filter(action="contract_created").count() == 1
    assert responses[2]["Content-Type"] == "application/json"
    record = IdempotencyRecord.objects.get()
    assert (record.tenant_id, record.user_id, record.key, record.status_code) == (
        user.tenant_id,
        user.pk,
        "create-1",
        201,
    )
    assert record.expires_at - record.created_at == timedelta(hours=24)


def test_without_the_header_nothing_changes(client):
    with CaptureQueriesContext(connection) as queries:
        first = post(client, CONTRACTS, BODY)
    second = post(client, CONTRACTS, BODY)

    assert (first.status_code, second.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in first.headers
    assert Contract.objects.count() == 2
    assert not IdempotencyRecord.objects.exists()
    assert not any("idempotency" in query["sql"] for query in queries.captured_queries)


def test_body_fingerprint_is_canonical_json(client):
    first = client.post(
        CONTRACTS,
        '{"title": "Cloud MSA", "contract_type": "MSA"}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="canon",
    )
    again = client.post(
        CONTRACTS,
        '{ "contract_type":"MSA","title":"Cloud MSA" }',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY='"canon"',  # the draft's structured-field string form
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert replayed(again)
    assert Contract.objects.count() == 1


def test_same_key_with_a_different_body_is_422(client):
    assert post(client, CONTRACTS, BODY, key="k").status_code == 201

    response = post(client, CONTRACTS, {**BODY, "title": "Another"}, key="k")

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert set(response.json()) == {"code", "detail", "request_id"}
    assert Contract.objects.count() == 1


def test_same_key_on_another_endpoint_is_422(client, user):
    contract = ContractFactory(created_by=user)
    assert post(client, CONTRACTS, BODY, key="k").status_code == 201

    response = post(client, f"/api/contracts/{contract.pk}/workflow/start/", {}, key="k")

    assert response.status_code == 422
    assert not WorkflowInstance.objects.filter(contract=contract).exists()


def test_same_key_and_body_on_another_contract_is_422(client, user, definition):
    """The path is part of the request: one key cannot start two contracts' workflows."""
    first, second = (ContractFactory(created_by=user, contract_type="MSA") for _ in range(2))

    started = post(client, f"/api/contracts/{first.pk}/workflow/start/", {}, key="start")
    response = post(client, f"/api/contracts/{second.pk}/workflow/start/", {}, key="start")

    assert started.status_code == 201
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert not WorkflowInstance.objects.filter(contract=second).exists()
    second.refresh_from_db()
    assert second.status == "draft"


def test_keys_are_per_user_and_per_tenant(api_client_for, tenant):
    same_tenant = [UserFactory(tenant=tenant), UserFactory(tenant=tenant)]
    other_tenant = UserFactory(tenant=TenantFactory())

    responses = [
        post(api_client_for(user), CONTRACTS, BODY, key="shared")
        for user in [*same_tenant, other_tenant]
    ]

    assert [r.status_code for r in responses] == [201, 201, 201]
    assert not any(replayed(r) for r in responses)
    assert len({r.json()["id"] for r in responses}) == 3
    with rls.bypass("both tenants' rows"):
        assert Contract.objects.count() == 3
        assert IdempotencyRecord.objects.filter(key="shared").count() == 3


@pytest.mark.parametrize(
    "key",
    ["", "   ", "x" * 256, "tab\tinside", "del\x7f", "clé-ünïcode"],
    ids=["empty", "blank", "too-long", "tab", "del", "non-ascii"],
)
def test_invalid_key_is_400_and_does_nothing(client, key):
    response = post(client, CONTRACTS, BODY, key=key)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert list(body["fields"]) == ["Idempotency-Key"]
    assert not Contract.objects.exists()
    assert not IdempotencyRecord.objects.exists()


def test_longest_and_punctuated_keys_are_fine(client):
    for key in ("x" * 255, "order 42/retry:1 {a}"):
        assert post(client, CONTRACTS, BODY, key=key).status_code == 201
    assert Contract.objects.count() == 2


# --- what is stored, what is released ---------------------------------------------------------


def test_a_4xx_is_stored_and_replayed(client):
    first = post(client, CONTRACTS, {"contract_type": "MSA"}, key="bad")
    again = post(client, CONTRACTS, {"contract_type": "MSA"}, key="bad")

    assert (first.status_code, again.status_code) == (400, 400)
    assert first.json()["fields"] == {"title": ["This field is required."]}
    assert replayed(again)
    assert again.content == first.content  # the first request_id included: the same body
    # A corrected request needs a new key.
    assert post(client, CONTRACTS, BODY, key="bad").status_code == 422
    assert post(client, CONTRACTS, BODY, key="good").status_code == 201


def test_a_5xx_first_attempt_releases_the_key(client, monkeypatch):
    from approvals import lifecycle as services

    real = services.contract_create
    calls = []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("canceling statement due to statement timeout")
        return real(**kwargs)

    monkeypatch.setattr(services, "contract_create", flaky)

    failed = post(client, CONTRACTS, BODY, key="retry-me")
    assert failed.status_code == 503
    assert failed.json()["code"] == "service_unavailable"
    assert not IdempotencyRecord.objects.exists()

    retried = post(client, CONTRACTS, BODY, key="retry-me")
    assert retried.status_code == 201
    assert not replayed(retried)
    assert Contract.objects.count() == 1
    assert IdempotencyRecord.objects.get().status_code == 201


def test_an_unhandled_exception_releases_the_key(client, monkeypatch):
    from approvals import lifecycle as services

    def broken(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(services, "contract_create", broken)
    client.raise_request_exception = False

    response = post(client, CONTRACTS, BODY, key="bug")

    assert response.status_code == 500
    assert not IdempotencyRecord.objects.exists()


def test_a_duplicate_of_a_request_in_flight_is_409(client, user):
    now = timezone.now()
    IdempotencyRecord.objects.create(
        tenant=user.tenant,
        user=user,
        key="busy",
        fingerprint=_fingerprint_of(client, user, BODY),
        created_at=now,
        expires_at=now + timedelta(hours=24),
    )

    response = post(client, CONTRACTS, BODY, key="busy")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_flight"
    assert not Contract.objects.exists()


def _fingerprint_of(client, user, body) -> str:
    """The fingerprint the service computes, learnt from a throw-away key."""
    post(client, CONTRACTS, body, key="probe")
    record = IdempotencyRecord.objects.get(user=user, key="probe")
    Contract.objects.all().delete()
    record.delete()
    return record.fingerprint


@pytest.mark.parametrize("kind", ["expired", "abandoned-claim"])
def test_expired_keys_and_abandoned_claims_are_ignored_and_purged(client, user, kind, settings):
    now = timezone.now()
    old = IdempotencyRecord.objects.create(
        tenant=user.tenant,
        user=user,
        key="old",
        fingerprint="0" * 64,  # another request: would be a 422 if the key were still alive
        status_code=201 if kind == "expired" else None,
        response_body='{"id": "stale"}',
        content_type="application/json",
        created_at=now - timedelta(hours=25 if kind == "expired" else 1),
        expires_at=now - timedelta(hours=1) if kind == "expired" else now + timedelta(hours=23),
    )
    other_expired = IdempotencyRecord.objects.create(
        tenant=user.tenant,
        user=user,
        key="other",
        fingerprint="0" * 64,
        status_code=201,
        created_at=now - timedelta(hours=30),
        expires_at=now - timedelta(hours=6),
    )

    response = post(client, CONTRACTS, BODY, key="old")

    assert response.status_code == 201
    assert not replayed(response)
    assert Contract.objects.count() == 1
    assert not IdempotencyRecord.objects.filter(pk__in=[old.pk, other_expired.pk]).exists()
    assert IdempotencyRecord.objects.get(key="old").status_code == 201


@pytest.mark.parametrize("claimed", ["before the database restarted", "since"])
def test_a_claim_the_database_restart_orphaned_is_free_at_once(client, user, claimed, settings):
    """A 503 in an outage cannot release its key; the restart itself proves it is not in flight."""
    settings.IDEMPOTENCY_STALE_CLAIM_SECONDS = 86_400  # so only the restart can free it
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_postmaster_start_time()")
        (started,) = cursor.fetchone()
    created = started - timedelta(seconds=1) if claimed != "since" else timezone.now()
    IdempotencyRecord.objects.create(
        tenant=user.tenant,
        user=user,
        key="orphan",
        fingerprint=_fingerprint_of(client, user, BODY),
        created_at=created,
        expires_at=created + timedelta(hours=24),
    )

    response = post(client, CONTRACTS, BODY, key="orphan")

    if claimed == "since":
        assert response.status_code == 409
        assert Contract.objects.count() == 0
    else:
        assert response.status_code == 201
        assert Contract.objects.count() == 1


def test_purge_command_deletes_expired_keys_of_every_tenant(user):
    now = timezone.now()
    stranger = UserFactory(tenant=TenantFactory())
    for owner, key, expires in [
        (user, "gone", now - timedelta(minutes=1)),
        (stranger, "gone", now - timedelta(hours=2)),
        (user, "kept", now + timedelta(hours=1)),
    ]:
        with rls.tenant_scope(owner.tenant_id):
            _record_of(owner, key, expires)

    from io import StringIO

    out = StringIO()
    call_command("purge_idempotency_keys", stdout=out)

    assert out.getvalue().strip() == "purged 2 idempotency key(s)"
    with rls.bypass("both tenants' keys"):
        assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["kept"]


def _record_of(owner, key, expires):
    IdempotencyRecord.objects.create(
        tenant_id=owner.tenant_id,
        user=owner,
        key=key,
        fingerprint="0" * 64,
        status_code=201,
        created_at=expires - timedelta(hours=24),
        expires_at=expires,
    )


# --- the other three endpoints ----------------------------------------------------------------


def test_workflow_start_is_idempotent(client, user, definition):
    # Naming a definition takes `workflows.manage`.
    UserRoleFactory(user=user, role="operations", permissions=["workflows.manage"])
    contract = ContractFactory(created_by=user, contract_type="NDA")  # a draft; nothing matched
    url = f"/api/contracts/{contract.pk}/workflow/start/"
    body = {"workflow_definition": str(definition.pk)}

    first = post(client, url, body, key="start")
    again = post(client, url, body, key="start")

    assert (first.status_code, again.status_code) == (201, 201)
    assert replayed(again)
    assert again.content == first.content
    assert WorkflowInstance.objects.filter(contract=contract).count() == 1
    assert AuditLog.objects.filter(action="workflow_started").count() == 1
    assert post(client, url, body).status_code == 409  # without the key: it is already active


def test_approve_is_idempotent(api_client_for, client, legal, definition):
    contract = post(client, CONTRACTS, BODY).json()
    url = f"/api/contracts/{contract['id']}/approve/"
    approver = api_client_for(legal)

    first = post(approver, url, {"action": "approve", "comments": "ok"}, key="decide")
    again = post(approver, url, {"action": "approve", "comments": "ok"}, key="decide")

    assert (first.status_code, again.status_code) == (200, 200)
    assert replayed(again)
    assert again.content == first.content
    assert first.json()["current_stage"] == 2
    assert AuditLog.objects.filter(action="approval_approved").count() == 1
    assert (
        WorkflowStageApproval.objects.filter(contract_id=contract["id"], status="approved").count()
        == 1
    )
    # Acting again without the key is a real second attempt: nothing pending for legal now.
    assert post(approver, url, {"action": "approve"}).status_code == 409


def test_check_breaches_is_idempotent(api_client_for, client, tenant, legal, definition):
    contract = post(client, CONTRACTS, BODY).json()
    WorkflowStageApproval.objects.filter(contract_id=contract["id"]).update(
        due_at=timezone.now() - timedelta(hours=1)
    )
    manager = api_client_for(
        UserRoleFactory(
            user=UserFactory(tenant=tenant), role="ops", permissions=["sla.manage"]
        ).user
    )

    first = post(manager, CHECK, {}, key="check")
    again = post(manager, CHECK, {}, key="check")
    fresh = post(manager, CHECK, {}, key="check-2")

    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["breached"] == 1
    assert replayed(again)
    assert again.json() == first.json()
    assert fresh.json()["breached"] == 0  # a new key runs the check again (and finds nothing new)
    assert SLABreach.objects.count() == 1


def test_refused_before_the_action_claims_nothing(client):
    """A permission refusal (403) happens before the handler: no key is taken."""
    response = post(client, CHECK, {}, key="nope")

    assert response.status_code == 403
    assert not IdempotencyRecord.objects.exists()


def test_schema_documents_the_header_on_the_keyed_operations(api_client):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    keyed = {
        (path, method)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    }

    assert keyed == {
        ("/api/contracts/", "post"),
        ("/api/contracts/{id}/workflow/start/", "post"),
        ("/api/contracts/{id}/approve/", "post"),
        ("/api/contracts/{id}/amend/", "post"),
        ("/api/admin/sla-breaches/check_breaches/", "post"),
        ("/api/approvals/bulk/", "post"),
        ("/api/contracts/{contract_pk}/signature-requests/", "post"),
        ("/api/approvals/{id}/reassign/", "post"),
    }
    for path, method in keyed:
        operation = schema["paths"][path][method]
        assert "422" in operation["responses"]
        success = next(code for code in operation["responses"] if code.startswith("2"))
        assert "Idempotent-Replayed" in operation["responses"][success]["headers"]


# --- racing duplicates ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_racing_duplicates_act_once(api_client_for):
    requester = UserFactory(tenant=TenantFactory())
    for round_number in range(3):
        key = f"race-{round_number}"
        clients = [api_client_for(requester) for _ in range(4)]
        results = run_together(
            *(lambda c=c, key=key: post(c, CONTRACTS, BODY, key=key) for c in clients)
        )

        assert all(kind == "ok" for kind, _ in results), results
        responses = [response for _, response in results]
        acted = [r for r in responses if r.status_code == 201 and not replayed(r)]
        assert len(acted) == 1, [r.status_code for r in responses]
        for response in responses:
            if response is acted[0]:
                continue
            if response.status_code == 409:
                assert response.json()["code"] == "idempotency_key_in_flight"
            else:
                assert (response.status_code, replayed(response)) == (201, True)
                assert response.content == acted[0].content
        with rls.tenant_scope(requester.tenant_id):
            assert Contract.objects.filter(created_by=requester).count() == round_number + 1
    # A retry after the race replays the winner's response.
    last = post(api_client_for(requester), CONTRACTS, BODY, key="race-2")
    assert replayed(last)
    with rls.tenant_scope(requester.tenant_id):
        assert json.loads(last.content)["id"] in set(
            str(pk) for pk in Contract.objects.values_list("pk", flat=True)
        )
