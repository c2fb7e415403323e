"""Security finding 3: one webhook send has an overall deadline (WEBHOOK_TIMEOUT_SECONDS) covering
the name lookup, connect, TLS, the request and every read, so a receiver that trickles its answer
cannot hold a worker past its lease. Real local servers; the only stand-in is a hung resolver."""

import socket
import ssl
import subprocess
import threading
import time

import pytest
from django.utils import timezone

from notifications import delivery
from notifications.models import Delivery, WebhookEndpoint
from tests.factories import WebhookEndpointFactory
from tests.fixtures import WebhookReceiver, queue_completed_event

DEADLINE = 1
TRICKLE_SECONDS = 0.05  # far below the deadline: a per-read timeout alone never trips
TRICKLE_BYTES = 200  # 10 s of trickling, well past the deadline and the guard below


@pytest.fixture(autouse=True)
def _deadline_settings(settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = DEADLINE
    settings.NOTIFICATION_MAX_ATTEMPTS = 5
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 100


class TrickleServer:
    """A TCP server on 127.0.0.1 that reads what the client sends first, answers ``head`` at
    once, then ``trickled`` (padded to TRICKLE_BYTES) one byte every TRICKLE_SECONDS; it stops
    when the client goes away or the test ends."""

    def __init__(self, head: bytes, trickled: bytes):
        self.head, self.trickled = head, trickled.ljust(TRICKLE_BYTES, b"a")
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._trickle, args=(client,), daemon=True).start()

    def _trickle(self, client: socket.socket) -> None:
        with client:
            client.settimeout(5)
            try:
                client.recv(65536)  # the request (or a TLS ClientHello)
                client.sendall(self.head)
                for byte in self.trickled:
                    if self.stopped.wait(TRICKLE_SECONDS):
                        return
                    client.sendall(bytes([byte]))
            except OSError:
                return  # the client gave up

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.listener.close()


@pytest.fixture
def trickle():
    servers = []

    def start(trickled: bytes, head: bytes = b"") -> TrickleServer:
        servers.append(TrickleServer(head, trickled))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def timed_post(url: str) -> tuple[delivery.SendResult, float]:
    started = time.monotonic()
    outcome = delivery.post_json(url, b"{}", {"Content-Type": "application/json"}, DEADLINE)
    return outcome, time.monotonic() - started


def assert_cut_at_the_deadline(outcome: delivery.SendResult, elapsed: float) -> None:
    assert not outcome.ok
    assert outcome.error == f"deadline exceeded ({DEADLINE} s)"
    assert not outcome.permanent  # retried later
    # Generous guard only: the send must fit the lease the worker checked before starting it.
    assert elapsed < delivery.longest_send_seconds() + delivery.LEASE_MARGIN_SECONDS


@pytest.mark.parametrize(
    ("head", "trickled"),
    [
        pytest.param(b"", b"HTTP/1.1 200 OK\r\nX-Pad: ", id="status-and-headers"),
        pytest.param(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100000\r\n\r\n",
            b"",
            id="error-body",
        ),
    ],
)
def test_a_trickled_answer_is_cut_at_the_deadline(trickle, head, trickled):
    server = trickle(trickled, head)
    outcome, elapsed = timed_post(f"http://127.0.0.1:{server.port}/hook")
    assert_cut_at_the_deadline(outcome, elapsed)


def test_a_trickled_tls_handshake_is_cut_at_the_deadline(trickle):
    # A TLS handshake record header announcing 16 KiB, then its bytes one at a time.
    server = trickle(b"\x16\x03\x03\x40\x00\x02")
    outcome, elapsed = timed_post(f"https://127.0.0.1:{server.port}/hook")
    assert_cut_at_the_deadline(outcome, elapsed)


def test_a_hung_name_lookup_is_cut_at_the_deadline(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False  # production: the worker resolves and checks
    release = threading.Event()

    def hung_lookup(*args, **kwargs):
        release.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hung_lookup)
    try:
        outcome, elapsed = timed_post("https://hooks.example.com/hook")
    finally:
        release.set()
    assert_cut_at_the_deadline(outcome, elapsed)


@pytest.mark.django_db
def test_the_worker_records_a_trickling_receiver_as_a_retryable_failure(tenant, trickle):
    server = trickle(b"HTTP/1.1 200 OK\r\nX-Pad: ")
    endpoint = WebhookEndpointFactory(
        tenant=tenant, url=f"http://127.0.0.1:{server.port}/hook", events=["workflow_completed"]
    )
    queue_completed_event(tenant)

    result = delivery.drain()

    assert (result.sent, result.retrying, result.failed) == (0, 1, 0)
    row = Delivery.objects.get()
    assert (row.status, row.attempts, row.claim_token) == ("pending", 1, None)
    assert row.last_error == f"deadline exceeded ({DEADLINE} s)"
    assert row.next_attempt_at > timezone.now()
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).consecutive_failures == 1


def _self_signed_certificate(directory) -> tuple[str, str]:
    """A certificate for localhost made by the openssl command line tool."""
    cert, key = str(directory / "cert.pem"), str(directory / "key.pem")
    subprocess.run(  # noqa: S603 (fixed arguments)
        [  # noqa: S607 (openssl from PATH)
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_https_delivery_verifies_the_certificate_within_the_deadline(tmp_path, monkeypatch):
    cert, key = _self_signed_certificate(tmp_path)
    receiver = WebhookReceiver()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    receiver.server.socket = server_context.wrap_socket(receiver.server.socket, server_side=True)
    receiver.start()
    port = receiver.server.server_address[1]
    try:
        # Our CA store does not know the certificate: refused.
        refused = delivery.post_json(f"https://localhost:{port}/hook", b"{}", {}, DEADLINE)
        assert (refused.ok, refused.error) == (False, "TLS error")

        trusting = ssl.create_default_context(cafile=cert)
        trusting.sslsocket_class = delivery._DeadlineSSLSocket
        monkeypatch.setattr(delivery, "_tls_context", lambda: trusting)
        outcome = delivery.post_json(
            f"https://localhost:{port}/hook?x=1", b'{"a":1}', {"X-Test": "yes"}, DEADLINE
        )
    finally:
        receiver.stop()

    assert (outcome.ok, outcome.status) == (True, 200)
    [request] = receiver.requests
    assert request.path == "/hook?x=1"
    assert request.body == b'{"a":1}'
    assert request.headers["X-Test"] == "yes"
    assert request.headers["Host"] == f"localhost:{port}"
