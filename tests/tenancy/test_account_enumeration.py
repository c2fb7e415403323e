"""docs/api.md "Authentication and users": creating a user or registering with a taken e-mail
reveals nothing.

Every other field is validated first; then a taken address is one 400 on ``fields.email``, the
same bytes (but the request id) whichever tenant holds it, and a race for one address is a 201
and that same 400, never a 500.
"""

import json

import pytest

from audit.models import AuditLog
from core import rls
from tenancy.models import Tenant, User
from tenancy.services import EMAIL_UNAVAILABLE
from tests.factories import TenantFactory, UserFactory
from tests.support import run_together

USERS = "/api/admin/users/"
REGISTER = "/api/auth/register/"


def user_body(**overrides) -> dict:
    return {
        "email": "new.hire@example.com",
        "password": "a-long-enough-passphrase",
        "full_name": "Nina Newhire",
        **overrides,
    }


def register_body(**overrides) -> dict:
    return user_body(**{"tenant_name": "Founders Inc", **overrides})


def without_request_id(response) -> dict:
    body = json.loads(response.content)
    assert body.pop("request_id")
    return body


def assert_email_unavailable(response) -> None:
    assert response.status_code == 400, response.content
    assert without_request_id(response) == {
        "code": "validation_error",
        "detail": response.json()["detail"],
        "fields": {"email": [EMAIL_UNAVAILABLE]},
    }


@pytest.mark.django_db
@pytest.mark.parametrize("transform", [str, str.upper])
def test_taken_email_same_answer_for_own_and_other_tenant(
    admin_client, user, other_tenant, transform
):
    stranger = UserFactory(tenant=other_tenant)

    own = admin_client.post(USERS, user_body(email=transform(user.email)), format="json")
    other = admin_client.post(USERS, user_body(email=transform(stranger.email)), format="json")

    assert_email_unavailable(own)
    assert without_request_id(own) == without_request_id(other)
    assert own.content.replace(own.json()["request_id"].encode(), b"") == other.content.replace(
        other.json()["request_id"].encode(), b""
    )
    assert dict(own.headers).keys() == dict(other.headers).keys()
    assert "exist" not in own.content.decode().lower()
    assert stranger.email not in other.content.decode()
    with rls.bypass("both tenants' users"):
        assert User.objects.filter(email__in=[user.email, stranger.email]).count() == 2
    assert not AuditLog.objects.filter(action="user_created").exists()


@pytest.mark.django_db
def test_weak_password_with_taken_email_reports_the_password_only(admin_client, other_tenant):
    stranger = UserFactory(tenant=other_tenant)
    free = admin_client.post(USERS, user_body(password="12345678901"), format="json")
    taken = admin_client.post(
        USERS, user_body(email=stranger.email, password="12345678901"), format="json"
    )

    assert taken.status_code == free.status_code == 400
    assert set(taken.json()["fields"]) == {"password"}
    assert without_request_id(taken) == without_request_id(free)


@pytest.mark.django_db
def test_field_errors_come_together_and_before_the_email_check(admin_client, user):
    response = admin_client.post(
        USERS, user_body(email=user.email, password="short", full_name=""), format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"password", "full_name"}


@pytest.mark.django_db
def test_register_taken_email_same_answer_whoever_holds_it(api_client, user):
    first = api_client.post(REGISTER, register_body(email=user.email.upper()), format="json")
    other_holder = UserFactory(tenant=TenantFactory())
    second = api_client.post(REGISTER, register_body(email=other_holder.email), format="json")

    assert_email_unavailable(first)
    assert without_request_id(first) == without_request_id(second)
    assert Tenant.objects.filter(name="Founders Inc").count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"password": "password123"}, "password"),
        ({"tenant_name": ""}, "tenant_name"),
        ({"full_name": ""}, "full_name"),
    ],
)
def test_register_validates_everything_else_before_the_email(api_client, user, overrides, field):
    body = register_body(email=user.email, **overrides)
    response = api_client.post(REGISTER, body, format="json")
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {field}


@pytest.mark.django_db
def test_password_similar_to_the_email_is_refused(api_client):
    response = api_client.post(
        REGISTER,
        register_body(email="margaret.thatcher@example.com", password="margaret.thatcher"),
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"password"}


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_of_one_email_are_a_201_and_the_same_400(api_client_for):
    tenant = TenantFactory()
    admin = UserFactory(tenant=tenant, is_tenant_admin=True)
    for round_number in range(3):
        email = f"racer{round_number}@example.com"
        clients = [api_client_for(admin) for _ in range(2)]
        results = run_together(
            *(
                lambda c=c, email=email: c.post(USERS, user_body(email=email), format="json")
                for c in clients
            )
        )

        assert all(kind == "ok" for kind, _ in results), results
        responses = sorted((response for _, response in results), key=lambda r: r.status_code)
        assert [r.status_code for r in responses] == [201, 400], [r.content for r in responses]
        assert_email_unavailable(responses[1])
        with rls.tenant_scope(tenant):
            assert User.objects.filter(email=email).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_of_one_email_are_a_201_and_the_same_400(api_client_for):
    from rest_framework.test import APIClient

    for round_number in range(3):
        email = f"founder{round_number}@example.com"
        results = run_together(
            *(
                lambda name=name, email=email: APIClient().post(
                    REGISTER, register_body(email=email, tenant_name=name), format="json"
                )
                for name in ("Racing One", "Racing Two")
            )
        )

        assert all(kind == "ok" for kind, _ in results), results
        responses = sorted((response for _, response in results), key=lambda r: r.status_code)
        assert [r.status_code for r in responses] == [201, 400], [r.content for r in responses]
        assert_email_unavailable(responses[1])
        with rls.bypass("the racing registrations' tenants"):
            assert User.objects.filter(email=email).count() == 1
            assert Tenant.objects.filter(users__email=email).count() == 1
    with rls.bypass("the racing registrations' tenants"):
        assert Tenant.objects.filter(name__startswith="Racing").count() == 3


@pytest.mark.django_db
def test_the_unique_index_losing_a_race_is_the_same_400(tenant, user):
    """The lookup can miss a concurrent insert: the unique constraint's error is mapped."""
    from django.db import IntegrityError
    from rest_framework.exceptions import ValidationError

    from tenancy.services import _save_new_user

    with pytest.raises(ValidationError) as caught:
        _save_new_user(User(tenant=tenant, email=user.email, full_name="Twin"))
    assert caught.value.detail == {"email": [EMAIL_UNAVAILABLE]}
    with pytest.raises(IntegrityError), rls.platform_scope():  # not an e-mail problem
        _save_new_user(User(tenant=None, email="orphan@example.com", full_name="Orphan"))
