"""The workflow status read (``approvals.selectors.workflow_instance_latest``): its own SQL must
load what the ORM loads, in the order the status document shows, with nothing left to query."""

import pytest

from approvals.models import WorkflowInstance, WorkflowStage, WorkflowStageApproval
from approvals.orchestrator import approval_act, workflow_cancel, workflow_start
from approvals.selectors import workflow_instance_latest
from tests.fixtures import define, holder, stage, start

pytestmark = pytest.mark.django_db


def as_the_orm_reads_it(instance_id) -> list:
    return [
        (
            stage,
            list(WorkflowStageApproval.objects.filter(stage=stage).order_by("created_at", "id")),
        )
        for stage in WorkflowStage.objects.filter(instance_id=instance_id).order_by(
            "sequence", "stage_name", "id"
        )
    ]


def fields_of(obj) -> dict:
    return {field.attname: getattr(obj, field.attname) for field in obj._meta.concrete_fields}


STAGES = [stage("Review", ["legal", "finance"]), stage("Sign-off", ["ceo"], sequence=2)]


def test_the_read_is_what_the_orm_loads_with_no_query_left(tenant, django_assert_num_queries):
    define(tenant, STAGES)
    legal = holder(tenant, "legal")
    holder(tenant, "finance")
    contract = start(tenant)
    approval_act(tenant=tenant, contract_id=contract.pk, actor=legal, action="approve")

    with django_assert_num_queries(2):
        instance = workflow_instance_latest(tenant=tenant, contract_id=contract.pk)
    with django_assert_num_queries(0):
        loaded = [(stage, list(stage.approvals.all())) for stage in instance.stages.all()]
        name = instance.definition_version.snapshot["name"]
    expected = as_the_orm_reads_it(instance.pk)
    assert [(fields_of(s), [fields_of(a) for a in rows]) for s, rows in loaded] == [
        (fields_of(s), [fields_of(a) for a in rows]) for s, rows in expected
    ]
    assert [len(rows) for _, rows in loaded] == [2, 0]  # the waiting stage has none yet
    assert fields_of(instance) == fields_of(WorkflowInstance.objects.get(pk=instance.pk))
    assert name == instance.definition_version.snapshot["name"]
    assert all(row.stage is stage for stage, rows in loaded for row in rows)


def test_the_latest_instance_is_read_and_another_tenants_contract_is_none(tenant, other_tenant):
    define(tenant, STAGES)
    holder(tenant, "legal")
    creator = holder(tenant, "requester")
    contract = start(tenant, creator=creator)
    first = workflow_instance_latest(tenant=tenant, contract_id=contract.pk)
    workflow_cancel(tenant=tenant, contract_id=contract.pk, actor=creator, reason="redo")
    contract.refresh_from_db()
    second = workflow_start(contract=contract, started_by=creator)
    assert workflow_instance_latest(tenant=tenant, contract_id=contract.pk).pk == second.pk
    assert first.pk != second.pk
    assert workflow_instance_latest(tenant=other_tenant, contract_id=contract.pk) is None
