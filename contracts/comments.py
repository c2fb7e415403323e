"""A discussion thread per contract: any member writes; mentioned members are told.

Each comment is audited (``comment_added``) and announced (``contracts.signals.comment_added``),
in its transaction: notifications receives it, so mentioned members get a ``comment_mention``
notification and the tenant's webhooks a ``comment_added`` event. The number of comments per
contract is capped (quota ``contract_comments``).
"""

from django.db import transaction
from django.db.models import QuerySet
from rest_framework.exceptions import NotFound, ValidationError

from audit.services import audit_record
from contracts.models import Comment, Contract
from contracts.signals import comment_added
from tenancy.models import User
from tenancy.quotas import quota_guard

MAX_MENTIONS = 50


def comment_list(*, tenant, contract_id) -> QuerySet[Comment]:
    """The contract's thread, oldest first."""
    return (
        Comment.objects.for_tenant(tenant)
        .filter(contract_id=contract_id)
        .select_related("author")
        .order_by("created_at", "id")
    )


@transaction.atomic
def comment_add(*, tenant, contract_id, author: User, body: str, mentions) -> Comment:
    """Add a comment (404 for another tenant's contract; 400 for a mention of anyone but an
    active member). The contract row is locked, so the quota holds under concurrent posts."""
    contract = (
        Contract.objects.for_tenant(tenant)
        .select_for_update(no_key=True)
        .only("id", "tenant_id", "title")
        .filter(pk=contract_id)
        .first()
    )
    if contract is None:
        raise NotFound()
    if not body.strip():
        raise ValidationError({"body": ["A comment needs some text."]})
    mentioned = list(dict.fromkeys(mentions))
    if len(mentioned) > MAX_MENTIONS:
        raise ValidationError({"mentions": [f"At most {MAX_MENTIONS} people."]})
    members = set(
        User.objects.filter(
            tenant_id=contract.tenant_id, is_active=True, pk__in=mentioned
        ).values_list("pk", flat=True)
    )
    unknown = [str(user_id) for user_id in mentioned if user_id not in members]
    if unknown:
        raise ValidationError({"mentions": [f"Not an active member: {', '.join(unknown)}."]})
    thread = Comment.objects.filter(contract_id=contract.pk)
    quota_guard("contract_comments", tenant=None, rows=thread)  # the contract row is the lock
    comment = Comment.objects.create(
        tenant_id=contract.tenant_id,
        contract=contract,
        author=author,
        body=body,
        mentions=mentioned,
    )
    audit_record(
        action="comment_added",
        tenant=contract.tenant_id,
        actor=author,
        resource=comment,
        changes={
            "contract": [None, str(contract.pk)],
            "mentions": [None, [str(m) for m in mentioned]],
        },
    )
    comment_added.send(sender=Comment, comment=comment, contract=contract, author=author)
    return comment
