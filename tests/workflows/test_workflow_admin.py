"""Workflow configuration through the Django admin: validated and versioned like the API."""

import pytest
from django.test import Client

from audit.models import AuditLog
from tests.factories import ContractFactory, UserFactory
from workflows.models import WorkflowDefinition

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/workflows/workflowdefinition/add/"


@pytest.fixture
def staff_client(tenant):
    client = Client()
    client.force_login(UserFactory(tenant=tenant, is_tenant_admin=True, is_staff=True))
    return client


def form_data(trigger='{"value__gte": 1000}', stages=None, **fields):
    stages = stages or [
        {"sequence": "1", "stage_name": "Legal", "approvers": "legal", "approval_type": "all"}
    ]
    data = {
        "name": "Admin-made",
        "description": "",
        "priority": "10",
        "is_active": "on",
        "trigger_conditions": trigger,
        "stages-TOTAL_FORMS": str(len(stages)),
        "stages-INITIAL_FORMS": "0",
        "stages-MIN_NUM_FORMS": "1",
        "stages-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for index, stage in enumerate(stages):
        defaults = {"min_approvals": "", "sla_hours": "", "is_required": "on"}
        for key, value in {**defaults, **stage}.items():
            data[f"stages-{index}-{key}"] = value
    return data


def test_add_definition_with_stages_goes_through_the_service(staff_client, tenant):
    response = staff_client.post(ADD_URL, form_data())

    assert response.status_code == 302, response.content[:2000]
    definition = WorkflowDefinition.objects.get(name="Admin-made")
    assert definition.tenant == tenant
    assert definition.versions.count() == 1
    assert [stage.stage_name for stage in definition.stages.all()] == ["Legal"]
    assert AuditLog.objects.filter(action="workflow_definition_created").count() == 1


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ('{"created_by__password__startswith": "pbkdf2"}', "created_by__password__startswith"),
        ('{"_connector": "OR"}', "_connector"),
        ('{"value__regex": ".*"}', "value__regex"),
        ("[1, 2]", "object"),
    ],
)
def test_bad_rule_is_a_form_error_not_a_500(staff_client, trigger, message):
    response = staff_client.post(ADD_URL, form_data(trigger=trigger))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not WorkflowDefinition.objects.exists()


def test_bad_stages_are_a_form_error(staff_client):
    stages = [
        {
            "sequence": "1",
            "stage_name": "Q",
            "approvers": "legal,finance",
            "approval_type": "quorum",
            "min_approvals": "5",
        },
    ]
    response = staff_client.post(ADD_URL, form_data(stages=stages))

    assert response.status_code == 200
    assert "min_approvals" in response.content.decode()
    assert not WorkflowDefinition.objects.exists()


def test_edit_bumps_version_and_dry_run_lists_matching_contracts(staff_client, tenant):
    staff_client.post(ADD_URL, form_data())
    definition = WorkflowDefinition.objects.get()
    ContractFactory(
        tenant=tenant, created_by=UserFactory(tenant=tenant), title="Big deal", value=5000
    )
    ContractFactory(
        tenant=tenant, created_by=UserFactory(tenant=tenant), title="Small deal", value=10
    )
    change_url = f"/admin/workflows/workflowdefinition/{definition.pk}/change/"

    page = staff_client.get(change_url).content.decode()
    assert "Big deal" in page
    assert "Small deal" not in page

    stage = definition.stages.get()
    data = form_data(
        trigger='{"value__gte": 1}',
        stages=[
            {
                "id": str(stage.pk),
                "definition": str(definition.pk),
                "sequence": "1",
                "stage_name": "Legal",
                "approvers": "legal,finance",
                "approval_type": "any",
            }
        ],
    )
    data["stages-INITIAL_FORMS"] = "1"
    response = staff_client.post(change_url, data)

    assert response.status_code == 302, response.content[:3000]
    definition.refresh_from_db()
    assert definition.version == 2
    assert definition.stages.get().approvers == ["legal", "finance"]


def test_staff_of_another_tenant_cannot_open_the_definition(staff_client, other_tenant):
    other_admin = Client()
    other_admin.force_login(UserFactory(tenant=other_tenant, is_tenant_admin=True, is_staff=True))
    staff_client.post(ADD_URL, form_data())
    definition = WorkflowDefinition.objects.get()

    response = other_admin.get(f"/admin/workflows/workflowdefinition/{definition.pk}/change/")

    assert response.status_code in (302, 404)
    assert "Admin-made" not in response.content.decode()
