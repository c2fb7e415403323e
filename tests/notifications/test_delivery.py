"""The delivery worker against a real local HTTP receiver and Django's email outbox."""

import io
import json
import random
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from approvals.orchestrator import approval_act
from audit.models import AuditLog
from notifications import delivery
from notifications.checks import check_lease_outlasts_a_send
from notifications.models import Delivery, Notification, WebhookEndpoint
from notifications.services import Message, notify_many
from tests.factories import UserFactory, WebhookEndpointFactory
from tests.fixtures import make_definition, start_contract
from tests.support import manage, start_thread

SECRET = "receiver-side-shared-secret-0123456789"
ALL_EVENTS = [
    "approval_assigned",
    "approval_decided",
    "approval_delegated",
    "workflow_completed",
    "workflow_rejected",
    "workflow_cancelled",
]


@pytest.fixture(autouse=True)
def _delivery_settings(settings):
    settings.PUBLIC_BASE_URL = "https://clm.example.com"
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 30
    settings.NOTIFICATION_RETRY_MAX_SECONDS = 3600
    settings.NOTIFICATION_MAX_ATTEMPTS = 5
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 100
    settings.WEBHOOK_TIMEOUT_SECONDS = 5


def endpoint_for(receiver, tenant, events=None, **fields) -> WebhookEndpoint:
    return WebhookEndpointFactory(
        tenant=tenant, url=receiver.url, secret=SECRET, events=events or ALL_EVENTS, **fields
    )


def event(tenant, number=0, kind="workflow_completed", recipients=()):
    notify_many(
        tenant_id=tenant.pk,
        messages=[
            Message(
                recipient_ids=recipients,
                notification_type=kind,
                title=f"Event {number}",
                message="Something happened.",
                payload={"contract_id": f"00000000-0000-0000-0000-{number:012d}", "n": number},
            )
        ],
    )


def make_due(**filters) -> None:
    Delivery.objects.filter(**filters).update(next_attempt_at=timezone.now())


# --- email -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_email_has_text_and_html_bodies_linking_the_contract(tenant, role_holder):
    make_definition(tenant)
    legal = role_holder("legal")
    legal.full_name = "Lee Gal"
    legal.save()
    contract = start_contract(tenant, UserFactory(tenant=tenant), title="Acme <Supply> & Co")

    result = delivery.drain()

    assert (result.claimed, result.sent) == (1, 1)
    [email] = mail.outbox
    link = f"https://clm.example.com/api/contracts/{contract.pk}/"
    assert email.subject == "[CLM] Approval needed: Acme <Supply> & Co (Legal Review)"
    assert email.to == [legal.email]
    assert email.from_email
    assert "Hello Lee Gal," in email.body
    assert "Acme <Supply> & Co" in email.body  # plain text is not HTML-escaped
    assert "Stage: Legal Review" in email.body
    assert link in email.body
    [(html, mimetype)] = email.alternatives
    assert mimetype == "text/html"
    assert f'href="{link}"' in html
    assert "Acme &lt;Supply&gt; &amp; Co" in html  # escaped in HTML
    assert "<Supply>" not in html
    note = Notification.objects.get(recipient=legal)
    row = Delivery.objects.get(notification=note)
    assert email.extra_headers["X-Event-Id"] == str(row.event_id)
    assert (row.status, row.attempts, row.claim_token) == ("sent", 1, None)
    assert row.sent_at is not None


