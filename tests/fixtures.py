"""Helpers shared by the test modules: set-up that acts for a tenant, log-ins, tables.

Test modules import shared code from here (and model factories from ``tests.factories``, thread
and child-process helpers from ``tests.support``), never from another test module or a conftest.
"""

import functools
import hashlib
import hmac
import io
import json
import os
import re
import subprocess
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.core import mail
from django.core.management import call_command
from django.db.models import Model
from django.utils import timezone
from hypothesis import strategies as st
from pypdf import PdfReader
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from approvals import lifecycle as contract_services
from approvals.consistency import consistency_check
from approvals.lifecycle import contract_create
from approvals.models import SLABreach, WorkflowInstance, WorkflowStage, WorkflowStageApproval
from approvals.orchestrator import approval_act, workflow_cancel
from approvals.services import sla_check_breaches
from audit.models import AuditLog
from contracts.models import Contract
from core import rls
from documents.models import Document, SignatureRequest
from notifications import delivery
from notifications.services import Message, notify_many
from tenancy.models import Role, Tenant, User, UserRole
from tenancy.out_of_office import out_of_office_set
from tenancy.scoping import is_tenant_owned
from tenancy.tokens import SessionRefreshToken
from tests.factories import (
    FACTORY_PASSWORD,
    ClauseRuleFactory,
    ContractFactory,
    NotificationFactory,
    TenantFactory,
    UserFactory,
    UserRoleFactory,
    WebhookEndpointFactory,
)
from tests.support import ROOT
from workflows import services as workflow_services
from workflows.management.commands.seed_demo import DEMO_WORKFLOW
from workflows.models import WorkflowDefinition
from workflows.services import definition_create

# --- Scopes: acting for a tenant, logging in ----------------------------------------------------


def acting_for_its_tenant(make):
    """``make(tenant, ...)`` runs in ``tenant``'s scope: set-up done through the services for
    another tenant than the test's, as that tenant's own request would do it."""

    @functools.wraps(make)
    def made(tenant, *args, **kwargs):
        with rls.tenant_scope(tenant):
            return make(tenant, *args, **kwargs)

    return made


def session_token(user) -> SessionRefreshToken:
    """A refresh token of ``user``, minted in the user's own scope, as logging in does."""
    with rls.account_scope(user.tenant_id):
        return SessionRefreshToken.for_user(user)


def log_in(browser, user) -> None:
    """``browser.force_login(user)`` in the user's own scope, as the admin's login view does."""
    with rls.account_scope(user.tenant_id):
        browser.force_login(user)


# --- Workflows started through the services, in the scope of the tenant they act for ------------


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


# --- The analytics world: workflows with exact durations (the table of test_analytics.py) -------


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


# --- Notifications: a real local webhook receiver, workflows that notify ------------------------


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int = 0  # one per TCP connection

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    def signature_valid(self, secret: str) -> bool:
        """Recompute the HMAC on the exact bytes received, as an integrator would."""
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers.get("X-Signature", ""))


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 (a free port) that records every POST it gets.

    Answers with the queued statuses in turn (`respond_with(500, 500, 200)`), then the default.
    HTTP/1.1 keep-alive; `close_after_answer` closes each connection after its answer without
    saying so, as a receiver whose idle timeout is short does.
    """

    def __init__(self):
        self.requests: list[ReceivedRequest] = []
        self.default_status = 200
        self.close_after_answer = False
        self._statuses: deque[int] = deque()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver._record(
                    ReceivedRequest(
                        self.path, dict(self.headers.items()), body, self.client_address[1]
                    )
                )
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                self.close_connection = receiver.close_after_answer

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _record(self, request: ReceivedRequest) -> int:
        with self._lock:
            self.requests.append(request)
            return self._statuses.popleft() if self._statuses else self.default_status

    def respond_with(self, *statuses: int) -> None:
        with self._lock:
            self._statuses.extend(statuses)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/clm"

    def event_ids(self) -> Counter:
        with self._lock:
            return Counter(request.headers["X-Event-Id"] for request in self.requests)

    def start(self) -> "WebhookReceiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


ROLE_STAGES = [
    {"stage_name": "Legal Review", "sequence": 1, "approvers": ["legal"], "sla_hours": 48},
    {"stage_name": "Finance Approval", "sequence": 2, "approvers": ["finance"], "sla_hours": 24},
]


def make_definition(tenant, stages=None, contract_type="NOTIFY"):
    """Defined in ``tenant``'s scope, as its admin's request would."""
    admin = UserFactory(tenant=tenant)
    with rls.tenant_scope(tenant):
        return workflow_services.definition_create(
            tenant=tenant,
            created_by=admin,
            name=f"Notify {uuid.uuid4().hex[:8]}",
            trigger_conditions={"contract_type": contract_type},
            stages=stages or ROLE_STAGES,
        )


def start_contract(tenant, creator, title="Supply agreement", contract_type="NOTIFY"):
    """A contract whose workflow (see make_definition) starts at once."""
    with rls.tenant_scope(tenant):
        contract = contract_services.contract_create(
            tenant=tenant, created_by=creator, title=title, contract_type=contract_type
        )
    assert contract.status == "in_review"
    return contract


def queue_completed_event(tenant, *, title="Done", payload=None, recipient_ids=()):
    """One ``workflow_completed`` notification: a delivery to each subscribed webhook."""
    message = Message(
        recipient_ids=list(recipient_ids),
        notification_type="workflow_completed",
        title=title,
        message="",
        payload=payload or {},
    )
    with rls.tenant_scope(tenant):
        notify_many(tenant_id=tenant.pk, messages=[message])


# --- Decisions from e-mail: a contract waiting for review, the links its e-mails carry ----------


PUBLIC = "https://clm.example.com"


APPROVAL_LINK = re.compile(r"https?://[^\s\"<>]+/approve/[A-Za-z0-9_-]+/")


def contract_for_review(tenant, *, stages=None, title="Supply agreement"):
    """A contract (value, counterparty) whose workflow waits at its first stage."""
    make_definition(tenant, stages=stages)
    creator = UserFactory(tenant=tenant)
    with rls.tenant_scope(tenant):
        return contract_services.contract_create(
            tenant=tenant,
            created_by=creator,
            title=title,
            contract_type="NOTIFY",
            value=Decimal("125000.50"),
            currency="EUR",
            counterparty="Globex Corporation",
        )


def emailed_links() -> dict[str, str]:
    """Deliver what is queued; each recipient's approval link path, by e-mail address."""
    delivery.drain()
    links = {}
    for message in mail.outbox:
        found = APPROVAL_LINK.findall(message.body)
        if found:
            links[message.to[0]] = urlsplit(found[0]).path
    mail.outbox.clear()
    return links


