"""Writes for the clause library. Every rule is validated here (API and admin alike) and audited."""

from django.db import transaction
from django.shortcuts import get_object_or_404
from rest_framework.exceptions import ValidationError

from audit.services import audit_record, diff_fields
from config.exceptions import clash_is_invalid
from contracts.models import (
    CONTRACT_TYPE_MAX_LENGTH,
    MAX_CONTRACT_TYPES_PER_RULE,
    MAX_PATTERNS_PER_RULE,
    ClauseKind,
    ClauseRule,
    ClauseSeverity,
)
from contracts.playbook import validate_phrase
from tenancy.models import Tenant
from tenancy.quotas import lock_tenant, quota_check, quota_guard

CLAUSE_RULE_FIELDS = (
    "name",
    "category",
    "contract_types",
    "kind",
    "patterns",
    "severity",
    "guidance",
    "is_active",
)


def validated_patterns(patterns) -> list[str]:
    """Phrases as entered (trimmed), each checked by ``playbook.validate_phrase``.

    Raises a ValidationError ``{"patterns": ...}``; per-phrase messages are keyed by index.
    """
    if isinstance(patterns, str) or not isinstance(patterns, list | tuple):
        raise ValidationError({"patterns": ["Must be a list of phrases."]})
    if not 1 <= len(patterns) <= MAX_PATTERNS_PER_RULE:
        raise ValidationError(
            {"patterns": [f"Between 1 and {MAX_PATTERNS_PER_RULE} phrases are required."]}
        )
    errors = {}
    for index, phrase in enumerate(patterns):
        try:
            validate_phrase(phrase)
        except ValueError as exc:
            errors[index] = [str(exc)]
    if errors:
        raise ValidationError({"patterns": errors})
    return [phrase.strip() for phrase in patterns]


def validated_contract_types(contract_types) -> list[str]:
    """Distinct, trimmed contract types (``[]`` = the rule applies to every type)."""
    if isinstance(contract_types, str) or not isinstance(contract_types, list | tuple):
        raise ValidationError({"contract_types": ["Must be a list of contract types."]})
    cleaned = list(dict.fromkeys(str(item).strip() for item in contract_types))
    if len(cleaned) > MAX_CONTRACT_TYPES_PER_RULE:
        raise ValidationError(
            {"contract_types": [f"At most {MAX_CONTRACT_TYPES_PER_RULE} contract types."]}
        )
    for item in cleaned:
        if not item or len(item) > CONTRACT_TYPE_MAX_LENGTH or "\x00" in item:
            raise ValidationError(
                {
                    "contract_types": [
                        "Each contract type must be 1-"
                        f"{CONTRACT_TYPE_MAX_LENGTH} characters without NUL."
                    ]
                }
            )
    return cleaned


def _validated(fields: dict) -> dict:
    unknown = set(fields) - set(CLAUSE_RULE_FIELDS)
    if unknown:
        raise TypeError(f"unexpected clause rule fields {sorted(unknown)}")
    fields = dict(fields)
    if "patterns" in fields:
        fields["patterns"] = validated_patterns(fields["patterns"])
    if "contract_types" in fields:
        fields["contract_types"] = validated_contract_types(fields["contract_types"])
    if "kind" in fields and fields["kind"] not in ClauseKind.values:
        raise ValidationError({"kind": [f"Must be one of {', '.join(ClauseKind.values)}."]})
    if "severity" in fields and fields["severity"] not in ClauseSeverity.values:
        raise ValidationError({"severity": [f"Must be one of {', '.join(ClauseSeverity.values)}."]})
    return fields


def _snapshot(rule: ClauseRule) -> dict:
    return {field: getattr(rule, field) for field in CLAUSE_RULE_FIELDS}


def clause_rule_name_taken(*, tenant: Tenant, name: str, exclude_id=None) -> bool:
    rules = ClauseRule.objects.for_tenant(tenant).filter(name=name)
    if exclude_id is not None:
        rules = rules.exclude(pk=exclude_id)
    return rules.exists()


