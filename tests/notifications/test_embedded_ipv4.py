"""Webhook targets (security round two, finding 9): IPv6 forms that embed an IPv4 address are
judged by that address, as literals in the URL and as what a host name resolves to."""

import ipaddress
import socket

import pytest
from django.core.exceptions import ValidationError

from notifications import targets

# (IPv6 address, the embedded IPv4 address(es) it is judged by)
PRIVATE = [
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:a9fe:a9fe", "IPv4-mapped metadata (169.254.169.254)"),
    ("::7f00:1", "IPv4-compatible loopback"),
    ("::a00:7", "IPv4-compatible 10.0.0.7"),
    ("::", "unspecified (0.0.0.0)"),
    ("::1", "loopback"),
    ("64:ff9b::7f00:1", "NAT64 127.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "NAT64 169.254.169.254"),
    ("64:ff9b:1::c0a8:101", "local-use NAT64 192.168.1.1"),
    ("2002:7f00:1::1", "6to4 127.0.0.1"),
    ("2002:a00:7::", "6to4 10.0.0.7"),
    ("2002:a9fe:a9fe:1::1", "6to4 169.254.169.254"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo client 127.0.0.1"),
    ("2001:0:4136:e378:8000:63bf:f5ff:fff8", "Teredo client 10.0.0.7"),
    ("2001:0:a00:7:8000:63bf:f7f7:f7f7", "Teredo server 10.0.0.7, client 8.8.8.8"),
]
PUBLIC = [
    ("::ffff:8.8.8.8", "IPv4-mapped 8.8.8.8"),
    ("::808:808", "IPv4-compatible 8.8.8.8"),
    ("64:ff9b::808:808", "NAT64 8.8.8.8"),
    ("64:ff9b:1::808:808", "local-use NAT64 8.8.8.8"),
    ("2002:808:808::1", "6to4 8.8.8.8"),
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "Teredo server 65.54.227.120, client 8.8.8.8"),
    ("2606:4700:4700::1111", "plain global IPv6"),
]


def ids(cases):
    return [description for _, description in cases]


@pytest.mark.parametrize(("address", "description"), PRIVATE, ids=ids(PRIVATE))
def test_private_embedded_addresses_are_not_public(address, description):
    assert not targets.is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(("address", "description"), PUBLIC, ids=ids(PUBLIC))
def test_public_embedded_addresses_are_public(address, description):
    assert targets.is_public_address(ipaddress.ip_address(address))


def test_the_embedded_addresses_are_extracted():
    def embedded(text):
        return [str(ipv4) for ipv4 in targets.embedded_ipv4(ipaddress.ip_address(text))]

    assert embedded("::ffff:10.1.2.3") == ["10.1.2.3"]
    assert embedded("::a01:203") == ["10.1.2.3"]
    assert embedded("64:ff9b::a01:203") == ["10.1.2.3"]
    assert embedded("64:ff9b:1::a01:203") == ["10.1.2.3"]
    assert embedded("2002:a01:203:4::5") == ["10.1.2.3"]
    assert embedded("2001:0:4136:e378:8000:63bf:f5fe:fdfc") == ["65.54.227.120", "10.1.2.3"]
    assert targets.embedded_ipv4(ipaddress.ip_address("2606:4700:4700::1111")) is None
    assert targets.embedded_ipv4(ipaddress.ip_address("2001:db8::1")) is None


@pytest.mark.parametrize(("address", "description"), PRIVATE, ids=ids(PRIVATE))
def test_literal_private_embedded_targets_are_refused_at_creation(settings, address, description):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(ValidationError):
        targets.validate_webhook_url(f"http://[{address}]/hook")


@pytest.mark.parametrize(("address", "description"), PUBLIC, ids=ids(PUBLIC))
def test_literal_public_embedded_targets_are_accepted(settings, address, description):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    url = f"https://[{address}]/hook"
    assert targets.validate_webhook_url(url) == url


def resolving_to(monkeypatch, address):
    """``socket.getaddrinfo`` answering every name with ``address`` (no DNS needed)."""

    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)


@pytest.mark.parametrize(("address", "description"), PRIVATE, ids=ids(PRIVATE))
def test_names_resolving_to_private_embedded_addresses_are_refused(
    monkeypatch, address, description
):
    resolving_to(monkeypatch, address)
    parts = targets.parse_webhook_url("https://hooks.example.com/clm")
    with pytest.raises(targets.UnsafeTarget) as refused:
        targets.resolve_target(parts)
    assert refused.value.public == "the host name resolves to a non-public address"


@pytest.mark.parametrize(("address", "description"), PUBLIC, ids=ids(PUBLIC))
def test_names_resolving_to_public_embedded_addresses_are_allowed(
    monkeypatch, address, description
):
    resolving_to(monkeypatch, address)
    parts = targets.parse_webhook_url("https://hooks.example.com/clm")
    assert targets.resolve_target(parts) == (str(ipaddress.ip_address(address)), 443)


@pytest.mark.parametrize("address", ["::7f00:1", "64:ff9b::a9fe:a9fe", "2002:a00:7::"])
def test_literal_targets_are_refused_at_delivery_without_mocks(address):
    """The real resolver on a numeric host answers without the network."""
    with pytest.raises(targets.UnsafeTarget):
        targets.resolve_target(targets.parse_webhook_url(f"http://[{address}]:8080/hook"))
