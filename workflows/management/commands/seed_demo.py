"""A demo tenant, its admin, one user per approver role, a requester, the example workflow, a
small clause playbook and the workflow routing contracts that break it to legal.

Idempotent: running it again changes nothing that is already there.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from contracts.clause_services import clause_rule_create
from contracts.models import ClauseRule
from core import rls
from tenancy.capabilities import ALL_CAPABILITIES
from tenancy.models import Tenant, User, UserRole
from workflows.models import WorkflowDefinition
from workflows.services import definition_create

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105  (a documented demo login, printed by `make run`)
DEMO_TENANT = {"slug": "acme", "name": "Acme Corp", "timezone": "America/New_York"}
# (email, full name, roles, capabilities)
DEMO_USERS = [
    ("admin@acme.example", "Ada Admin", [], list(ALL_CAPABILITIES)),
    ("legal@acme.example", "Lee Legal", ["legal"], []),
    ("finance@acme.example", "Fay Finance", ["finance"], []),
    ("cfo@acme.example", "Cole CFO", ["cfo"], ["analytics.view"]),
    ("ceo@acme.example", "Cleo CEO", ["ceo"], ["analytics.view"]),
    ("requester@acme.example", "Rae Requester", ["sales"], []),
]

# The example of docs/api.md, exactly as a configuration file would be written.
DEMO_WORKFLOW = {
    "name": "High Value Contract Approval",
    "description": "For contracts over $500k",
    "trigger_conditions": {"value__gte": 500000, "contract_type__in": ["MSA", "SOW"]},
    "stages": [
        {
            "stage_name": "Legal Review",
            "sequence": 1,
            "approvers": ["legal"],
            "approval_type": "all",
            "sla_hours": 48,
            "is_required": True,
        },
        {
            "stage_name": "Finance Approval",
            "sequence": 2,
            "approvers": ["finance", "cfo"],
            "approval_type": "any",
            "sla_hours": 24,
            "is_required": True,
        },
        {
            "stage_name": "Executive Sign-Off",
            "sequence": 3,
            "approvers": ["ceo"],
            "approval_type": "all",
            "sla_hours": 72,
            "is_required": True,
        },
    ],
    "priority": 100,
    "is_active": True,
}

# Contracts that break a blocking playbook rule (below) routed to legal, as docs/api.md shows
# ("Clause playbook").
DEMO_DEVIATION_WORKFLOW = {
    "name": "Legal deviation review",
    "description": "Contracts breaking a blocking playbook rule",
    "trigger_conditions": {"has_blocking_findings": True},
    "stages": [
        {
            "stage_name": "Legal Review",
            "sequence": 1,
            "approvers": ["legal"],
            "approval_type": "all",
            "sla_hours": 48,
        }
    ],
    "priority": 1000,
    "is_active": True,
}
DEMO_WORKFLOWS = [DEMO_WORKFLOW, DEMO_DEVIATION_WORKFLOW]

# A small clause playbook, so `validate-clauses` and contract findings show something.
DEMO_CLAUSES = [
    {
        "name": "Limitation of liability",
        "category": "Liability",
        "kind": "required",
        "patterns": ["limitation of liability", "limit of liability"],
        "contract_types": ["MSA", "SOW"],
        "severity": "warning",
        "guidance": "Cap liability at 12 months of fees.",
    },
    {
        "name": "No unlimited liability",
        "category": "Liability",
        "kind": "prohibited",
        "patterns": ["unlimited liability"],
        "severity": "blocking",
        "guidance": "Legal must approve any uncapped liability.",
    },
]


class Command(BaseCommand):
    help = "Create the demo tenant, users, roles and example workflows. Safe to run repeatedly."

    @transaction.atomic
    def handle(self, *args, **options):
        tenant, _ = Tenant.objects.get_or_create(
            slug=DEMO_TENANT["slug"],
            defaults={"name": DEMO_TENANT["name"], "timezone": DEMO_TENANT["timezone"]},
        )
        with rls.tenant_scope(tenant):
            self._seed(tenant)

    def _seed(self, tenant: Tenant) -> None:
        admin = None
        for email, full_name, roles, capabilities in DEMO_USERS:
            is_admin = email.startswith("admin@")
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(
                    email,
                    DEMO_PASSWORD,
                    tenant=tenant,
                    full_name=full_name,
                    is_tenant_admin=is_admin,
                    is_staff=is_admin,
                )
            admin = admin or user
            for role in roles:
                UserRole.objects.get_or_create(
                    tenant=tenant,
                    user=user,
                    role=role,
                    defaults={"permissions": capabilities, "assigned_by": admin},
                )
        for workflow in DEMO_WORKFLOWS:
            if not WorkflowDefinition.objects.filter(tenant=tenant, name=workflow["name"]).exists():
                definition_create(tenant=tenant, created_by=admin, **workflow)
        for clause in DEMO_CLAUSES:
            if not ClauseRule.objects.filter(tenant=tenant, name=clause["name"]).exists():
                clause_rule_create(tenant=tenant, created_by=admin, **clause)
        self.stdout.write(
            f"Demo tenant '{tenant.name}' ready: {len(DEMO_USERS)} users, password "
            f"'{DEMO_PASSWORD}'."
        )
        for email, _, roles, _ in DEMO_USERS:
            self.stdout.write(f"  {email:<26} {', '.join(roles) or 'tenant admin'}")
