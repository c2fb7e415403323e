"""Tenant isolation across every endpoint: another tenant's object is a 404 and never changes.

The tables (OBJECT_ENDPOINTS and LIST_ENDPOINTS in ``tests/fixtures.py``, shared with the
row-level security tests; LIST_FILTERS below) are the single place to register endpoints. A new
endpoint over a tenant-owned object adds one line to OBJECT_ENDPOINTS (and, for a list, to
LIST_ENDPOINTS / LIST_FILTERS):

    ObjectEndpoint("POST", "/api/contracts/{id}/workflow/cancel/", make_active_workflow_contract),
    ObjectEndpoint("GET", "/api/workflows/config/{id}/", make_workflow_definition),
    ObjectEndpoint("POST", "/api/notifications/{id}/read/", make_notification),

A maker takes a tenant and returns a saved object of that tenant whose primary key goes in `{id}`
(and whose row is snapshotted). Each line is exercised twice: by tenant A's admin on tenant B's
object (must be a JSON 404 and leave the row untouched) and on A's own object (must succeed), so a
line with a broken URL or body fails instead of passing vacuously.
"""

import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.checks import Error
from django.db.models import Model
from django.test import override_settings
from django.urls import include, path
from rest_framework import serializers, viewsets
from rest_framework.routers import SimpleRouter

from approvals.models import WorkflowInstance
from contracts.models import Contract
from core import rls
from tenancy.checks import check_viewsets_are_tenant_scoped
from tenancy.models import Tenant
from tenancy.scoping import TenantScopedViewSetMixin
from tests.factories import (
    TenantFactory,
    UserFactory,
    UserRoleFactory,
)
from tests.fixtures import (
    APPROVER_ROLE,
    LIST_ENDPOINTS,
    OBJECT_ENDPOINTS,
    WORKFLOW_CONTRACT_TYPE,
    ListEndpoint,
    acting_for_its_tenant,
    call,
    listed_ids,
    make_contract,
    make_contract_in_review,
    make_isolation_definition,
    make_pending_approval,
    make_role,
    make_sla_breach,
    make_startable_contract,
    make_user,
    tenant_state,
    without_request_id,
)

pytestmark = pytest.mark.django_db


# --- the list filters (the makers and the endpoint tables are in tests/fixtures.py) ----------


@dataclass(frozen=True)
class ListFilter:
    """A list filter taking an id: another tenant's id must behave exactly like an unknown one."""

    url: str
    param: str
    # Given a tenant, makes a row listed at `url` and returns the id value that selects it.
    make_row_and_value: Callable[[Tenant], str]

    def __str__(self) -> str:
        return f"{self.url}?{self.param}="


LIST_FILTERS = [
    ListFilter("/api/contracts/", "created_by", lambda t: str(make_contract(t).created_by_id)),
    ListFilter("/api/admin/users/roles/", "user", lambda t: str(make_role(t).user_id)),
    ListFilter("/api/approvals/", "contract", lambda t: str(make_pending_approval(t).contract_id)),
    ListFilter(
        "/api/admin/sla-breaches/", "contract", lambda t: str(make_sla_breach(t).contract_id)
    ),
    ListFilter(
        "/api/admin/sla-breaches/", "approval", lambda t: str(make_sla_breach(t).approval_id)
    ),
]


# --- object endpoints ------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", OBJECT_ENDPOINTS, ids=str)
def test_other_tenants_object_is_404_and_untouched(client_a, other_tenant, endpoint):
    theirs = endpoint.make(other_tenant)
    before = tenant_state(other_tenant)

    response = call(client_a, endpoint, theirs.pk)

    assert response.status_code == 404, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"
    assert tenant_state(other_tenant) == before


