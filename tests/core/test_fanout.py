"""The fan-out port: notifications' writer once registered, a loud failure before."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from core import fanout
from core.sql import Params
from notifications import services


def arguments(params: Params) -> dict:
    return {
        "messages": "SELECT * FROM events",
        "recipients": "SELECT event_id, user_id FROM people",
        "kinds": ("sla_reminder",),
        "params": params,
        "occurred_at": "%(now)s::timestamptz",
        "now": "%(now)s::timestamptz",
    }


def test_the_port_composes_notifications_writer():
    through_port, direct = Params(), Params()
    text = fanout.fanout_ctes(**arguments(through_port))
    assert text == services.fanout_ctes(**arguments(direct))
    assert through_port.keys() == direct.keys()
    assert "notified AS (" in text


def test_the_registered_writer_gets_every_argument(monkeypatch):
    monkeypatch.setattr(fanout, "_writers", [])
    calls = []
    fanout.register_fanout(lambda **given: calls.append(given) or "ctes")
    given = arguments(Params())
    assert fanout.fanout_ctes(**given) == "ctes"
    assert calls == [given]


def test_without_a_registered_writer_it_fails_loudly(monkeypatch):
    monkeypatch.setattr(fanout, "_writers", [])
    with pytest.raises(ImproperlyConfigured, match="notifications app registers it"):
        fanout.fanout_ctes(**arguments(Params()))
