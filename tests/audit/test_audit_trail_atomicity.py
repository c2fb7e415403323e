"""Audit rows commit or roll back with the change they record; a refused request writes none."""

import pytest
from django.db import transaction

from approvals import lifecycle as contract_services
from audit.models import AuditLog
from tests.factories import ContractFactory

pytestmark = pytest.mark.django_db


# --- the table ---------------------------------------------------------------------------------


def test_a_refused_request_writes_no_audit_row(scene):
    contract = ContractFactory(created_by=scene.requester, title="Kept")
    rows_before = AuditLog.objects.count()
    response = scene.client_for(scene.requester).patch(
        f"/api/contracts/{contract.pk}/", {"title": "Changed", "value": "lots"}, format="json"
    )
    assert response.status_code == 400
    assert AuditLog.objects.count() == rows_before


def test_audit_row_commits_or_rolls_back_with_the_change(scene):
    """`audit_record` writes on the service's own connection and transaction, never beside it."""
    contract = ContractFactory(created_by=scene.requester, title="Before")
    seen_inside = []

    def update_then_fail():
        with transaction.atomic():
            contract_services.contract_update(
                tenant=scene.tenant,
                contract_id=contract.pk,
                updated_by=scene.requester,
                title="After",
            )
            seen_inside.append(AuditLog.objects.filter(resource_id=str(contract.pk)).count())
            raise RuntimeError("the surrounding transaction fails after the service returned")

    with pytest.raises(RuntimeError):
        update_then_fail()

    assert seen_inside == [1]
    contract.refresh_from_db()
    assert contract.title == "Before"
    assert not AuditLog.objects.filter(resource_id=str(contract.pk)).exists()
