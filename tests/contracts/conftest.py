"""Fixtures shared by the tests of this directory."""

import pytest


@pytest.fixture
def clause_manager(role_holder):
    """A member whose only capability is clauses.manage."""
    return role_holder("legal-ops", permissions=["clauses.manage"])


@pytest.fixture
def manager_client(api_client_for, clause_manager):
    return api_client_for(clause_manager)
