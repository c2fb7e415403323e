"""The orchestrator's cached SLA policy follows every configuration change at once."""

import pytest

from approvals import lifecycle as contract_services
from approvals import services as sla_services
from approvals.models import WorkflowStage
from tests.factories import UserFactory
from workflows.services import definition_create

pytestmark = pytest.mark.django_db


def _start(tenant, requester):
    contract = contract_services.contract_create(
        tenant=tenant, created_by=requester, title="Deal", contract_type="MSA"
    )
    return WorkflowStage.objects.get(instance__contract=contract)


def test_a_new_rule_applies_to_the_next_stage_despite_the_cache(tenant, tenant_admin):
    definition_create(
        tenant=tenant,
        created_by=tenant_admin,
        name="No stage SLA",
        stages=[{"stage_name": "Legal", "sequence": 1, "approvers": ["legal"]}],
    )
    requester = UserFactory(tenant=tenant)
    before = _start(tenant, requester)
    version = tenant.sla_config_version

    sla_services.sla_rule_create(
        tenant=tenant, created_by=tenant_admin, stage_name="Legal", sla_hours=5
    )
    after = _start(tenant, requester)

    assert tenant.sla_config_version == version + 1
    assert after.sla_rule_id is not None
    assert before.sla_rule_id is None
    assert (after.due_at - after.started_at).total_seconds() == 5 * 3600