@pytest.mark.parametrize("endpoint", OBJECT_ENDPOINTS, ids=str)
def test_other_tenants_object_is_indistinguishable_from_a_missing_one(
    client_a, other_tenant, endpoint
):
    theirs = endpoint.make(other_tenant)

    for_theirs = call(client_a, endpoint, theirs.pk)
    for_missing = call(client_a, endpoint, uuid.uuid4())

    assert for_theirs.status_code == for_missing.status_code
    assert without_request_id(for_theirs) == without_request_id(for_missing)


@pytest.mark.parametrize("endpoint", OBJECT_ENDPOINTS, ids=str)
def test_same_request_on_own_object_succeeds(client_a, tenant, endpoint):
    """The control: the table's URL and body are right, so the 404 above is tenancy's doing."""
    ours = endpoint.make(tenant)
    response = call(client_a, endpoint, ours.pk)
    assert response.status_code == endpoint.own_status, response.content


# --- list endpoints and filters --------------------------------------------------------------


@pytest.mark.parametrize("endpoint", LIST_ENDPOINTS, ids=str)
def test_lists_never_include_other_tenants_rows(client_a, tenant, other_tenant, endpoint):
    ours = {str(endpoint.make(tenant).pk) for _ in range(2)}
    theirs = {str(endpoint.make(other_tenant).pk) for _ in range(3)}

    ids = listed_ids(client_a, endpoint.url)

    assert ours <= ids
    assert not ids & theirs


@pytest.mark.parametrize("endpoint", LIST_ENDPOINTS, ids=str)
def test_lists_of_a_tenant_without_data_leak_nothing(api_client_for, other_tenant, endpoint):
    """A fresh tenant's admin sees only themselves, however much another tenant holds."""
    for _ in range(3):
        endpoint.make(other_tenant)
    lonely_admin = UserFactory(tenant=TenantFactory(), is_tenant_admin=True)
    UserRoleFactory(user=lonely_admin, role=APPROVER_ROLE)

    ids = listed_ids(api_client_for(lonely_admin), endpoint.url)

    with rls.tenant_scope(lonely_admin.tenant):
        assert ids <= {str(lonely_admin.pk), str(lonely_admin.role_assignments.get().pk)}


@pytest.mark.parametrize("list_filter", LIST_FILTERS, ids=str)
def test_filtering_by_other_tenants_id_returns_nothing(client_a, tenant, other_tenant, list_filter):
    own_value = list_filter.make_row_and_value(tenant)
    their_value = list_filter.make_row_and_value(other_tenant)

    assert listed_ids(client_a, list_filter.url, **{list_filter.param: own_value})
    assert listed_ids(client_a, list_filter.url, **{list_filter.param: their_value}) == set()


@pytest.mark.parametrize("list_filter", LIST_FILTERS, ids=str)
def test_filter_answers_other_tenants_id_like_an_unknown_id(client_a, other_tenant, list_filter):
    """Same status and body for another tenant's id and a random one: ids cannot be probed."""
    their_value = list_filter.make_row_and_value(other_tenant)
    unknown_value = str(uuid.uuid4())

    for_theirs = client_a.get(list_filter.url, {list_filter.param: their_value})
    for_unknown = client_a.get(list_filter.url, {list_filter.param: unknown_value})

    assert for_theirs.status_code == for_unknown.status_code == 200
    assert for_theirs.json() == for_unknown.json()


# --- bodies that name another tenant's object -----------------------------------------------


@dataclass(frozen=True)
class ForeignReference:
    """A write on the caller's own data whose body names an object by id (e.g. a user to assign).

    Naming another tenant's object must be answered exactly like naming a non-existent one, and
    change nothing on either side.
    """

    method: str
    url: str  # may hold `{id}`, filled with `make_own(tenant A)`'s primary key
    body: Callable[[str], dict[str, Any]]  # the body, given the id to reference
    make_foreign: Callable[[Tenant], Model]  # the referenced object, made in tenant B
    make_own: Callable[[Tenant], Model] | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.url} {sorted(self.body('x'))}"


