"""Webhook body formats: the standard event JSON, a Slack message or a Microsoft Teams card.

The queued delivery holds the standard event (``services.webhook_body``); an endpoint's
``format`` reshapes it when it is sent, from the event alone, so every retry sends the same
bytes, signed the same way (``signing``). The chat formats follow what the two services' incoming
webhooks accept:

* ``slack``: a message with a fallback ``text`` and Block Kit ``blocks`` (a header, the message
  in mrkdwn, the facts as fields, a button opening the contract). Slack's limits are kept: header
  150 characters, section text 3,000, field 2,000, button text 75, URL 3,000.
* ``teams``: a ``message`` carrying one Adaptive Card attachment (version 1.4: title, message, a
  fact set and an ``Action.OpenUrl`` to the contract).

The button opens the contract (``core.links.contract_url``: the frontend when ``FRONTEND_URL``
is set): a channel message is read by many, so it never carries a person's decision link.
"""

from core.links import contract_url
from notifications.models import WebhookFormat

SLACK_HEADER_MAX = 150
SLACK_TEXT_MAX = 3000
SLACK_FIELD_MAX = 2000
ADAPTIVE_CARD_VERSION = "1.4"
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_TYPE = "application/vnd.microsoft.card.adaptive"
BUTTON_TEXT = "Open the contract"

# The event data shown as facts, in this order, with their labels.
FACTS = (
    ("contract_title", "Contract"),
    ("stage_name", "Stage"),
    ("due_at", "Due"),
    ("decision", "Decision"),
    ("comments", "Comments"),
)


def formatted_body(webhook_format: str, event: dict) -> dict:
    """The body an endpoint of ``webhook_format`` receives for the standard ``event``."""
    if webhook_format == WebhookFormat.SLACK:
        return slack_message(event)
    if webhook_format == WebhookFormat.TEAMS:
        return teams_message(event)
    return event


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _facts(event: dict) -> list[tuple[str, str]]:
    data = event.get("data") or {}
    facts = [(label, str(data[key])) for key, label in FACTS if data.get(key)]
    return [*facts, ("Priority", str(event.get("priority", "")))]


def _contract_link(event: dict) -> str:
    contract_id = (event.get("data") or {}).get("contract_id")
    return contract_url(contract_id) if contract_id else ""


def slack_escape(text: str) -> str:
    """Slack's mrkdwn control characters, escaped as its documentation asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(event: dict) -> dict:
    title, message = str(event.get("title", "")), str(event.get("message", ""))
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title, SLACK_HEADER_MAX)}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _cut(slack_escape(message) or " ", SLACK_TEXT_MAX)},
        },
        {
            "type": "section",
            "fields": [
                {
                    "type": "mrkdwn",
                    "text": _cut(f"*{label}*\n{slack_escape(value)}", SLACK_FIELD_MAX),
                }
                for label, value in _facts(event)
            ],
        },
    ]
    link = _contract_link(event)
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": BUTTON_TEXT},
                        "url": link,
                        "action_id": "open_contract",
                        "style": "primary",
                    }
                ],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"{event.get('event')} · {event.get('occurred_at')}"}
            ],
        }
    )
    return {"text": _cut(slack_escape(title), SLACK_TEXT_MAX), "blocks": blocks}


def teams_message(event: dict) -> dict:
    card = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": [
            {
                "type": "TextBlock",
                "text": str(event.get("title", "")),
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {"type": "TextBlock", "text": str(event.get("message", "")), "wrap": True},
            {
                "type": "FactSet",
                "facts": [{"title": label, "value": value} for label, value in _facts(event)],
            },
        ],
    }
    link = _contract_link(event)
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": BUTTON_TEXT, "url": link}]
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD_TYPE, "contentUrl": None, "content": card}],
    }
