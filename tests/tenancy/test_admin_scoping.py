"""Django admin is scoped like the API: a tenant's staff admin sees only their own tenant."""

from decimal import Decimal

import pytest
from django.test import Client

from approvals.lifecycle import contract_update
from audit.models import AuditLog
from contracts.models import Contract, ContractRevision
from core import rls
from tenancy.models import User
from tests.factories import ContractFactory, UserFactory
from tests.fixtures import inline_management_data, log_in

pytestmark = pytest.mark.django_db

CONTRACTS = "/admin/contracts/contract/"
USERS = "/admin/tenancy/user/"


@pytest.fixture
def browser() -> Client:
    return Client()


@pytest.fixture
def staff_admin(tenant):
    return UserFactory(tenant=tenant, is_tenant_admin=True, is_staff=True, full_name="Staff Admin")


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser(
        "platform@example.com", "a-long-enough-passphrase", full_name="Platform Operator"
    )


@pytest.fixture
def two_tenants(tenant, other_tenant):
    """A contract and a user in each tenant, with distinctive names to look for in pages."""
    mine_user = UserFactory(tenant=tenant, email="insider@example.com")
    their_user = UserFactory(tenant=other_tenant, email="outsider@example.com")
    return {
        "my_contract": ContractFactory(created_by=mine_user, title="Insider Agreement"),
        "their_contract": ContractFactory(created_by=their_user, title="Outsider Agreement"),
        "my_user": mine_user,
        "their_user": their_user,
    }


def changelist_pks(response) -> set[str]:
    assert response.status_code == 200, response.status_code
    return {str(obj.pk) for obj in response.context["cl"].result_list}


def assert_hidden(browser, url: str, *secrets: str) -> None:
    """Another tenant's object page is a 404, 403 or a redirect away, never showing its data."""
    response = browser.get(url)
    assert response.status_code in (302, 403, 404), response.status_code
    followed = browser.get(url, follow=True)
    content = followed.content.decode()
    for secret in secrets:
        assert secret not in content


def test_staff_tenant_admin_sees_only_own_contracts(browser, staff_admin, two_tenants):
    log_in(browser, staff_admin)

    response = browser.get(CONTRACTS)

    assert changelist_pks(response) == {str(two_tenants["my_contract"].pk)}
    content = response.content.decode()
    assert "Insider Agreement" in content
    assert "Outsider Agreement" not in content
    assert response.context["cl"].result_count == 1
    assert response.context["cl"].full_result_count == 1


def test_staff_tenant_admin_search_does_not_reach_other_tenants(browser, staff_admin, two_tenants):
    log_in(browser, staff_admin)
    assert changelist_pks(browser.get(CONTRACTS, {"q": "Outsider"})) == set()
    assert changelist_pks(browser.get(USERS, {"q": "outsider"})) == set()


def test_staff_tenant_admin_opens_own_contract(browser, staff_admin, two_tenants):
    log_in(browser, staff_admin)
    contract = two_tenants["my_contract"]
    response = browser.get(f"{CONTRACTS}{contract.pk}/change/")
    assert response.status_code == 200
    assert "Insider Agreement" in response.content.decode()


def test_staff_tenant_admin_cannot_open_other_tenants_contract(browser, staff_admin, two_tenants):
    log_in(browser, staff_admin)
    foreign = two_tenants["their_contract"]
    assert_hidden(browser, f"{CONTRACTS}{foreign.pk}/change/", "Outsider Agreement")
    assert_hidden(browser, f"{CONTRACTS}{foreign.pk}/history/", "Outsider Agreement")
    assert_hidden(browser, f"{CONTRACTS}{foreign.pk}/delete/", "Outsider Agreement")
    with rls.bypass("the other tenant's contract is still there"):
        assert Contract.objects.filter(pk=foreign.pk).exists()


def test_staff_tenant_admin_cannot_delete_other_tenants_contract(browser, staff_admin, two_tenants):
    log_in(browser, staff_admin)
    foreign = two_tenants["their_contract"]
    browser.post(f"{CONTRACTS}{foreign.pk}/delete/", {"post": "yes"})
    browser.post(
        CONTRACTS,
        {"action": "delete_selected", "_selected_action": [str(foreign.pk)], "post": "yes"},
    )
    with rls.bypass("the other tenant's contract is still there"):
        assert Contract.objects.filter(pk=foreign.pk).exists()