FOREIGN_REFERENCES = [
    ForeignReference(
        "POST", "/api/admin/users/roles/", lambda ref: {"user": ref, "role": "legal"}, make_user
    ),
    ForeignReference(
        "POST",
        "/api/contracts/{id}/workflow/start/",
        lambda ref: {"workflow_definition": ref},
        make_isolation_definition,
        make_startable_contract,
    ),
    ForeignReference(
        "POST",
        "/api/contracts/{id}/approve/",
        lambda ref: {"action": "delegate", "delegate_to": ref},
        make_user,
        make_contract_in_review,
    ),
    ForeignReference(
        "POST",
        "/api/contracts/{id}/approve/",
        lambda ref: {"action": "approve", "approval": ref},
        make_pending_approval,
        make_contract_in_review,
    ),
    ForeignReference(
        "POST", "/api/workflows/config/preview-match/", lambda ref: {"contract": ref}, make_contract
    ),
    ForeignReference(
        "POST",
        "/api/workflows/config/",
        lambda ref: {
            "name": "Named approver",
            "stages": [{"stage_name": "S", "sequence": 1, "approvers": [f"user:{ref}"]}],
        },
        make_user,
    ),
    ForeignReference(
        "POST", "/api/contracts/validate-clauses/", lambda ref: {"contract": ref}, make_contract
    ),
]


@pytest.mark.parametrize("reference", FOREIGN_REFERENCES, ids=str)
def test_naming_other_tenants_object_in_a_body_is_like_naming_nothing(
    client_a, tenant, other_tenant, reference
):
    own = reference.make_own(tenant) if reference.make_own else None
    url = reference.url.format(id=own.pk if own else "")
    foreign = reference.make_foreign(other_tenant)
    before = {"a": tenant_state(tenant), "b": tenant_state(other_tenant)}
    method = getattr(client_a, reference.method.lower())

    their_id, unknown_id = str(foreign.pk), str(uuid.uuid4())

    for_theirs = method(url, reference.body(their_id), format="json")
    for_unknown = method(url, reference.body(unknown_id), format="json")

    assert 400 <= for_theirs.status_code < 500, for_theirs.content
    assert for_theirs.status_code == for_unknown.status_code
    # Messages may quote the id sent; apart from that the answers must be the same.
    assert without_request_id(for_theirs).replace(their_id, "<id>") == without_request_id(
        for_unknown
    ).replace(unknown_id, "<id>")
    assert {"a": tenant_state(tenant), "b": tenant_state(other_tenant)} == before


