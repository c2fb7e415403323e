"""Where approvals go: the role catalog, managers, the tenant-admin fallback and reassignment."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import WorkflowStageApproval
from audit.models import AuditLog
from core import rls
from notifications.models import Notification
from tenancy.models import Role, User
from tenancy.out_of_office import out_of_office_set
from tenancy.services import user_set_manager
from tests.factories import UserFactory, UserRoleFactory
from tests.support import run_together

pytestmark = pytest.mark.django_db

ROLES = "/api/admin/roles/"


def define(client, approvers, kind="ROUTE", **stage):
    body = {
        "name": f"Route {kind}",
        "trigger_conditions": {"contract_type": kind},
        "stages": [{"stage_name": "Review", "sequence": 1, "approvers": approvers, **stage}],
    }
    return client.post("/api/workflows/config/", body, format="json")


def start(client, kind="ROUTE") -> str:
    response = client.post(
        "/api/contracts/", {"title": "Lease", "contract_type": kind}, format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def only_row(contract_id) -> WorkflowStageApproval:
    (row,) = WorkflowStageApproval.objects.filter(contract_id=contract_id)
    return row


def set_manager(client, user, manager):
    return client.patch(
        f"/api/admin/users/{user.pk}/",
        {"manager": str(manager.pk) if manager else None},
        format="json",
    )


# --- the role catalog ------------------------------------------------------------------------


def test_a_typo_in_a_role_is_refused_naming_the_entry(admin_client):
    response = define(admin_client, ["legall"])
    assert response.status_code == 400
    (message,) = response.json()["fields"]["stages[0].approvers"]
    assert "'legall'" in message
    assert "Did you mean 'legal'?" in message
    assert define(admin_client, ["legal", "manager"]).status_code == 201


def test_the_catalog_crud(admin_client, client, tenant, role_holder):
    role_holder("legal")
    listing = client.get(ROLES).json()["results"]  # any member reads
    legal = next(row for row in listing if row["slug"] == "legal")
    assert legal["holders"] == 1
    body = {"slug": "Procurement", "name": "Procurement", "description": "Buys things"}
    assert client.post(ROLES, body, format="json").status_code == 403
    response = admin_client.post(ROLES, body, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert (created["slug"], created["holders"]) == ("procurement", 0)
    assert admin_client.post(ROLES, body, format="json").status_code == 400  # taken
    reserved = admin_client.post(ROLES, {"slug": "manager"}, format="json")
    assert reserved.status_code == 400
    assert define(admin_client, ["procurement"]).status_code == 201
    response = admin_client.patch(f"{ROLES}{created['id']}/", {"name": "Buying"}, format="json")
    assert response.json()["name"] == "Buying"
    # In use by a stage, or assigned: 409. Unused: deleted.
    assert admin_client.delete(f"{ROLES}{created['id']}/").json()["code"] == "role_in_use"
    assert admin_client.delete(f"{ROLES}{legal['id']}/").status_code == 409
    unused = Role.objects.get(tenant=tenant, slug="privacy")
    assert admin_client.delete(f"{ROLES}{unused.pk}/").status_code == 204
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"role_created", "role_updated", "role_deleted"} <= actions


def test_assigning_a_new_slug_adds_it_to_the_catalog(admin_client, user, tenant):
    response = admin_client.post(
        "/api/admin/users/roles/", {"user": str(user.pk), "role": "treasury"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert Role.objects.get(tenant=tenant, slug="treasury").name == "treasury"
    assert define(admin_client, ["treasury"]).status_code == 201


def test_the_catalog_has_a_quota(admin_client, settings, tenant):
    settings.QUOTA_ROLES = Role.objects.filter(tenant=tenant).count()
    response = admin_client.post(ROLES, {"slug": "one-more"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "quota_exceeded"


def test_another_tenants_role_is_not_found(api_client_for, other_tenant, admin_client):
    with rls.tenant_scope(other_tenant):
        theirs = Role.objects.filter(tenant=other_tenant).first()
    assert admin_client.get(f"{ROLES}{theirs.pk}/").status_code == 404
    assert admin_client.delete(f"{ROLES}{theirs.pk}/").status_code == 404


# --- nobody eligible: a tenant admin ---------------------------------------------------------


def test_a_role_nobody_holds_goes_to_a_tenant_admin(admin_client, tenant_admin, tenant, client):
    second_admin = UserFactory(tenant=tenant, is_tenant_admin=True)
    assert define(admin_client, ["risk"]).status_code == 201
    contract_id = start(client)
    row = only_row(contract_id)
    assert row.assigned_to_id == tenant_admin.pk  # the longest-standing admin
    (audit,) = AuditLog.objects.filter(action="approver_unresolved")
    assert audit.changes["approver"] == [None, "risk"]
    told = set(
        Notification.objects.filter(notification_type="approver_unresolved").values_list(
            "recipient_id", flat=True
        )
    )
    assert told == {tenant_admin.pk, second_admin.pk}
    response = admin_client.post(
        f"/api/contracts/{contract_id}/approve/", {"action": "approve"}, format="json"
    )
    assert response.json()["status"] == "completed"


def test_a_stage_a_decision_opens_goes_by_who_holds_its_roles_then(
    admin_client, tenant_admin, tenant, api_client_for
):
    """The roles of a stage a decision opens are read with that decision's stages: a role only
    the contract's creator holds goes to a tenant admin (audited), and a role granted after the
    contract started is a role row like any other."""
    requester, legal, finance = (UserFactory(tenant=tenant) for _ in range(3))
    UserRoleFactory(user=legal, role="legal")
    UserRoleFactory(user=requester, role="risk")  # nobody else holds it
    body = {
        "name": "Two stages",
        "trigger_conditions": {"contract_type": "TWO"},
        "stages": [
            {"stage_name": "Legal", "sequence": 1, "approvers": ["legal"]},
            {"stage_name": "Risk", "sequence": 2, "approvers": ["risk", "finance"]},
        ],
    }
    assert admin_client.post("/api/workflows/config/", body, format="json").status_code == 201
    contract_id = start(api_client_for(requester), kind="TWO")
    UserRoleFactory(user=finance, role="finance")  # after the start, before stage 2 opens
    response = api_client_for(legal).post(
        f"/api/contracts/{contract_id}/approve/", {"action": "approve"}, format="json"
    )
    assert response.json()["current_stage"] == 2
    opened = {
        row.approver: (row.role, row.assigned_to_id)
        for row in WorkflowStageApproval.objects.filter(contract_id=contract_id, stage__sequence=2)
    }
    assert opened == {"risk": ("risk", tenant_admin.pk), "finance": ("finance", None)}
    (audit,) = AuditLog.objects.filter(action="approver_unresolved")
    assert audit.changes["approver"] == [None, "risk"]


def test_the_first_stage_goes_by_who_but_the_creator_holds_its_roles_at_the_start(
    admin_client, tenant_admin, tenant, api_client_for
):
    """The roles of the stage a new contract opens are read with the definition's version: a
    role only the creator holds goes to a tenant admin (audited), one someone else holds too is
    a role row, and a later stage's role held only by the creator changes nothing yet."""
    requester, legal = UserFactory(tenant=tenant), UserFactory(tenant=tenant)
    for role in ("legal", "risk", "finance"):
        UserRoleFactory(user=requester, role=role)
    UserRoleFactory(user=legal, role="legal")
    body = {
        "name": "Start",
        "trigger_conditions": {"contract_type": "START"},
        "stages": [
            {"stage_name": "Review", "sequence": 1, "approvers": ["legal", "risk"]},
            {"stage_name": "Money", "sequence": 2, "approvers": ["finance"]},
        ],
    }
    assert admin_client.post("/api/workflows/config/", body, format="json").status_code == 201
    contract_id = start(api_client_for(requester), kind="START")
    opened = {
        row.approver: (row.role, row.assigned_to_id)
        for row in WorkflowStageApproval.objects.filter(contract_id=contract_id)
    }
    assert opened == {"legal": ("legal", None), "risk": ("risk", tenant_admin.pk)}
    (audit,) = AuditLog.objects.filter(action="approver_unresolved")
    assert audit.changes["approver"] == [None, "risk"]


