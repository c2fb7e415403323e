"""Listeners of the approvals app's domain signals: they only queue work, in the same transaction.

A completed workflow queues its approval certificate (``documents.services``); the documents
worker renders and seals it later, so a slow or failing generation never touches the decision.
A definition naming signers also gets its signature request; each receiver is isolated, so a
failure (a named signer no longer active, say) is logged and never undoes the decision.

An amended contract voids its open signature requests in the amendment's transaction
(``approvals.signals.contract_amended``, a plain signal: a failure rolls the amendment back).
"""

from approvals import signals
from documents.services import (
    certificate_job_enqueue,
    signature_request_for_completed_workflow,
    signature_requests_void_open,
)


def _completed(sends) -> list:
    return [
        kwargs["instance"] for signal, _, kwargs in sends if signal is signals.workflow_completed
    ]


def on_workflow_completed(*, sends, **kwargs) -> None:
    for instance in _completed(sends):
        certificate_job_enqueue(instance=instance)


def request_signatures(*, sends, **kwargs) -> None:
    for instance in _completed(sends):
        signature_request_for_completed_workflow(instance=instance)


def void_signature_requests(*, contract, actor, **kwargs) -> None:
    signature_requests_void_open(contract=contract, actor=actor, reason="contract amended")


def connect() -> None:
    signals.connect_batch(on_workflow_completed, dispatch_uid="documents.certificate")
    signals.connect_batch(request_signatures, dispatch_uid="documents.signatures")
    signals.contract_amended.connect(void_signature_requests, dispatch_uid="documents.amended")