def test_staff_tenant_admin_sees_only_own_users(browser, staff_admin, two_tenants):
    log_in(browser, staff_admin)

    response = browser.get(USERS)

    assert changelist_pks(response) == {str(staff_admin.pk), str(two_tenants["my_user"].pk)}
    content = response.content.decode()
    assert "insider@example.com" in content
    assert "outsider@example.com" not in content


def test_staff_tenant_admin_opens_own_user(browser, staff_admin, two_tenants):
    log_in(browser, staff_admin)
    response = browser.get(f"{USERS}{two_tenants['my_user'].pk}/change/")
    assert response.status_code == 200
    assert "insider@example.com" in response.content.decode()


def test_staff_tenant_admin_cannot_open_other_tenants_user(browser, staff_admin, two_tenants):
    log_in(browser, staff_admin)
    foreign = two_tenants["their_user"]
    assert_hidden(browser, f"{USERS}{foreign.pk}/change/", "outsider@example.com")
    assert browser.get(f"{USERS}{foreign.pk}/password/").status_code == 404


def test_staff_tenant_admin_cannot_move_a_user_to_another_tenant(
    browser, staff_admin, two_tenants, other_tenant
):
    log_in(browser, staff_admin)
    target = two_tenants["my_user"]
    url = f"{USERS}{target.pk}/change/"
    response = browser.post(
        url,
        {
            **inline_management_data(browser, url),
            "email": target.email,
            "full_name": target.full_name,
            "tenant": str(other_tenant.pk),
            "is_active": "on",
        },
    )
    assert response.status_code == 200  # the form is re-rendered with an error
    assert "tenant" in response.context["adminform"].form.errors
    target.refresh_from_db()
    assert target.tenant_id == staff_admin.tenant_id


def test_staff_tenant_admin_cannot_grant_superuser(browser, staff_admin, two_tenants):
    log_in(browser, staff_admin)
    target = two_tenants["my_user"]
    url = f"{USERS}{target.pk}/change/"
    response = browser.post(
        url,
        {
            **inline_management_data(browser, url),
            "email": target.email,
            "full_name": "Renamed Insider",
            "tenant": str(staff_admin.tenant_id),
            "is_active": "on",
            "is_superuser": "on",
        },
    )
    assert response.status_code == 302  # saved: the form was valid
    target.refresh_from_db()
    assert target.full_name == "Renamed Insider"
    assert not target.is_superuser


def test_user_added_by_staff_tenant_admin_joins_their_tenant(browser, staff_admin):
    log_in(browser, staff_admin)
    response = browser.post(
        f"{USERS}add/",
        {
            **inline_management_data(browser, f"{USERS}add/"),
            "email": "added@example.com",
            "full_name": "Added Person",
            "password1": "a-long-enough-passphrase",
            "password2": "a-long-enough-passphrase",
        },
    )
    assert response.status_code == 302, response.context and response.context["adminform"].errors
    added = User.objects.get(email="added@example.com")
    assert added.tenant_id == staff_admin.tenant_id
    assert not added.is_superuser


TENANTS = "/admin/tenancy/tenant/"


def administer(browser, tenant) -> None:
    """A platform superuser picks the tenant to administer (the tenant changelist's action)."""
    response = browser.post(TENANTS, {"action": "administer", "_selected_action": [str(tenant.pk)]})
    assert response.status_code == 302


def test_platform_superuser_sees_platform_rows_until_choosing_a_tenant(
    browser, superuser, staff_admin, two_tenants, tenant, other_tenant
):
    log_in(browser, superuser)

    assert changelist_pks(browser.get(TENANTS)) == {str(tenant.pk), str(other_tenant.pk)}
    assert changelist_pks(browser.get(CONTRACTS)) == set()  # no tenant's rows
    assert changelist_pks(browser.get(USERS)) == {str(superuser.pk)}  # platform users only
    assert_hidden(browser, f"{CONTRACTS}{two_tenants['my_contract'].pk}/change/", "Insider")


