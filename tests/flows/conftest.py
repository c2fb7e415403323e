"""Fixtures of the flows tests: definitions made and contracts requested through the API."""

import uuid

import pytest

from tests.factories import UserFactory, UserRoleFactory
from tests.fixtures import DEFINITIONS


@pytest.fixture
def define(admin_client):
    """`define(stages, trigger_conditions={}, **fields)` creates a definition through the API."""

    def make(stages, trigger_conditions=None, name=None, **fields) -> dict:
        payload = {
            "name": name or f"Flow {uuid.uuid4().hex[:8]}",
            "trigger_conditions": {} if trigger_conditions is None else trigger_conditions,
            "stages": stages,
            **fields,
        }
        response = admin_client.post(DEFINITIONS, payload, format="json")
        assert response.status_code == 201, response.json()
        return response.json()

    return make


@pytest.fixture
def requester(tenant):
    return UserFactory(tenant=tenant)


@pytest.fixture
def requester_client(api_client_for, requester):
    return api_client_for(requester)


@pytest.fixture
def capable(tenant, api_client_for):
    """`capable("contracts.manage")`: a client for a member holding only that capability."""

    def make(*permissions):
        holder = UserRoleFactory(
            user=UserFactory(tenant=tenant), role="ops", permissions=list(permissions)
        ).user
        return api_client_for(holder)

    return make
