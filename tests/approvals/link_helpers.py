"""Shared set-up for the decide-from-e-mail tests: a contract waiting for a legal approver and
the personal links its e-mails carry."""

import re
from decimal import Decimal
from urllib.parse import urlsplit

from django.core import mail

from approvals import lifecycle as contract_services
from core import rls
from notifications import delivery
from tests.factories import UserFactory
from tests.notifications.conftest import make_definition

PUBLIC = "https://clm.example.com"
LINK = re.compile(r"https?://[^\s\"<>]+/approve/[A-Za-z0-9_-]+/")


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
        found = LINK.findall(message.body)
        if found:
            links[message.to[0]] = urlsplit(found[0]).path
    mail.outbox.clear()
    return links
