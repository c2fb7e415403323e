"""factory-boy factories for every model tests need. Passwords are all `FACTORY_PASSWORD`.

Each factory writes its rows past row-level security, whatever the scope of the test calling it:
building a world of several tenants is set-up, not the code under test.
"""

import factory
from factory import enums
from factory.django import DjangoModelFactory as _DjangoModelFactory

from contracts.models import ClauseRule, Contract, ContractRevision
from contracts.revisions import canonical_content, content_hash
from core import rls
from notifications.signing import secret_generate
from tenancy.models import Role, Tenant, User, UserRole

FACTORY_PASSWORD = "correct-horse-battery-staple"


class DjangoModelFactory(_DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _generate(cls, strategy, params):
        if strategy != enums.CREATE_STRATEGY:
            return super()._generate(strategy, params)
        with rls.bypass(f"test factory {cls.__name__}"):
            return super()._generate(strategy, params)


# The role catalog every factory tenant starts with: the roles the tests' stages name. (Stage
# approvers must name a catalog role; tests of that rule use slugs outside this list.)
CATALOG_ROLES = ("legal", "finance", "cfo", "ceo", "ops", "risk", "privacy", "security")


class TenantFactory(DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")
    timezone = "UTC"

    @factory.post_generation
    def role_catalog(obj, create, extracted, **kwargs):
        if create:
            Role.objects.bulk_create(
                [Role(tenant=obj, slug=slug, name=slug.title()) for slug in CATALOG_ROLES]
            )


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    tenant = factory.SubFactory(TenantFactory)
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", FACTORY_PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save(update_fields=["password"])


class UserRoleFactory(DjangoModelFactory):
    class Meta:
        model = UserRole

    user = factory.SubFactory(UserFactory)
    tenant = factory.SelfAttribute("user.tenant")
    role = "legal"
    permissions = factory.LazyFunction(list)


class ContractFactory(DjangoModelFactory):
    class Meta:
        model = Contract

    created_by = factory.SubFactory(UserFactory)
    tenant = factory.SelfAttribute("created_by.tenant")
    title = factory.Sequence(lambda n: f"Contract {n}")
    contract_type = "MSA"
    value = factory.Faker("pydecimal", left_digits=7, right_digits=2, positive=True)
    currency = "USD"
    counterparty = factory.Faker("company")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """Saved with its hash and revision 1, as ``approvals.lifecycle.contract_create`` does."""
        contract = model_class(*args, **kwargs)
        content = canonical_content(contract)
        contract.content_hash = content_hash(content)
        contract.save()
        ContractRevision.objects.create(
            tenant_id=contract.tenant_id,
            contract=contract,
            number=contract.revision,
            content_hash=contract.content_hash,
            content=content,
            created_by=contract.created_by,
        )
        return contract


class ClauseRuleFactory(DjangoModelFactory):
    """A prohibited, blocking clause rule for every contract type."""

    class Meta:
        model = ClauseRule

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Clause rule {n}")
    category = "liability"
    contract_types = factory.LazyFunction(list)
    kind = "prohibited"
    patterns = factory.LazyFunction(lambda: ["unlimited liability"])
    severity = "blocking"
    guidance = "Cap liability at the fees paid in the last 12 months."


class NotificationFactory(DjangoModelFactory):
    class Meta:
        model = "notifications.Notification"

    recipient = factory.SubFactory(UserFactory)
    tenant = factory.SelfAttribute("recipient.tenant")
    notification_type = "approval_assigned"
    title = factory.Sequence(lambda n: f"Notification {n}")
    message = "Something happened."
    payload = factory.LazyFunction(dict)


class WebhookEndpointFactory(DjangoModelFactory):
    class Meta:
        model = "notifications.WebhookEndpoint"

    tenant = factory.SubFactory(TenantFactory)
    url = factory.Sequence(lambda n: f"https://hooks{n}.example.com/clm")
    events = factory.LazyFunction(lambda: ["approval_assigned", "workflow_completed"])
    secret = factory.LazyFunction(secret_generate)
