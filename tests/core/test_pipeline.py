"""core.pipeline: queued writes travel with the next statement, in order, and fail loudly."""

import time

import pytest
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from psycopg.pq import PipelineStatus

from approvals import signals
from config.database import admin_url, connect
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


# --- receivers' writes: queued, guarded --------------------------------------------------------


def grant(user, slug: str) -> None:
    """A receiver's write as the app's receivers make theirs (``pipeline.write``): queued inside
    a transition, at once outside one (when the pipeline runs them again, each on its own)."""
    if pipeline.active():
        pipeline.insert([role(user, slug)])
    else:
        role(user, slug).save()


def _dispatch_to(receivers: dict, monkeypatch, *, rounds: tuple = ("one",)) -> None:
    """A dispatch to ``receivers`` for each of ``rounds`` (sent as ``round``), in one
    ``pipeline.atomic`` block (the end of the block carries what is queued)."""
    signal = signals.DomainSignal("test_pipeline")
    monkeypatch.setattr(signals, "_batch_receivers", receivers)
    with pipeline.atomic():
        for name in rounds:
            signals.dispatch([(signal, None, {"instance": None, "round": name})])


def _round(sends) -> str:
    return sends[0][2]["round"]


def _failed_receivers(caplog) -> list[str]:
    return [
        r.receiver.rsplit(".", 1)[-1]
        for r in caplog.records
        if r.getMessage() == "signal receiver failed"
    ]


def roles_of(user) -> list[str]:
    return sorted(UserRole.objects.filter(user=user).values_list("role", flat=True))


def test_receivers_writes_travel_with_the_end_of_the_block(user, monkeypatch):
    receivers = {"a": lambda **kwargs: grant(user, "finance"), "b": lambda **kwargs: None}
    with CaptureQueriesContext(connection) as queries:
        _dispatch_to(receivers, monkeypatch)
    sent = [query["sql"] for query in queries]
    assert len(sent) == 2  # the block's SAVEPOINT, and its RELEASE carrying every write
    carried, ending = sent[-1].rsplit("\n", 1)
    assert ending.startswith("RELEASE SAVEPOINT")
    assert 'SAVEPOINT "domain_signals_' in carried  # the receivers', then their write
    assert "EXECUTE" in carried.split("domain_signals_", 1)[1]
    assert roles_of(user) == ["finance"]


def test_a_receivers_queued_write_that_fails_is_rolled_back_alone(user, caplog, monkeypatch):
    UserRole.objects.create(tenant=user.tenant, user=user, role="legal")

    def grants(**kwargs):
        grant(user, "finance")

    def duplicates(**kwargs):
        grant(user, "legal")  # userrole_user_role_unique

    def also_grants(**kwargs):
        grant(user, "ceo")

    _dispatch_to({"a": grants, "b": duplicates, "c": also_grants}, monkeypatch)
    assert roles_of(user) == ["ceo", "finance", "legal"]
    assert _failed_receivers(caplog) == ["duplicates"]


def test_each_dispatch_is_guarded_on_its_own(user, caplog, monkeypatch):
    """Two transitions' receivers in one round trip: the second's failure keeps the first's
    writes and the second's other receivers'."""
    UserRole.objects.create(tenant=user.tenant, user=user, role="legal")

    def grants_per_round(*, sends):
        grant(user, {"first": "finance", "second": "legal"}[_round(sends)])

    def grants_ceo_once(*, sends):
        if _round(sends) == "second":
            grant(user, "ceo")

    receivers = {"a": grants_per_round, "b": grants_ceo_once}
    _dispatch_to(receivers, monkeypatch, rounds=("first", "second"))
    assert roles_of(user) == ["ceo", "finance", "legal"]
    assert _failed_receivers(caplog) == ["grants_per_round"]


def test_a_transition_write_failing_before_the_receivers_fails_the_transition(user, monkeypatch):
    UserRole.objects.create(tenant=user.tenant, user=user, role="legal")
    signal = signals.DomainSignal("test_pipeline")
    monkeypatch.setattr(
        signals, "_batch_receivers", {"grants": lambda **kwargs: grant(user, "finance")}
    )

    def transition_with_a_duplicate():
        with pipeline.atomic():
            pipeline.insert([role(user, "legal")])  # the transition's own write: a duplicate
            signals.dispatch([(signal, None, {"instance": None})])

    with pytest.raises(IntegrityError):
        transition_with_a_duplicate()
    assert roles_of(user) == ["legal"]


def test_a_receiver_raising_after_queueing_drops_only_its_writes(user, monkeypatch):
    def queues_then_fails(**kwargs):
        grant(user, "ceo")
        raise RuntimeError("receiver bug")

    signal = signals.DomainSignal("test_pipeline")
    monkeypatch.setattr(signals, "_batch_receivers", {"broken": queues_then_fails})
    with pipeline.atomic():
        pipeline.insert([role(user, "legal")])
        signals.dispatch([(signal, None, {"instance": None})])
    assert roles_of(user) == ["legal"]


@pytest.mark.django_db(transaction=True)
def test_receivers_failing_at_the_commit_are_rolled_back_alone(user, caplog, monkeypatch):
    """Outside a test's transaction the block's end is its COMMIT: the failing receiver is
    rolled back, the others run again on their own, and the transition commits."""
    UserRole.objects.create(tenant=user.tenant, user=user, role="legal")

    def grants(**kwargs):
        grant(user, "finance")

    def duplicates(**kwargs):
        grant(user, "legal")

    _dispatch_to({"a": grants, "b": duplicates}, monkeypatch)
    assert roles_of(user) == ["finance", "legal"]
    assert _failed_receivers(caplog) == ["duplicates"]


