"""Reads of the clause library, and validation of a text against it (nothing is written).

``playbook_for`` loads the rules that apply to a contract type in one query and returns a
compiled :class:`~contracts.playbook.Playbook`. Compiling (building the phrase automaton) is the
expensive part, so compiled playbooks are kept in a process-wide LRU keyed by the *content* of
the rules loaded: the tenant and the tuple of rule specs (id, name, kind, phrases, severity,
guidance). Any change to a rule, including deactivation, deletion or a changed list of contract
types, changes the rows the query returns and therefore the key, so a stale playbook can never
be served and no explicit invalidation (signals, cache versions) is needed; unused entries age
out of the LRU.
"""

from collections import OrderedDict
from threading import Lock

from django.db.models import Q, QuerySet
from django.utils import timezone

from contracts.models import ClauseRule, ClauseSeverity
from contracts.playbook import ClauseRuleSpec, Playbook, ValidationResult

PLAYBOOK_CACHE_SIZE = 128


def clause_rule_list(*, tenant) -> QuerySet[ClauseRule]:
    return ClauseRule.objects.for_tenant(tenant).select_related("created_by").order_by("name", "id")


def applicable_rules(*, tenant, contract_type: str | None) -> QuerySet[ClauseRule]:
    """Active rules of the tenant that apply to ``contract_type``.

    A rule with no contract types applies to every type; without a contract type (free text of
    unknown type) only those universal rules apply.
    """
    applies = Q(contract_types=[])
    if contract_type:
        applies |= Q(contract_types__contains=[contract_type])
    return (
        ClauseRule.objects.for_tenant(tenant).filter(applies, is_active=True).order_by("name", "id")
    )


class _PlaybookCache:
    """A small thread-safe LRU of compiled playbooks keyed by the rules they were built from."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = Lock()
        self.compiled = 0  # how many playbooks were built (observable in tests)

    def get(self, key, specs: tuple[ClauseRuleSpec, ...]) -> Playbook:
        with self._lock:
            playbook = self._items.get(key)
            if playbook is not None:
                self._items.move_to_end(key)
                return playbook
        playbook = Playbook(specs)  # outside the lock: compiling may take a while
        with self._lock:
            self.compiled += 1
            self._items[key] = playbook
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return playbook

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


playbook_cache = _PlaybookCache(PLAYBOOK_CACHE_SIZE)


def playbook_for(*, tenant, contract_type: str | None) -> Playbook:
    """The compiled playbook of the tenant's active rules for a contract type (one query)."""
    rows = applicable_rules(tenant=tenant, contract_type=contract_type).values_list(
        "id", "name", "kind", "patterns", "severity", "guidance"
    )
    specs = tuple(
        ClauseRuleSpec(
            id=rule_id,
            name=name,
            kind=kind,
            patterns=tuple(patterns),
            severity=severity,
            guidance=guidance,
        )
        for rule_id, name, kind, patterns, severity, guidance in rows
    )
    return playbook_cache.get((getattr(tenant, "pk", tenant), specs), specs)


def clause_validate(*, tenant, text: str, contract_type: str | None) -> ValidationResult:
    """Check ``text`` against the tenant's playbook for ``contract_type``; writes nothing."""
    playbook = playbook_for(tenant=tenant, contract_type=contract_type)
    if not playbook.rules:  # nothing to look for: skip the pass over the text
        return ValidationResult(
            valid=True,
            findings=[],
            missing_required=[],
            prohibited_found=[],
            has_blocking_findings=False,
        )
    return playbook.validate(text)


def findings_summary(result: ValidationResult, *, checked_at=None) -> dict:
    """What a stored contract keeps of a validation (``Contract.clause_findings``)."""
    severities = [finding["severity"] for finding in result.findings]
    return {
        "valid": result.valid,
        "blocking": severities.count(ClauseSeverity.BLOCKING),
        "warnings": severities.count(ClauseSeverity.WARNING),
        "info": severities.count(ClauseSeverity.INFO),
        "missing_required": list(result.missing_required),
        "prohibited_found": list(result.prohibited_found),
        "checked_at": (checked_at or timezone.now()).isoformat(),
    }