@pytest.mark.django_db
def test_email_failures_are_retried(tenant, settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port, 2
    event(tenant, recipients=[UserFactory(tenant=tenant).pk])

    result = delivery.drain()

    assert (result.sent, result.retrying) == (0, 1)
    row = Delivery.objects.get(channel="email")
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == "connection refused"  # no SMTP host or port (docs/security.md)
    assert row.next_attempt_at > timezone.now()


@pytest.mark.django_db
def test_inactive_recipient_fails_without_retries(tenant):
    gone = UserFactory(tenant=tenant, is_active=False)
    event(tenant, recipients=[gone.pk])
    result = delivery.drain()
    assert (result.sent, result.failed) == (0, 1)
    assert mail.outbox == []
    assert Delivery.objects.get().status == "failed"
    assert AuditLog.objects.filter(action="notification_failed").count() == 1


# --- webhooks ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_webhook_is_signed_and_verified_by_a_real_receiver(tenant, webhook_receiver):
    endpoint_for(webhook_receiver, tenant)
    event(tenant, number=7)

    result = delivery.drain()

    assert result.sent == 1
    [request] = webhook_receiver.requests
    row = Delivery.objects.get()
    assert request.path == "/hooks/clm"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Event-Id"] == str(row.event_id)
    assert request.headers["X-Event-Type"] == "workflow_completed"
    assert request.signature_valid(SECRET)
    assert not request.signature_valid(SECRET + "x")
    body = request.json
    assert body["event_id"] == str(row.event_id)
    assert body["event"] == "workflow_completed"
    assert body["tenant"] == str(tenant.pk)
    assert body["data"] == {"contract_id": "00000000-0000-0000-0000-000000000007", "n": 7}
    assert (row.status, row.response_status, row.attempts) == ("sent", 200, 1)


@pytest.mark.django_db
def test_a_full_approval_flow_reaches_the_receiver_signed_once_per_event(
    tenant, role_holder, webhook_receiver
):
    endpoint_for(webhook_receiver, tenant)
    make_definition(tenant)
    legal, finance = role_holder("legal"), role_holder("finance")
    contract = start_contract(tenant, UserFactory(tenant=tenant))
    for approver in (legal, finance):
        approval_act(tenant=tenant, contract_id=contract.pk, actor=approver, action="approve")

    result = delivery.drain(batch_size=3)

    types = sorted(request.headers["X-Event-Type"] for request in webhook_receiver.requests)
    assert types == sorted(["approval_assigned", "approval_decided"] * 2 + ["workflow_completed"])
    assert all(request.signature_valid(SECRET) for request in webhook_receiver.requests)
    assert set(webhook_receiver.event_ids().values()) == {1}
    assert result.sent == 5 + 5  # five webhooks and five emails (legal, finance, creator x3)
    assert len(mail.outbox) == 5


@pytest.mark.django_db
def test_retries_with_backoff_then_succeeds_with_the_same_event_id(tenant, webhook_receiver):
    endpoint = endpoint_for(webhook_receiver, tenant)
    event(tenant)
    webhook_receiver.respond_with(500)

    before = timezone.now()
    first = delivery.drain()
    after = timezone.now()

    assert (first.sent, first.retrying) == (0, 1)
    row = Delivery.objects.get()
    assert (row.status, row.attempts, row.response_status) == ("pending", 1, 500)
    assert row.last_error.startswith("HTTP 500")
    # First retry: 30 s with jitter, between 15 and 30 s from the failure.
    assert before + timedelta(seconds=15) <= row.next_attempt_at <= after + timedelta(seconds=30)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).consecutive_failures == 1

    assert delivery.drain().claimed == 0  # not due yet: nothing is sent early
    assert len(webhook_receiver.requests) == 1

    make_due(pk=row.pk)
    second = delivery.drain()

    assert second.sent == 1
    first_request, second_request = webhook_receiver.requests
    assert first_request.headers["X-Event-Id"] == second_request.headers["X-Event-Id"]
    assert first_request.body == second_request.body
    assert second_request.signature_valid(SECRET)
    assert second_request.headers["X-Delivery-Attempt"] == "2"
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, "")
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).consecutive_failures == 0


class _Extremes:
    """A stand-in RNG returning the low or the high end of every range."""

    def __init__(self, high: bool):
        self.high = high

    def uniform(self, low, high):
        return high if self.high else low


