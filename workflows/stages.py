"""Validation of a definition's stages, shared by the API and the admin."""

import difflib
import re
import uuid
from collections.abc import Iterable

from rest_framework.exceptions import ValidationError

from contracts.models import BUSINESS_FIELDS
from tenancy.approvers import MANAGER, USER_APPROVER_PREFIX, split_approver
from tenancy.models import Tenant, User
from tenancy.roles import catalog_slugs
from workflows.models import (
    MAX_APPROVERS_PER_STAGE,
    MAX_STAGES,
    RESET_ANY,
    RESET_NEVER,
    ApprovalType,
)

ROLE_SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")


def parse_approver(entry: str) -> tuple[str, uuid.UUID | None]:
    """``("legal", None)`` for a role, ``("", <uuid>)`` for ``user:<uuid>``, else ValueError."""
    role, user_id = split_approver(entry)
    if user_id is None and not ROLE_SLUG_PATTERN.match(role):
        raise ValueError(entry)
    return role, user_id


def validate_stages(stages: list[dict], *, tenant: Tenant) -> list[dict]:
    """Cross-field rules on already type-checked stages; returns them normalized.

    Errors are keyed ``stages`` or ``stages[i].<field>`` so the caller sees which one is wrong.
    """
    if not 1 <= len(stages) <= MAX_STAGES:
        raise ValidationError({"stages": [f"Between 1 and {MAX_STAGES} stages are required."]})
    errors: dict[str, list[str]] = {}
    named_users: dict[uuid.UUID, list[str]] = {}
    named_roles: dict[str, list[str]] = {}
    seen_names: set[str] = set()
    normalized = []
    for index, stage in enumerate(stages):
        where = f"stages[{index}]"
        name = stage["stage_name"].strip()
        if name.lower() in seen_names:
            errors[f"{where}.stage_name"] = [f"Duplicate stage name '{name}'."]
        seen_names.add(name.lower())
        approvers = _normalized_approvers(
            stage["approvers"], where, errors, named_users, named_roles
        )
        approval_type = stage.get("approval_type", ApprovalType.ALL)
        min_approvals = stage.get("min_approvals")
        if approval_type == ApprovalType.QUORUM:
            if min_approvals is None or not 1 <= min_approvals <= len(approvers):
                errors[f"{where}.min_approvals"] = [
                    f"A quorum stage needs min_approvals between 1 and {len(approvers)} "
                    "(its number of approvers)."
                ]
        elif min_approvals is not None:
            errors[f"{where}.min_approvals"] = ["Only quorum stages take min_approvals."]
        normalized.append(
            {
                "stage_name": name,
                "sequence": stage["sequence"],
                "approvers": approvers,
                "approval_type": approval_type,
                "min_approvals": min_approvals if approval_type == ApprovalType.QUORUM else None,
                "sla_hours": stage.get("sla_hours"),
                "is_required": stage.get("is_required", True),
                "reset_on_change": _normalized_reset_policy(
                    stage.get("reset_on_change", RESET_ANY), where, errors
                ),
            }
        )
    _check_named_users(named_users, tenant, errors)
    _check_catalog_roles(named_roles, tenant, errors)
    if errors:
        raise ValidationError(errors)
    return sorted(normalized, key=lambda stage: stage["sequence"])


def _normalized_reset_policy(policy, where, errors):
    """``"any"``, ``"never"`` or a non-empty list of business fields (sorted, no duplicates)."""
    if policy in (RESET_ANY, RESET_NEVER):
        return policy
    if not isinstance(policy, list) or not policy:
        errors[f"{where}.reset_on_change"] = [
            '"any", "never" or a non-empty list of business field names.'
        ]
        return RESET_ANY
    unknown = [field for field in policy if field not in BUSINESS_FIELDS]
    if unknown:
        errors[f"{where}.reset_on_change"] = [
            f"{str(unknown[0])[:80]!r} is not a business field; use: {', '.join(BUSINESS_FIELDS)}."
        ]
        return RESET_ANY
    return [field for field in BUSINESS_FIELDS if field in policy]


def reset_fires(policy, changed: Iterable[str]) -> bool:
    """Whether a stage with reset ``policy`` re-opens its decisions when ``changed`` changed."""
    changed = set(changed)
    if not changed or policy == RESET_NEVER:
        return False
    if policy == RESET_ANY:
        return True
    return bool(changed.intersection(policy))


def _normalized_approvers(
    entries: Iterable[str], where, errors, named_users, named_roles
) -> list[str]:
    approvers: list[str] = []
    for entry in entries:
        candidate = entry.strip().lower()
        try:
            role, user_id = parse_approver(candidate)
        except ValueError:
            errors[f"{where}.approvers"] = [
                f"'{entry[:80]}' is neither a role slug (lower-case letters, digits, - and _), "
                "'user:<uuid>' nor 'manager'."
            ]
            continue
        normalized = f"{USER_APPROVER_PREFIX}{user_id}" if user_id else role
        if normalized in approvers:
            errors[f"{where}.approvers"] = [f"'{normalized}' is listed twice."]
        approvers.append(normalized)
        if user_id:
            named_users.setdefault(user_id, []).append(where)
        elif role != MANAGER:
            named_roles.setdefault(role, []).append(where)
    if not 1 <= len(approvers) <= MAX_APPROVERS_PER_STAGE:
        errors.setdefault(
            f"{where}.approvers", [f"Between 1 and {MAX_APPROVERS_PER_STAGE} approvers."]
        )
    return approvers


def _check_named_users(named_users: dict, tenant: Tenant, errors) -> None:
    if not named_users:
        return
    known = set(
        User.objects.filter(tenant=tenant, is_active=True, pk__in=named_users).values_list(
            "pk", flat=True
        )
    )
    for user_id, places in named_users.items():
        if user_id not in known:
            for where in places:
                errors[f"{where}.approvers"] = [
                    f"user:{user_id} is not an active user of this tenant."
                ]


def _check_catalog_roles(named_roles: dict, tenant, errors) -> None:
    """Every role entry names a role of the tenant's catalog: a typo ("legall") would start
    workflows nobody can approve."""
    if not named_roles:
        return
    known = catalog_slugs(tenant=tenant)
    for slug, places in named_roles.items():
        if slug in known:
            continue
        close = difflib.get_close_matches(slug, sorted(known), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        for where in places:
            errors[f"{where}.approvers"] = [
                f"'{slug}' is not a role of this tenant's catalog (/api/admin/roles/), "
                f"'user:<uuid>' or 'manager'.{hint}"
            ]
