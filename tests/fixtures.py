"""Helpers shared by the test modules: set-up that acts for a tenant, log-ins, tables.

Test modules import shared code from here (and model factories from ``tests.factories``, thread
and child-process helpers from ``tests.support``), never from another test module or a conftest.
"""

import functools

from core import rls
from tenancy.tokens import SessionRefreshToken


def acting_for_its_tenant(make):
    """``make(tenant, ...)`` runs in ``tenant``'s scope: set-up done through the services for
    another tenant than the test's, as that tenant's own request would do it."""

    @functools.wraps(make)
    def made(tenant, *args, **kwargs):
        with rls.tenant_scope(tenant):
            return make(tenant, *args, **kwargs)

    return made


def session_token(user) -> SessionRefreshToken:
    """A refresh token of ``user``, minted in the user's own scope, as logging in does."""
    with rls.account_scope(user.tenant_id):
        return SessionRefreshToken.for_user(user)


def log_in(browser, user) -> None:
    """``browser.force_login(user)`` in the user's own scope, as the admin's login view does."""
    with rls.account_scope(user.tenant_id):
        browser.force_login(user)
