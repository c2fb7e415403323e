"""Property-based fuzzing of every operation in the service's own OpenAPI schema (schemathesis).

The schema is loaded from GET /api/schema/ of the WSGI application, in-process, and each
operation becomes one test. Every generated request (valid and invalid input) is sent as a tenant
admin with a fresh access token, against a tenant holding real data, and every response must:

* not be a 5xx (`not_a_server_error`),
* have a status the schema documents for the operation (`status_code_conformance`),
* match the documented body schema for that status (`response_schema_conformance`), and
* carry the documented content type (`content_type_conformance`).

Operations with an `{id}` in the path are aimed at a real object of the caller's tenant for about
half of the examples (REAL_OBJECTS below); a new kind of path needs one line there.
"""

import hashlib
from collections.abc import Callable
from datetime import timedelta

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from approvals import lifecycle as contract_services
from approvals.models import WorkflowStageApproval
from config.wsgi import application
from core import rls
from documents.models import Document, SignatureRequest
from tenancy.models import Role
from tenancy.out_of_office import out_of_office_set
from tests.factories import ContractFactory, TenantFactory, UserFactory, UserRoleFactory
from tests.fixtures import session_token
from workflows import services as workflow_services

pytestmark = [
    pytest.mark.django_db,
    # An unordered page is a correctness bug (rows repeat or go missing across pages): fail on it.
    pytest.mark.filterwarnings("error::django.core.paginator.UnorderedObjectListWarning"),
]

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]


class FuzzData:
    """A tenant with a few of everything, and its admin (also an approver)."""

    def __init__(self):
        tenant = TenantFactory()
        with rls.tenant_scope(tenant):  # built through the services, as its admin would
            self._build(tenant)

    def _build(self, tenant):
        self.admin = UserFactory(tenant=tenant, is_tenant_admin=True)
        UserRoleFactory(user=self.admin, role="legal")
        members = [UserFactory(tenant=tenant) for _ in range(3)]
        self.role = UserRoleFactory(user=members[0], role="finance", assigned_by=self.admin)
        self.draft = ContractFactory(created_by=members[1], metadata={"region_code": "EU"})
        self.definition = workflow_services.definition_create(
            tenant=tenant,
            created_by=self.admin,
            name="Fuzz review",
            trigger_conditions={"contract_type": "FUZZ"},
            stages=[
                {"stage_name": "Legal", "sequence": 1, "approvers": ["legal"]},
                {"stage_name": "Finance", "sequence": 2, "approvers": ["finance", "cfo"]},
            ],
        )
        self.in_review = contract_services.contract_create(
            tenant=tenant, created_by=members[2], title="Fuzzed", contract_type="FUZZ"
        )
        # A window a month ahead: GET /api/auth/me/out-of-office/ has one to show, and nothing
        # moves to the cover during the test.
        soon = timezone.now() + timedelta(days=30)
        out_of_office_set(
            user=self.admin,
            cover_id=members[0].pk,
            starts_at=soon,
            ends_at=soon + timedelta(days=7),
            set_by=self.admin,
        )
        # Another tenant's data exists too, so leaks would show up as schema-valid 200s.
        ContractFactory(created_by=UserFactory(tenant=TenantFactory()))
        # One real object per `{id}` path, made once per test (also feeds the list endpoints).
        self.ids = {
            prefix: make(self) for prefix, make in REAL_OBJECTS.items() if prefix in ID_PREFIXES
        }

    def token(self) -> str:
        return str(session_token(self.admin).access_token)

    def call(self, method: str, url: str, body: dict | None = None, expect: int = 200) -> dict:
        """A request through the API itself (as the admin); returns the JSON body."""
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.token()}")
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == expect, response.content
        return response.json()

    def post(self, url: str, body: dict):
        """Create an object through the API itself (as the admin); returns its id."""
        return self.call("post", url, body, expect=201)["id"]


def make_sla_breach(data: FuzzData):
    """Let the pending approval of `in_review` run past due, then run the breach check."""
    overdue = timezone.now() - timedelta(hours=1)
    WorkflowStageApproval.objects.filter(contract=data.in_review).update(due_at=overdue)
    data.call("post", "/api/admin/sla-breaches/check_breaches/", {})
    return data.call("get", "/api/admin/sla-breaches/")["results"][0]["id"]


