"""Workflow configuration through the Django admin: validated and versioned like the API."""

import json

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.test import Client

from audit.models import AuditLog
from contracts.models import BUSINESS_FIELDS
from tests.factories import ContractFactory, UserFactory
from tests.fixtures import log_in
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
        "distinct_approvers": "on",  # the add form's checkbox starts checked (the model default)
        "trigger_conditions": trigger,
        "stages-TOTAL_FORMS": str(len(stages)),
        "stages-INITIAL_FORMS": "0",
        "stages-MIN_NUM_FORMS": "1",
        "stages-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for index, stage in enumerate(stages):
        defaults = {
            "min_approvals": "",
            "sla_hours": "",
            "is_required": "on",
            "reset_on_change": "any",
        }
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


def test_a_role_outside_the_catalog_is_a_form_error(staff_client):
    stages = [
        {"sequence": "1", "stage_name": "Legal", "approvers": "legall", "approval_type": "all"}
    ]
    response = staff_client.post(ADD_URL, form_data(stages=stages))

    assert response.status_code == 200
    page = response.content.decode()
    assert "is not a role of this tenant&#x27;s catalog" in page
    assert "Did you mean &#x27;legal&#x27;?" in page
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
    log_in(other_admin, UserFactory(tenant=other_tenant, is_tenant_admin=True, is_staff=True))
    staff_client.post(ADD_URL, form_data())
    definition = WorkflowDefinition.objects.get()

    response = other_admin.get(f"/admin/workflows/workflowdefinition/{definition.pk}/change/")

    assert response.status_code in (302, 404)
    assert "Admin-made" not in response.content.decode()


# --- distinct approvers and reset-on-change policies ----------------------------------------


def change_url(definition) -> str:
    return f"/admin/workflows/workflowdefinition/{definition.pk}/change/"


def edit_data(definition, stages=None, **fields) -> dict:
    """The change form as a browser submits it, from the definition's current state."""
    stages = stages or [
        {
            "id": str(stage.pk),
            "definition": str(definition.pk),
            "sequence": str(stage.sequence),
            "stage_name": stage.stage_name,
            "approvers": ",".join(stage.approvers),
            "approval_type": stage.approval_type,
            "reset_on_change": stage.reset_on_change
            if isinstance(stage.reset_on_change, str)
            else ", ".join(stage.reset_on_change),
        }
        for stage in definition.stages.all()
    ]
    trigger = json.dumps(definition.trigger_conditions)
    data = form_data(trigger=trigger, stages=stages, name=definition.name, **fields)
    if not definition.distinct_approvers:
        data.pop("distinct_approvers")
    data["stages-INITIAL_FORMS"] = str(definition.stages.count())
    return data


TWO_STAGES = [
    {"sequence": "1", "stage_name": "Legal", "approvers": "legal", "approval_type": "all"},
    {
        "sequence": "2",
        "stage_name": "Finance",
        "approvers": "finance",
        "approval_type": "any",
        "reset_on_change": " text,  value ,value",
    },
]


def test_add_with_distinct_approvers_off_and_a_field_list_policy(staff_client):
    data = form_data(stages=TWO_STAGES)
    del data["distinct_approvers"]  # an unchecked checkbox is not submitted

    response = staff_client.post(ADD_URL, data)

    assert response.status_code == 302, response.content[:3000]
    definition = WorkflowDefinition.objects.get()
    assert definition.distinct_approvers is False
    policies = {stage.stage_name: stage.reset_on_change for stage in definition.stages.all()}
    assert policies == {"Legal": "any", "Finance": ["value", "text"]}  # BUSINESS_FIELDS order
    snapshot = definition.versions.get().snapshot
    assert snapshot["distinct_approvers"] is False
    assert [stage["reset_on_change"] for stage in snapshot["stages"]] == ["any", ["value", "text"]]
    audit = AuditLog.objects.get(action="workflow_definition_created")
    assert audit.changes["distinct_approvers"] == [None, False]


