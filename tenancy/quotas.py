"""Quotas per tenant (docs/security.md, "Limits and quotas"): a 400 ``quota_exceeded`` naming
the quota.

Registration is open, so anyone can be a tenant admin: every resource a tenant can create is
capped. A create (or a re-activation) checks with :func:`quota_guard` (lock, count, check)
inside its writing transaction; a quota that is not a count of rows (phrase characters) calls
:func:`lock_tenant` and :func:`quota_check` itself. The lock takes the tenant row ``FOR NO KEY
UPDATE``: two concurrent creates of one tenant are serialized (the second counts the first's row),
while inserts referencing the tenant (``FOR KEY SHARE``) are not blocked. The limits are settings
(``QUOTA_*``), read at each check.
"""

from django.conf import settings
from django.db.models import QuerySet

from config.exceptions import QuotaExceeded
from tenancy.models import Tenant

QUOTAS = {
    "clause_rules": "QUOTA_CLAUSE_RULES",
    "clause_phrase_chars": "QUOTA_CLAUSE_PHRASE_CHARS",
    "webhooks": "QUOTA_WEBHOOKS",
    "active_workflow_definitions": "QUOTA_ACTIVE_DEFINITIONS",
    "users": "QUOTA_USERS",
    "open_signature_requests": "QUOTA_OPEN_SIGNATURE_REQUESTS",
    "roles": "QUOTA_ROLES",
    "contract_comments": "QUOTA_CONTRACT_COMMENTS",
}

_DESCRIPTIONS = {
    "clause_rules": "clause rules",
    "clause_phrase_chars": "phrase characters over active clause rules",
    "webhooks": "webhook endpoints",
    "active_workflow_definitions": "active workflow definitions",
    "users": "users",
    "open_signature_requests": "open signature requests",
    "roles": "roles in its catalog",
    "contract_comments": "comments on one contract",
}


def quota_limit(quota: str) -> int:
    return getattr(settings, QUOTAS[quota])


def lock_tenant(tenant: Tenant) -> None:
    """Serialize the quota checks of one tenant until the end of the current transaction."""
    list(Tenant.objects.select_for_update(no_key=True).filter(pk=tenant.pk).values_list("pk"))


def quota_check(quota: str, *, after: int, before: int = 0) -> None:
    """Refuse a change that leaves ``after`` units over the quota, unless it does not grow them.

    ``before`` is the amount before the change: shrinking (or keeping) what a tenant already holds
    stays possible when a lowered quota left it over the limit.
    """
    limit = quota_limit(quota)
    if after > limit and after > before:
        raise QuotaExceeded(
            quota,
            limit,
            f"Quota '{quota}' exceeded: a tenant may have at most {limit} {_DESCRIPTIONS[quota]}.",
        )


def quota_guard(quota: str, *, tenant: Tenant | None, rows: QuerySet) -> None:
    """Refuse one more of ``rows`` (what ``quota`` counts) past the quota.

    The count is true only while nobody else can add a row: two creates counting at once would
    both see room at quota - 1. So the tenant row is locked first (:func:`lock_tenant`, until the
    transaction ends) and a concurrent create of the tenant waits there, then counts this one's
    row. ``tenant=None``: the caller already holds the lock that serializes these creates (a
    contract's comments: the contract row, read ``FOR NO KEY UPDATE``), so the count is one query.
    """
    if tenant is not None:
        lock_tenant(tenant)
    count = rows.count()
    quota_check(quota, after=count + 1, before=count)