def test_platform_superuser_administers_one_tenant_at_a_time(
    browser, superuser, staff_admin, two_tenants, tenant, other_tenant
):
    log_in(browser, superuser)

    administer(browser, tenant)
    assert changelist_pks(browser.get(CONTRACTS)) == {str(two_tenants["my_contract"].pk)}
    assert changelist_pks(browser.get(USERS)) == {
        str(staff_admin.pk),
        str(two_tenants["my_user"].pk),
    }
    mine = two_tenants["my_contract"]
    response = browser.get(f"{CONTRACTS}{mine.pk}/change/")
    assert response.status_code == 200
    assert mine.title in response.content.decode()
    assert_hidden(
        browser, f"{CONTRACTS}{two_tenants['their_contract'].pk}/change/", "Outsider Agreement"
    )

    administer(browser, other_tenant)
    assert changelist_pks(browser.get(CONTRACTS)) == {str(two_tenants["their_contract"].pk)}
    response = browser.get(f"{USERS}{two_tenants['their_user'].pk}/change/")
    assert response.status_code == 200
    assert "outsider@example.com" in response.content.decode()

    browser.post(TENANTS, {"action": "stop_administering", "_selected_action": [str(tenant.pk)]})
    assert changelist_pks(browser.get(CONTRACTS)) == set()


def test_choosing_a_tenant_is_audited_in_that_tenant(browser, superuser, tenant, other_tenant):
    log_in(browser, superuser)
    administer(browser, tenant)

    [row] = AuditLog.objects.filter(action="platform_admin_entered")
    assert (row.tenant_id, row.actor_id) == (tenant.pk, superuser.pk)
    assert (row.resource_type, row.resource_id) == ("tenant", str(tenant.pk))
    assert not AuditLog.objects.filter(action="rls_bypass").exists()  # the web never bypasses


def test_only_one_tenant_at_a_time_and_only_by_platform_superusers(
    browser, superuser, staff_admin, tenant, other_tenant
):
    log_in(browser, superuser)
    both = {"action": "administer", "_selected_action": [str(tenant.pk), str(other_tenant.pk)]}
    browser.post(TENANTS, both)
    assert not AuditLog.objects.filter(action="platform_admin_entered").exists()

    log_in(browser, staff_admin)  # a tenant's staff: no such action
    browser.post(TENANTS, {"action": "administer", "_selected_action": [str(other_tenant.pk)]})
    assert not AuditLog.objects.filter(action="platform_admin_entered").exists()
    assert browser.get(CONTRACTS).status_code == 200  # still their own tenant's admin


def test_tenant_staff_requests_bypass_nothing(browser, staff_admin, two_tenants):
    log_in(browser, staff_admin)
    browser.get(CONTRACTS)
    assert not AuditLog.objects.filter(action="rls_bypass").exists()


def test_tenant_admin_without_staff_flag_is_sent_to_login(browser, tenant, two_tenants):
    log_in(browser, UserFactory(tenant=tenant, is_tenant_admin=True, is_staff=False))
    response = browser.get(CONTRACTS)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_member_who_is_not_tenant_admin_sees_nothing(browser, tenant, two_tenants):
    log_in(browser, UserFactory(tenant=tenant, is_staff=True))
    assert browser.get(CONTRACTS).status_code == 403
    assert browser.get(USERS).status_code == 403
    their = two_tenants["their_contract"]
    response = browser.get(f"{CONTRACTS}{their.pk}/change/")
    assert response.status_code in (302, 403, 404)
    assert "Outsider Agreement" not in response.content.decode()


# --- contract revisions ---------------------------------------------------------------------


@pytest.fixture
def revised(two_tenants):
    """Both tenants' contracts edited twice: revisions 1 to 3, each with a distinct hash."""
    for contract, creator in (
        (two_tenants["my_contract"], two_tenants["my_user"]),
        (two_tenants["their_contract"], two_tenants["their_user"]),
    ):
        contract_update(
            tenant=contract.tenant, contract_id=contract.pk, updated_by=creator, value=Decimal(7)
        )
        contract_update(
            tenant=contract.tenant,
            contract_id=contract.pk,
            updated_by=creator,
            text="Revised terms.",
            region="EMEA",
        )
        contract.refresh_from_db()
    return two_tenants


def revision_rows(response) -> list[tuple]:
    [inline] = [
        inline
        for inline in response.context["inline_admin_formsets"]
        if inline.formset.model is ContractRevision
    ]
    return [(form.instance.number, form.instance.content_hash) for form in inline.formset.forms]