def test_change_page_shows_the_policies_as_typed_and_an_edit_keeps_them(staff_client):
    staff_client.post(ADD_URL, form_data(stages=TWO_STAGES))
    definition = WorkflowDefinition.objects.get()

    page = staff_client.get(change_url(definition))
    finance = page.context["inline_admin_formsets"][0].formset.forms[1]
    assert finance["reset_on_change"].value() == "value, text"
    content = page.content.decode()
    assert 'value="value, text"' in content
    # The help lists the fields, visibly under the inline too (a header tooltip is no help on
    # a touch screen).
    help_text = finance.fields["reset_on_change"].help_text
    assert all(field in help_text for field in BUSINESS_FIELDS)
    assert help_text in content.split('class="help stage-reset-help"')[1]

    # Only the priority changes: the list policy survives (it is not reset to "any").
    response = staff_client.post(change_url(definition), edit_data(definition, priority="11"))

    assert response.status_code == 302, response.content[:3000]
    definition.refresh_from_db()
    assert (definition.version, definition.priority) == (2, 11)
    assert definition.stages.get(stage_name="Finance").reset_on_change == ["value", "text"]
    snapshot = definition.versions.get(version=2).snapshot
    assert [stage["reset_on_change"] for stage in snapshot["stages"]] == ["any", ["value", "text"]]
    audit = AuditLog.objects.get(action="workflow_definition_updated")
    assert set(audit.changes) == {"priority", "version"}


def test_unchanged_form_is_no_new_version(staff_client):
    staff_client.post(ADD_URL, form_data(stages=TWO_STAGES))
    definition = WorkflowDefinition.objects.get()

    response = staff_client.post(change_url(definition), edit_data(definition))

    assert response.status_code == 302, response.content[:3000]
    definition.refresh_from_db()
    assert definition.version == 1
    assert not AuditLog.objects.filter(action="workflow_definition_updated").exists()


def test_edit_turns_distinct_approvers_off_and_sets_never(staff_client):
    staff_client.post(ADD_URL, form_data(stages=TWO_STAGES))
    definition = WorkflowDefinition.objects.get()
    data = edit_data(definition)
    del data["distinct_approvers"]
    data["stages-0-reset_on_change"] = "never"

    response = staff_client.post(change_url(definition), data)

    assert response.status_code == 302, response.content[:3000]
    definition.refresh_from_db()
    assert (definition.version, definition.distinct_approvers) == (2, False)
    assert definition.stages.get(stage_name="Legal").reset_on_change == "never"
    snapshot = definition.versions.get(version=2).snapshot
    assert snapshot["distinct_approvers"] is False
    assert [stage["reset_on_change"] for stage in snapshot["stages"]] == [
        "never",
        ["value", "text"],
    ]
    audit = AuditLog.objects.get(action="workflow_definition_updated")
    assert audit.actor_id is not None
    assert audit.changes["distinct_approvers"] == [True, False]
    assert audit.changes["version"] == [1, 2]
    before, after = audit.changes["stages"]
    assert (before[0]["reset_on_change"], after[0]["reset_on_change"]) == ("any", "never")


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("sometimes", "&#x27;sometimes&#x27; is not a business field; use: title, contract_type"),
        ("value, bogus", "&#x27;bogus&#x27; is not a business field; use: title, contract_type"),
        ("", "&quot;any&quot;, &quot;never&quot; or a non-empty list of business field names."),
        (" , ", "&quot;any&quot;, &quot;never&quot; or a non-empty list of business field names."),
        ("ANY", "&#x27;ANY&#x27; is not a business field"),  # as strict as the API
    ],
)
def test_bad_policy_is_an_error_on_that_stage_field(staff_client, policy, message):
    stages = [dict(stage) for stage in TWO_STAGES]
    stages[1]["reset_on_change"] = policy

    response = staff_client.post(ADD_URL, form_data(stages=stages))

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert not formset.non_form_errors()
    assert not formset.forms[0].errors
    assert list(formset.forms[1].errors) == ["reset_on_change"]
    assert message in response.content.decode()
    assert not WorkflowDefinition.objects.exists()


