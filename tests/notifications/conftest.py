"""Fixtures for the notification tests: a real local webhook receiver and workflow makers."""

import pytest

from tests.fixtures import WebhookReceiver


@pytest.fixture
def webhook_receiver():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()
