"""CORS (issue 15): browser frontends on CORS_ALLOWED_ORIGINS may call the API, nobody else."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

FRONTEND = "https://app.example"
CONTRACTS = "/api/contracts/"


@pytest.fixture(autouse=True)
def _frontend_allowed(settings):
    settings.CORS_ALLOWED_ORIGINS = [FRONTEND]


def preflight(origin: str, url: str = CONTRACTS):
    return Client().options(
        url,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, idempotency-key",
    )


def header_words(response, name: str) -> set[str]:
    return {word.strip().lower() for word in response.get(name, "").split(",") if word.strip()}


def test_preflight_from_an_allowed_origin_allows_the_api_headers():
    response = preflight(FRONTEND)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == FRONTEND
    assert {"authorization", "content-type", "idempotency-key"} <= header_words(
        response, "Access-Control-Allow-Headers"
    )
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in response  # tokens, never cookies


def test_preflight_from_another_origin_is_refused():
    response = preflight("https://evil.example")

    assert "Access-Control-Allow-Origin" not in response


def test_no_origin_is_allowed_by_default(settings):
    from config import settings as production_settings

    settings.CORS_ALLOWED_ORIGINS = production_settings.CORS_ALLOWED_ORIGINS

    assert settings.CORS_ALLOWED_ORIGINS == []
    assert "Access-Control-Allow-Origin" not in preflight(FRONTEND)


def test_responses_to_an_allowed_origin_expose_the_request_id_and_replay_headers(
    api_client_for, user
):
    client = api_client_for(user)

    response = client.get("/api/auth/me/", HTTP_ORIGIN=FRONTEND)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == FRONTEND
    assert {"x-request-id", "idempotent-replayed", "retry-after"} <= header_words(
        response, "Access-Control-Expose-Headers"
    )


def test_errors_reach_the_frontend_readably_too():
    response = Client().get("/api/auth/me/", HTTP_ORIGIN=FRONTEND)

    assert response.status_code == 401
    assert response["Access-Control-Allow-Origin"] == FRONTEND


def test_only_the_api_answers_cross_origin():
    assert "Access-Control-Allow-Origin" not in preflight(FRONTEND, "/admin/login/")
