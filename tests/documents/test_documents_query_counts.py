"""A contract's documents and signature requests cost the same queries for 1 row as for 50."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from documents.models import Document, SignatureRequest, Signer
from tests.factories import ContractFactory

pytestmark = pytest.mark.django_db


def add_documents(contract, n: int) -> None:
    for index in range(n):
        Document.objects.create(
            tenant_id=contract.tenant_id,
            contract=contract,
            kind="approval_certificate",
            revision=1,
            sha256=f"{index:064x}",
            inputs_sha256="0" * 64,
            size=1,
            storage_name=f"{index}.pdf",
        )


def add_requests(contract, n: int) -> None:
    for _ in range(n):
        request = SignatureRequest.objects.create(
            tenant_id=contract.tenant_id,
            contract=contract,
            revision=1,
            content_hash="0" * 64,
            status="completed",
            expires_at=timezone.now(),
        )
        for position in (1, 2, 3):
            Signer.objects.create(
                tenant_id=contract.tenant_id,
                request=request,
                position=position,
                name=f"Signer {position}",
                email=f"s{position}@example.com",
            )


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    ("path", "add", "expected"),
    # The user, the contract's existence, the count, the page (and the requests' signers).
    [("documents", add_documents, 4), ("signature-requests", add_requests, 5)],
)
def test_the_lists_cost_the_same_for_1_and_50_rows(tenant, user, client, path, add, expected):
    one, fifty = ContractFactory(created_by=user), ContractFactory(created_by=user)
    add(one, 1)
    add(fifty, 50)
    counts = [queries(client, f"/api/contracts/{contract.pk}/{path}/") for contract in (one, fifty)]
    assert counts == [expected, expected]
