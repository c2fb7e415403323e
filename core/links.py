"""Public addresses of the service's own pages: what e-mails, chat messages and pages link to.

A contract opens in the frontend when ``FRONTEND_URL`` is set (a template such as
``https://app.example/contracts/{contract_id}``), otherwise at its API resource on this service
(``PUBLIC_BASE_URL``), which every recipient may read with their token.
"""

from django.conf import settings
from django.urls import reverse


def public_url(path: str) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}{path}"


def contract_url(contract_id) -> str:
    if settings.FRONTEND_URL:
        return settings.FRONTEND_URL.format(contract_id=contract_id)
    return public_url(reverse("contract-detail", args=[contract_id]))
