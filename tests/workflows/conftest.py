"""Fixtures shared by the tests of this directory."""

import pytest


@pytest.fixture
def manager(role_holder):
    """A non-admin holding a role that grants `workflows.manage`."""
    return role_holder("workflow-admin", permissions=["workflows.manage"])


@pytest.fixture
def manager_client(api_client_for, manager):
    return api_client_for(manager)
