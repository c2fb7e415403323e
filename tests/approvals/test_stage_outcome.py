"""approvals.stage_outcome: the settlement rule of a stage, as a pure function (no database)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from approvals.models import ApprovalStatus, StageStatus
from approvals.stage_outcome import stage_outcome
from workflows.models import ApprovalType

APPROVED, REJECTED, PENDING = (
    ApprovalStatus.APPROVED,
    ApprovalStatus.REJECTED,
    ApprovalStatus.PENDING,
)
statuses = st.lists(st.sampled_from([APPROVED, REJECTED, PENDING]), max_size=8)


@pytest.mark.parametrize(
    ("approval_type", "min_approvals", "rows", "expected"),
    [
        (ApprovalType.ALL, None, [APPROVED, PENDING], None),
        (ApprovalType.ALL, None, [APPROVED, APPROVED], StageStatus.APPROVED),
        (ApprovalType.ALL, None, [REJECTED, PENDING], StageStatus.REJECTED),
        (ApprovalType.ANY, None, [PENDING, PENDING], None),
        (ApprovalType.ANY, None, [PENDING, APPROVED], StageStatus.APPROVED),
        (ApprovalType.ANY, None, [REJECTED, PENDING], StageStatus.REJECTED),
        (ApprovalType.QUORUM, 2, [APPROVED, REJECTED, PENDING], None),
        (ApprovalType.QUORUM, 2, [APPROVED, REJECTED, APPROVED], StageStatus.APPROVED),
        (ApprovalType.QUORUM, 2, [REJECTED, REJECTED, PENDING], StageStatus.REJECTED),
        (ApprovalType.QUORUM, 2, [APPROVED, APPROVED, PENDING], StageStatus.APPROVED),
    ],
)
def test_examples(approval_type, min_approvals, rows, expected):
    assert stage_outcome(approval_type, min_approvals, rows) == expected


@given(statuses)
def test_all_needs_every_row_and_falls_at_the_first_rejection(rows):
    outcome = stage_outcome(ApprovalType.ALL, None, rows)
    if all(status == APPROVED for status in rows):
        assert outcome == StageStatus.APPROVED
    elif REJECTED in rows:
        assert outcome == StageStatus.REJECTED
    else:
        assert outcome is None


@given(statuses)
def test_any_is_settled_by_its_first_decision(rows):
    outcome = stage_outcome(ApprovalType.ANY, None, rows)
    if APPROVED in rows:
        assert outcome == StageStatus.APPROVED
    elif REJECTED in rows:
        assert outcome == StageStatus.REJECTED
    else:
        assert outcome is None


@given(statuses, st.integers(min_value=1, max_value=8))
def test_quorum_is_rejected_only_once_it_cannot_be_reached(rows, quorum):
    outcome = stage_outcome(ApprovalType.QUORUM, quorum, rows)
    approvals, pending = rows.count(APPROVED), rows.count(PENDING)
    if approvals >= quorum:
        assert outcome == StageStatus.APPROVED
    elif REJECTED in rows and approvals + pending < quorum:
        assert outcome == StageStatus.REJECTED
    else:
        assert outcome is None


@given(
    st.sampled_from([ApprovalType.ALL, ApprovalType.QUORUM]),
    statuses,
    st.integers(min_value=1, max_value=8),
    st.data(),
)
def test_a_settled_stage_stays_settled_whatever_the_pending_rows_decide(
    approval_type, rows, quorum, data
):
    """What the orchestrator relies on to stop at the first settlement: later decisions (the
    pending rows it skips or cancels) could not have changed it."""
    settled = stage_outcome(approval_type, quorum, rows)
    decided = [
        data.draw(st.sampled_from([APPROVED, REJECTED])) if status == PENDING else status
        for status in rows
    ]
    if settled is not None:
        assert stage_outcome(approval_type, quorum, decided) == settled


@given(st.sampled_from(list(ApprovalType)), st.lists(st.just(PENDING), min_size=1, max_size=8))
def test_nothing_is_settled_before_a_decision(approval_type, rows):
    assert stage_outcome(approval_type, 1, rows) is None