def test_bad_policy_on_edit_changes_nothing(staff_client):
    staff_client.post(ADD_URL, form_data(stages=TWO_STAGES))
    definition = WorkflowDefinition.objects.get()
    data = edit_data(definition)
    data["stages-1-reset_on_change"] = "value, bogus"

    response = staff_client.post(change_url(definition), data)

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.forms[1].errors["reset_on_change"] == [
        f"'bogus' is not a business field; use: {', '.join(BUSINESS_FIELDS)}."
    ]
    assert 'value="value, bogus"' in response.content.decode()  # shown back as typed
    definition.refresh_from_db()
    assert definition.version == 1
    assert definition.stages.get(stage_name="Finance").reset_on_change == ["value", "text"]


def test_errors_of_other_stage_fields_land_on_their_row(staff_client):
    stages = [dict(stage) for stage in TWO_STAGES]
    stages[1]["stage_name"] = "legal"  # a duplicate name, case-insensitively

    response = staff_client.post(ADD_URL, form_data(stages=stages))

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.forms[1].errors["stage_name"] == ["Duplicate stage name 'legal'."]
    assert not WorkflowDefinition.objects.exists()


def test_a_stage_edit_is_told_in_history(staff_client):
    staff_client.post(ADD_URL, form_data(stages=TWO_STAGES))
    definition = WorkflowDefinition.objects.get()
    data = edit_data(definition)
    data["stages-1-sla_hours"] = "36"
    data["stages-1-approvers"] = "finance,cfo"

    assert staff_client.post(change_url(definition), data).status_code == 302

    entry = LogEntry.objects.get(action_flag=CHANGE)
    assert entry.get_change_message() == (
        "Changed Approvers and Sla hours for workflow stage definition “2. Finance”."
    )
    history = staff_client.get(f"{change_url(definition).removesuffix('change/')}history/")
    assert "Changed Approvers and Sla hours" in history.content.decode()


def test_dry_run_tries_the_rule_as_typed_and_saves_nothing(staff_client, tenant):
    staff_client.post(ADD_URL, form_data(trigger='{"value__gte": 1000}'))
    definition = WorkflowDefinition.objects.get()
    creator = UserFactory(tenant=tenant)
    ContractFactory(tenant=tenant, created_by=creator, title="Big deal", value=5000)
    ContractFactory(tenant=tenant, created_by=creator, title="Small deal", value=10)
    data = edit_data(definition, trigger_conditions='{"value__lt": 100}', _dry_run="1")

    response = staff_client.post(change_url(definition), data)

    assert response.status_code == 200
    dry_run = response.context["adminform"].form.instance.dry_run_rule
    assert dry_run == {"value__lt": 100}
    page = response.content.decode()
    assert "The rule as typed, not saved" in page
    assert "Small deal" in page
    assert "Big deal" not in page
    assert "Please correct" not in page
    assert "{&quot;value__lt&quot;: 100}" in page  # the form keeps what was typed
    definition.refresh_from_db()
    assert definition.trigger_conditions == {"value__gte": 1000}
    assert definition.version == 1


def test_dry_run_on_the_add_page_and_of_a_bad_rule(staff_client, tenant):
    ContractFactory(tenant=tenant, created_by=UserFactory(tenant=tenant), title="NDA one")

    tried = staff_client.post(ADD_URL, {**form_data(trigger="{}"), "_dry_run": "1"})
    bad = staff_client.post(ADD_URL, {**form_data(trigger='{"value__regex": 1}'), "_dry_run": "1"})

    assert "NDA one" in tried.content.decode()
    assert "Correct the rule above to run it." in bad.content.decode()
    assert "value__regex" in bad.content.decode()
    assert not WorkflowDefinition.objects.exists()
