"""manage.py check_consistency: exit status, the violations it lists, one tenant or all."""

import io

import pytest
from django.core.management import CommandError, call_command

from tests.factories import ContractFactory, UserFactory
from tests.fixtures import _row

# The check reads every tenant's rows, as ``check_consistency`` does in its bypass, and the
# hand-made corruptions are an operator's edits behind the services' back.
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.rls_bypass("the consistency check and hand-made corruption span tenants"),
]


# --- the command ------------------------------------------------------------------------------


def run(*args) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("check_consistency", *args, stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    return 0, out.getvalue()


def test_command_clean_exits_0(at_finance):
    status, output = run()
    assert status == 0
    assert output == (
        "Consistency check (all tenants): 0 violation(s) in 1 contract(s), 1 workflow(s), "
        "1 active\n"
    )


def test_command_lists_violations_and_exits_1(at_finance, tenant):
    _row(at_finance, "finance").delete()
    status, output = run()
    assert status == 1
    first, summary = output.splitlines()
    assert first.startswith(
        f"missing_approval: tenant {tenant.slug} contract {at_finance.contract_id} "
        f'workflow {at_finance.pk}: stage "Finance Approval": approver finance has 0 live row(s)'
    )
    assert summary == (
        "Consistency check (all tenants): 1 violation(s) in 1 contract(s), 1 workflow(s), 1 active"
    )


def test_command_tenant_option(at_finance, tenant, other_tenant):
    ContractFactory(created_by=UserFactory(tenant=other_tenant), status="approved")
    assert run()[0] == 1
    status, output = run("--tenant", tenant.slug)
    assert status == 0
    assert output.startswith(f"Consistency check (tenant {tenant.slug}): 0 violation(s)")
    status, output = run("--tenant", str(other_tenant.pk))
    assert status == 1
    assert output.startswith("contract_status_mismatch: ")


def test_command_unknown_tenant():
    with pytest.raises(CommandError, match="No tenant"):
        call_command("check_consistency", "--tenant", "nobody")
