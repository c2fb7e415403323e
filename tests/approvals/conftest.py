"""Fixtures of the approvals tests: a frozen clock and the analytics world built with it."""

from contextlib import contextmanager
from datetime import datetime

import pytest

from tests.fixtures import World, build_other_tenant, build_world


@pytest.fixture
def clock(monkeypatch):
    """``clock(moment)``: a context in which ``timezone.now()`` is ``moment``."""
    from django.utils import timezone

    @contextmanager
    def frozen(moment: datetime):
        with monkeypatch.context() as patch:
            patch.setattr(timezone, "now", lambda: moment)
            yield

    return frozen


@pytest.fixture
def world(tenant, clock) -> World:
    return build_world(tenant, clock)


@pytest.fixture
def other(world, clock):
    return build_other_tenant(clock)
