"""Reads of the clause library, and validation of a text against it (nothing is written).

``playbook_for`` loads the rules that apply to a contract type in one query and returns a
compiled :class:`~contracts.playbook.Playbook`. Compiling (building the phrase automaton) is the
expensive part, so compiled playbooks are kept in a process-wide LRU keyed by the *content* of
the rules loaded: the tenant and the tuple of rule specs (id, name, kind, phrases, severity,
guidance). Any change to a rule, including deactivation, deletion or a changed list of contract
types, changes the rows the query returns and therefore the key, so a stale playbook can never
be served and no explicit invalidation (signals, cache versions) is needed; unused entries age
out of the LRU, which is bounded by the characters of the cached rules (``PLAYBOOK_CACHE_CHARS``),
not by a count.
"""

from collections import OrderedDict
from threading import Lock

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from config.exceptions import QuotaExceeded
from contracts.models import ClauseRule, ClauseSeverity
from contracts.playbook import ClauseRuleSpec, Playbook, ValidationResult
from core.sql import Prepared, sql
from tenancy.models import Tenant

PLAYBOOK_ENTRY_OVERHEAD = 200  # accounted characters per cached playbook, beyond its rules


def clause_rule_list(*, tenant: Tenant) -> QuerySet[ClauseRule]:
    return ClauseRule.objects.for_tenant(tenant).select_related("created_by").order_by("name", "id")


def applicable_rules(*, tenant: Tenant, contract_type: str | None) -> list[tuple]:
    """Active rules of the tenant that apply to ``contract_type``, as ``(id, name, kind,
    patterns, severity, guidance)`` in name order.

    A rule with no contract types applies to every type; without a contract type (free text of
    unknown type) only those universal rules apply.
    """
    return _APPLICABLE_RULES.fetchall({"tenant": tenant.pk, "type": contract_type or ""})


# Raw SQL: every contract created or edited reads it, and compiling the ORM's query cost more
# client time than the rest of the clause check; prepared, as planning it cost more than running
# it (bench/bench_process.py).
_APPLICABLE_RULES = Prepared(
    sql(
        """SELECT {r.pk}, {r.name}, {r.kind}, {r.patterns}, {r.severity}, {r.guidance}
             FROM {r}
            WHERE {r.tenant} = %(tenant)s AND {r.is_active}
              AND ({r.contract_types} = '{{}}'
                   OR (%(type)s::text <> '' AND {r.contract_types} @> ARRAY[%(type)s::varchar]))
            ORDER BY {r.name}, {r.pk}""",
        r=ClauseRule,
    )
)


def spec_chars(specs: tuple[ClauseRuleSpec, ...]) -> int:
    """What a compiled playbook is accounted for: its rules' characters plus a fixed overhead.

    The automaton has about one state per phrase character; names and guidance are kept for the
    findings. The overhead bounds the number of (even empty) playbooks a budget can hold.
    """
    return PLAYBOOK_ENTRY_OVERHEAD + sum(
        len(spec.name) + len(spec.guidance) + sum(len(phrase) for phrase in spec.patterns)
        for spec in specs
    )


class _PlaybookCache:
    """A thread-safe LRU of compiled playbooks keyed by the rules they were built from.

    Bounded by memory, not by count: the accounted size (:func:`spec_chars` of every entry) never
    exceeds ``budget`` characters (default: the setting ``PLAYBOOK_CACHE_CHARS``, read at each
    insertion); least recently used entries are evicted first, and a playbook larger than the
    whole budget is compiled for its request but not kept.
    """

    def __init__(self, budget: int | None = None) -> None:
        self._budget = budget
        self._items: OrderedDict = OrderedDict()  # key -> (playbook, accounted chars)
        self._lock = Lock()
        self.size = 0  # accounted characters of the entries held
        self.compiled = 0  # how many playbooks were built (observable in tests)

    @property
    def budget(self) -> int:
        return settings.PLAYBOOK_CACHE_CHARS if self._budget is None else self._budget

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key) -> bool:
        return key in self._items

    def get(self, key, specs: tuple[ClauseRuleSpec, ...]) -> Playbook:
        with self._lock:
            entry = self._items.get(key)
            if entry is not None:
                self._items.move_to_end(key)
                return entry[0]
        playbook = Playbook(specs)  # outside the lock: compiling may take a while
        weight = spec_chars(specs)
        budget = self.budget
        with self._lock:
            self.compiled += 1
            if weight > budget or key in self._items:  # too big to keep, or a racer stored it
                return playbook
            # Room first, then the entry: `size` is read without the lock, so it must never
            # pass the budget even between two statements.
            while self.size + weight > budget:
                _, (_, evicted) = self._items.popitem(last=False)
                self.size -= evicted
            self._items[key] = (playbook, weight)
            self.size += weight
        return playbook

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.size = 0


playbook_cache = _PlaybookCache()


def playbook_for(*, tenant: Tenant, contract_type: str | None) -> Playbook:
    """The compiled playbook of the tenant's active rules for a contract type (one query).

    The compile is bounded by the phrase quota (``QUOTA_CLAUSE_PHRASE_CHARS``), which the clause
    services enforce on every write; rules stored before a lowered quota still over it are refused
    here (400 ``quota_exceeded``) rather than compiled, or silently skipped.
    """
    rows = applicable_rules(tenant=tenant, contract_type=contract_type)
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
    key = (tenant.pk, specs)
    if key not in playbook_cache:
        limit = settings.QUOTA_CLAUSE_PHRASE_CHARS
        if sum(len(phrase) for spec in specs for phrase in spec.patterns) > limit:
            raise QuotaExceeded(
                "clause_phrase_chars",
                limit,
                f"Quota 'clause_phrase_chars' exceeded: the active clause rules hold more than "
                f"{limit} phrase characters; deactivate or shorten rules.",
            )
    return playbook_cache.get(key, specs)


def clause_validate(*, tenant: Tenant, text: str, contract_type: str | None) -> ValidationResult:
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
