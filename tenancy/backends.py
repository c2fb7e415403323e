"""Logging in by e-mail, and session users, with ``tenancy_user`` under row-level security."""

from django.contrib.auth.backends import ModelBackend

from core import rls
from tenancy.models import User
from tenancy.selectors import account_by_id


class TenantAccountBackend(ModelBackend):
    """Django's model backend, reading each user in its own tenant's scope (platform: platform).

    A successful login with a request (the API's and the admin's login views) narrows that
    request's scope to the user's, as token authentication does: what follows (the last-login
    update, the login's audit row, the refresh token's row) belongs to that tenant.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        email = kwargs.get(User.USERNAME_FIELD, username)
        if email is None or password is None:
            return None
        try:
            user = User._default_manager.get_by_natural_key(email)
        except User.DoesNotExist:
            User().set_password(password)  # as slow as a wrong password (Django's defence)
            return None
        with rls.account_scope(user.tenant_id):  # a hash upgrade saves the row
            if not (user.check_password(password) and self.user_can_authenticate(user)):
                return None
        if request is not None:
            rls.activate_account(user.tenant_id)
        return user

    def get_user(self, user_id):
        account = account_by_id(user_id=user_id)
        if account is None:
            return None
        with rls.account_scope(account.tenant_id):
            user = User._default_manager.filter(pk=account.id).first()
        return user if user is not None and self.user_can_authenticate(user) else None
