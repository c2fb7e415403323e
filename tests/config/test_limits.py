"""Abuse limits: auth throttling, body size, page size, rule and list sizes, quotas, timeouts."""

import pytest
from django.db import connection
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from contracts.models import Contract
from tests.factories import ContractFactory, UserFactory
from workflows.rules import MAX_CONDITIONS, MAX_LIST_ITEMS

pytestmark = pytest.mark.django_db

CONTRACTS = "/api/contracts/"
DEFINITIONS = "/api/workflows/config/"


# --- login and registration throttled ---------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "body", "refused"),
    [
        ("/api/auth/token/", {"email": "nobody@example.com", "password": "wrong"}, 401),
        ("/api/auth/register/", {"email": "not-an-email"}, 400),
        ("/api/auth/token/refresh/", {"refresh": "not-a-token"}, 401),
    ],
    ids=["login", "register", "refresh"],
)
def test_auth_endpoints_are_throttled_per_client(api_client, settings, url, body, refused):
    settings.AUTH_THROTTLE_RATE = "3/min"

    statuses = [api_client.post(url, body, format="json").status_code for _ in range(4)]

    assert statuses == [refused] * 3 + [429]
    throttled = api_client.post(url, body, format="json")
    assert throttled.json()["code"] == "throttled"
    assert int(throttled["Retry-After"]) > 0


def test_auth_throttle_is_on_by_default():
    from config import settings as production_settings

    assert production_settings.AUTH_THROTTLE_RATE == "30/min"


# --- request body size ------------------------------------------------------------------------


