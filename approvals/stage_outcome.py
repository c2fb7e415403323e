"""When a stage is settled, and how: a pure function of its rule and its live rows' statuses.

"Live" rows are the ones that still take part in the stage: the orchestrator leaves out the rows
handed on (delegated: the delegate's row counts instead), superseded by a reset (the
``reset_on_change`` policy re-opened the stage) and cancelled. With ``distinct_approvers`` each
live decision is a different person's, which the orchestrator enforces before a decision is
recorded; here every decided row counts once.
"""

from collections.abc import Iterable

from approvals.models import ApprovalStatus, StageStatus
from workflows.models import ApprovalType


def approvals_needed(approval_type: str, min_approvals: int | None, live_rows: int) -> int:
    """How many approvals settle the stage as approved."""
    if approval_type == ApprovalType.ANY:
        return 1
    if approval_type == ApprovalType.QUORUM:
        return min_approvals or 1
    return live_rows


def stage_outcome(
    approval_type: str, min_approvals: int | None, statuses: Iterable[str]
) -> StageStatus | None:
    """``APPROVED`` or ``REJECTED`` once the live rows' ``statuses`` settle the stage, else None.

    - ``all``: approved when every row approved; one rejection rejects it.
    - ``any``: the first decision settles it (an approval approves, a rejection rejects).
    - ``quorum``: approved at ``min_approvals`` approvals; rejected once a rejection leaves too
      few rows pending to reach the quorum.
    """
    statuses = list(statuses)
    approvals = statuses.count(ApprovalStatus.APPROVED)
    rejections = statuses.count(ApprovalStatus.REJECTED)
    pending = statuses.count(ApprovalStatus.PENDING)
    needed = approvals_needed(approval_type, min_approvals, len(statuses))
    if approvals >= needed:
        return StageStatus.APPROVED
    if rejections and (approval_type != ApprovalType.QUORUM or approvals + pending < needed):
        return StageStatus.REJECTED
    return None