def test_retry_delay_is_exponential_jittered_and_capped(settings):
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 30
    settings.NOTIFICATION_RETRY_MAX_SECONDS = 3600
    lows = [delivery.retry_delay(n, _Extremes(high=False)) for n in range(1, 10)]
    highs = [delivery.retry_delay(n, _Extremes(high=True)) for n in range(1, 10)]
    assert highs == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert lows == [high / 2 for high in highs]
    rng = random.Random(4)
    for attempt in range(1, 10):
        assert lows[attempt - 1] <= delivery.retry_delay(attempt, rng) <= highs[attempt - 1]


@pytest.mark.django_db
def test_gives_up_after_the_last_attempt_and_audits_it(tenant, webhook_receiver, settings):
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 0  # retries are due at once
    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    webhook_receiver.default_status = 503
    endpoint_for(webhook_receiver, tenant)
    event(tenant)

    result = delivery.drain()

    assert (result.sent, result.retrying, result.failed) == (0, 2, 1)
    assert len(webhook_receiver.requests) == 3
    assert len(webhook_receiver.event_ids()) == 1
    row = Delivery.objects.get()
    assert (row.status, row.attempts, row.response_status) == ("failed", 3, 503)
    audit = AuditLog.objects.get(action="notification_failed")
    assert audit.resource_id == str(row.pk)
    assert audit.tenant_id == tenant.pk
    assert audit.changes["attempts"] == [None, 3]
    assert audit.changes["event_id"] == [None, str(row.event_id)]


@pytest.mark.django_db
def test_endpoint_is_disabled_after_consecutive_failures(tenant, webhook_receiver, settings):
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 0
    settings.NOTIFICATION_MAX_ATTEMPTS = 10
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    webhook_receiver.default_status = 500
    endpoint = endpoint_for(webhook_receiver, tenant)
    for number in range(2):
        event(tenant, number)

    delivery.drain(batch_size=10)

    assert len(webhook_receiver.requests) == 3  # nothing after the third failure
    endpoint.refresh_from_db()
    assert endpoint.is_active is False
    assert endpoint.disabled_at is not None
    assert endpoint.consecutive_failures == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {"failed"}
    disabled = AuditLog.objects.get(action="webhook_disabled")
    assert disabled.resource_id == str(endpoint.pk)

    event(tenant, 9)  # a disabled endpoint gets no new deliveries
    assert Delivery.objects.count() == 2


@pytest.mark.django_db
def test_a_success_resets_the_failure_streak(tenant, webhook_receiver, settings):
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 0
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    endpoint = endpoint_for(webhook_receiver, tenant)
    for round_number in range(3):
        webhook_receiver.respond_with(500, 500)  # two failures, then a success, every round
        event(tenant, round_number)
        delivery.drain()
    endpoint.refresh_from_db()
    assert endpoint.is_active is True
    assert endpoint.consecutive_failures == 0
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