# --- managers --------------------------------------------------------------------------------


def test_manager_rules(admin_client, client, tenant, other_tenant):
    a, b, c = (UserFactory(tenant=tenant) for _ in range(3))
    assert set_manager(client, a, b).status_code == 403
    assert set_manager(admin_client, a, b).json()["manager"] == str(b.pk)
    assert set_manager(admin_client, b, c).status_code == 200
    response = set_manager(admin_client, c, a)  # c -> a -> b -> c
    assert response.status_code == 400
    assert "cycle" in response.json()["fields"]["manager"][0]
    assert set_manager(admin_client, a, a).status_code == 400
    assert set_manager(admin_client, a, UserFactory(tenant=other_tenant)).status_code == 400
    assert set_manager(admin_client, a, None).json()["manager"] is None
    assert AuditLog.objects.filter(action="user_updated").count() == 3


def test_the_manager_entry_resolves_when_the_stage_opens(
    admin_client, api_client_for, tenant, tenant_admin
):
    requester, boss = UserFactory(tenant=tenant), UserFactory(tenant=tenant)
    assert define(admin_client, ["manager"]).status_code == 201
    assert set_manager(admin_client, requester, boss).status_code == 200
    row = only_row(start(api_client_for(requester)))
    assert (row.approver, row.role, row.assigned_to_id) == ("manager", "", boss.pk)
    status = api_client_for(boss).get(f"/api/contracts/{row.contract_id}/workflow/status/")
    assert status.json()["stages"][0]["approvals"][0]["assigned_to"] == str(boss.pk)
    assert not AuditLog.objects.filter(action="approver_unresolved").exists()

    # No manager: the tenant admins, audited.
    assert set_manager(admin_client, requester, None).status_code == 200
    row = only_row(start(api_client_for(requester)))
    assert row.assigned_to_id == tenant_admin.pk
    assert AuditLog.objects.filter(action="approver_unresolved").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_manager_changes_cannot_close_a_cycle(tenant):
    admin = UserFactory(tenant=tenant, is_tenant_admin=True)
    a, b = UserFactory(tenant=tenant), UserFactory(tenant=tenant)

    def make(user, manager):
        return lambda: user_set_manager(
            user=User.objects.get(pk=user.pk), manager_id=manager.pk, updated_by=admin
        )

    results = run_together(make(a, b), make(b, a))
    assert sorted(kind for kind, _ in results) == ["error", "ok"]
    managers = dict(User.objects.filter(pk__in=[a.pk, b.pk]).values_list("pk", "manager_id"))
    assert sum(value is not None for value in managers.values()) == 1


