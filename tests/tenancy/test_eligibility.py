"""The two forms of "who may act on this approval" (tenancy/eligibility.py) agree, case by case.

One approval row is given each shape an approval takes (a role approval, a named approver, a
delegate, the creator named, no approver at all); every user of the table is judged by the SQL
form (the pairs it returns) and by the ``Q`` form (the approvals it filters), and both must give
the expected answer.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from approvals.models import WorkflowStageApproval
from tenancy.eligibility import approval_eligible_q, eligible_approvers_sql
from tenancy.models import User
from tests.factories import UserFactory, UserRoleFactory
from tests.fixtures import define, stage, start

pytestmark = pytest.mark.django_db

# An approval's source row: the one place the SQL form learns the contract's creator.
_SOURCE = """
SELECT a.id AS key, a.tenant_id, a.role, a.assigned_to_id, c.created_by_id AS creator_id
  FROM approvals_workflowstageapproval a JOIN contracts_contract c ON c.id = a.contract_id
 WHERE a.id = %(approval)s
"""

USERS = (
    "holder",
    "holder_expiring_later",
    "holder_expired",
    "holder_inactive",
    "other_role",
    "outsider",
    "named",
    "named_inactive",
    "creator_holding_role",
)

# approval shape → the users who may act on it
CASES = {
    "role": {"holder", "holder_expiring_later"},
    "named": {"named"},
    "delegated_to_named": {"named"},
    "named_inactive": set(),
    "creator_named": set(),
    "no_approver": set(),
}


@pytest.fixture
def people(tenant):
    now = timezone.now()
    creator = UserFactory(tenant=tenant)
    UserRoleFactory(user=creator, role="legal")
    made = {"creator_holding_role": creator}

    def holding(name, role="legal", active=True, **fields):
        made[name] = UserFactory(tenant=tenant, is_active=active)
        UserRoleFactory(user=made[name], role=role, **fields)

    holding("holder")
    holding("holder_expiring_later", expires_at=now + timedelta(days=1))
    holding("holder_expired", expires_at=now - timedelta(seconds=1))
    holding("holder_inactive", active=False)
    holding("other_role", role="finance")
    made["outsider"] = UserFactory(tenant=tenant)
    made["named"] = UserFactory(tenant=tenant)
    made["named_inactive"] = UserFactory(tenant=tenant, is_active=False)
    return made


def _shape(approval, shape: str, people) -> None:
    fields = {
        "role": {"role": "legal", "assigned_to": None, "delegated_from": None},
        "named": {"role": "", "assigned_to": people["named"]},
        "delegated_to_named": {"role": "legal", "assigned_to": people["named"]},
        "named_inactive": {"role": "", "assigned_to": people["named_inactive"]},
        "creator_named": {"role": "", "assigned_to": people["creator_holding_role"]},
        "no_approver": {"role": "", "assigned_to": None},
    }[shape]
    WorkflowStageApproval.objects.filter(pk=approval.pk).update(**fields)


def _by_sql(approval) -> set:
    with connection.cursor() as cursor:
        cursor.execute(
            eligible_approvers_sql(source=_SOURCE, now="%(now)s"),
            {"approval": approval.pk, "now": timezone.now()},
        )
        return {user_id for key, user_id in cursor.fetchall() if key == approval.pk}


def _by_q(approval, people) -> set:
    return {
        user.pk
        for user in people.values()
        if WorkflowStageApproval.objects.filter(pk=approval.pk)
        .filter(approval_eligible_q(User.objects.get(pk=user.pk)))
        .exists()
    }


@pytest.mark.parametrize("shape", CASES)
def test_sql_and_q_agree_with_the_rule(shape, tenant, people):
    define(tenant, [stage("Legal", ["legal"])], contract_type="ELIG")
    contract = start(tenant, contract_type="ELIG", creator=people["creator_holding_role"])
    approval = WorkflowStageApproval.objects.get(contract=contract)
    _shape(approval, shape, people)
    expected = {people[name].pk for name in CASES[shape]}
    assert set(USERS) == set(people)

    assert _by_sql(approval) == expected
    assert _by_q(approval, people) == expected
