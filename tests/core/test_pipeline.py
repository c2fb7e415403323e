"""core.pipeline: queued writes travel with the next statement, in order, and fail loudly."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from approvals import signals
from contracts.models import Contract, ContractRevision, ContractStatus
from core import pipeline
from notifications.models import Notification
from tenancy.models import UserRole
from tests.factories import ContractFactory, UserFactory

pytestmark = pytest.mark.django_db


def role(user, slug: str) -> UserRole:
    return UserRole(tenant_id=user.tenant_id, user=user, role=slug)


def test_a_queued_write_is_seen_by_the_next_read_in_the_same_round_trip(user):
    with transaction.atomic(), pipeline.deferred_writes():
        pipeline.insert([role(user, "legal"), role(user, "finance")])
        with CaptureQueriesContext(connection) as queries:
            held = set(UserRole.objects.filter(user=user).values_list("role", flat=True))
        assert held == {"legal", "finance"}
        assert len(queries) == 1  # the read carried the INSERT


def test_writes_keep_their_order_and_the_rest_is_sent_when_the_block_ends(user):
    with transaction.atomic(), pipeline.deferred_writes():
        granted = role(user, "legal")
        pipeline.insert([granted])
        granted.role = "legal-100%"  # a literal % in a value of a queued write
        pipeline.save(granted, ["role"])
        pipeline.update(UserRole.objects.filter(pk=granted.pk), role="legal-50%")
        with CaptureQueriesContext(connection) as queries:
            pass
        assert len(queries) == 0  # nothing sent yet
    assert UserRole.objects.get(user=user).role == "legal-50%"


def test_a_literal_percent_survives_a_carrying_statement_with_parameters(user):
    with transaction.atomic(), pipeline.deferred_writes():
        pipeline.insert([role(user, "100%-sure")])
        assert UserRole.objects.filter(user=user, role__endswith="%-sure").count() == 1


def test_an_exception_in_the_block_drops_the_queue(user):
    def failing_transition():
        with transaction.atomic(), pipeline.deferred_writes():
            pipeline.insert([role(user, "legal")])
            raise RuntimeError("the transition failed")

    with pytest.raises(RuntimeError):
        failing_transition()
    assert not UserRole.objects.filter(user=user).exists()
    with transaction.atomic(), pipeline.deferred_writes():  # the next block starts empty
        pass
    assert not UserRole.objects.filter(user=user).exists()


def test_a_failing_queued_write_fails_the_statement_that_carries_it(user):
    def granting_twice():
        with transaction.atomic(), pipeline.deferred_writes():
            pipeline.insert([role(user, "legal")])
            pipeline.insert([role(user, "legal")])  # userrole_user_role_unique
            UserRole.objects.filter(user=user).exists()

    with pytest.raises(IntegrityError):
        granting_twice()
    assert not UserRole.objects.filter(user=user).exists()


def test_writing_outside_a_block_is_refused(user):
    with pytest.raises(RuntimeError, match="deferred_writes"):
        pipeline.insert([role(user, "legal")])


def _dispatch_with(receiver, user, monkeypatch) -> None:
    """Dispatch one signal to ``receiver`` alone (the app's receivers set aside for the test)."""
    signal = signals.DomainSignal("test_pipeline")
    monkeypatch.setattr(signals, "_batch_receivers", {"tests.pipeline": receiver})
    with transaction.atomic(), pipeline.deferred_writes():
        pipeline.insert([role(user, "legal")])  # the transition's own write, before the signals
        signals.dispatch([(signal, None, {"instance": None})])


def test_a_failing_receiver_is_rolled_back_alone_and_the_queued_writes_stay(
    user, caplog, monkeypatch
):
    def writes_then_fails(**kwargs):
        Notification.objects.create(
            tenant_id=user.tenant_id, recipient=user, notification_type="approval_decided",
            title="from the broken receiver", message="",
        )  # fmt: skip
        raise RuntimeError("receiver bug")

    _dispatch_with(writes_then_fails, user, monkeypatch)

    assert UserRole.objects.filter(user=user, role="legal").exists()
    assert not Notification.objects.filter(title="from the broken receiver").exists()
    assert any(r.getMessage() == "signal receiver failed" for r in caplog.records)


def test_receivers_that_write_nothing_cost_no_savepoint(user, monkeypatch):
    with CaptureQueriesContext(connection) as queries:
        _dispatch_with(lambda **kwargs: None, user, monkeypatch)
    statements = [query["sql"] for query in queries]
    assert not any("SAVEPOINT" in sql and "domain_signals" in sql for sql in statements)
    assert UserRole.objects.filter(user=user, role="legal").exists()


def test_a_receiver_failing_before_any_statement_keeps_everything_else(user, monkeypatch):
    other = UserFactory(tenant=user.tenant)

    def fails_at_once(**kwargs):
        raise RuntimeError("receiver bug")

    _dispatch_with(fails_at_once, user, monkeypatch)
    assert UserRole.objects.filter(user=user, role="legal").exists()
    assert not UserRole.objects.filter(user=other).exists()


def test_carriers_with_named_or_no_parameters_keep_their_literal_percent_signs(user):
    with transaction.atomic(), pipeline.deferred_writes(), connection.cursor() as cursor:
        pipeline.insert([role(user, "half")])
        cursor.execute(
            "SELECT role || '%%' FROM tenancy_userrole WHERE user_id = %(user)s", {"user": user.pk}
        )
        assert cursor.fetchall() == [("half%",)]
        pipeline.update(UserRole.objects.filter(user=user), role="whole")
        cursor.execute("SELECT '100%'")
        assert cursor.fetchall() == [("100%",)]
        assert UserRole.objects.get(user=user).role == "whole"


def test_save_writes_what_model_save_writes(user, tenant):
    """``save`` prepares each value as the ORM does: a foreign key by its id, a JSON field
    as JSON, ``auto_now`` stamped; an expression goes through the ORM's compiler."""
    contract = ContractFactory(tenant=tenant, created_by=user, metadata={"tier": "gold"})
    stamped = contract.updated_at
    contract.metadata = {"tier": "silver", "seats": [1, 2], "note": "100%"}
    contract.created_by = other = UserFactory(tenant=tenant)
    contract.status = ContractStatus.IN_REVIEW
    with transaction.atomic(), pipeline.deferred_writes():
        pipeline.save(contract, ["metadata", "created_by", "status", "updated_at"])
    saved = Contract.objects.get(pk=contract.pk)
    assert saved.metadata == {"tier": "silver", "seats": [1, 2], "note": "100%"}
    assert saved.created_by_id == other.pk
    assert saved.status == ContractStatus.IN_REVIEW
    assert saved.updated_at > stamped
    assert saved.updated_at == contract.updated_at  # the value stamped on the object
    contract.revision = F("revision") + 1
    with transaction.atomic(), pipeline.deferred_writes():
        pipeline.save(contract, ["revision"])
    assert Contract.objects.get(pk=contract.pk).revision == saved.revision + 1


@pytest.mark.parametrize("rows", [1, 3, pipeline._PREPARED_ROWS + 1])
def test_insert_writes_what_bulk_create_writes(user, tenant, rows):
    """``insert`` prepares each value as the ORM's compiler does (a JSON and an array field, a
    foreign key by its id, ``auto_now_add`` stamped), prepared or, past a few rows, compiled."""
    queued = [
        ContractRevision(
            tenant_id=tenant.pk,
            contract=ContractFactory(tenant=tenant, created_by=user),
            number=2,
            content_hash="f" * 64,
            content={"title": "100% Lease", "value": "10.00", "seats": [1, 2]},
            changed_fields=["title", "value"][: number % 3],
            created_by=user,
        )
        for number in range(rows)
    ]
    with transaction.atomic(), pipeline.deferred_writes():
        pipeline.insert(queued)
    for number, revision in enumerate(queued):
        saved = ContractRevision.objects.get(pk=revision.pk)
        assert saved.content == {"title": "100% Lease", "value": "10.00", "seats": [1, 2]}
        assert saved.changed_fields == ["title", "value"][: number % 3]  # empty, one, two
        assert (saved.contract_id, saved.created_by_id) == (revision.contract_id, user.pk)
        assert saved.created_at == revision.created_at  # stamped on the object, as bulk_create
        assert not revision._state.adding
