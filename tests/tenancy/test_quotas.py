"""Quotas per tenant (docs/security.md, "Limits and quotas"): 400 ``quota_exceeded`` naming the
quota, race-safe."""

import time

import pytest
from django.db import transaction

from config.exceptions import QuotaExceeded
from contracts.clause_services import clause_rule_create
from contracts.models import ClauseRule
from core import rls
from notifications.models import WebhookEndpoint
from notifications.services import webhook_create
from tenancy.models import Role, User
from tenancy.quotas import quota_guard
from tenancy.services import user_create
from tests.factories import ClauseRuleFactory, TenantFactory, UserFactory, WebhookEndpointFactory
from tests.fixtures import inline_management_data
from tests.support import run_together
from workflows.models import WorkflowDefinition
from workflows.services import definition_create

pytestmark = pytest.mark.django_db

CLAUSES = "/api/admin/clauses/"
WEBHOOKS = "/api/admin/webhooks/"
DEFINITIONS = "/api/workflows/config/"
USERS = "/api/admin/users/"
STAGES = [{"stage_name": "Legal", "sequence": 1, "approvers": ["legal"]}]


def assert_quota_exceeded(response, quota: str, limit: int) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "quota_exceeded"
    assert body["quota"] == quota
    assert body["limit"] == limit
    assert quota in body["detail"]
    assert body["request_id"] == response["X-Request-ID"]


def test_quota_defaults_are_the_documented_ones():
    from config import settings as production_settings

    assert production_settings.QUOTA_CLAUSE_RULES == 500
    assert production_settings.QUOTA_CLAUSE_PHRASE_CHARS == 100_000
    assert production_settings.QUOTA_WEBHOOKS == 20
    assert production_settings.QUOTA_ACTIVE_DEFINITIONS == 200
    assert production_settings.QUOTA_USERS == 10_000


# --- clause rules ---------------------------------------------------------------------------------


def test_clause_rule_count_is_capped(admin_client, tenant, settings):
    settings.QUOTA_CLAUSE_RULES = 3
    ClauseRuleFactory.create_batch(2, tenant=tenant)
    ClauseRuleFactory(tenant=TenantFactory())  # another tenant's rule does not count
    body = {"name": "Third", "kind": "required", "patterns": ["governing law"]}

    assert admin_client.post(CLAUSES, body, format="json").status_code == 201
    response = admin_client.post(CLAUSES, body | {"name": "Fourth"}, format="json")

    assert_quota_exceeded(response, "clause_rules", 3)
    assert ClauseRule.objects.filter(tenant=tenant).count() == 3


def test_inactive_rules_count_for_the_rule_quota(admin_client, tenant, settings):
    settings.QUOTA_CLAUSE_RULES = 1
    ClauseRuleFactory(tenant=tenant, is_active=False)
    body = {"name": "Second", "kind": "required", "patterns": ["governing law"]}

    assert_quota_exceeded(admin_client.post(CLAUSES, body, format="json"), "clause_rules", 1)


def test_phrase_characters_of_active_rules_are_capped(admin_client, tenant, settings):
    settings.QUOTA_CLAUSE_PHRASE_CHARS = 30
    ClauseRuleFactory(tenant=tenant, patterns=["x" * 20])
    ClauseRuleFactory(tenant=tenant, patterns=["y" * 100], is_active=False)  # not counted

    ok = {"name": "Ten", "kind": "required", "patterns": ["a" * 6, "b" * 4]}
    assert admin_client.post(CLAUSES, ok, format="json").status_code == 201  # 30: at the limit
    response = admin_client.post(
        CLAUSES, {"name": "One more", "kind": "required", "patterns": ["c"]}, format="json"
    )
    assert_quota_exceeded(response, "clause_phrase_chars", 30)
    # An inactive rule may be created: it is not compiled.
    inactive = {"name": "Off", "kind": "required", "patterns": ["c" * 50], "is_active": False}
    assert admin_client.post(CLAUSES, inactive, format="json").status_code == 201


def test_an_update_growing_phrases_or_reactivating_counts(admin_client, tenant, settings):
    settings.QUOTA_CLAUSE_PHRASE_CHARS = 30
    rule = ClauseRuleFactory(tenant=tenant, patterns=["x" * 20])
    off = ClauseRuleFactory(tenant=tenant, patterns=["y" * 20], is_active=False)

    grow = admin_client.patch(f"{CLAUSES}{rule.pk}/", {"patterns": ["x" * 31]}, format="json")
    assert_quota_exceeded(grow, "clause_phrase_chars", 30)
    reactivate = admin_client.patch(f"{CLAUSES}{off.pk}/", {"is_active": True}, format="json")
    assert_quota_exceeded(reactivate, "clause_phrase_chars", 30)
    rule.refresh_from_db()
    off.refresh_from_db()
    assert rule.patterns == ["x" * 20]
    assert off.is_active is False

    # Within the quota: fine (20 -> 30; then swap which rule is active).
    assert (
        admin_client.patch(
            f"{CLAUSES}{rule.pk}/", {"patterns": ["x" * 30]}, format="json"
        ).status_code
        == 200
    )
    assert (
        admin_client.patch(f"{CLAUSES}{rule.pk}/", {"is_active": False}, format="json").status_code
        == 200
    )
    assert (
        admin_client.patch(f"{CLAUSES}{off.pk}/", {"is_active": True}, format="json").status_code
        == 200
    )


