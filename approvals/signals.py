"""Domain signals the orchestrator sends for other apps (notifications) to fan out.

Receivers run inside the sender's transaction, each in its own savepoint: a receiver that raises
is logged with its context and rolled back alone, never breaking or rolling back the decision;
and when the decision's transaction rolls back, whatever the receivers wrote goes with it, so a
rolled-back decision notifies nobody. Delivery to the outside world (email, webhooks) happens
later, from committed rows, by the delivery worker.
"""

import functools
import logging

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)


class DomainSignal(Signal):
    """A Signal whose receivers are isolated from the sender and from each other."""

    def connect(self, receiver, sender=None, weak=True, dispatch_uid=None):
        isolated = _isolated(receiver, signal_name=self.name)
        uid = dispatch_uid or f"{receiver.__module__}.{receiver.__qualname__}"
        super().connect(isolated, sender=sender, weak=False, dispatch_uid=uid)

    def __init__(self, name: str):
        super().__init__()
        self.name = name


def _isolated(receiver, *, signal_name: str):
    @functools.wraps(receiver)
    def run(*args, **kwargs):
        try:
            with transaction.atomic():
                return receiver(*args, **kwargs)
        except Exception:
            logger.exception(
                "signal receiver failed",
                extra={
                    "signal": signal_name,
                    "receiver": f"{receiver.__module__}.{receiver.__qualname__}",
                    "instance_id": str(getattr(kwargs.get("instance"), "pk", "")),
                },
            )
            return None

    return run


# Each is sent with `instance` (the WorkflowInstance) and `actor` (the user acting, or None).
approval_assigned = DomainSignal("approval_assigned")  # approvals: list of new pending rows
approval_decided = DomainSignal("approval_decided")  # approval: the decided row
approval_delegated = DomainSignal("approval_delegated")  # approval: new row; previous: old row
workflow_completed = DomainSignal("workflow_completed")
workflow_rejected = DomainSignal("workflow_rejected")
workflow_cancelled = DomainSignal("workflow_cancelled")
