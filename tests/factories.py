"""factory-boy factories for every model tests need. Passwords are all `FACTORY_PASSWORD`."""

import factory
from factory.django import DjangoModelFactory

from contracts.models import Contract
from tenancy.models import Tenant, User, UserRole

FACTORY_PASSWORD = "correct-horse-battery-staple"


class TenantFactory(DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")
    timezone = "UTC"


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