def test_a_tenant_over_a_lowered_quota_may_still_shrink(admin_client, tenant, settings):
    rule = ClauseRuleFactory(tenant=tenant, patterns=["x" * 50])
    settings.QUOTA_CLAUSE_PHRASE_CHARS = 30

    shrink = admin_client.patch(f"{CLAUSES}{rule.pk}/", {"patterns": ["x" * 40]}, format="json")
    assert shrink.status_code == 200, shrink.json()
    rename = admin_client.patch(f"{CLAUSES}{rule.pk}/", {"name": "Renamed"}, format="json")
    assert rename.status_code == 200
    grow = admin_client.patch(f"{CLAUSES}{rule.pk}/", {"patterns": ["x" * 45]}, format="json")
    assert_quota_exceeded(grow, "clause_phrase_chars", 30)


def test_a_compile_never_exceeds_the_phrase_quota(admin_client, tenant, settings):
    """Rules stored over a (later lowered) quota are refused at validation, not compiled."""
    from contracts import clause_selectors

    ClauseRuleFactory(tenant=tenant, patterns=["x" * 50])
    settings.QUOTA_CLAUSE_PHRASE_CHARS = 30
    clause_selectors.playbook_cache.clear()
    compiled = clause_selectors.playbook_cache.compiled

    response = admin_client.post(
        "/api/contracts/validate-clauses/", {"text": "Some text."}, format="json"
    )

    assert_quota_exceeded(response, "clause_phrase_chars", 30)
    assert clause_selectors.playbook_cache.compiled == compiled


# --- webhooks, workflow definitions, users ------------------------------------------------------


def test_webhook_endpoints_are_capped(admin_client, tenant, settings):
    settings.QUOTA_WEBHOOKS = 2
    WebhookEndpointFactory(tenant=tenant, is_active=False)  # every endpoint counts
    body = {"url": "https://hooks.example.com/clm", "events": ["approval_assigned"]}

    assert admin_client.post(WEBHOOKS, body, format="json").status_code == 201
    assert_quota_exceeded(admin_client.post(WEBHOOKS, body, format="json"), "webhooks", 2)
    assert WebhookEndpoint.objects.filter(tenant=tenant).count() == 2


def _definition(name: str, **fields) -> dict:
    return {"name": name, "trigger_conditions": {}, "stages": STAGES, **fields}


def test_active_workflow_definitions_are_capped(admin_client, tenant, settings):
    settings.QUOTA_ACTIVE_DEFINITIONS = 1
    quota = "active_workflow_definitions"

    assert admin_client.post(DEFINITIONS, _definition("One"), format="json").status_code == 201
    assert_quota_exceeded(
        admin_client.post(DEFINITIONS, _definition("Two"), format="json"), quota, 1
    )
    # An inactive one may be created, but not re-activated while the quota is used.
    created = admin_client.post(DEFINITIONS, _definition("Off", is_active=False), format="json")
    assert created.status_code == 201
    off_url = f"{DEFINITIONS}{created.json()['id']}/"
    assert_quota_exceeded(admin_client.patch(off_url, {"is_active": True}, format="json"), quota, 1)
    assert WorkflowDefinition.objects.filter(tenant=tenant, is_active=True).count() == 1

    one = WorkflowDefinition.objects.get(tenant=tenant, name="One")
    one_url = f"{DEFINITIONS}{one.pk}/"
    assert admin_client.patch(one_url, {"is_active": False}, format="json").status_code == 200
    assert admin_client.patch(off_url, {"is_active": True}, format="json").status_code == 200
    # Editing an active definition does not count it twice.
    assert admin_client.patch(off_url, {"priority": 5}, format="json").status_code == 200


def test_users_are_capped(admin_client, tenant, tenant_admin, settings):
    settings.QUOTA_USERS = 2
    body = {"password": "a-long-enough-passphrase", "full_name": "Nina Newhire"}

    first = admin_client.post(USERS, body | {"email": "one@example.com"}, format="json")
    assert first.status_code == 201, first.json()
    second = admin_client.post(USERS, body | {"email": "two@example.com"}, format="json")

    assert_quota_exceeded(second, "users", 2)
    assert User.objects.filter(tenant=tenant).count() == 2


