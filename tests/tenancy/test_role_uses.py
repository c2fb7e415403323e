"""The role catalog refuses to delete a slug in use, asking the uses apps above register."""

import pytest

from config.exceptions import Conflict
from tenancy import roles
from tenancy.models import Role
from workflows.services import definition_create

pytestmark = pytest.mark.django_db


def catalog_role(tenant, admin, slug="procurement") -> Role:
    return roles.role_create(
        tenant=tenant, slug=slug, name=slug.title(), description="", created_by=admin
    )


def test_a_role_a_stage_names_is_not_deleted_until_no_stage_names_it(tenant, tenant_admin):
    role = catalog_role(tenant, tenant_admin)
    definition = definition_create(
        tenant=tenant,
        created_by=tenant_admin,
        name="Purchases",
        stages=[{"stage_name": "Buy", "sequence": 1, "approvers": ["procurement"]}],
    )
    with pytest.raises(Conflict) as refused:
        roles.role_delete(role=role, deleted_by=tenant_admin)
    assert refused.value.get_codes() == "role_in_use"
    assert "stage names the role 'procurement'" in str(refused.value.detail)
    definition.delete()
    roles.role_delete(role=role, deleted_by=tenant_admin)
    assert not Role.objects.filter(pk=role.pk).exists()


def test_every_registered_use_is_asked_with_the_tenant_and_slug(monkeypatch, tenant, tenant_admin):
    monkeypatch.setattr(roles, "_role_uses", {})
    asked = []

    def named_by_a_policy(*, tenant_id, slug):
        asked.append((tenant_id, slug))
        return f"A policy names '{slug}'."

    roles.role_use_register(named_by_a_policy)
    role = catalog_role(tenant, tenant_admin)
    with pytest.raises(Conflict, match="A policy names 'procurement'"):
        roles.role_delete(role=role, deleted_by=tenant_admin)
    assert asked == [(tenant.pk, "procurement")]
    assert Role.objects.filter(pk=role.pk).exists()
