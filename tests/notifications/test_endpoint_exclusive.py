"""Security finding 3: at most one delivery in flight per webhook endpoint, and a slow endpoint
never delays another's deliveries. A claim leases ONE endpoint with its due rows (plus the due
e-mails); other claims skip a leased endpoint. Real receivers, real PostgreSQL, real threads."""

import threading
import time
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from django.db import connection

from notifications import delivery
from notifications.models import Delivery, WebhookEndpoint
from tests.factories import UserFactory, WebhookEndpointFactory
from tests.fixtures import WebhookReceiver, queue_completed_event
from tests.support import run_together, start_thread

GUARD_SECONDS = 8  # a guard only: the slow receiver answers as soon as the healthy one is done


@pytest.fixture(autouse=True)
def _delivery_settings(settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 10
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 100


def event(tenant, number, recipients=()):
    queue_completed_event(
        tenant, title=f"Event {number}", payload={"n": number}, recipient_ids=recipients
    )


def endpoint(tenant, url) -> WebhookEndpoint:
    return WebhookEndpointFactory(tenant=tenant, url=url, events=["workflow_completed"])


def drain_in_threads(workers: int, **options) -> list[delivery.BatchResult]:
    barrier = threading.Barrier(workers)
    results, errors = [], []

    def worker():
        try:
            connection.ensure_connection()
            barrier.wait(timeout=10)
            results.append(delivery.drain(**options))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [start_thread(worker) for _ in range(workers)]
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    assert errors == []
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_hold_rows_of_the_same_endpoint(tenant, webhook_receiver):
    endpoints = [endpoint(tenant, f"{webhook_receiver.url}/{n}") for n in range(4)]
    recipients = [UserFactory(tenant=tenant).pk for _ in range(2)]
    for number in range(5):
        event(tenant, number, recipients)  # each event: one row per endpoint, two e-mails

    claims = [
        value
        for kind, value in run_together(
            *[lambda: delivery.claim_due(batch_size=50) for _ in range(4)]
        )
        if kind == "ok"
    ]
    claims.append(delivery.claim_due(batch_size=50))  # and one after them

    assert len(claims) == 5
    held = [{row.endpoint_id for row in claim.rows if row.channel == "webhook"} for claim in claims]
    assert all(len(endpoints_held) <= 1 for endpoints_held in held)
    taken = [endpoint_id for endpoints_held in held for endpoint_id in endpoints_held]
    assert len(taken) == len(set(taken)) >= 2  # disjoint; the later claim took a free one
    for claim in claims:
        if claim.endpoint_id is not None:
            leased = WebhookEndpoint.objects.get(pk=claim.endpoint_id)
            assert (leased.claim_token, leased.locked_until) == (claim.token, claim.locked_until)
            assert all(row.claim_token == claim.token for row in claim.rows)
            assert len([row for row in claim.rows if row.channel == "webhook"]) == 5
    # Every e-mail went to exactly one claim, whatever the endpoints.
    emails = Counter(row.pk for claim in claims for row in claim.rows if row.channel == "email")
    assert len(emails) == 10
    assert set(emails.values()) == {1}
    assert {pk for pk in WebhookEndpoint.objects.values_list("pk", flat=True)} == {
        e.pk for e in endpoints
    }


@pytest.mark.django_db
def test_a_leased_endpoint_is_skipped_until_released_or_expired(tenant, webhook_receiver):
    hook = endpoint(tenant, webhook_receiver.url)
    for number in range(5):
        event(tenant, number)

    first = delivery.claim_due(batch_size=2)
    assert (len(first.rows), first.endpoint_id) == (2, hook.pk)
    # Its three other due rows are not in the first batch, yet no other claim may take them.
    assert delivery.claim_due(batch_size=50).rows == []
    assert delivery.deliver_claim(first).sent == 2  # ends by releasing the endpoint
    assert WebhookEndpoint.objects.filter(pk=hook.pk, claim_token=None).exists()

    dead = delivery.claim_due(batch_size=50)  # a worker that dies holding the endpoint
    assert len(dead.rows) == 3
    assert delivery.claim_due(batch_size=50).rows == []
    later = dead.locked_until + timedelta(seconds=1)
    takeover = delivery.claim_due(batch_size=50, now=later)  # its lease ends like its rows'
    assert {row.pk for row in takeover.rows} == {row.pk for row in dead.rows}
    assert WebhookEndpoint.objects.get(pk=hook.pk).claim_token == takeover.token
    delivery.release_endpoint(dead)  # the dead claim's late release changes nothing
    assert WebhookEndpoint.objects.get(pk=hook.pk).claim_token == takeover.token


@pytest.mark.django_db
def test_emails_are_claimed_beside_a_leased_endpoint_and_sent_first(tenant, webhook_receiver):
    endpoint(tenant, webhook_receiver.url)
    recipient = UserFactory(tenant=tenant).pk
    event(tenant, 0, [recipient])

    first = delivery.claim_due(batch_size=50)
    assert [row.channel for row in first.rows] == ["email", "webhook"]

    event(tenant, 1, [recipient])  # a new e-mail while the endpoint is leased
    second = delivery.claim_due(batch_size=50)
    assert [row.channel for row in second.rows] == ["email"]
    assert second.endpoint_id is None


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_send_to_one_endpoint_at_once(tenant, webhook_receiver):
    in_flight: Counter = Counter()
    most: Counter = Counter()
    lock = threading.Lock()
    record = webhook_receiver._record

    def record_tracking(request):
        with lock:
            in_flight[request.path] += 1
            most[request.path] = max(most[request.path], in_flight[request.path])
        time.sleep(0.003)  # long enough for a second request to the same endpoint to overlap
        with lock:
            in_flight[request.path] -= 1
        return record(request)

    webhook_receiver._record = record_tracking
    for n in range(3):
        endpoint(tenant, f"{webhook_receiver.url}/{n}")
    for number in range(20):
        event(tenant, number)

    results = drain_in_threads(2, batch_size=5)

    assert sum(result.sent for result in results) == 60
    assert set(webhook_receiver.event_ids().values()) == {3}  # each event once per endpoint
    assert set(most.values()) == {1}
    assert set(Delivery.objects.values_list("status", "attempts")) == {("sent", 1)}
    assert not WebhookEndpoint.objects.exclude(claim_token=None).exists()


@pytest.mark.django_db(transaction=True)
def test_a_slow_endpoint_does_not_delay_a_healthy_one(tenant, webhook_receiver):
    healthy_done = threading.Event()
    answered_by_guard = []
    slow_receiver = WebhookReceiver()
    record_slow = slow_receiver._record

    def record_when_the_healthy_endpoint_is_served(request):
        answered_by_guard.append(not healthy_done.wait(GUARD_SECONDS))
        return record_slow(request)

    slow_receiver._record = record_when_the_healthy_endpoint_is_served
    slow_receiver.start()
    record_healthy = webhook_receiver._record

    def record_healthy_and_tell(request):
        status = record_healthy(request)
        if len(webhook_receiver.requests) == 3:
            healthy_done.set()
        return status

    webhook_receiver._record = record_healthy_and_tell
    try:
        slow = endpoint(tenant, slow_receiver.url)
        for number in range(3):
            event(tenant, number)  # the slow endpoint's rows are due first
        Delivery.objects.update(next_attempt_at=Delivery.objects.earliest("created_at").created_at)
        healthy = endpoint(tenant, webhook_receiver.url)
        for number in range(3, 6):
            Delivery.objects.create(
                tenant=tenant,
                channel="webhook",
                endpoint=healthy,
                event_type="workflow_completed",
                payload={"n": number},
            )

        results = drain_in_threads(2, batch_size=50)
    finally:
        slow_receiver.stop()

    assert answered_by_guard == [False, False, False]  # the healthy endpoint did not wait
    assert sum(result.sent for result in results) == 6
    by_endpoint = defaultdict(set)
    for endpoint_id, status in Delivery.objects.values_list("endpoint_id", "status"):
        by_endpoint[endpoint_id].add(status)
    assert by_endpoint == {slow.pk: {"sent"}, healthy.pk: {"sent"}}


# --- one connection per claim (HTTP keep-alive) -------------------------------------------------


@pytest.mark.django_db
def test_a_claims_posts_share_one_connection(tenant, webhook_receiver):
    endpoint(tenant, webhook_receiver.url)
    for number in range(4):
        event(tenant, number)
    webhook_receiver.respond_with(500)  # an error answer is not read on: its connection closes

    result = delivery.drain(batch_size=10)

    assert (result.sent, result.retrying) == (3, 1)
    ports = [request.client_port for request in webhook_receiver.requests]
    assert ports[0] != ports[1]
    assert ports[1] == ports[2] == ports[3]


@pytest.mark.django_db
def test_a_connection_the_receiver_closed_is_replaced_without_a_failure(tenant, webhook_receiver):
    webhook_receiver.close_after_answer = True  # without a Connection: close header
    endpoint(tenant, webhook_receiver.url)
    for number in range(3):
        event(tenant, number)

    result = delivery.drain(batch_size=10)

    assert (result.sent, result.retrying, result.failed) == (3, 0, 0)
    assert len({request.client_port for request in webhook_receiver.requests}) == 3
    assert set(webhook_receiver.event_ids().values()) == {1}
    assert set(Delivery.objects.values_list("status", "attempts")) == {("sent", 1)}


@pytest.mark.django_db
def test_each_send_on_a_kept_connection_has_its_own_deadline(tenant, webhook_receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    record = webhook_receiver._record

    def record_slowly(request):
        time.sleep(0.4)  # three of these exceed one deadline, none exceeds its own
        return record(request)

    webhook_receiver._record = record_slowly
    endpoint(tenant, webhook_receiver.url)
    for number in range(3):
        event(tenant, number)

    result = delivery.drain(batch_size=10)

    assert result.sent == 3
    assert len({request.client_port for request in webhook_receiver.requests}) == 1
