"""A contract's discussion thread: posting, mentions, the webhook event, limits and tenancy."""

import pytest

from audit.models import AuditLog
from contracts.comments import comment_add
from contracts.models import Comment
from contracts.signals import comment_added
from notifications.models import Delivery, Notification
from tests.factories import ContractFactory, UserFactory, WebhookEndpointFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def contract(tenant):
    return ContractFactory(tenant=tenant, created_by=UserFactory(tenant=tenant))


def url(contract) -> str:
    return f"/api/contracts/{contract.pk}/comments/"


def test_post_and_read_the_thread_mentions_are_notified(client, user, contract, tenant):
    colleague = UserFactory(tenant=tenant)
    WebhookEndpointFactory(tenant=tenant, events=["comment_added"])
    body = {"body": "Clause 7 caps liability too low.", "mentions": [str(colleague.pk)]}
    response = client.post(url(contract), body, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert (created["author"], created["mentions"]) == (str(user.pk), [str(colleague.pk)])
    assert client.post(url(contract), {"body": "Second"}, format="json").status_code == 201
    thread = client.get(url(contract)).json()
    assert [row["body"] for row in thread["results"]] == [body["body"], "Second"]
    (mention,) = Notification.objects.filter(notification_type="comment_mention")
    assert mention.recipient_id == colleague.pk
    assert mention.payload["comment_id"] == created["id"]
    hooks = Delivery.objects.filter(channel="webhook", event_type="comment_added")
    assert hooks.count() == 2  # one per comment; nobody's inbox gets every comment
    assert AuditLog.objects.filter(action="comment_added").count() == 2


@pytest.mark.parametrize(
    "body",
    [
        {"body": ""},
        {"body": "   "},
        {"body": "x" * 10_001},
        {"body": "Hi", "mentions": ["not-a-uuid"]},
        {"body": "Hi", "mentions": "everyone"},
        {"mentions": []},
    ],
)
def test_bad_comments_are_refused(client, contract, body):
    response = client.post(url(contract), body, format="json")
    assert response.status_code == 400
    assert response.json()["fields"]
    assert not Comment.objects.exists()


def test_mentions_are_active_members_of_the_tenant(client, contract, tenant, other_tenant):
    for stranger in (UserFactory(tenant=other_tenant), UserFactory(tenant=tenant, is_active=False)):
        body = {"body": "Hi", "mentions": [str(stranger.pk)]}
        response = client.post(url(contract), body, format="json")
        assert response.status_code == 400
        assert "mentions" in response.json()["fields"]
    assert not Comment.objects.exists()
    assert not Notification.objects.exists()


def test_another_tenants_contract_is_not_found(api_client_for, contract, other_tenant):
    stranger = api_client_for(UserFactory(tenant=other_tenant))
    assert stranger.get(url(contract)).status_code == 404
    assert stranger.post(url(contract), {"body": "Hi"}, format="json").status_code == 404
    assert not Comment.objects.exists()


def test_comments_per_contract_have_a_quota(client, contract, settings):
    settings.QUOTA_CONTRACT_COMMENTS = 1
    assert client.post(url(contract), {"body": "One"}, format="json").status_code == 201
    response = client.post(url(contract), {"body": "Two"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "quota_exceeded"


def test_the_mentions_are_written_in_the_comments_transaction(user, contract, tenant):
    """A receiver failing after notifications' took the comment and its notification back."""
    colleague = UserFactory(tenant=tenant)

    def fail(**kwargs):
        raise RuntimeError("a later receiver failed")

    comment_added.connect(fail, dispatch_uid="test.fail")
    try:
        with pytest.raises(RuntimeError):
            comment_add(
                tenant=tenant,
                contract_id=contract.pk,
                author=user,
                body="Hi",
                mentions=[colleague.pk],
            )
    finally:
        comment_added.disconnect(dispatch_uid="test.fail")
    assert not Comment.objects.exists()
    assert not Notification.objects.exists()
    assert not AuditLog.objects.filter(action="comment_added").exists()
    comment_add(
        tenant=tenant, contract_id=contract.pk, author=user, body="Hi", mentions=[colleague.pk]
    )
    assert Notification.objects.get().recipient_id == colleague.pk
