"""Listeners of the approvals app's domain signals: they only queue work, in the same transaction.

A completed workflow queues its approval certificate (``documents.services``); the documents
worker renders and seals it later, so a slow or failing generation never touches the decision.
"""

from approvals import signals
from documents.services import certificate_job_enqueue


def on_workflow_completed(*, instance, **kwargs) -> None:
    certificate_job_enqueue(instance=instance)


def connect() -> None:
    signals.workflow_completed.connect(on_workflow_completed, dispatch_uid="documents.certificate")
