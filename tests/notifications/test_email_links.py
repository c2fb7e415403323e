"""Every link in an e-mail opens something that exists (issue 15: they pointed at
`/contracts/<id>/` and `/notifications/`, pages the service does not have)."""

import re
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured

from config.env import env_url_template
from notifications import delivery
from tests.factories import UserFactory
from tests.fixtures import make_definition, start_contract

pytestmark = pytest.mark.django_db

PUBLIC = "https://clm.example.com"
URL = re.compile(r"https?://[^\s\"<>]+")


@pytest.fixture(autouse=True)
def _public_base_url(settings):
    settings.PUBLIC_BASE_URL = PUBLIC
    settings.FRONTEND_URL = ""


def sent_links(tenant, role_holder):
    """An approval_assigned e-mail to a legal approver: its recipient, contract and links."""
    make_definition(tenant)
    legal = role_holder("legal")
    contract = start_contract(tenant, UserFactory(tenant=tenant))
    delivery.drain()
    [email] = mail.outbox
    [(html, _)] = email.alternatives
    text_links, html_links = set(URL.findall(email.body)), set(URL.findall(html))
    assert text_links == html_links
    return legal, contract, sorted(text_links)


def test_every_link_opens_a_resource_of_this_service(tenant, role_holder, api_client_for):
    legal, contract, links = sent_links(tenant, role_holder)

    decide = next(link for link in links if link.startswith(f"{PUBLIC}/approve/"))
    assert links == sorted(
        [
            f"{PUBLIC}/api/contracts/{contract.pk}/",
            f"{PUBLIC}/api/notifications/preferences/",
            decide,
        ]
    )
    recipient = api_client_for(legal)
    for link in links:
        response = recipient.get(urlsplit(link).path)
        assert response.status_code == 200, link
    assert recipient.get(urlsplit(links[0]).path).json()["id"] == str(contract.pk)
    assert contract.title in recipient.get(urlsplit(decide).path).content.decode()


def test_with_a_frontend_the_contract_opens_there(tenant, role_holder, settings):
    settings.FRONTEND_URL = "https://app.example/contracts/{contract_id}"

    _, contract, links = sent_links(tenant, role_holder)

    assert links[:2] == [
        f"https://app.example/contracts/{contract.pk}",
        f"{PUBLIC}/api/notifications/preferences/",
    ]
    assert links[2].startswith(f"{PUBLIC}/approve/")


@pytest.mark.parametrize(
    "value",
    [
        "https://app.example/contracts/",  # no placeholder
        "https://app.example/contracts/{id}",  # not one we fill
        "https://app.example/{contract_id}/{stage}",
        "https://app.example/contracts/{contract_id",  # unmatched brace
        "app.example/contracts/{contract_id}",  # no scheme
    ],
)
def test_a_frontend_url_that_cannot_work_stops_start_up(monkeypatch, value):
    monkeypatch.setenv("FRONTEND_URL", value)

    with pytest.raises(ImproperlyConfigured, match="FRONTEND_URL"):
        env_url_template("FRONTEND_URL", {"contract_id"})


def test_a_frontend_url_is_optional(monkeypatch):
    monkeypatch.delenv("FRONTEND_URL", raising=False)
    assert env_url_template("FRONTEND_URL", {"contract_id"}) == ""
    monkeypatch.setenv("FRONTEND_URL", "https://app.example/c/{contract_id}?tab=review")
    assert env_url_template("FRONTEND_URL", {"contract_id"}).endswith("?tab=review")
