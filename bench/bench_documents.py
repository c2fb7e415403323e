"""Benchmark approval certificates: generating and sealing one for a 20-stage workflow.

Run from the repository root: ``python bench/bench_documents.py`` (``--documents N``). N contracts
each run a 20-stage workflow (one named approver per stage) to completion through the services,
which queues N certificate jobs. Then ``generate_documents --once`` drains them with 1, and
again (the documents deleted, the jobs re-queued) with 2 worker processes started together on a
barrier: time per document and documents per second.

Baseline in the same run: rendering the same certificates (the same inputs, read once) without
sealing and without storing, in this process, and the seal alone on those PDFs.
"""

import argparse
import io
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("BENCH_DATABASE_NAME", "clm_bench_documents")
os.environ.setdefault("LOG_LEVEL", "ERROR")

import _django
from _util import print_table, run_worker_processes

DOCUMENTS = 20
STAGES = 20


def create_fixtures(documents: int) -> None:
    """``documents`` contracts, each through a completed 20-stage workflow."""
    from approvals.lifecycle import contract_create
    from approvals.orchestrator import approval_act
    from core import rls
    from tenancy.models import Tenant, User
    from workflows.services import definition_create

    tenant = Tenant.objects.create(name="Bench documents", slug="bench-documents")

    def user(name: str, **fields):
        return User.objects.create_user(
            f"{name}@bench.example", password=None, tenant=tenant, full_name=name, **fields
        )

    admin = user("admin", is_tenant_admin=True)
    requester = user("requester")
    approvers = [user(f"approver-{number:02d}") for number in range(1, STAGES + 1)]
    definition_create(
        tenant=tenant,
        created_by=admin,
        name="Twenty-stage approval",
        trigger_conditions={},
        stages=[
            {
                "stage_name": f"Stage {number:02d}",
                "sequence": number,
                "approvers": [f"user:{approver.pk}"],
                "sla_hours": 24,
            }
            for number, approver in enumerate(approvers, start=1)
        ],
    )
    with rls.tenant_scope(tenant):
        for number in range(documents):
            contract = contract_create(
                tenant=tenant,
                created_by=requester,
                title=f"Master services agreement #{number}",
                contract_type="MSA",
                value="250000",
                counterparty="Globex AG",
                text="The parties agree to the terms below. " * 40,
            )
            for approver in approvers:
                approval_act(
                    tenant=tenant,
                    contract_id=contract.pk,
                    actor=approver,
                    action="approve",
                    comments=f"Checked by {approver.full_name}",
                )


def _worker(barrier, results) -> None:
    _django.setup(fresh=False)
    from django.core.management import call_command
    from django.db import connection

    connection.ensure_connection()
    barrier.wait()
    out = io.StringIO()
    started = time.perf_counter()
    call_command("generate_documents", "--once", stdout=out)
    finished = time.perf_counter()
    done = int(re.search(r"(\d+) done", out.getvalue()).group(1))
    results.put({"started": started, "finished": finished, "done": done})


def run_workers(workers: int) -> dict:
    seconds, outcomes = run_worker_processes(_worker, (), workers, setup_timeout=180, timeout=1800)
    return {
        "seconds": seconds,
        "done": sum(o["done"] for o in outcomes),
        "split": "/".join(str(o["done"]) for o in outcomes),
    }


def requeue() -> None:
    """Every job pending again and no document: the next run does the same work."""
    from django.db import connection

    from documents.models import DocumentJob

    DocumentJob.objects.update(status="pending", attempts=0, document=None, finished_at=None)
    with connection.cursor() as cursor:  # documents refuse UPDATE, not DELETE
        cursor.execute("DELETE FROM documents_document")


def baseline(instance_ids) -> tuple[float, float]:
    """Seconds per document to render only, and to seal only, the same certificates."""
    from documents import rendering, sealing
    from documents.selectors import certificate_inputs

    inputs = [certificate_inputs(workflow_instance_id=pk) for pk in instance_ids]
    started = time.perf_counter()
    pdfs = [rendering.render_certificate(item) for item in inputs]
    rendered = time.perf_counter() - started
    started = time.perf_counter()
    for pdf in pdfs:
        sealing.seal_pdf(pdf, reason="bench")
    sealed = time.perf_counter() - started
    return rendered / len(pdfs), sealed / len(pdfs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=DOCUMENTS)
    args = parser.parse_args()
    os.environ.setdefault("DOCUMENTS_DIR", tempfile.mkdtemp(prefix="clm-bench-documents-"))
    _django.setup()
    create_fixtures(args.documents)

    from documents import sealing
    from documents.models import DocumentJob

    sealing.seal_identity()
    instance_ids = list(DocumentJob.objects.values_list("workflow_instance_id", flat=True))
    render_each, seal_each = baseline(instance_ids)
    rows = [["run", "documents", "split", "seconds", "ms per document", "documents/s"]]
    for label, each in (("render only (baseline)", render_each), ("seal only", seal_each)):
        rows.append([label, len(instance_ids), "", "", f"{each * 1000:.0f}", f"{1 / each:.1f}"])
    for workers in (1, 2):
        requeue()
        result = run_workers(workers)
        rows.append(
            [
                f"generate_documents x{workers}",
                result["done"],
                result["split"],
                f"{result['seconds']:.2f}",
                f"{result['seconds'] / result['done'] * 1000:.0f}",
                f"{result['done'] / result['seconds']:.1f}",
            ]
        )
    print_table(
        f"Approval certificates, {STAGES}-stage workflows ({_django.database_description()})", rows
    )


if __name__ == "__main__":
    main()