def make_document(data: FuzzData) -> Document:
    """A signed contract's document row (and its completed request) on `in_review`."""
    request = SignatureRequest.objects.create(
        tenant=data.in_review.tenant,
        contract=data.in_review,
        revision=1,
        content_hash=data.in_review.content_hash,
        status="completed",
        expires_at=timezone.now(),
    )
    return Document.objects.create(
        tenant=data.in_review.tenant,
        contract=data.in_review,
        kind="signed_contract",
        revision=1,
        sha256="0" * 64,
        inputs_sha256="0" * 64,
        size=0,
        storage_name="missing.pdf",
        signature_request=request,
    )


# Path prefix (up to `{id}/`) -> makes a real object of the caller's tenant, returns its id.
# A new kind of object path adds a line; `data.post(url, body)` creates it through the API.
REAL_OBJECTS: dict[str, Callable[[FuzzData], object]] = {
    "/api/contracts/{id}/": lambda data: data.in_review.pk,
    "/api/admin/users/{id}/": lambda data: data.admin.pk,
    "/api/admin/users/roles/{id}/": lambda data: data.role.pk,
    "/api/workflows/config/{id}/": lambda data: data.definition.pk,
    "/api/admin/clauses/{id}/": lambda data: data.post(
        "/api/admin/clauses/",
        {
            "name": "Limitation of liability",
            "category": "liability",
            "contract_types": [],
            "kind": "required",
            "patterns": ["limitation of liability"],
            "severity": "warning",
        },
    ),
    # The admin holds `legal`, so starting `in_review` notified them.
    "/api/notifications/{id}/": lambda data: data.admin.notifications.get().pk,
    "/api/admin/webhooks/{id}/": lambda data: data.post(
        "/api/admin/webhooks/",
        {"url": "https://hooks.example.com/fuzz", "events": ["sla_breached"]},
    ),
    "/api/admin/sla-rules/{id}/": lambda data: data.post(
        "/api/admin/sla-rules/",
        {"contract_type": "FUZZ", "stage_name": "Legal", "sla_hours": 24},
    ),
    "/api/admin/sla-holidays/{id}/": lambda data: data.post(
        "/api/admin/sla-holidays/", {"date": "2030-12-25", "name": "Fuzz holiday"}
    ),
    "/api/admin/sla-breaches/{id}/": make_sla_breach,
    "/api/contracts/{contract_pk}/documents/{id}/": lambda data: make_document(data).pk,
    "/api/contracts/{contract_pk}/signature-requests/{id}/": lambda data: (
        make_document(data).signature_request_id
    ),
    "/api/admin/roles/{id}/": lambda data: (
        Role.objects.get(tenant_id=data.admin.tenant_id, slug="finance").pk
    ),
    "/api/approvals/{id}/": lambda data: (
        WorkflowStageApproval.objects.filter(contract=data.in_review).first().pk
    ),
}


def path_prefix(path: str) -> str | None:
    """`/api/contracts/{id}/workflow/status/` -> `/api/contracts/{id}/` (None without `{id}`)."""
    return path[: path.index("{id}") + len("{id}/")] if "{id}" in path else None


# The `{id}` paths this schema has (objects are made only for those).
ID_PREFIXES = {
    path_prefix(result.ok().path)
    for result in schema.get_all_operations()
    if isinstance(result, Ok) and "{id}" in result.ok().path
}


@pytest.fixture
def fuzz_data(db):
    data = FuzzData()
    # Like Django's test client: a request must not close the test's connection (which would end
    # its transaction). After FuzzData: the test client reconnects these after each request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield data
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_api(case, fuzz_data):
    real_id = fuzz_data.ids.get(path_prefix(case.operation.path), None)
    if real_id is not None:
        generated = str(case.path_parameters.get("id", ""))
        # Half of the examples (decided by the generated value, so shrinking is stable).
        if hashlib.sha256(generated.encode()).digest()[0] % 2 == 0:
            case.path_parameters["id"] = str(real_id)
    case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_data.token()}"}, checks=CHECKS)


def test_every_operation_is_fuzzed():
    """The fuzzing above covers the whole schema: nothing is excluded or silently dropped."""
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {operation.label for operation in operations}
    assert len(labels) == len(operations) >= 16
    assert "POST /api/contracts/" in labels
    assert "POST /api/auth/logout/" in labels
    missing = {path_prefix(op.path) for op in operations if "{id}" in op.path} - set(REAL_OBJECTS)
    assert not missing, f"add lines for {sorted(missing)} to REAL_OBJECTS"
