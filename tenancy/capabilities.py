"""Capability strings a role can grant. Tenant admins hold all of them implicitly."""

WORKFLOWS_MANAGE = "workflows.manage"
SLA_MANAGE = "sla.manage"
ROLES_MANAGE = "roles.manage"
USERS_MANAGE = "users.manage"
AUDIT_VIEW = "audit.view"
ANALYTICS_VIEW = "analytics.view"
CLAUSES_MANAGE = "clauses.manage"
WEBHOOKS_MANAGE = "webhooks.manage"
# Edit, resubmit and amend any contract of the tenant (the creator may always edit their own).
CONTRACTS_MANAGE = "contracts.manage"

ALL_CAPABILITIES = (
    WORKFLOWS_MANAGE,
    SLA_MANAGE,
    ROLES_MANAGE,
    USERS_MANAGE,
    AUDIT_VIEW,
    ANALYTICS_VIEW,
    CLAUSES_MANAGE,
    WEBHOOKS_MANAGE,
    CONTRACTS_MANAGE,
)
CAPABILITY_CHOICES = [(capability, capability) for capability in ALL_CAPABILITIES]
