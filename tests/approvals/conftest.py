"""Fixtures of the approvals tests: a frozen clock and the analytics world built with it; the
consistency tests' people, definitions and workflows."""

from contextlib import contextmanager
from datetime import datetime

import pytest
from django.utils import timezone

from approvals.models import WorkflowInstance
from tests.factories import UserFactory
from tests.fixtures import (
    RESET_STAGES,
    SEQUENTIAL,
    World,
    build_other_tenant,
    build_world,
    parallel_stages,
)
from tests.fixtures import consistency_act as act
from tests.fixtures import consistency_create as create


@pytest.fixture
def clock(monkeypatch):
    """``clock(moment)``: a context in which ``timezone.now()`` is ``moment``."""

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


# --- the consistency tests' people, definitions and workflows (test_consistency*.py) -------------


@pytest.fixture
def people(tenant, role_holder):
    roles = ["legal", "finance", "cfo", "ceo", "security", "privacy", "risk"]
    return {
        "requester": UserFactory(tenant=tenant),
        "named": UserFactory(tenant=tenant),
        "stand_in": UserFactory(tenant=tenant),
        "second_stand_in": UserFactory(tenant=tenant),
        **{role: role_holder(role) for role in roles},
    }


@pytest.fixture
def clients(api_client_for, people):
    return {name: api_client_for(user) for name, user in people.items()}


@pytest.fixture
def definitions(admin_client, people):
    """A definition per contract type: SEQ (sequential), PAR (parallel, quorum, optional)."""
    for contract_type, stages in (("SEQ", SEQUENTIAL), ("PAR", parallel_stages(people["named"]))):
        body = {
            "name": f"{contract_type} flow",
            "trigger_conditions": {"contract_type": contract_type},
            "stages": stages,
            "priority": 10,
            "is_active": True,
        }
        response = admin_client.post("/api/workflows/config/", body, format="json")
        assert response.status_code == 201, response.json()


@pytest.fixture
def at_finance(clients, definitions):
    """A SEQ workflow whose "any" stage 2 is open: finance and cfo rows pending."""
    contract_id = create(clients)
    act(clients["legal"], contract_id)
    return WorkflowInstance.objects.get(contract_id=contract_id)


@pytest.fixture
def reset_definitions(admin_client, definitions):
    """RST: per-stage reset policies; BIG: what a SEQ contract of a million or more goes to."""
    for name, conditions, stages, priority in (
        ("RST flow", {"contract_type": "RST"}, RESET_STAGES, 10),
        ("BIG flow", {"contract_type": "SEQ", "value__gte": 1000000}, SEQUENTIAL[:1], 20),
    ):
        body = {
            "name": name,
            "trigger_conditions": conditions,
            "stages": stages,
            "priority": priority,
            "is_active": True,
        }
        response = admin_client.post("/api/workflows/config/", body, format="json")
        assert response.status_code == 201, response.json()
