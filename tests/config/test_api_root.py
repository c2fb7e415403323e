"""Where a newcomer lands (issue 15): /api/ is an index, / and the admin's "View site" lead to the
API documentation."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_api_root_links_docs_schema_and_sign_in_without_authentication(api_client):
    response = api_client.get("/api/")

    assert response.status_code == 200
    body = response.json()
    assert body["docs"] == "http://testserver/api/docs/"
    assert body["schema"] == "http://testserver/api/schema/"
    assert body["auth"] == {
        "token": "http://testserver/api/auth/token/",
        "refresh": "http://testserver/api/auth/token/refresh/",
        "register": "http://testserver/api/auth/register/",
    }
    assert api_client.get(body["docs"]).status_code == 200
    assert api_client.get(body["schema"]).status_code == 200


def test_the_api_root_lists_every_listing_of_the_schema_and_each_link_answers(
    api_client, admin_client, tenant
):
    resources = api_client.get("/api/").json()["resources"]
    schema = api_client.get("/api/schema/?format=json").json()
    listings = {path for path, item in schema["paths"].items() if "get" in item and "{" not in path}

    assert {urlsplit(url).path for url in resources.values()} == listings - {"/api/"}
    assert resources["contracts"] == "http://testserver/api/contracts/"
    # The caller's out-of-office window is a 404 until one is set.
    soon = timezone.now() + timedelta(days=30)
    window = {
        "starts_at": soon.isoformat(),
        "ends_at": (soon + timedelta(days=1)).isoformat(),
        "cover": str(UserFactory(tenant=tenant).pk),
    }
    assert admin_client.put("/api/auth/me/out-of-office/", window, format="json").status_code == 200
    for url in resources.values():
        assert admin_client.get(url).status_code == 200, url


def test_the_front_page_redirects_to_the_api_docs():
    response = Client().get("/", follow=True)

    assert response.redirect_chain == [("/api/docs/", 302)]
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_the_admins_view_site_link_leads_to_the_api_docs(tenant):
    browser = Client()
    browser.force_login(UserFactory(tenant=tenant, is_tenant_admin=True, is_staff=True))

    page = browser.get("/admin/").content.decode()
    view_site = re.search(r'<a href="([^"]+)">View site</a>', page).group(1)

    assert browser.get(view_site, follow=True).redirect_chain[-1] == ("/api/docs/", 302)
