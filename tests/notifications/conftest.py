"""Fixtures for the notification tests: a real local webhook receiver and workflow makers."""

import hashlib
import hmac
import json
import threading
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from approvals import lifecycle as contract_services
from core import rls
from notifications.services import Message, notify_many
from tests.factories import UserFactory
from workflows import services as workflow_services


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


@pytest.fixture
def webhook_receiver():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


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
