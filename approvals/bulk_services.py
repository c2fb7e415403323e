"""Bulk decisions: up to ``BULK_MAX_APPROVALS`` approvals in one request, each on its own.

Every row goes through the orchestrator's ``approval_act`` in its own transaction, so one refused
or failed row neither blocks nor rolls back the others; each gets the status and reason the
single-approval endpoint would have answered.
"""

import logging
from dataclasses import dataclass

from django.db import DatabaseError
from rest_framework import status
from rest_framework.exceptions import APIException

from approvals.models import WorkflowStageApproval
from approvals.orchestrator import ApprovalAction, approval_act
from config.exceptions import error_message

logger = logging.getLogger(__name__)

BULK_MAX_APPROVALS = 100
BULK_ACTIONS = (ApprovalAction.APPROVE, ApprovalAction.REJECT)
_DONE = {ApprovalAction.APPROVE: "Approved.", ApprovalAction.REJECT: "Rejected."}


@dataclass(frozen=True)
class BulkOutcome:
    approval: object  # the approval id, as given
    status_code: int
    detail: str


def approval_bulk_decide(*, actor, action: str, approval_ids: list, comments: str = "") -> list:
    """Decide each of ``approval_ids`` as ``actor``, in order; one ``BulkOutcome`` per id.

    Not atomic as a whole, by design: called outside a transaction (as the API does), each
    decision commits on its own; inside one, each is a savepoint. An id that is not the tenant's
    is a 404 for that row, like any other unknown approval.
    """
    contracts = dict(
        WorkflowStageApproval.objects.for_tenant(actor.tenant_id)
        .filter(pk__in=approval_ids)
        .values_list("pk", "contract_id")
    )
    outcomes = []
    for approval_id in approval_ids:
        contract_id = contracts.get(approval_id)
        if contract_id is None:
            outcomes.append(BulkOutcome(approval_id, status.HTTP_404_NOT_FOUND, "Not found."))
            continue
        outcomes.append(_decide_one(actor, action, approval_id, contract_id, comments))
    return outcomes


def _decide_one(actor, action, approval_id, contract_id, comments) -> BulkOutcome:
    try:
        approval_act(
            tenant=actor.tenant,
            contract_id=contract_id,
            actor=actor,
            action=action,
            comments=comments,
            approval_id=approval_id,
        )
    except APIException as exc:
        return BulkOutcome(approval_id, exc.status_code, error_message(exc.detail))
    except DatabaseError:  # a lost connection or a timeout: this row only, retry it
        logger.exception("bulk decision failed", extra={"approval_id": str(approval_id)})
        return BulkOutcome(
            approval_id,
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "The database could not record this decision; retry it.",
        )
    return BulkOutcome(approval_id, status.HTTP_200_OK, _DONE[action])