def test_tenant_and_creator_in_body_are_ignored(client_a, tenant, other_tenant):
    stranger = make_user(other_tenant)
    response = client_a.post(
        "/api/contracts/",
        {
            "title": "Mine",
            "contract_type": "NDA",
            "tenant": str(other_tenant.pk),
            "created_by": str(stranger.pk),
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    contract = Contract.objects.get(pk=response.json()["id"])
    assert contract.tenant_id == tenant.pk
    assert contract.created_by_id != stranger.pk
    with rls.bypass("nothing was written in the other tenant"):
        assert not Contract.objects.filter(tenant=other_tenant).exists()


def test_other_tenants_matching_definition_never_starts_on_our_contract(
    client_a, tenant, other_tenant
):
    """The match engine considers only the caller's tenant's definitions."""
    make_isolation_definition(other_tenant)
    response = client_a.post(
        "/api/contracts/",
        {"title": "Would match B's rule", "contract_type": WORKFLOW_CONTRACT_TYPE},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "draft"
    assert response.json()["workflow"] is None
    assert not WorkflowInstance.objects.filter(contract_id=response.json()["id"]).exists()


# --- the system check that keeps new viewsets scoped -----------------------------------------


class _ContractSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contract
        fields = ["id", "title"]


class UnscopedContractViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Contract.objects.all()
    serializer_class = _ContractSerializer


class ScopedContractViewSet(TenantScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Contract.objects.all()
    serializer_class = _ContractSerializer


class TenantViewSet(viewsets.ReadOnlyModelViewSet):
    """Over Tenant itself, which is not tenant-owned: not the check's business."""

    queryset = Tenant.objects.all()


def _urlconf(*viewsets_by_prefix) -> types.ModuleType:
    router = SimpleRouter()
    for prefix, viewset in viewsets_by_prefix:
        router.register(prefix, viewset, basename=prefix)
    module = types.ModuleType("tenant_isolation_test_urls")
    # Nested under include(), as the project's own API routes are.
    module.urlpatterns = [path("api/", include(router.urls))]
    return module


def test_system_check_reports_a_viewset_without_the_mixin():
    urlconf = _urlconf(("unscoped", UnscopedContractViewSet), ("tenants", TenantViewSet))
    with override_settings(ROOT_URLCONF=urlconf):
        errors = check_viewsets_are_tenant_scoped()

    assert len(errors) == 1
    assert isinstance(errors[0], Error)
    assert errors[0].id == "tenancy.E001"
    assert "UnscopedContractViewSet" in errors[0].msg
    assert "contracts.Contract" in errors[0].msg


def test_system_check_accepts_a_scoped_viewset():
    urlconf = _urlconf(("scoped", ScopedContractViewSet), ("tenants", TenantViewSet))
    with override_settings(ROOT_URLCONF=urlconf):
        assert check_viewsets_are_tenant_scoped() == []


def test_project_urlconf_passes_the_system_check():
    assert check_viewsets_are_tenant_scoped() == []


# --- cursor-paginated lists (audit log): no `count`, so every page is walked via `next` -------


@acting_for_its_tenant
def make_audit_row(tenant: Tenant) -> Model:
    """An audit row of `tenant` with an actor of that tenant (so `?actor=` selects it)."""
    from audit.services import audit_record

    return audit_record(
        action="contract_updated",
        tenant=tenant,
        actor=UserFactory(tenant=tenant),
        resource_type="contract",
        resource_id=str(uuid.uuid4()),
        changes={"title": ["Before", "After"]},
    )


CURSOR_LIST_ENDPOINTS = [ListEndpoint("/api/audit-logs/", make_audit_row)]
CURSOR_LIST_FILTERS = [
    ListFilter("/api/audit-logs/", "actor", lambda t: str(make_audit_row(t).actor_id)),
    ListFilter("/api/audit-logs/", "resource_id", lambda t: make_audit_row(t).resource_id),
]


def cursor_listed_ids(client, url: str, **params) -> set[str]:
    ids, response = [], client.get(url, {"page_size": 2, **params})
    while True:
        assert response.status_code == 200, response.content
        ids += [row["id"] for row in response.json()["results"]]
        if response.json()["next"] is None:
            assert len(ids) == len(set(ids))
            return set(ids)
        response = client.get(response.json()["next"])


@pytest.mark.parametrize("endpoint", CURSOR_LIST_ENDPOINTS, ids=str)
def test_cursor_lists_never_include_other_tenants_rows(client_a, tenant, other_tenant, endpoint):
    ours = {str(endpoint.make(tenant).pk) for _ in range(3)}
    theirs = {str(endpoint.make(other_tenant).pk) for _ in range(3)}

    ids = cursor_listed_ids(client_a, endpoint.url)

    assert ours <= ids
    assert not ids & theirs


@pytest.mark.parametrize("list_filter", CURSOR_LIST_FILTERS, ids=str)
def test_cursor_list_filter_by_other_tenants_value_returns_nothing(
    client_a, tenant, other_tenant, list_filter
):
    own_value = list_filter.make_row_and_value(tenant)
    their_value = list_filter.make_row_and_value(other_tenant)

    assert cursor_listed_ids(client_a, list_filter.url, **{list_filter.param: own_value})
    assert cursor_listed_ids(client_a, list_filter.url, **{list_filter.param: their_value}) == set()