def phrase_chars(patterns) -> int:
    """What the phrase quota counts of a rule: the characters of its phrases as stored."""
    return sum(len(phrase) for phrase in patterns)


def _active_phrase_chars(*, tenant: Tenant, exclude_id=None) -> int:
    rules = ClauseRule.objects.for_tenant(tenant).filter(is_active=True)
    if exclude_id is not None:
        rules = rules.exclude(pk=exclude_id)
    return sum(phrase_chars(patterns) for patterns in rules.values_list("patterns", flat=True))


def _check_phrase_quota(*, tenant: Tenant, before: ClauseRule | None, after: ClauseRule) -> None:
    """The tenant's phrase characters over active rules once ``after`` is saved (tenant locked)."""
    others = _active_phrase_chars(tenant=tenant, exclude_id=after.pk)
    own_before = phrase_chars(before.patterns) if before is not None and before.is_active else 0
    own_after = phrase_chars(after.patterns) if after.is_active else 0
    quota_check("clause_phrase_chars", after=others + own_after, before=others + own_before)


def _save_unique(rule: ClauseRule) -> None:
    with clash_is_invalid({"name": ["A clause rule with this name already exists."]}):
        rule.save()


@transaction.atomic
def clause_rule_create(
    *,
    tenant: Tenant,
    created_by,
    name: str,
    kind: str,
    patterns: list[str],
    category: str = "",
    contract_types: list[str] | None = None,
    severity: str = ClauseSeverity.WARNING,
    guidance: str = "",
    is_active: bool = True,
) -> ClauseRule:
    fields = _validated(
        {
            "name": name,
            "category": category,
            "contract_types": [] if contract_types is None else contract_types,
            "kind": kind,
            "patterns": patterns,
            "severity": severity,
            "guidance": guidance,
            "is_active": is_active,
        }
    )
    rule = ClauseRule(tenant=tenant, created_by=created_by, **fields)
    quota_guard("clause_rules", tenant=tenant, rows=ClauseRule.objects.for_tenant(tenant))
    _check_phrase_quota(tenant=tenant, before=None, after=rule)
    _save_unique(rule)
    audit_record(
        action="clause_rule_created",
        tenant=tenant,
        actor=created_by,
        resource=rule,
        changes={field: [None, value] for field, value in _snapshot(rule).items()},
    )
    return rule


@transaction.atomic
def clause_rule_update(*, tenant: Tenant, rule_id, updated_by, **fields) -> ClauseRule:
    """Apply a (partial) edit; audited with the changed fields only."""
    lock_tenant(tenant)  # first, as every quota-checked write: one lock order
    rule = get_object_or_404(ClauseRule.objects.for_tenant(tenant).select_for_update(), pk=rule_id)
    fields = _validated(fields)
    before = _snapshot(rule)
    stored = ClauseRule(pk=rule.pk, patterns=rule.patterns, is_active=rule.is_active)
    for field, value in fields.items():
        setattr(rule, field, value)
    changes = diff_fields(before, _snapshot(rule))
    if changes:
        if "patterns" in changes or "is_active" in changes:
            _check_phrase_quota(tenant=tenant, before=stored, after=rule)
        _save_unique(rule)  # bumps updated_at, so the playbook of the new rules is compiled
        audit_record(
            action="clause_rule_updated",
            tenant=tenant,
            actor=updated_by,
            resource=rule,
            changes=changes,
        )
    return rule


@transaction.atomic
def clause_rule_delete(*, tenant: Tenant, rule_id, deleted_by) -> None:
    rule = get_object_or_404(ClauseRule.objects.for_tenant(tenant).select_for_update(), pk=rule_id)
    audit_record(
        action="clause_rule_deleted",
        tenant=tenant,
        actor=deleted_by,
        resource=rule,
        changes={field: [value, None] for field, value in _snapshot(rule).items()},
    )
    rule.delete()