def test_contract_page_shows_revision_hash_and_revisions_newest_first(
    browser, staff_admin, revised
):
    log_in(browser, staff_admin)
    contract = revised["my_contract"]
    hashes = dict(
        ContractRevision.objects.filter(contract=contract).values_list("number", "content_hash")
    )

    response = browser.get(f"{CONTRACTS}{contract.pk}/change/")

    assert response.status_code == 200
    assert revision_rows(response) == [(number, hashes[number]) for number in (3, 2, 1)]
    content = response.content.decode()
    assert contract.revision == 3
    assert contract.content_hash == hashes[3]
    assert content.count(hashes[3]) == 2  # the contract's field and the newest revision
    for number in (1, 2):
        assert hashes[number] in content
    assert "region, text" in content  # revision 3's changed fields, in BUSINESS_FIELDS order
    assert "(created)" in content
    assert "Insider Agreement" in content
    # Read-only: no add row, no delete boxes, no inputs for the revisions.
    assert "revisions-0-number" not in content
    assert 'name="revisions-0-DELETE"' not in content
    foreign = ContractRevision.objects.filter(contract=revised["their_contract"])
    for their_hash in foreign.values_list("content_hash", flat=True):
        assert their_hash not in content


def test_revisions_are_read_in_one_query_without_their_contents(
    browser, staff_admin, revised, django_assert_max_num_queries
):
    log_in(browser, staff_admin)
    url = f"{CONTRACTS}{revised['my_contract'].pk}/change/"
    browser.get(url)  # warm: session, permissions

    # The page also reads the tenant (its time zone), the contract's workflows, its current
    # workflow's stages and approvals, its documents and its signature requests (one query each,
    # whatever their number).
    with django_assert_max_num_queries(17) as captured:
        browser.get(url)

    # One query (created_by joined, not one per row), without the revisions' whole contents.
    [sql] = [
        query["sql"]
        for query in captured.captured_queries
        if '"contracts_contractrevision"' in query["sql"]
    ]
    assert '"contracts_contractrevision"."content"' not in sql
    assert '"contracts_contractrevision"."content_hash"' in sql


def test_other_tenants_staff_sees_neither_the_contract_nor_its_revisions(
    browser, revised, other_tenant
):
    log_in(browser, UserFactory(tenant=other_tenant, is_tenant_admin=True, is_staff=True))
    mine = revised["my_contract"]
    hashes = list(
        ContractRevision.objects.filter(contract=mine).values_list("content_hash", flat=True)
    )

    assert_hidden(browser, f"{CONTRACTS}{mine.pk}/change/", "Insider Agreement", *hashes)
    # Their own contract's page lists only their revisions.
    theirs = revised["their_contract"]
    response = browser.get(f"{CONTRACTS}{theirs.pk}/change/")
    assert [number for number, _ in revision_rows(response)] == [3, 2, 1]
    content = response.content.decode()
    for my_hash in hashes:
        assert my_hash not in content


def test_revisions_are_not_registered_on_their_own(browser, staff_admin, revised):
    log_in(browser, staff_admin)
    assert browser.get("/admin/contracts/contractrevision/").status_code == 404


def test_posting_to_the_read_only_contract_page_changes_no_revision(browser, staff_admin, revised):
    log_in(browser, staff_admin)
    contract = revised["my_contract"]
    before = list(ContractRevision.objects.filter(contract=contract).values_list("pk", "number"))

    response = browser.post(
        f"{CONTRACTS}{contract.pk}/change/",
        {
            "revisions-TOTAL_FORMS": "1",
            "revisions-INITIAL_FORMS": "0",
            "revisions-0-number": "99",
            "revisions-0-content_hash": "0" * 64,
            "title": "Hijacked",
        },
    )

    assert response.status_code == 403
    after = list(ContractRevision.objects.filter(contract=contract).values_list("pk", "number"))
    assert after == before
    contract.refresh_from_db()
    assert contract.title == "Insider Agreement"


def test_platform_superuser_sees_each_tenants_revisions(browser, superuser, revised):
    log_in(browser, superuser)
    for contract in (revised["my_contract"], revised["their_contract"]):
        administer(browser, contract.tenant)
        response = browser.get(f"{CONTRACTS}{contract.pk}/change/")
        assert response.status_code == 200
        with rls.tenant_scope(contract.tenant):
            expected = ContractRevision.objects.filter(contract=contract).order_by("-number")
            assert revision_rows(response) == list(expected.values_list("number", "content_hash"))
