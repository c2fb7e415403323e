"""The documented shapes of Slack's and Microsoft Teams' incoming-webhook messages, as checks.

Written from the services' documentation (not from our code): Slack's Block Kit reference
(message ``text`` and ``blocks``; header, section, actions and context blocks; their text
objects and limits) and Microsoft's "Create and send messages" for Teams incoming webhooks (a
``message`` with one ``application/vnd.microsoft.card.adaptive`` attachment) with the Adaptive
Card schema (TextBlock, FactSet, Action.OpenUrl). Each returns the problems found, [] when none.
"""

from urllib.parse import urlsplit

SLACK_BLOCKS_MAX = 50
SLACK_LIMITS = {"header": 150, "section": 3000, "field": 2000, "button": 75, "url": 3000}
SLACK_FIELDS_MAX = 10
SLACK_ACTION_ELEMENTS_MAX = 25
SLACK_CONTEXT_ELEMENTS_MAX = 10
TEAMS_CARD_VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5")


def _text_object(value, kinds, limit, where, problems) -> None:
    if not isinstance(value, dict) or value.get("type") not in kinds:
        problems.append(f"{where}: a text object of type {'/'.join(kinds)} is required")
        return
    text = value.get("text")
    if not isinstance(text, str) or not 1 <= len(text) <= limit:
        problems.append(f"{where}: text must be 1-{limit} characters")
    if set(value) - {"type", "text", "emoji", "verbatim"}:
        problems.append(f"{where}: unknown keys {sorted(set(value) - {'type', 'text'})}")


def _url(value, limit, where, problems) -> None:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append(f"{where}: an absolute http(s) URL is required")
    elif len(value) > limit:
        problems.append(f"{where}: URL longer than {limit}")


def slack_problems(message) -> list[str]:
    problems: list[str] = []
    if not isinstance(message, dict):
        return ["the message must be a JSON object"]
    if not isinstance(message.get("text"), str) or not message["text"]:
        problems.append("text: the notification fallback is required with blocks")
    blocks = message.get("blocks")
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= SLACK_BLOCKS_MAX:
        return [*problems, f"blocks: 1-{SLACK_BLOCKS_MAX} blocks are required"]
    for index, block in enumerate(blocks):
        where = f"blocks[{index}]"
        kind = block.get("type")
        if kind == "header":
            _text_object(
                block.get("text"), ("plain_text",), SLACK_LIMITS["header"], where, problems
            )
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"{where}: a section needs text or fields")
            if "text" in block:
                _text_object(
                    block["text"],
                    ("plain_text", "mrkdwn"),
                    SLACK_LIMITS["section"],
                    where,
                    problems,
                )
            fields = block.get("fields", [])
            if "fields" in block and not 1 <= len(fields) <= SLACK_FIELDS_MAX:
                problems.append(f"{where}: 1-{SLACK_FIELDS_MAX} fields")
            for number, item in enumerate(fields):
                _text_object(
                    item,
                    ("plain_text", "mrkdwn"),
                    SLACK_LIMITS["field"],
                    f"{where}.fields[{number}]",
                    problems,
                )
        elif kind == "actions":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= SLACK_ACTION_ELEMENTS_MAX:
                problems.append(f"{where}: 1-{SLACK_ACTION_ELEMENTS_MAX} elements")
            for number, element in enumerate(elements):
                at = f"{where}.elements[{number}]"
                if element.get("type") != "button":
                    problems.append(f"{at}: only buttons are expected")
                    continue
                _text_object(
                    element.get("text"), ("plain_text",), SLACK_LIMITS["button"], at, problems
                )
                _url(element.get("url"), SLACK_LIMITS["url"], at, problems)
                if not 1 <= len(element.get("action_id", "")) <= 255:
                    problems.append(f"{at}: action_id must be 1-255 characters")
                if element.get("style") not in (None, "primary", "danger"):
                    problems.append(f"{at}: style is primary or danger")
        elif kind == "context":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= SLACK_CONTEXT_ELEMENTS_MAX:
                problems.append(f"{where}: 1-{SLACK_CONTEXT_ELEMENTS_MAX} elements")
            for number, element in enumerate(elements):
                _text_object(
                    element,
                    ("plain_text", "mrkdwn"),
                    SLACK_LIMITS["section"],
                    f"{where}.elements[{number}]",
                    problems,
                )
        else:
            problems.append(f"{where}: unexpected block type {kind!r}")
    return problems


def _teams_element(element, where, problems) -> None:
    kind = element.get("type")
    if kind == "TextBlock":
        if not isinstance(element.get("text"), str):
            problems.append(f"{where}: TextBlock.text (a string) is required")
        if element.get("weight") not in (None, "Lighter", "Default", "Bolder"):
            problems.append(f"{where}: weight is Lighter, Default or Bolder")
        if element.get("size") not in (None, "Small", "Default", "Medium", "Large", "ExtraLarge"):
            problems.append(f"{where}: unknown size")
        if "wrap" in element and not isinstance(element["wrap"], bool):
            problems.append(f"{where}: wrap is a boolean")
    elif kind == "FactSet":
        facts = element.get("facts")
        if not isinstance(facts, list) or not facts:
            problems.append(f"{where}: FactSet.facts is a non-empty list")
            return
        for number, fact in enumerate(facts):
            if set(fact) != {"title", "value"} or not all(
                isinstance(fact[key], str) for key in fact
            ):
                problems.append(f"{where}.facts[{number}]: {{title, value}} strings")
    else:
        problems.append(f"{where}: unexpected element {kind!r}")


def teams_problems(message) -> list[str]:
    problems: list[str] = []
    if not isinstance(message, dict) or message.get("type") != "message":
        return ['the payload must be {"type": "message", "attachments": [...]}']
    attachments = message.get("attachments")
    if not isinstance(attachments, list) or len(attachments) != 1:
        return ["attachments: exactly one card is expected"]
    attachment = attachments[0]
    if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
        problems.append(
            "attachments[0].contentType must be application/vnd.microsoft.card.adaptive"
        )
    if "contentUrl" in attachment and attachment["contentUrl"] is not None:
        problems.append("attachments[0].contentUrl must be null")
    card = attachment.get("content")
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        return [*problems, "attachments[0].content must be an AdaptiveCard"]
    if card.get("version") not in TEAMS_CARD_VERSIONS:
        problems.append(f"version: Teams renders {', '.join(TEAMS_CARD_VERSIONS)}")
    if card.get("$schema") != "http://adaptivecards.io/schemas/adaptive-card.json":
        problems.append("$schema: the Adaptive Card schema URL")
    body = card.get("body")
    if not isinstance(body, list) or not body:
        problems.append("body: a non-empty list of elements")
    for index, element in enumerate(body or []):
        _teams_element(element, f"body[{index}]", problems)
    for index, action in enumerate(card.get("actions", [])):
        where = f"actions[{index}]"
        if action.get("type") != "Action.OpenUrl":
            problems.append(f"{where}: only Action.OpenUrl is expected")
        if not isinstance(action.get("title"), str) or not action["title"]:
            problems.append(f"{where}: a title is required")
        _url(action.get("url"), 100_000, where, problems)
    return problems