# --- Documents: the worker, the PDFs' text, signing links ---------------------------------------


def run_worker() -> str:
    out = io.StringIO()
    call_command("generate_documents", "--once", stdout=out)
    return out.getvalue()


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


SIGNING_LINK = re.compile(r"https?://[^\s]+/sign/([^/\s]+)/")


OUTSIDER = {"name": "Olga Outside", "email": "olga@counterparty.example"}


# --- Audit --------------------------------------------------------------------------------------


BASE_TIME = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


# --- Workflows through the API ------------------------------------------------------------------


# The example of docs/api.md, exactly as the demo seed loads it.
HIGH_VALUE = DEMO_WORKFLOW


DEFINITIONS = "/api/workflows/config/"


def api_stage(name, sequence, approvers, approval_type="all", **extra) -> dict:
    return {
        "stage_name": name,
        "sequence": sequence,
        "approvers": list(approvers),
        "approval_type": approval_type,
        **extra,
    }


def create_contract(client, **fields) -> dict:
    payload = {"title": "Big MSA", "contract_type": "MSA", "value": "600000", **fields}
    response = client.post("/api/contracts/", payload, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def act(client, contract_id, action="approve", **extra):
    return client.post(
        f"/api/contracts/{contract_id}/approve/", {"action": action, **extra}, format="json"
    )


def approved(client, contract_id, **extra) -> dict:
    response = act(client, contract_id, **extra)
    assert response.status_code == 200, response.json()
    return response.json()


def api_start(client, contract_id, **payload):
    return client.post(f"/api/contracts/{contract_id}/workflow/start/", payload, format="json")


def cancel(client, contract_id, **payload):
    return client.post(f"/api/contracts/{contract_id}/workflow/cancel/", payload, format="json")


def status_of(client, contract_id) -> dict:
    response = client.get(f"/api/contracts/{contract_id}/workflow/status/")
    assert response.status_code == 200, response.json()
    return response.json()


def stage_statuses(status: dict) -> dict:
    return {item["stage_name"]: item["status"] for item in status["stages"]}


def rows_of(status: dict, stage_name: str) -> list[dict]:
    (found,) = [item for item in status["stages"] if item["stage_name"] == stage_name]
    return found["approvals"]


def row_statuses(status: dict, stage_name: str) -> dict[str, str]:
    """`{approver: status}`: rows opened together have no defined order among themselves."""
    rows = rows_of(status, stage_name)
    statuses = {row["approver"]: row["status"] for row in rows}
    assert len(statuses) == len(rows), rows
    return statuses


def row_history(status: dict, stage_name: str) -> list[str]:
    """Statuses in creation order (a delegation's new row comes after the delegated one)."""
    return [row["status"] for row in rows_of(status, stage_name)]


def contract_status(client, contract_id) -> str:
    return client.get(f"/api/contracts/{contract_id}/").json()["status"]


def error_code(response, status_code) -> dict:
    assert response.status_code == status_code, response.content[:500]
    body = response.json()
    assert set(body) >= {"code", "detail", "request_id"}, body
    return body


# --- Tenant isolation: one saved object of a tenant per endpoint (tests/tenancy/) ---------------


# Tenant A's caller holds this role, so approvals created by the makers are actionable for them.
APPROVER_ROLE = "isolation-approver"


# Contracts of this type match the definitions the makers create; other contracts match nothing.
WORKFLOW_CONTRACT_TYPE = "ISOLATION"


@acting_for_its_tenant
def make_contract(tenant: Tenant) -> Contract:
    """A draft contract (no definition matches it)."""
    return ContractFactory(created_by=UserFactory(tenant=tenant), metadata={"deal": "secret"})


@acting_for_its_tenant
def make_user(tenant: Tenant) -> User:
    return UserFactory(tenant=tenant)


@acting_for_its_tenant
def make_role(tenant: Tenant) -> UserRole:
    return UserRoleFactory(user=UserFactory(tenant=tenant), role="finance")


@acting_for_its_tenant
def make_isolation_definition(tenant: Tenant) -> WorkflowDefinition:
    """An active definition matching WORKFLOW_CONTRACT_TYPE, one stage approved by APPROVER_ROLE."""
    Role.objects.get_or_create(tenant=tenant, slug=APPROVER_ROLE, defaults={"name": "Approver"})
    return workflow_services.definition_create(
        tenant=tenant,
        created_by=UserFactory(tenant=tenant),
        name=f"Isolation {uuid.uuid4().hex[:8]}",
        trigger_conditions={"contract_type": WORKFLOW_CONTRACT_TYPE},
        stages=[
            {
                "stage_name": "Review",
                "sequence": 1,
                "approvers": [APPROVER_ROLE],
                "approval_type": "all",
                "sla_hours": 24,
                "is_required": True,
            }
        ],
    )


@acting_for_its_tenant
def make_startable_contract(tenant: Tenant) -> Contract:
    """A draft contract that a definition of its tenant matches (no workflow started yet)."""
    make_isolation_definition(tenant)
    return ContractFactory(
        created_by=UserFactory(tenant=tenant), contract_type=WORKFLOW_CONTRACT_TYPE
    )


@acting_for_its_tenant
def make_contract_in_review(tenant: Tenant) -> Contract:
    """A contract whose workflow is active, with one pending approval for APPROVER_ROLE."""
    make_isolation_definition(tenant)
    contract = contract_services.contract_create(
        tenant=tenant,
        created_by=UserFactory(tenant=tenant),
        title="Under review",
        contract_type=WORKFLOW_CONTRACT_TYPE,
    )
    assert contract.status == "in_review"
    return contract


@acting_for_its_tenant
def make_pending_approval(tenant: Tenant) -> WorkflowStageApproval:
    return WorkflowStageApproval.objects.get(contract=make_contract_in_review(tenant))


@acting_for_its_tenant
def make_notification(tenant: Tenant):
    """A notification for the tenant's admin holding APPROVER_ROLE (the caller in tenant A)."""
    caller = User.objects.filter(
        tenant=tenant, is_tenant_admin=True, role_assignments__role=APPROVER_ROLE
    ).first()
    return NotificationFactory(recipient=caller or UserFactory(tenant=tenant))


@acting_for_its_tenant
def make_sla_rule(tenant: Tenant) -> Model:
    from approvals.services import sla_rule_create

    return sla_rule_create(
        tenant=tenant,
        created_by=UserFactory(tenant=tenant),
        contract_type=f"T{uuid.uuid4().hex[:8]}",
        sla_hours=24,
    )


@acting_for_its_tenant
def make_holiday(tenant: Tenant) -> Model:
    import datetime

    from approvals.models import Holiday

    taken = set(Holiday.objects.filter(tenant=tenant).values_list("date", flat=True))
    day = next(
        datetime.date(2030, 1, 1) + datetime.timedelta(days=n)
        for n in range(1000)
        if datetime.date(2030, 1, 1) + datetime.timedelta(days=n) not in taken
    )
    return Holiday.objects.create(tenant=tenant, date=day, name="Isolation day")


@acting_for_its_tenant
def make_sla_breach(tenant: Tenant) -> Model:
    """A pending approval of the tenant, breached by a check run just after its due date."""
    import datetime

    from approvals.services import sla_check_breaches

    approval = make_pending_approval(tenant)
    sla_check_breaches(tenant=tenant, now=approval.due_at + datetime.timedelta(microseconds=1))
    return SLABreach.objects.get(approval=approval)


@dataclass(frozen=True)
class ObjectEndpoint:
    method: str
    url: str  # with an `{id}` placeholder
    make: Callable[[Tenant], Model]
    body: dict[str, Any] | None = None
    # The status the same request gets on the caller's own object (proves the line is live).
    own_status: int = 200

    def __str__(self) -> str:
        return f"{self.method} {self.url}"


DEFINITION_BODY = {
    "name": "Renamed by another tenant",
    "description": "",
    "trigger_conditions": {},
    "stages": [{"stage_name": "Only", "sequence": 1, "approvers": ["legal"]}],
    "priority": 1,
    "is_active": True,
}


OBJECT_ENDPOINTS = [
    # contracts
    ObjectEndpoint("GET", "/api/contracts/{id}/", make_contract),
    ObjectEndpoint(
        "PATCH",
        "/api/contracts/{id}/",
        make_contract,
        body={"title": "Hijacked", "value": "1.00", "metadata": {}},
    ),
    # workflows on a contract
    ObjectEndpoint("GET", "/api/contracts/{id}/workflow/status/", make_contract_in_review),
    ObjectEndpoint("POST", "/api/contracts/{id}/workflow/start/", make_startable_contract, {}, 201),
    ObjectEndpoint(
        "POST", "/api/contracts/{id}/workflow/cancel/", make_contract_in_review, {"reason": "x"}
    ),
    ObjectEndpoint(
        "POST", "/api/contracts/{id}/approve/", make_contract_in_review, {"action": "approve"}
    ),
    ObjectEndpoint(
        "POST",
        "/api/contracts/{id}/approve/",
        make_contract_in_review,
        {"action": "reject", "comments": "no"},
    ),
    # workflow definitions
    ObjectEndpoint("GET", "/api/workflows/config/{id}/", make_isolation_definition),
    ObjectEndpoint(
        "PUT", "/api/workflows/config/{id}/", make_isolation_definition, DEFINITION_BODY
    ),
    ObjectEndpoint(
        "PATCH", "/api/workflows/config/{id}/", make_isolation_definition, {"priority": 999_999}
    ),
    ObjectEndpoint(
        "DELETE", "/api/workflows/config/{id}/", make_isolation_definition, own_status=204
    ),
    # users and roles
    ObjectEndpoint("GET", "/api/admin/users/roles/{id}/", make_role),
    ObjectEndpoint("DELETE", "/api/admin/users/roles/{id}/", make_role, own_status=204),
    ObjectEndpoint("GET", "/api/admin/users/{id}/", make_user),
    # clause library
    ObjectEndpoint("GET", "/api/admin/clauses/{id}/", lambda t: ClauseRuleFactory(tenant=t)),
    ObjectEndpoint(
        "PATCH",
        "/api/admin/clauses/{id}/",
        lambda t: ClauseRuleFactory(tenant=t),
        {"name": "Hijacked", "patterns": ["anything"]},
    ),
    ObjectEndpoint(
        "DELETE", "/api/admin/clauses/{id}/", lambda t: ClauseRuleFactory(tenant=t), own_status=204
    ),
    # notifications and webhooks
    ObjectEndpoint("POST", "/api/notifications/{id}/read/", make_notification),
    ObjectEndpoint("GET", "/api/admin/webhooks/{id}/", lambda t: WebhookEndpointFactory(tenant=t)),
    ObjectEndpoint(
        "PUT",
        "/api/admin/webhooks/{id}/",
        lambda t: WebhookEndpointFactory(tenant=t),
        {"url": "https://hijack.example.com/h", "events": ["approval_assigned"]},
    ),
    ObjectEndpoint(
        "PATCH",
        "/api/admin/webhooks/{id}/",
        lambda t: WebhookEndpointFactory(tenant=t),
        {"is_active": False, "secret": "whsec_aGlqYWNrZWQtc2VjcmV0LTAxMjM0NTY3ODk="},
    ),
    ObjectEndpoint(
        "DELETE",
        "/api/admin/webhooks/{id}/",
        lambda t: WebhookEndpointFactory(tenant=t),
        own_status=204,
    ),
    ObjectEndpoint(
        "GET", "/api/admin/webhooks/{id}/deliveries/", lambda t: WebhookEndpointFactory(tenant=t)
    ),
    ObjectEndpoint(
        "POST",
        "/api/admin/webhooks/{id}/rotate-secret/",
        lambda t: WebhookEndpointFactory(tenant=t),
    ),
    # SLA administration
    ObjectEndpoint("GET", "/api/admin/sla-rules/{id}/", make_sla_rule),
    ObjectEndpoint("PUT", "/api/admin/sla-rules/{id}/", make_sla_rule, {"sla_hours": 5}),
    ObjectEndpoint("PATCH", "/api/admin/sla-rules/{id}/", make_sla_rule, {"is_active": False}),
    ObjectEndpoint("DELETE", "/api/admin/sla-rules/{id}/", make_sla_rule, own_status=204),
    ObjectEndpoint("GET", "/api/admin/sla-holidays/{id}/", make_holiday),
    ObjectEndpoint("PATCH", "/api/admin/sla-holidays/{id}/", make_holiday, {"name": "Hijacked"}),
    ObjectEndpoint("DELETE", "/api/admin/sla-holidays/{id}/", make_holiday, own_status=204),
    ObjectEndpoint("GET", "/api/admin/sla-breaches/{id}/", make_sla_breach),
]


@dataclass(frozen=True)
class ListEndpoint:
    url: str
    make: Callable[[Tenant], Model]  # a row that appears in this list, by its `id`

    def __str__(self) -> str:
        return self.url


LIST_ENDPOINTS = [
    ListEndpoint("/api/contracts/", make_contract),
    ListEndpoint("/api/admin/users/", make_user),
    ListEndpoint("/api/admin/users/roles/", make_role),
    ListEndpoint("/api/workflows/config/", make_isolation_definition),
    ListEndpoint("/api/approvals/", make_pending_approval),
    ListEndpoint("/api/approvals/pending/", make_pending_approval),
    ListEndpoint("/api/admin/clauses/", lambda t: ClauseRuleFactory(tenant=t)),
    ListEndpoint("/api/notifications/", make_notification),
    ListEndpoint("/api/admin/webhooks/", lambda t: WebhookEndpointFactory(tenant=t)),
    ListEndpoint("/api/admin/sla-rules/", make_sla_rule),
    ListEndpoint("/api/admin/sla-holidays/", make_holiday),
    ListEndpoint("/api/admin/sla-breaches/", make_sla_breach),
]


@acting_for_its_tenant
def tenant_state(tenant: Tenant) -> dict[str, list[dict]]:
    """Every row of every tenant-owned table (and the users) of `tenant`, as stored now.

    Covers the audit log too: a refused request must not even write the other tenant's audit.
    """
    state = {"tenancy.User": list(User.objects.filter(tenant=tenant).order_by("pk").values())}
    for model in apps.get_models():
        if is_tenant_owned(model):
            rows = model._default_manager.filter(tenant=tenant).order_by("pk").values()
            state[model._meta.label] = list(rows)
    return state


def without_request_id(response) -> str:
    """The JSON body, minus the per-request id, as canonical text."""
    body = response.json()
    body.pop("request_id", None)
    return json.dumps(body, sort_keys=True)


def call(client, endpoint: ObjectEndpoint, pk):
    url = endpoint.url.format(id=pk)
    return getattr(client, endpoint.method.lower())(url, endpoint.body, format="json")


def listed_ids(client, url: str, **params) -> set[str]:
    response = client.get(url, {"page_size": 200, **params})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == len(body["results"]), "test data must fit one page"
    return {row["id"] for row in body["results"]}


# --- The Django admin ---------------------------------------------------------------------------


def inline_management_data(browser, url: str) -> dict:
    """The management-form fields of the page's inline formsets, with no inline rows."""
    response = browser.get(url)
    assert response.status_code == 200
    data = {}
    for inline in response.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data[f"{prefix}-TOTAL_FORMS"] = "0"
        data[f"{prefix}-INITIAL_FORMS"] = "0"
    return data


# --- The checkout: make -------------------------------------------------------------------------


def make(*args: str, env: dict | None = None) -> str:
    """``make`` at the checkout's root (``-n`` prints recipes instead of running them), in this
    environment without PUBLIC_BASE_URL unless ``env`` is given."""
    result = subprocess.run(  # noqa: S603 (fixed arguments)
        ["make", "--no-print-directory", *args],  # noqa: S607 (make from PATH, as a developer's)
        cwd=ROOT,
        env=env or {name: value for name, value in os.environ.items() if name != "PUBLIC_BASE_URL"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


# --- The API fuzzing's data (tests/config/) -----------------------------------------------------


class FuzzData:
    """A tenant with a few of everything, and its admin (also an approver)."""

    def __init__(self, id_prefixes):
        """``id_prefixes``: the schema's ``{id}`` paths, each of which gets a real object."""
        tenant = TenantFactory()
        with rls.tenant_scope(tenant):  # built through the services, as its admin would
            self._build(tenant, id_prefixes)

    def _build(self, tenant, id_prefixes):
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
            prefix: make(self) for prefix, make in REAL_OBJECTS.items() if prefix in id_prefixes
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


def fuzz_sla_breach(data: FuzzData):
    """Let the pending approval of `in_review` run past due, then run the breach check."""
    overdue = timezone.now() - timedelta(hours=1)
    WorkflowStageApproval.objects.filter(contract=data.in_review).update(due_at=overdue)
    data.call("post", "/api/admin/sla-breaches/check_breaches/", {})
    return data.call("get", "/api/admin/sla-breaches/")["results"][0]["id"]


def fuzz_document(data: FuzzData) -> Document:
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
    "/api/admin/sla-breaches/{id}/": fuzz_sla_breach,
    "/api/contracts/{contract_pk}/documents/{id}/": lambda data: fuzz_document(data).pk,
    "/api/contracts/{contract_pk}/signature-requests/{id}/": lambda data: (
        fuzz_document(data).signature_request_id
    ),
    "/api/admin/roles/{id}/": lambda data: (
        Role.objects.get(tenant_id=data.admin.tenant_id, slug="finance").pk
    ),
    "/api/approvals/{id}/": lambda data: (
        WorkflowStageApproval.objects.filter(contract=data.in_review).first().pk
    ),
}


# --- The clause library API (tests/contracts/test_clauses_*.py) ---------------------------------


CLAUSES = "/api/admin/clauses/"


VALIDATE = "/api/contracts/validate-clauses/"


def rule_url(rule) -> str:
    return f"{CLAUSES}{getattr(rule, 'pk', None) or rule['id']}/"


def rule_body(**overrides) -> dict:
    return {
        "name": "No unlimited liability",
        "category": "liability",
        "contract_types": ["MSA", "SOW"],
        "kind": "prohibited",
        "patterns": ["unlimited liability", "liability shall be unlimited"],
        "severity": "blocking",
        "guidance": "Fallback: liability capped at 12 months of fees.",
        "is_active": True,
        **overrides,
    }


def assert_400_on(response, field: str, *, prefix: bool = False) -> dict:
    """A validation error on `field` (on `field` or one of its items when `prefix`)."""
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    if prefix:
        assert any(key.split("[")[0] == field for key in body["fields"]), body
    else:
        assert field in body["fields"], body
    return body


# --- The contracts API (tests/contracts/test_contracts_api_*.py) ----------------------------------


CONTRACTS = "/api/contracts/"


def detail_url(contract) -> str:
    return f"{CONTRACTS}{getattr(contract, 'pk', contract)}/"


def contracts_assert_400_on(response, field: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in body["fields"], body
    assert "request_id" in body


def contracts_make_contract(user, **fields):
    return ContractFactory(created_by=user, tenant=user.tenant, **fields)


# --- The workflow definitions API (tests/workflows/test_definitions_*.py) -------------------------


URL = "/api/workflows/config/"


def definitions_stage(name="Legal Review", sequence=1, approvers=("legal",), **extra) -> dict:
    return {"stage_name": name, "sequence": sequence, "approvers": list(approvers), **extra}


def body(name="Catch-all", **overrides) -> dict:
    return {"name": name, "trigger_conditions": {}, "stages": [definitions_stage()], **overrides}


def definitions_detail_url(definition_id) -> str:
    return f"{URL}{definition_id}/"


def create(client, **overrides) -> dict:
    response = client.post(URL, body(**overrides), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def assert_validation_error(response, key: str, *needles: str) -> str:
    """400 in the standard shape, with `key` among the fields; returns its joined messages."""
    assert response.status_code == 400, response.content[:500]
    error = response.json()
    assert error["code"] == "validation_error", error
    assert key in error["fields"], error
    message = " ".join(error["fields"][key])
    for needle in needles:
        assert needle in message, (needle, message)
    return message


# --- The trigger-rule engine's facts (tests/workflows/test_rules_*.py) ----------------------------


@dataclass
class Facts:
    value: Decimal | None = Decimal("1000.00")
    contract_type: str = "MSA"
    currency: str = "USD"
    counterparty: str = "Acme Corp"
    department: str = "Legal"
    region: str = "EMEA"
    title: str = "Master Services Agreement"
    start_date: date | None = date(2025, 1, 1)
    end_date: date | None = date(2025, 12, 31)
    has_blocking_findings: bool = False
    metadata: dict = field(default_factory=dict)


# --- Workflow semantics through the API (tests/flows/test_workflow_semantics_*.py) ----------------


def audit_actions() -> list[str]:
    return list(AuditLog.objects.order_by("created_at").values_list("action", flat=True))


# --- Approval integrity through the API (tests/flows/test_approval_integrity_*.py) ----------------


def integrity_define(admin_client, stages, trigger_conditions=None, **fields) -> dict:
    payload = {
        "name": fields.pop("name", f"Flow {uuid.uuid4().hex[:8]}"),
        "trigger_conditions": {} if trigger_conditions is None else trigger_conditions,
        "stages": stages,
        **fields,
    }
    response = admin_client.post(DEFINITIONS, payload, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def patch(client, contract_id, **fields):
    return client.patch(f"/api/contracts/{contract_id}/", fields, format="json")


def post(client, contract_id, what, **body):
    return client.post(f"/api/contracts/{contract_id}/{what}/", body, format="json")


def audit(action, **filters) -> list[AuditLog]:
    return list(AuditLog.objects.filter(action=action, **filters).order_by("created_at", "id"))


def open_instances(contract_id) -> int:
    return WorkflowInstance.objects.filter(
        contract_id=contract_id, status__in=["active", "changes_requested"]
    ).count()


# --- The audit trail's scene and arrange steps (tests/audit/test_audit_trail*.py) -----------------


CLIENT_IP = "203.0.113.9"


USER_AGENT = "AuditTrailTest/1.0 (table)"


WORKFLOW_TYPE = "AUDITED"


@dataclass
class Scene:
    tenant: Any
    admin: User
    requester: User
    legal: User
    finance: User
    client_for: Callable[[User], APIClient]
    # Filled by a case's arrange step, read by its expectations.
    saved: dict[str, Any] = field(default_factory=dict)


def audit_stage(name, sequence, approvers, approval_type="all", **extra):
    return {
        "stage_name": name,
        "sequence": sequence,
        "approvers": approvers,
        "approval_type": approval_type,
        "sla_hours": 24,
        "is_required": True,
        **extra,
    }


def definition(scene: Scene, *stages, name=None) -> WorkflowDefinition:
    return workflow_services.definition_create(
        tenant=scene.tenant,
        created_by=scene.admin,
        name=name or f"Audited {uuid.uuid4().hex[:6]}",
        trigger_conditions={"contract_type": WORKFLOW_TYPE},
        stages=list(stages),
    )


def contract_in_review(scene: Scene, *stages):
    definition(scene, *stages)
    contract = contract_services.contract_create(
        tenant=scene.tenant,
        created_by=scene.requester,
        title="Audited",
        contract_type=WORKFLOW_TYPE,
    )
    assert contract.status == "in_review"
    scene.saved["contract"] = contract
    scene.saved["instance"] = WorkflowInstance.objects.get(contract=contract)
    return contract


Lazy = Callable[["Scene", Any], Any]  # (scene, response) -> value, for ids the request creates


@dataclass(frozen=True)
class Row:
    action: str
    resource_type: str
    resource_id: str | Lazy
    actor: User | Lazy | None = "caller"
    # Entries that must be in `changes`, exactly; `exact=True`: and nothing else.
    changes: dict | Lazy = field(default_factory=dict)
    exact: bool = False
    tenant: object = "scene"


@dataclass(frozen=True)
class Case:
    name: str
    arrange: Callable[[Scene], tuple[User | None, str, str, dict | None]]
    status: int
    rows: list[Row]

    def __str__(self) -> str:
        return self.name


def _resolve(value, scene, response):
    return value(scene, response) if callable(value) else value


def _instance(scene, response):
    return str(scene.saved["instance"].pk)


def _stage(sequence):
    return lambda scene, response: str(
        WorkflowStage.objects.get(instance=scene.saved["instance"], sequence=sequence).pk
    )


def _approval(approver):
    return lambda scene, response: str(
        WorkflowStageApproval.objects.get(
            instance=scene.saved["instance"], approver=approver, delegated_from__isnull=True
        ).pk
    )


def _response_id(scene, response):
    return response.json()["id"]


def register(scene):
    scene.saved["email"] = "founder@audit.example"
    return (
        None,
        "post",
        "/api/auth/register/",
        {
            "email": "founder@audit.example",
            "password": FACTORY_PASSWORD,
            "full_name": "Fay Founder",
            "tenant_name": "Audited Inc",
        },
    )


def token_login(scene):
    return (
        None,
        "post",
        "/api/auth/token/",
        {
            "email": scene.requester.email,
            "password": FACTORY_PASSWORD,
        },
    )


def failed_login(scene):
    return (
        None,
        "post",
        "/api/auth/token/",
        {
            "email": scene.requester.email,
            "password": "not-the-password",
        },
    )


def failed_login_unknown_email(scene):
    return (
        None,
        "post",
        "/api/auth/token/",
        {
            "email": "nobody@nowhere.example",
            "password": "whatever-it-is",
        },
    )


def logout(scene):
    return (
        scene.requester,
        "post",
        "/api/auth/logout/",
        {"refresh": str(RefreshToken.for_user(scene.requester))},
    )


def user_create(scene):
    return (
        scene.admin,
        "post",
        "/api/admin/users/",
        {
            "email": "new.hire@audit.example",
            "password": FACTORY_PASSWORD,
            "full_name": "New Hire",
        },
    )


def role_assign(scene):
    return (
        scene.admin,
        "post",
        "/api/admin/users/roles/",
        {
            "user": str(scene.requester.pk),
            "role": "procurement",
            "permissions": ["audit.view"],
        },
    )


def role_revoke(scene):
    assignment = UserRoleFactory(user=scene.requester, role="procurement", permissions=[])
    scene.saved["assignment"] = assignment
    return scene.admin, "delete", f"/api/admin/users/roles/{assignment.pk}/", None


def audit_contract_create(scene):
    return (
        scene.requester,
        "post",
        "/api/contracts/",
        {
            "title": "Plain NDA",
            "contract_type": "NDA",
            "value": "1000",
            "counterparty": "Initech",
        },
    )


def contract_create_starting_workflow(scene):
    definition(scene, audit_stage("Legal", 1, ["legal"]))
    return (
        scene.requester,
        "post",
        "/api/contracts/",
        {
            "title": "Audited MSA",
            "contract_type": WORKFLOW_TYPE,
        },
    )


def contract_update(scene):
    contract = ContractFactory(created_by=scene.requester, title="Before")
    scene.saved["contract"] = contract
    scene.saved["hash_before"] = contract.content_hash
    return scene.requester, "patch", f"/api/contracts/{contract.pk}/", {"title": "After"}


def audit_definition_create(scene):
    return (
        scene.admin,
        "post",
        "/api/workflows/config/",
        {
            "name": "Created through the API",
            "trigger_conditions": {"contract_type": "SOW"},
            "stages": [audit_stage("Legal", 1, ["legal"])],
        },
    )


def definition_update(scene):
    scene.saved["definition"] = definition(scene, audit_stage("Legal", 1, ["legal"]))
    return (
        scene.admin,
        "patch",
        f"/api/workflows/config/{scene.saved['definition'].pk}/",
        {"priority": 7},
    )


def definition_delete(scene):
    scene.saved["definition"] = definition(scene, audit_stage("Legal", 1, ["legal"]), name="Doomed")
    return scene.admin, "delete", f"/api/workflows/config/{scene.saved['definition'].pk}/", None


def workflow_start(scene):
    definition(scene, audit_stage("Legal", 1, ["legal"]))
    contract = ContractFactory(created_by=scene.requester, contract_type=WORKFLOW_TYPE)
    scene.saved["contract"] = contract
    return scene.requester, "post", f"/api/contracts/{contract.pk}/workflow/start/", {}


def _after_start(scene, response):
    """For workflow_start: the instance exists only once the request ran."""
    scene.saved["instance"] = WorkflowInstance.objects.get(contract=scene.saved["contract"])
    return str(scene.saved["instance"].pk)


def approve_last_stage(scene):
    contract = contract_in_review(scene, audit_stage("Legal", 1, ["legal"]))
    return (
        scene.legal,
        "post",
        f"/api/contracts/{contract.pk}/approve/",
        {
            "action": "approve",
            "comments": "Fine",
        },
    )


def approve_opening_next_stage(scene):
    contract = contract_in_review(
        scene, audit_stage("Legal", 1, ["legal"]), audit_stage("Finance", 2, ["finance"])
    )
    return scene.legal, "post", f"/api/contracts/{contract.pk}/approve/", {"action": "approve"}


def approve_any_skipping_the_other(scene):
    contract = contract_in_review(scene, audit_stage("Either", 1, ["legal", "finance"], "any"))
    return scene.legal, "post", f"/api/contracts/{contract.pk}/approve/", {"action": "approve"}


def reject(scene):
    contract = contract_in_review(scene, audit_stage("Both", 1, ["legal", "finance"]))
    return (
        scene.legal,
        "post",
        f"/api/contracts/{contract.pk}/approve/",
        {
            "action": "reject",
            "comments": "Liability uncapped",
        },
    )


def delegate(scene):
    contract = contract_in_review(scene, audit_stage("Legal", 1, ["legal"]))
    scene.saved["stand_in"] = UserFactory(tenant=scene.tenant)
    return (
        scene.legal,
        "post",
        f"/api/contracts/{contract.pk}/approve/",
        {
            "action": "delegate",
            "delegate_to": str(scene.saved["stand_in"].pk),
        },
    )


def audit_cancel(scene):
    contract = contract_in_review(scene, audit_stage("Legal", 1, ["legal"]))
    return (
        scene.requester,
        "post",
        f"/api/contracts/{contract.pk}/workflow/cancel/",
        {"reason": "Deal fell through"},
    )


# --- The consistency check's workflows through the API (tests/approvals/test_consistency*.py) -----


SEQUENTIAL = [  # all -> any -> all, as the example workflow of docs/api.md
    {"stage_name": "Legal Review", "sequence": 1, "approvers": ["legal"], "approval_type": "all"},
    {
        "stage_name": "Finance Approval",
        "sequence": 2,
        "approvers": ["finance", "cfo"],
        "approval_type": "any",
    },
    {"stage_name": "Executive Sign-Off", "sequence": 3, "approvers": ["ceo"]},
]


def parallel_stages(named_user) -> list[dict]:
    """Two parallel stages (one with a named approver, one quorum), an optional one, a last one."""
    return [
        {"stage_name": "Legal", "sequence": 1, "approvers": ["legal", f"user:{named_user.pk}"]},
        {
            "stage_name": "Security",
            "sequence": 1,
            "approvers": ["security", "privacy", "risk"],
            "approval_type": "quorum",
            "min_approvals": 2,
        },
        {"stage_name": "Ops", "sequence": 2, "approvers": ["finance"], "is_required": False},
        {
            "stage_name": "Sign-off",
            "sequence": 3,
            "approvers": ["ceo", "cfo"],
            "approval_type": "any",
        },
    ]


def consistency_create(clients, contract_type="SEQ") -> str:
    body = {"title": "MSA", "contract_type": contract_type, "value": "1000.00"}
    response = clients["requester"].post("/api/contracts/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == ("in_review" if contract_type != "NONE" else "draft")
    return response.json()["id"]


def consistency_act(client, contract_id, action="approve", expect=200, **extra) -> dict:
    response = client.post(
        f"/api/contracts/{contract_id}/approve/", {"action": action, **extra}, format="json"
    )
    assert response.status_code == expect, response.json()
    return response.json()


def assert_consistent(tenant_id=None) -> None:
    assert consistency_check(tenant_id=tenant_id).violations == []


def _row(instance, approver) -> WorkflowStageApproval:
    return instance.approvals.get(approver=approver, status="pending")


RESET_STAGES = [  # reset policies: a field list, "never", another list
    {"stage_name": "Legal", "sequence": 1, "approvers": ["legal"], "reset_on_change": ["value"]},
    {
        "stage_name": "Finance",
        "sequence": 2,
        "approvers": ["finance", "cfo"],
        "approval_type": "any",
        "reset_on_change": "never",
    },
    {
        "stage_name": "Board",
        "sequence": 3,
        "approvers": ["ceo", "risk"],
        "reset_on_change": ["title"],
    },
]


def consistency_patch(clients, contract_id, **fields) -> dict:
    response = clients["requester"].patch(f"/api/contracts/{contract_id}/", fields, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


# --- rule strategies (hypothesis) ---------------------------------------------------------------


def _condition_identity(key: str) -> tuple[str, str]:
    """The condition a key denotes (``value`` is ``value__exact``), so an object never repeats
    one."""
    parts = key.replace("contract_value", "value", 1).split("__")
    if parts[0] == "metadata":
        parts = ["__".join(parts[:2]), *parts[2:]]
    return parts[0], parts[1] if len(parts) > 1 else "exact"


def _unique_conditions(entries: list[tuple[str, object]]) -> dict:
    kept: dict = {}
    seen: set = set()
    for key, value in entries:
        if _condition_identity(key) not in seen:
            seen.add(_condition_identity(key))
            kept[key] = value
    return kept


def rule_objects(conditions, depth: int = 3):
    """Rule objects over ``conditions`` (a strategy of ``(key, value)`` entries): plain
    conditions, ``not``, ``any`` and ``all`` nested up to ``depth``."""
    entries = st.lists(conditions, min_size=1, max_size=2).map(_unique_conditions)
    if depth == 0:
        return entries
    inner = rule_objects(conditions, depth - 1)
    operator = st.one_of(
        st.tuples(st.just("not"), inner),
        st.tuples(st.sampled_from(["any", "all"]), st.lists(inner, min_size=1, max_size=2)),
    )
    # An object holds at least one condition or one operator (nested objects may not be empty).
    return st.one_of(
        st.builds(lambda plain, op: {**plain, **dict(op)}, entries, st.lists(operator, max_size=1)),
        operator.map(lambda op: dict([op])),
    )
