"""Webhook formats (docs/approvers.md): standard, Slack and Microsoft Teams.

Deliveries go to a real local HTTP receiver; what it receives is checked against the services'
documented shapes (``chat_shapes``), with the same signing and retries as every webhook.
"""

import json

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from audit.models import AuditLog
from notifications import delivery
from notifications.formats import slack_message, teams_message
from notifications.models import Delivery, DeliveryStatus
from tests.factories import UserFactory
from tests.fixtures import make_definition, start_contract
from tests.notifications.chat_shapes import slack_problems, teams_problems

pytestmark = pytest.mark.django_db

URL = "/api/admin/webhooks/"
PUBLIC = "https://clm.example.com"
SHAPES = {"slack": slack_problems, "teams": teams_problems}


@pytest.fixture(autouse=True)
def _public_base_url(settings):
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.FRONTEND_URL = ""


def create(client, receiver, **fields) -> dict:
    body = {"url": receiver.url, "events": ["approval_assigned", "workflow_completed"], **fields}
    response = client.post(URL, body, "json")
    assert response.status_code == 201, response.content
    return response.json()


def assigned_event(tenant, role_holder, title="Supply agreement"):
    """A real approval_assigned event: a contract starting its workflow."""
    make_definition(tenant)
    role_holder("legal")
    return start_contract(tenant, UserFactory(tenant=tenant), title=title)


@pytest.mark.parametrize("webhook_format", ["slack", "teams"])
def test_a_chat_endpoint_receives_its_documented_shape_signed(
    admin_client, tenant, role_holder, webhook_receiver, webhook_format
):
    created = create(admin_client, webhook_receiver, format=webhook_format)
    assert created["format"] == webhook_format

    contract = assigned_event(tenant, role_holder)
    delivery.drain()

    [request] = webhook_receiver.requests
    body = request.json
    assert SHAPES[webhook_format](body) == []
    assert Webhook(created["secret"]).verify(request.body, request.headers) == body
    assert request.signature_valid(created["secret"])
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Event-Type"] == "approval_assigned"
    text = json.dumps(body)
    assert "Supply agreement" in text
    assert "Legal Review" in text
    assert f"{PUBLIC}/api/contracts/{contract.pk}/" in text  # the button opens the contract
    assert "/approve/" not in text  # never a person's decision link in a channel


def test_slack_message_layout(tenant, role_holder):
    contract = assigned_event(tenant, role_holder)
    event = {
        "event": "approval_assigned",
        "occurred_at": "2026-01-31T09:00:00+00:00",
        "priority": "medium",
        "title": "Approval needed: Supply agreement (Legal Review)",
        "message": '"Legal Review" of contract "Supply agreement" awaits your decision.',
        "data": {
            "contract_id": str(contract.pk),
            "contract_title": "Supply agreement",
            "stage_name": "Legal Review",
            "due_at": "2026-02-02T09:00:00+00:00",
        },
    }

    message = slack_message(event)

    kinds = [block["type"] for block in message["blocks"]]
    assert kinds == ["header", "section", "section", "actions", "context"]
    assert message["text"] == event["title"]
    fields = [field["text"] for field in message["blocks"][2]["fields"]]
    assert fields[:3] == [
        "*Contract*\nSupply agreement",
        "*Stage*\nLegal Review",
        "*Due*\n2026-02-02T09:00:00+00:00",
    ]
    [button] = message["blocks"][3]["elements"]
    assert button["url"] == f"{PUBLIC}/api/contracts/{contract.pk}/"


def test_the_frontend_url_is_the_buttons_target(settings):
    settings.FRONTEND_URL = "https://app.example/contracts/{contract_id}"
    event = {"title": "t", "message": "m", "data": {"contract_id": "c-1"}}

    [slack_button] = slack_message(event)["blocks"][3]["elements"]
    [teams_action] = teams_message(event)["attachments"][0]["content"]["actions"]

    assert slack_button["url"] == teams_action["url"] == "https://app.example/contracts/c-1"


@pytest.mark.parametrize("render", [slack_message, teams_message])
def test_hostile_and_huge_text_stays_within_the_shape(render):
    hostile = "<!channel> <https://evil.example|click> & *bold* " + "x" * 10_000
    event = {
        "event": "workflow_completed",
        "occurred_at": "2026-01-31T09:00:00+00:00",
        "priority": "high",
        "title": hostile,
        "message": hostile,
        "data": {"contract_title": hostile, "comments": hostile},
    }

    message = render(event)

    checker = slack_problems if render is slack_message else teams_problems
    assert checker(message) == []
    if render is slack_message:  # Slack parses mrkdwn (mentions, links); plain_text it shows
        blocks = message["blocks"]
        mrkdwn = [message["text"], blocks[1]["text"]["text"]]
        mrkdwn += [field["text"] for field in blocks[2]["fields"]]
        for text in mrkdwn:
            assert not {"<", ">"} & set(text)
        assert mrkdwn[0].startswith("&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp;")


@pytest.mark.parametrize("webhook_format", ["slack", "teams"])
def test_an_event_without_a_contract_has_no_button(webhook_format):
    event = {"event": "workflow_completed", "title": "Done", "message": "", "priority": "low"}

    message = slack_message(event) if webhook_format == "slack" else teams_message(event)

    assert SHAPES[webhook_format](message) == []
    assert "Open the contract" not in json.dumps(message)


def test_standard_stays_the_event_itself(admin_client, tenant, role_holder, webhook_receiver):
    created = create(admin_client, webhook_receiver)
    assert created["format"] == "standard"

    assigned_event(tenant, role_holder)
    delivery.drain()

    [request] = webhook_receiver.requests
    assert request.json["event"] == "approval_assigned"
    assert request.json == Delivery.objects.get(channel="webhook").payload


def test_a_retry_sends_the_same_bytes(admin_client, tenant, role_holder, webhook_receiver):
    create(admin_client, webhook_receiver, format="slack")
    webhook_receiver.respond_with(500)
    assigned_event(tenant, role_holder)

    assert delivery.drain().retrying == 1
    Delivery.objects.filter(channel="webhook").update(next_attempt_at=timezone.now())
    assert delivery.drain().sent == 1

    first, second = webhook_receiver.requests
    assert first.body == second.body
    assert first.headers["X-Event-Id"] == second.headers["X-Event-Id"]
    assert Delivery.objects.get(channel="webhook").status == DeliveryStatus.SENT


def test_the_format_can_change_and_is_audited(admin_client, webhook_receiver):
    created = create(admin_client, webhook_receiver)

    response = admin_client.patch(f"{URL}{created['id']}/", {"format": "teams"}, "json")

    assert response.status_code == 200
    assert response.json()["format"] == "teams"
    audit = AuditLog.objects.get(action="webhook_updated", resource_id=created["id"])
    assert audit.changes["format"] == ["standard", "teams"]
    created_audit = AuditLog.objects.get(action="webhook_created", resource_id=created["id"])
    assert created_audit.changes["format"] == [None, "standard"]


@pytest.mark.parametrize("value", ["discord", "", None, 3, ["slack"]])
def test_an_unknown_format_is_a_400(admin_client, webhook_receiver, value):
    response = admin_client.post(
        URL,
        {"url": webhook_receiver.url, "events": ["workflow_completed"], "format": value},
        "json",
    )

    assert response.status_code == 400
    assert "format" in response.json()["fields"]