# --- reassignment ----------------------------------------------------------------------------


def test_reassign_a_pending_approval(
    admin_client, api_client_for, tenant, role_holder, other_tenant
):
    holder = role_holder("legal")
    requester = UserFactory(tenant=tenant)
    target = UserFactory(tenant=tenant)
    assert define(admin_client, ["legal"]).status_code == 201
    row = only_row(start(api_client_for(requester)))
    url = f"/api/approvals/{row.pk}/reassign/"
    body = {"assign_to": str(target.pk), "reason": "Legal is swamped"}
    assert api_client_for(holder).post(url, body, format="json").status_code == 403
    for refused in (requester, UserFactory(tenant=other_tenant)):
        response = admin_client.post(url, {**body, "assign_to": str(refused.pk)}, format="json")
        assert response.status_code == 400, response.json()
    assert admin_client.post(url, {"assign_to": str(target.pk)}, format="json").status_code == 400
    response = admin_client.post(url, body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["assigned_to"] == str(target.pk)
    (audit,) = AuditLog.objects.filter(action="approval_reassigned")
    assert audit.changes["reason"] == [None, "Legal is swamped"]
    assert Notification.objects.filter(
        recipient=target, notification_type="approval_assigned"
    ).exists()
    # The role's holder no longer may; the new assignee decides.
    approve = {"action": "approve"}
    contract_url = f"/api/contracts/{row.contract_id}/approve/"
    assert api_client_for(holder).post(contract_url, approve, format="json").status_code == 403
    assert api_client_for(target).post(contract_url, approve, format="json").status_code == 200
    assert admin_client.post(url, body, format="json").status_code == 409  # no longer pending
    other_admin = api_client_for(UserFactory(tenant=other_tenant, is_tenant_admin=True))
    assert other_admin.post(url, body, format="json").status_code == 404


def test_reassigning_to_someone_away_reaches_their_cover(
    admin_client, api_client_for, tenant, role_holder
):
    away, cover = UserFactory(tenant=tenant), UserFactory(tenant=tenant)
    role_holder("legal")
    now = timezone.now()
    out_of_office_set(
        user=away,
        cover_id=cover.pk,
        starts_at=now,
        ends_at=now + timedelta(days=1),
        set_by=away,
    )
    assert define(admin_client, ["legal"]).status_code == 201
    row = only_row(start(api_client_for(UserFactory(tenant=tenant))))
    response = admin_client.post(
        f"/api/approvals/{row.pk}/reassign/",
        {"assign_to": str(away.pk), "reason": "Their area"},
        format="json",
    )
    assert (response.json()["assigned_to"], response.json()["on_behalf_of"]) == (
        str(cover.pk),
        str(away.pk),
    )


def test_the_catalog_list_costs_the_same_for_1_and_50_roles(
    admin_client, tenant, django_assert_num_queries
):
    def add(count):
        start = Role.objects.filter(tenant=tenant).count()
        for index in range(start, start + count):
            role = Role.objects.create(tenant=tenant, slug=f"team-{index}", name=f"Team {index}")
            UserRoleFactory(user=UserFactory(tenant=tenant), role=role.slug)

    for count in (1, 50):
        add(count)
        # user, COUNT, page (each role's holders counted in a sub-select)
        with django_assert_num_queries(3):
            response = admin_client.get(ROLES)
        assert response.status_code == 200
        assert all(
            row["holders"] == 1
            for row in response.json()["results"]
            if row["slug"].startswith("team-")
        )
