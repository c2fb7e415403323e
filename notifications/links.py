"""Where e-mails link: every link must open something that exists.

A contract opens in the frontend when ``FRONTEND_URL`` is set (a template such as
``https://app.example/contracts/{contract_id}``), otherwise at its API resource on this service
(``PUBLIC_BASE_URL``), which every recipient may read with their token. The preferences link is
the API resource that switches e-mails off per type.
"""

from django.conf import settings
from django.urls import reverse


def _public(path: str) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}{path}"


def contract_url(contract_id) -> str:
    if settings.FRONTEND_URL:
        return settings.FRONTEND_URL.format(contract_id=contract_id)
    return _public(reverse("contract-detail", args=[contract_id]))


def preferences_url() -> str:
    return _public(reverse("notification-preferences"))
