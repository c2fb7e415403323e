"""An external signature provider: a local HTTP server speaking HttpProvider's protocol.

The fake keeps envelopes, answers invitations, posts signed callbacks to this service (a live
server) when a signer acts, and serves the "signed" PDF back.
"""

import base64
import hashlib
import hmac
import json
import threading
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from audit.models import AuditLog
from documents.models import Document, RequestStatus, SignatureRequest
from documents.sealing import verify_pdf
from documents.selectors import document_read
from tests.fixtures import OUTSIDER, run_worker

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "provider-test-secret"


class FakeProvider:
    def __init__(self):
        self.envelopes: dict[str, dict] = {}
        self.invited: list[tuple[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: bytes, content_type="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                if self.headers.get("X-Signature") != expected:
                    return self._reply(401, b"{}")
                data = json.loads(body)
                if self.path == "/envelopes":
                    envelope = uuid.uuid4().hex
                    fake.envelopes[envelope] = data
                    return self._reply(201, json.dumps({"id": envelope}).encode())
                envelope = self.path.split("/")[2]
                fake.invited.append((envelope, data["email"]))
                return self._reply(200, b"{}")

            def do_GET(self):
                envelope = self.path.split("/")[2]
                document = base64.b64decode(fake.envelopes[envelope]["document"])
                return self._reply(200, document, "application/pdf")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def act(self, envelope: str, email: str, event: str, **extra) -> int:
        """The provider's callback, as it would post it when a signer acts."""
        body = json.dumps({"envelope": envelope, "email": email, "event": event, **extra}).encode()
        return post_signed(self.envelopes[envelope]["callback_url"], body, SECRET)


def post_signed(url: str, body: bytes, secret: str) -> int:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    call = urllib.request.Request(  # noqa: S310 (the live test server)
        url, data=body, method="POST", headers={"X-Signature": signature}
    )
    try:
        with urllib.request.urlopen(call, timeout=30) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def fake_provider(settings, live_server):
    fake = FakeProvider()
    settings.SIGNATURE_PROVIDER_URL = fake.url
    settings.SIGNATURE_PROVIDER_SECRET = SECRET
    settings.PUBLIC_BASE_URL = live_server.url
    yield fake
    fake.server.shutdown()


def test_an_external_provider_collects_the_signatures_and_its_pdf_is_sealed(
    fake_provider, clients, approved_contract
):
    contract_id = approved_contract["id"]
    response = clients["requester"].post(
        f"/api/contracts/{contract_id}/signature-requests/",
        {"signers": [OUTSIDER], "provider": "external"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    run_worker()
    [(envelope, email)] = fake_provider.invited
    assert email == OUTSIDER["email"]
    sent = fake_provider.envelopes[envelope]
    assert sent["signers"] == [{**OUTSIDER, "position": 1}]
    assert base64.b64decode(sent["document"]).startswith(b"%PDF")
    assert SignatureRequest.objects.get().provider_reference == envelope

    assert fake_provider.act(envelope, email, "viewed") == 204
    # A forged callback changes nothing.
    forged = json.dumps({"envelope": envelope, "email": email, "event": "signed"}).encode()
    assert post_signed(sent["callback_url"], forged, "wrong-secret") == 400
    assert SignatureRequest.objects.get().status == RequestStatus.PENDING

    assert fake_provider.act(envelope, email, "signed", ip_address="198.51.100.7") == 204
    assert SignatureRequest.objects.get().status == RequestStatus.COMPLETED
    contract = clients["requester"].get(f"/api/contracts/{contract_id}/").json()
    assert contract["status"] == "signed"
    assert AuditLog.objects.get(action="signed").changes["provider"] == [None, "external"]
    # The callback repeated: ignored.
    assert fake_provider.act(envelope, email, "signed") == 204

    run_worker()
    document = Document.objects.get(kind="signed_contract")
    assert verify_pdf(document_read(document=document)).valid


def test_an_unconfigured_provider_is_a_400(clients, approved_contract):
    response = clients["requester"].post(
        f"/api/contracts/{approved_contract['id']}/signature-requests/",
        {"signers": [OUTSIDER], "provider": "external"},
        format="json",
    )
    assert response.status_code == 400
    assert "provider" in response.json()["fields"]