@pytest.mark.django_db
def test_private_targets_are_refused_at_delivery_time(tenant, webhook_receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    endpoint_for(webhook_receiver, tenant)  # stored while private targets were allowed
    event(tenant)

    result = delivery.drain()

    assert result.retrying == 1
    assert webhook_receiver.requests == []
    row = Delivery.objects.get()
    assert row.last_error == "refused target: the host name resolves to a non-public address"
    assert "127.0.0.1" not in row.last_error


@pytest.mark.django_db
def test_redirects_are_not_followed(tenant, webhook_receiver):
    endpoint_for(webhook_receiver, tenant)
    event(tenant)
    webhook_receiver.respond_with(307)
    result = delivery.drain()
    assert result.retrying == 1
    assert len(webhook_receiver.requests) == 1
    assert Delivery.objects.get().response_status == 307


@pytest.mark.django_db
def test_unreachable_endpoint_is_a_retried_failure(tenant):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    WebhookEndpointFactory(
        tenant=tenant, url=f"http://127.0.0.1:{closed_port}/x", events=["workflow_completed"]
    )
    event(tenant)
    assert delivery.drain().retrying == 1
    assert Delivery.objects.get().last_error == "connection refused"


# --- claims, leases and workers ----------------------------------------------------------------


@pytest.mark.django_db
def test_an_abandoned_claim_is_delivered_by_another_worker(tenant, webhook_receiver):
    endpoint_for(webhook_receiver, tenant)
    for number in range(3):
        event(tenant, number)

    abandoned = delivery.claim_due(batch_size=10)  # worker A claims, then dies without sending
    assert len(abandoned.rows) == 3

    assert delivery.drain().claimed == 0  # worker B: the lease is still held
    later = abandoned.locked_until + timedelta(seconds=1)
    takeover = delivery.claim_due(batch_size=10, now=later)  # B once A's lease has expired
    assert {row.pk for row in takeover.rows} == {row.pk for row in abandoned.rows}
    result = delivery.deliver_claim(takeover)

    assert result.sent == 3
    assert sorted(webhook_receiver.event_ids().values()) == [1, 1, 1]
    assert delivery.release(abandoned, abandoned.rows) == 0  # A's claim holds nothing any more
    assert set(Delivery.objects.values_list("status", "attempts")) == {("sent", 2)}


@pytest.mark.django_db
def test_a_stopping_worker_gives_the_rest_of_its_batch_back(tenant, webhook_receiver):
    endpoint_for(webhook_receiver, tenant)
    for number in range(4):
        event(tenant, number)
    claim = delivery.claim_due(batch_size=10)
    calls = iter([False, True])  # stop after the first row

    result = delivery.deliver_claim(claim, should_stop=lambda: next(calls, True))

    assert (result.sent, result.released) == (1, 3)
    released = Delivery.objects.filter(status="pending")
    assert released.count() == 3
    assert set(released.values_list("attempts", "claim_token", "locked_until")) == {(0, None, None)}
    assert delivery.drain().sent == 3  # another worker picks them up at once
    assert sorted(webhook_receiver.event_ids().values()) == [1, 1, 1, 1]


@pytest.mark.django_db
def test_rows_are_not_sent_when_the_lease_is_about_to_expire(tenant, webhook_receiver):
    endpoint_for(webhook_receiver, tenant)
    event(tenant)
    claim = delivery.claim_due(batch_size=10, lease_seconds=1)  # shorter than the send timeout
    result = delivery.deliver_claim(claim)
    assert (result.sent, result.released) == (0, 1)
    assert webhook_receiver.requests == []


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_deliver_each_row_exactly_once(tenant, webhook_receiver):
    endpoint_for(webhook_receiver, tenant)
    deliveries = 60
    for number in range(deliveries):
        event(tenant, number)
    slow = webhook_receiver._record

    def record_slowly(request):  # a little latency so the workers' batches interleave
        time.sleep(0.002)
        return slow(request)

    webhook_receiver._record = record_slowly
    barrier = threading.Barrier(2)
    results, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=10)
            results.append(delivery.drain(batch_size=5))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [start_thread(worker) for _ in range(2)]
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(results) == 2
    counts = webhook_receiver.event_ids()
    assert len(counts) == deliveries
    assert set(counts.values()) == {1}
    assert sum(result.sent for result in results) == deliveries
    assert set(Delivery.objects.values_list("status", "attempts")) == {("sent", 1)}


# --- the command -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_command_once_drains_and_reports(tenant, webhook_receiver):
    endpoint_for(webhook_receiver, tenant)
    for number in range(3):
        event(tenant, number)
    webhook_receiver.respond_with(500)
    out = io.StringIO()

    call_command("deliver_notifications", "--once", "--batch-size", "2", stdout=out)

    assert out.getvalue().strip() == (
        "deliver_notifications: claimed 3, sent 2, retrying 1, failed 0, released 0"
    )
    assert len(webhook_receiver.requests) == 3