def test_oversized_body_is_a_413_json_error(admin_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    body = {"title": "Big", "contract_type": "MSA", "text": "x" * 2_000}

    response = admin_client.post(CONTRACTS, body, format="json")

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "request_too_large"
    assert not Contract.objects.exists()


def test_a_body_over_the_limit_is_refused_whatever_the_method(admin_client, settings):
    """Django checks the size only when a view reads the body; a GET never does."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000

    response = admin_client.generic(
        "GET", "/api/approvals/pending/", b"x" * 1_001, content_type="application/json"
    )

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


# --- URL length (414) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/admin/webhooks/", "/api/approvals/pending/", "/api/", "/healthz", "/admin/"]
)
def test_a_url_over_the_limit_is_a_414_json_error(admin_client, settings, path):
    settings.MAX_URL_LENGTH = 100
    query = "?search=" + "x" * (101 - len(path) - len("?search="))

    response = admin_client.get(path + query)

    assert response.status_code == 414
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "uri_too_long"
    assert body["detail"] == "The URL is 101 characters long; at most 100 are accepted."
    assert body["request_id"] == response["X-Request-ID"]


def test_a_url_at_the_limit_is_served(admin_client, settings):
    settings.MAX_URL_LENGTH = 100
    path = "/api/approvals/pending/"

    response = admin_client.get(path + "?contract=" + "0" * (100 - len(path) - len("?contract=")))

    assert response.status_code == 400  # served: the filter judges the value
    assert "contract" in response.json()["fields"]


def test_the_url_limit_stays_below_what_gunicorn_reads():
    from config import gunicorn
    from config import settings as production_settings

    request_line = f"OPTIONS {'x' * production_settings.MAX_URL_LENGTH} HTTP/1.1"
    assert len(request_line) <= gunicorn.limit_request_line


# --- page size --------------------------------------------------------------------------------


def test_page_size_is_capped_at_200(client, user):
    Contract.objects.bulk_create(ContractFactory.build_batch(205, created_by=user))

    body = client.get(CONTRACTS, {"page_size": 5000}).json()

    assert body["count"] == 205
    assert len(body["results"]) == 200


# --- rule size and list lengths ---------------------------------------------------------------


def _definition(**overrides):
    stage = {"stage_name": "Legal", "sequence": 1, "approvers": ["legal"]}
    return {"name": "Limits", "trigger_conditions": {}, "stages": [stage], **overrides}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            _definition(
                trigger_conditions={f"metadata__k{i}": i for i in range(MAX_CONDITIONS + 1)}
            ),
            "trigger_conditions",
        ),
        (
            _definition(trigger_conditions={"title__in": ["a"] * (MAX_LIST_ITEMS + 1)}),
            "trigger_conditions",
        ),
        (
            _definition(
                trigger_conditions={"not": {"not": {"not": {"not": {"not": {"not": {}}}}}}}
            ),
            "trigger_conditions",
        ),
        (
            _definition(
                stages=[
                    {"stage_name": f"S{i}", "sequence": i, "approvers": ["legal"]}
                    for i in range(1, 22)
                ]
            ),
            "stages",
        ),
        (
            _definition(
                stages=[
                    {
                        "stage_name": "Crowd",
                        "sequence": 1,
                        "approvers": [f"role{i}" for i in range(21)],
                    }
                ]
            ),
            "stages",
        ),
    ],
    ids=["conditions", "list-items", "depth", "stages", "approvers"],
)
def test_rule_and_definition_sizes_are_bounded(admin_client, body, field):
    response = admin_client.post(DEFINITIONS, body, format="json")

    assert response.status_code == 400, response.json()
    assert any(name.startswith(field) for name in response.json()["fields"])


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        (
            "post",
            CONTRACTS,
            {"title": "T", "contract_type": "MSA", "metadata": {f"k{i}": i for i in range(101)}},
            "metadata",
        ),
        (
            "post",
            "/api/admin/clauses/",
            {"name": "Many", "kind": "required", "patterns": [f"phrase {i}" for i in range(51)]},
            "patterns",
        ),
        (
            "post",
            "/api/admin/clauses/",
            {
                "name": "Types",
                "kind": "required",
                "patterns": ["p"],
                "contract_types": [f"T{i}" for i in range(51)],
            },
            "contract_types",
        ),
        ("patch", "/api/admin/sla-calendar/", {"working_days": [0] * 8}, "working_days"),
        (
            "post",
            "/api/admin/users/roles/",
            {
                "user": "00000000-0000-0000-0000-000000000000",
                "role": "r",
                "permissions": ["audit.view"] * 99,
            },
            "permissions",
        ),
        (
            "post",
            "/api/admin/webhooks/",
            {"url": "https://hooks.example.com/x", "events": ["sla_breached"] * 99},
            "events",
        ),
    ],
    ids=[
        "contract-metadata",
        "clause-patterns",
        "clause-types",
        "working-days",
        "role-permissions",
        "webhook-events",
    ],
)
def test_list_and_document_lengths_are_bounded(admin_client, method, url, body, field):
    response = getattr(admin_client, method)(url, body, format="json")

    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]


# --- quotas per tenant (tests/tenancy/test_quotas.py: each through the API, races, updates) -------


@pytest.mark.parametrize(
    ("setting", "url", "body", "quota"),
    [
        (
            "QUOTA_CLAUSE_RULES",
            "/api/admin/clauses/",
            {"name": "R", "kind": "required", "patterns": ["p"]},
            "clause_rules",
        ),
        (
            "QUOTA_CLAUSE_PHRASE_CHARS",
            "/api/admin/clauses/",
            {"name": "R", "kind": "required", "patterns": ["p"]},
            "clause_phrase_chars",
        ),
        (
            "QUOTA_WEBHOOKS",
            "/api/admin/webhooks/",
            {"url": "https://hooks.example.com/x", "events": ["sla_breached"]},
            "webhooks",
        ),
        ("QUOTA_ACTIVE_DEFINITIONS", DEFINITIONS, _definition(), "active_workflow_definitions"),
        (
            "QUOTA_USERS",
            "/api/admin/users/",
            {"email": "n@example.com", "password": "a-long-enough-passphrase", "full_name": "N"},
            "users",
        ),
    ],
    ids=["clause-rules", "clause-phrase-chars", "webhooks", "active-definitions", "users"],
)
def test_per_tenant_resources_have_quotas(admin_client, settings, setting, url, body, quota):
    setattr(settings, setting, 0)

    response = admin_client.post(url, body, format="json")

    assert response.status_code == 400, response.json()
    assert response.json() == {
        "code": "quota_exceeded",
        "detail": response.json()["detail"],
        "quota": quota,
        "limit": 0,
        "request_id": response["X-Request-ID"],
    }
    assert response.json()["detail"].startswith(f"Quota '{quota}' exceeded")


# --- statement timeout ------------------------------------------------------------------------


class SleepView(APIView):
    """Test-only: one slow statement (and the session's timeout, for the assertions)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request):
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            (timeout,) = cursor.fetchone()
            if request.GET.get("sleep"):
                cursor.execute("SELECT pg_sleep(%s)", [float(request.GET["sleep"])])
        return Response({"statement_timeout": timeout})


class URLCONF:
    """A URLconf (hashable, unlike a module-less namespace) serving only the test view."""

    urlpatterns = [path("sleep/", SleepView.as_view())]


def session_timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        return cursor.fetchone()[0]


@pytest.fixture
def sleep_urls(settings):
    settings.ROOT_URLCONF = URLCONF
    yield
    # The web request left its timeout on this thread's connection (as it would for the next
    # request); start the next test from a fresh session.
    connection.close()


@pytest.mark.django_db(transaction=True)
def test_slow_query_of_a_request_is_cancelled_with_a_503(api_client, settings, sleep_urls):
    settings.API_STATEMENT_TIMEOUT_MS = 200

    response = api_client.get("/sleep/", {"sleep": 30})

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert body["request_id"] == response["X-Request-ID"]
    # The connection is still usable, and the next request is fine.
    assert api_client.get("/sleep/").json() == {"statement_timeout": "200ms"}


@pytest.mark.django_db(transaction=True)
def test_timeout_applies_to_requests_only(api_client, settings, sleep_urls):
    settings.API_STATEMENT_TIMEOUT_MS = 1500
    connection.close()
    # Outside a request (what a management command sees): the server default.
    assert session_timeout() == "0"

    assert api_client.get("/sleep/").json() == {"statement_timeout": "1500ms"}

    # A new session (as in another process, e.g. the SLA check) does not inherit it.
    connection.close()
    assert session_timeout() == "0"


@pytest.mark.django_db(transaction=True)
def test_timeout_follows_the_setting_and_zero_is_off(api_client, settings, sleep_urls):
    settings.API_STATEMENT_TIMEOUT_MS = 0
    connection.close()
    assert api_client.get("/sleep/").json() == {"statement_timeout": "0"}

    settings.API_STATEMENT_TIMEOUT_MS = 700
    assert api_client.get("/sleep/").json() == {"statement_timeout": "700ms"}

    settings.API_STATEMENT_TIMEOUT_MS = 0
    assert api_client.get("/sleep/").json() == {"statement_timeout": "0"}


def test_timeout_is_on_by_default():
    from config import settings as production_settings

    assert production_settings.API_STATEMENT_TIMEOUT_MS == 5000
    assert "config.middleware.StatementTimeoutMiddleware" in production_settings.MIDDLEWARE


@pytest.mark.django_db(transaction=True)
def test_api_requests_get_the_timeout(api_client_for, settings):
    settings.API_STATEMENT_TIMEOUT_MS = 2500
    user = UserFactory()
    connection.close()
    try:
        assert api_client_for(user).get("/api/auth/me/").status_code == 200
        assert session_timeout() == "2500ms"
    finally:
        connection.close()
