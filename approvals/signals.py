"""Domain signals the orchestrator sends for other apps (notifications) to fan out.

Receivers run inside the sender's transaction, so when the decision rolls back, whatever they
wrote goes with it: a rolled-back decision notifies nobody. A receiver that raises is logged with
its context and rolled back alone; it never breaks or rolls back the decision. Delivery to the
outside world (email, webhooks) happens later, from committed rows, by the delivery worker.

Why not ``django.dispatch.Signal``: isolating each receiver costs a savepoint pair per receiver
per signal, which dominated a decision's statement count. Receivers are batch receivers: each is
called once per transaction with all of its signals. ``dispatch`` runs them under one savepoint
and, only if one of them raises, rolls that back and runs each receiver again under its own
savepoint, skipping (and logging) the ones that fail. Receivers only write rows, so running one
again after a rollback is safe. Inside the orchestrator's transitions that savepoint is queued
(``core.pipeline``): it travels with the receivers' first statement and is released by the
end of the transaction, so it costs no round trip, and nothing at all when the receivers write
nothing. Their writes queue as well and travel with the transition's COMMIT; when that round
trip fails because of them, the pipeline rolls back to the savepoint, runs each receiver again
on its own, and commits (``core.pipeline.guard``).
"""

import functools
import itertools
import logging
from collections.abc import Callable, Iterable

import django.dispatch
from django.db import DatabaseError, connection, transaction

from approvals.models import ApprovalStatus
from core import pipeline

__all__ = [  # with the signals
    "ApprovalStatus",
    "DomainSignal",
    "connect_batch",
    "contract_amended",
    "dispatch",
]

logger = logging.getLogger(__name__)


class DomainSignal:
    """A named event; its receivers are the batch receivers (``connect_batch``)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<DomainSignal {self.name}>"


_batch_receivers: dict[str, Callable] = {}


def connect_batch(receiver: Callable, dispatch_uid: str | None = None) -> None:
    """Register a receiver called once per dispatch with every ``(signal, sender, kwargs)``.

    Listeners do better in bulk: the notifications app writes a whole transaction's
    notifications with one statement instead of one per signal.
    """
    _batch_receivers[dispatch_uid or f"{receiver.__module__}.{receiver.__qualname__}"] = receiver


def dispatch(sends: Iterable[tuple[DomainSignal, object, dict]]) -> None:
    """Run the receivers of several sends, each isolated from the sender and from the others."""
    sends = list(sends)
    if not sends or not _batch_receivers:
        return
    calls = [(receiver, {"sends": sends}, sends[0][2]) for receiver in _batch_receivers.values()]
    if pipeline.active() and connection.in_atomic_block:
        if _run_together_queued(calls):
            return
    else:
        try:
            with transaction.atomic():
                for receiver, arguments, _ in calls:
                    receiver(**arguments)
            return
        except Exception:  # noqa: S110  (one failed: everything above rolled back; retry alone)
            pass
    _run_each_isolated(calls)


def _run_together_queued(calls) -> bool:
    """The receivers under one savepoint that travels with their first statement and is never
    released (the transaction's end releases it): no round trip of its own, and none at all when
    they write nothing. Their writes queue too, guarded (``core.pipeline.guard``): if the
    statement that carries them fails because of them, they are rolled back and run again, each
    on its own. False when one raised (then everything they did is rolled back)."""
    sid = f"domain_signals_{next(_savepoint_numbers)}"
    pipeline.savepoint(sid)
    try:
        for receiver, arguments, _ in calls:
            receiver(**arguments)
    except Exception as failure:
        if not pipeline.withdraw_savepoint(sid, with_what_follows=True):
            try:
                connection.savepoint_rollback(sid)
            except DatabaseError:  # a write queued before the savepoint failed: not ours to hide
                raise failure from None
        return False
    if not pipeline.withdraw_savepoint(sid):
        pipeline.guard(sid, functools.partial(_run_each_isolated, calls))
    return True


def _run_each_isolated(calls) -> None:
    for call in calls:
        _run_isolated(*call)


_savepoint_numbers = itertools.count(1)


def _run_isolated(receiver, arguments, context) -> None:
    try:
        with transaction.atomic():
            receiver(**arguments)
    except Exception:
        logger.exception(
            "signal receiver failed",
            extra={
                "signals": [signal.name for signal, _, _ in arguments["sends"]],
                "receiver": f"{receiver.__module__}.{receiver.__qualname__}",
                "instance_id": str(getattr(context.get("instance"), "pk", "")),
            },
        )


# Each is sent with `instance` (the WorkflowInstance) and `actor` (the user acting, or None).
approval_assigned = DomainSignal("approval_assigned")  # approvals: list of new pending rows
approval_decided = DomainSignal("approval_decided")  # approval: the decided row
approval_delegated = DomainSignal("approval_delegated")  # approval: new row; previous: old row
workflow_completed = DomainSignal("workflow_completed")
workflow_rejected = DomainSignal("workflow_rejected")
workflow_cancelled = DomainSignal("workflow_cancelled")
# approval: the row whose approver sent the contract back; comments: what has to change
changes_requested = DomainSignal("changes_requested")
# approvals: decided rows that no longer count (superseded, or of a re-routed instance);
# reason: "changed" or "rerouted"
approvals_reset = DomainSignal("approvals_reset")
# approval: a new row whose approver entry nobody could act on, assigned to a tenant admin
approver_unresolved = DomainSignal("approver_unresolved")

# Sent by ``approvals.lifecycle.contract_amend`` in the amendment's transaction with `contract`
# and `actor`, before the new review starts. Unlike the DomainSignals above, a receiver that
# raises rolls the amendment back: what signers were asked to sign (documents' open signature
# requests) must never stay open on a contract that no longer says it.
contract_amended = django.dispatch.Signal()
