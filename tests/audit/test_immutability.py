"""Audit rows are append-only for real: the database refuses UPDATE and DELETE, whoever asks.

Each refused statement runs in a savepoint (`transaction.atomic()`), so the test's transaction
survives the error and the row can be checked afterwards.
"""

import pytest
from django.contrib.admin.sites import site
from django.db import ProgrammingError, connection, transaction
from django.test import RequestFactory

from audit.models import AuditLog
from audit.services import audit_record
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REFUSED = "audit_auditlog is append-only"


@pytest.fixture
def row(tenant, user):
    return audit_record(
        action="contract_updated",
        tenant=tenant,
        actor=user,
        resource_type="contract",
        resource_id="c-1",
        changes={"title": ["Old", "New"]},
    )


def _stored(row) -> dict:
    return AuditLog.objects.filter(pk=row.pk).values().get()


def _refused(statement) -> str:
    """Run ``statement()`` in a savepoint; return the database's error message."""
    with pytest.raises(ProgrammingError) as refused, transaction.atomic():
        statement()
    return str(refused.value)


def test_raw_update_is_refused_by_the_database(row):
    before = _stored(row)

    def update():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE audit_auditlog SET action = 'tampered', changes = '{}' WHERE id = %s",
                [row.pk],
            )

    assert REFUSED in _refused(update)
    assert "UPDATE" in _refused(update)
    assert _stored(row) == before


def test_raw_delete_is_refused_by_the_database(row):
    def delete():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditlog WHERE id = %s", [row.pk])

    message = _refused(delete)
    assert REFUSED in message
    assert "DELETE" in message
    assert AuditLog.objects.filter(pk=row.pk).exists()


def test_raw_update_of_every_row_is_refused(tenant, row):
    audit_record(action="login", tenant=tenant)

    def update_all():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditlog SET ip_address = '10.0.0.1'")

    assert REFUSED in _refused(update_all)
    assert not AuditLog.objects.filter(ip_address="10.0.0.1").exists()


def test_orm_update_and_delete_are_refused(row):
    before = _stored(row)

    assert REFUSED in _refused(lambda: AuditLog.objects.filter(pk=row.pk).update(action="x"))
    assert REFUSED in _refused(lambda: AuditLog.objects.filter(pk=row.pk).delete())
    assert REFUSED in _refused(lambda: AuditLog.objects.all().delete())

    assert _stored(row) == before


def test_saving_or_deleting_an_instance_is_refused(row):
    before = _stored(row)
    row.changes = {"title": ["Old", "Rewritten"]}

    assert REFUSED in _refused(row.save)
    assert REFUSED in _refused(row.delete)

    assert _stored(row) == before


def test_inserting_is_still_allowed(tenant):
    """The trigger guards changes only: services keep appending."""
    audit_record(action="login", tenant=tenant)
    audit_record(action="logout", tenant=tenant)
    assert AuditLog.objects.filter(tenant=tenant).count() == 2


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_api_has_no_write_methods(auditor_client, row, method):
    before = _stored(row)
    response = getattr(auditor_client, method)("/api/audit-logs/", {"action": "x"}, format="json")
    assert response.status_code == 405, response.content
    assert response.json()["code"] == "method_not_allowed"
    # There is no per-row URL to aim a write at either.
    per_row = getattr(auditor_client, method)(f"/api/audit-logs/{row.pk}/", {}, format="json")
    assert per_row.status_code == 404
    assert AuditLog.objects.count() == 1
    assert _stored(row) == before


def test_the_admin_offers_no_add_change_or_delete(tenant, row):
    staff_admin = UserFactory(tenant=tenant, is_tenant_admin=True, is_staff=True)
    request = RequestFactory().get("/admin/audit/auditlog/")
    request.user = staff_admin
    model_admin = site._registry[AuditLog]

    assert model_admin.has_view_permission(request, row)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, row)
    assert not model_admin.has_delete_permission(request, row)