@pytest.mark.django_db(transaction=True)
def test_command_exit_codes_and_output_in_a_real_process(tenant, webhook_receiver):
    endpoint_for(webhook_receiver, tenant)
    for number in range(2):
        event(tenant, number)

    done = manage("deliver_notifications", "--once")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "deliver_notifications: claimed 2, sent 2, retrying 0, failed 0, released 0"
    )
    assert len(webhook_receiver.event_ids()) == 2
    assert all(request.signature_valid(SECRET) for request in webhook_receiver.requests)

    again = manage("deliver_notifications", "--once")
    assert again.returncode == 0, again.stderr
    assert "claimed 0, sent 0" in again.stdout

    refused = manage("deliver_notifications", "--batch-size", "0")
    assert refused.returncode == 2
    assert "between 1 and 1000" in refused.stderr


def test_command_rejects_bad_arguments():
    with pytest.raises(CommandError, match="not a number"):
        call_command("deliver_notifications", "--once", "--sleep", "soon")
    with pytest.raises(CommandError, match="between 1 and 1000"):
        call_command("deliver_notifications", "--once", "--batch-size", "5000")


def test_webhook_body_is_canonical_json():
    row = Delivery(payload={"b": 1, "a": {"z": "é", "y": None}}, endpoint=WebhookEndpoint())
    assert (
        delivery.webhook_request_body(row)
        == json.dumps(
            {"a": {"y": None, "z": "é"}, "b": 1}, separators=(",", ":"), sort_keys=True
        ).encode()
    )


@pytest.mark.parametrize(
    ("lease", "webhook_timeout", "email_timeout", "ok"),
    [(300, 10, 10, True), (16, 10, 10, True), (15, 10, 10, False), (60, 10, 90, False)],
)
def test_system_check_refuses_a_lease_no_send_fits_in(
    settings, lease, webhook_timeout, email_timeout, ok
):
    settings.NOTIFICATION_LEASE_SECONDS = lease
    settings.WEBHOOK_TIMEOUT_SECONDS = webhook_timeout
    settings.EMAIL_TIMEOUT = email_timeout
    errors = check_lease_outlasts_a_send()
    assert [error.id for error in errors] == ([] if ok else ["notifications.E001"])


@pytest.mark.django_db(transaction=True)
def test_a_claim_skips_rows_another_transaction_holds_and_returns_the_free_ones_at_once(tenant):
    """Without SKIP LOCKED the claim would wait on the held rows: its lock_timeout turns that
    wait into an error, so this fails on a blocking claim instead of timing anything."""
    held_endpoint = WebhookEndpointFactory(tenant=tenant, events=["workflow_completed"])
    event(tenant, 0, recipients=[UserFactory(tenant=tenant).pk for _ in range(4)])
    free_endpoint = WebhookEndpointFactory(tenant=tenant, events=["workflow_rejected"])
    event(tenant, 1, kind="workflow_rejected")
    held_webhook = Delivery.objects.get(endpoint=held_endpoint)
    emails = list(Delivery.objects.filter(channel="email").order_by("next_attempt_at", "id"))
    held_emails, free_emails = emails[:2], emails[2:]
    # The held endpoint's rows are due first: a claim that waits would wait on them.
    Delivery.objects.filter(endpoint=held_endpoint).update(
        next_attempt_at=timezone.now() - timedelta(minutes=5)
    )
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                list(WebhookEndpoint.objects.select_for_update().filter(pk=held_endpoint.pk))
                ids = [held_webhook.pk, *(row.pk for row in held_emails)]
                list(Delivery.objects.select_for_update().filter(pk__in=ids))
                locked.set()
                release.wait(timeout=60)
        finally:
            connection.close()

    holder = start_thread(hold)
    try:
        assert locked.wait(timeout=60)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            claim = delivery.claim_due(batch_size=10)
    finally:
        release.set()
        holder.join(timeout=60)

    claimed = {row.pk for row in claim.rows}
    assert claim.endpoint_id == free_endpoint.pk
    free_webhook = Delivery.objects.get(endpoint=free_endpoint)
    assert claimed == {free_webhook.pk, *(row.pk for row in free_emails)}