def test_a_block_ending_with_guarded_writes_sends_none_of_them_twice(user, caplog, monkeypatch):
    """A plain ``deferred_writes`` block sends its queue when it ends: a receiver's write there
    is carried, not the carrier, or the recovery would send it a second time."""
    UserRole.objects.create(tenant=user.tenant, user=user, role="legal")

    def duplicates(**kwargs):
        grant(user, "legal")

    def grants(**kwargs):
        grant(user, "finance")  # the last write queued

    signal = signals.DomainSignal("test_pipeline")
    monkeypatch.setattr(signals, "_batch_receivers", {"a": duplicates, "b": grants})
    with transaction.atomic(), pipeline.deferred_writes():
        signals.dispatch([(signal, None, {"instance": None})])
    assert roles_of(user) == ["finance", "legal"]
    assert _failed_receivers(caplog) == ["duplicates"]


def _received(backend_pid: int, text: str) -> bool:
    """Whether ``pg_stat_activity``, read from another session, shows that a backend's last
    statement holds ``text`` (polled: the server reads its socket on its own time)."""
    observer = connect(admin_url(), dbname=connection.settings_dict["NAME"])
    try:
        with observer.cursor() as cursor:
            for _ in range(500):
                cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [backend_pid])
                if text in cursor.fetchone()[0]:
                    return True
                time.sleep(0.01)
            return False
    finally:
        observer.close()


def test_a_write_in_an_open_transaction_is_on_the_wire_before_the_next_round_trip(user):
    with transaction.atomic(), pipeline.deferred_writes():
        UserRole.objects.filter(user=user).exists()  # the transaction and its scope are open
        pipeline.insert([role(user, "streamed")])
        # The server received it while the client went on: no round trip has waited for it.
        assert _received(connection.connection.info.backend_pid, "'streamed'")
        with CaptureQueriesContext(connection) as queries:
            held = list(UserRole.objects.filter(user=user).values_list("role", flat=True))
        assert held == ["streamed"]
        assert len(queries) == 1  # one round trip waited for the INSERT and the read


def test_a_write_before_the_transaction_is_open_waits_for_its_first_statement(user):
    with transaction.atomic(), pipeline.deferred_writes():
        pipeline.insert([role(user, "queued")])
        with CaptureQueriesContext(connection) as queries:
            held = list(UserRole.objects.filter(user=user).values_list("role", flat=True))
        assert held == ["queued"]
        assert "'queued'" in queries[0]["sql"]  # the INSERT travelled in front of the read


def test_a_streamed_write_that_fails_fails_the_next_round_trip_and_the_transaction(user):
    def granting_twice():
        with transaction.atomic(), pipeline.deferred_writes():
            UserRole.objects.filter(user=user).exists()
            pipeline.insert([role(user, "legal")])
            pipeline.insert([role(user, "legal")])  # userrole_user_role_unique
            pipeline.insert([role(user, "finance")])  # sent after the failure arrived, or not
            UserRole.objects.filter(user=user).exists()

    with pytest.raises(IntegrityError):
        granting_twice()
    assert not UserRole.objects.filter(user=user).exists()
    with transaction.atomic(), pipeline.deferred_writes():  # the connection streams again
        UserRole.objects.filter(user=user).exists()
        pipeline.insert([role(user, "legal")])
    assert list(UserRole.objects.filter(user=user).values_list("role", flat=True)) == ["legal"]


def test_with_streaming_off_a_write_waits_for_the_next_statement(user, monkeypatch):
    monkeypatch.setattr(connections[DEFAULT_DB_ALIAS], "stream_writes", False)
    with transaction.atomic(), pipeline.deferred_writes():
        UserRole.objects.filter(user=user).exists()
        pipeline.insert([role(user, "queued")])
        with CaptureQueriesContext(connection) as queries:
            held = list(UserRole.objects.filter(user=user).values_list("role", flat=True))
        assert held == ["queued"]
        assert "'queued'" in queries[0]["sql"]  # the INSERT travelled in front of the read


@pytest.mark.django_db(transaction=True)
def test_a_statement_first_prepared_inside_the_stream_runs_in_order(user):
    connection.close()  # a new connection, which has prepared nothing yet
    with transaction.atomic(), pipeline.deferred_writes():
        UserRole.objects.filter(user=user).exists()
        pipeline.insert([role(user, "legal")])  # its PREPARE joins the stream, then its EXECUTE
        assert connection.connection.pgconn.pipeline_status != PipelineStatus.OFF
    assert roles_of(user) == ["legal"]


@pytest.mark.parametrize("streaming", [True, False])
def test_an_executemany_waits_for_the_queue_and_sends_nothing_twice(user, monkeypatch, streaming):
    monkeypatch.setattr(connections[DEFAULT_DB_ALIAS], "stream_writes", streaming)
    with transaction.atomic(), pipeline.deferred_writes(), connection.cursor() as cursor:
        UserRole.objects.filter(user=user).exists()
        pipeline.insert([role(user, "legal")])
        pipeline.insert([role(user, "finance")])  # sent twice, it would break the unique key
        cursor.executemany(
            "UPDATE tenancy_userrole SET role = %s WHERE user_id = %s AND role = %s",
            [("legal-2", user.pk, "legal"), ("finance-2", user.pk, "finance")],
        )
    assert roles_of(user) == ["finance-2", "legal-2"]


def test_a_streamed_write_is_in_the_sql_log(user, caplog):
    with (
        caplog.at_level("DEBUG", logger="django.db.backends"),
        CaptureQueriesContext(connection),
        transaction.atomic(),
        pipeline.deferred_writes(),
    ):
        UserRole.objects.filter(user=user).exists()
        pipeline.insert([role(user, "logged")])
    streamed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("(streamed)")]
    assert len(streamed) == 1
    assert "'logged'" in streamed[0]