def test_registration_makes_a_tenant_with_one_user(api_client, settings):
    settings.QUOTA_USERS = 1
    body = {
        "email": "founder@example.com",
        "password": "a-long-enough-passphrase",
        "full_name": "Founder",
        "tenant_name": "Startup",
    }

    assert api_client.post("/api/auth/register/", body, format="json").status_code == 201


# --- two creates racing at quota - 1 -------------------------------------------------------------


def _clause(tenant, admin, n):
    return clause_rule_create(
        tenant=tenant, created_by=admin, name=f"Race {n}", kind="required", patterns=["p"]
    )


def _webhook(tenant, admin, n):
    return webhook_create(
        tenant=tenant, created_by=admin, url=f"https://h{n}.example.com/", events=["sla_breached"]
    )


def _definition_service(tenant, admin, n):
    return definition_create(tenant=tenant, created_by=admin, name=f"Race {n}", stages=STAGES)


def _user(tenant, admin, n):
    return user_create(
        tenant=tenant,
        email=f"racer{n}@example.com",
        password="a-long-enough-passphrase",
        full_name="Racer",
        created_by=admin,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("setting", "create", "count"),
    [
        ("QUOTA_CLAUSE_RULES", _clause, lambda t: ClauseRule.objects.filter(tenant=t).count()),
        ("QUOTA_WEBHOOKS", _webhook, lambda t: WebhookEndpoint.objects.filter(tenant=t).count()),
        (
            "QUOTA_ACTIVE_DEFINITIONS",
            _definition_service,
            lambda t: WorkflowDefinition.objects.filter(tenant=t, is_active=True).count(),
        ),
        ("QUOTA_USERS", _user, lambda t: User.objects.filter(tenant=t).count()),
    ],
    ids=["clause-rules", "webhooks", "definitions", "users"],
)
def test_two_creates_at_quota_minus_one_do_not_both_pass(settings, setting, create, count):
    tenant = TenantFactory()
    admin = UserFactory(tenant=tenant, is_tenant_admin=True)
    with rls.tenant_scope(tenant):  # the racing requests' scope, which their threads copy
        held = count(tenant)
        setattr(settings, setting, held + 1)

        results = run_together(lambda: create(tenant, admin, 1), lambda: create(tenant, admin, 2))

        kinds = sorted(kind for kind, _ in results)
        assert kinds == ["error", "ok"], results
        error = next(value for kind, value in results if kind == "error")
        assert error.get_codes() == "quota_exceeded"
        assert count(tenant) == held + 1


@pytest.mark.django_db(transaction=True)
def test_quota_guard_lets_one_of_two_racing_creates_through(settings):
    """Each create holds its count a while before inserting: without the guard's lock both would
    count quota - 1 and both insert; with it the second counts after the first commits."""
    tenant = TenantFactory()
    roles = Role.objects.filter(tenant=tenant)

    def create(slug: str) -> Role:
        with transaction.atomic():
            quota_guard("roles", tenant=tenant, rows=roles)
            time.sleep(0.2)
            return Role.objects.create(tenant=tenant, slug=slug, name=slug)

    with rls.tenant_scope(tenant):  # the racing requests' scope, which their threads copy
        settings.QUOTA_ROLES = roles.count() + 1
        results = run_together(lambda: create("racer-1"), lambda: create("racer-2"))

        assert sorted(kind for kind, _ in results) == ["error", "ok"], results
        error = next(value for kind, value in results if kind == "error")
        assert isinstance(error, QuotaExceeded)
        assert roles.count() == settings.QUOTA_ROLES


# --- Django admin: the same services, a refused quota is a message -----------------------------


def test_admin_paths_are_held_to_the_quotas(tenant, settings):
    from django.contrib.messages import get_messages
    from django.test import Client

    staff = UserFactory(tenant=tenant, is_tenant_admin=True, is_staff=True)
    browser = Client()
    browser.force_login(staff)
    settings.QUOTA_CLAUSE_RULES = 0
    settings.QUOTA_USERS = 1

    clause = browser.post(
        "/admin/contracts/clauserule/add/",
        {"name": "R", "kind": "required", "patterns": "p", "severity": "info", "is_active": "on"},
    )
    users = "/admin/tenancy/user/add/"
    user = browser.post(
        users,
        {
            **inline_management_data(browser, users),
            "email": "added@example.com",
            "full_name": "Added",
            "password1": "a-long-enough-passphrase",
            "password2": "a-long-enough-passphrase",
        },
    )

    assert clause.status_code == 302
    assert clause["Location"] == "/admin/contracts/clauserule/add/"
    assert user.status_code == 302
    assert user["Location"] == users
    assert not ClauseRule.objects.exists()
    assert not User.objects.filter(email="added@example.com").exists()
    shown = [str(message) for message in get_messages(user.wsgi_request)]
    assert any("Quota 'users' exceeded" in message for message in shown), shown
