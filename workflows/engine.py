"""The match engine: which active definition of a tenant a contract goes to.

One query loads the tenant's active definitions in priority order (highest first, ties to the
older one); each definition's rule is compiled once per (id, version) and cached in the process,
then evaluated in Python against the contract. The cost is one query whatever the number of
definitions, instead of one query per definition.
"""

import logging
from collections import OrderedDict
from functools import reduce
from operator import or_
from threading import Lock

from django.db.models import Q

from core.sql import Prepared, sql
from workflows.models import WorkflowDefinition
from workflows.rules import RuleValidationError, compile_predicate, parse_rules

logger = logging.getLogger(__name__)

_CACHE_SIZE = 20_000


_INVALID = object()  # cached for rules that fail validation, so they are not re-parsed


class _PredicateCache:
    """A small thread-safe LRU of compiled predicates keyed by (definition id, version).

    Versions never change their rules (every edit bumps ``version``), so an entry never goes
    stale; an edited definition simply gets a new key.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = Lock()

    def lookup(self, keys) -> tuple[dict, list]:
        """The cached predicates among ``keys``, and the keys that are not cached."""
        found, missing = {}, []
        with self._lock:
            for key in keys:
                predicate = self._items.get(key)
                if predicate is None:
                    missing.append(key)
                else:
                    self._items.move_to_end(key)
                    found[key] = predicate
        return found, missing

    def compile(self, key, trigger_conditions) -> object:
        try:
            predicate = compile_predicate(parse_rules(trigger_conditions))
        except RuleValidationError:
            # Rules are validated when saved; a row edited behind the service's back never matches.
            logger.warning(
                "skipping workflow definition with invalid stored rules",
                extra={"definition_id": str(key[0])},
            )
            predicate = _INVALID
        with self._lock:
            self._items[key] = predicate
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return predicate


_predicates = _PredicateCache(_CACHE_SIZE)

_CANDIDATE_FIELDS = ("id", "version", "name", "priority", "tenant_id", "is_active")


def active_definitions(tenant_id) -> list[tuple]:
    """The tenant's active definitions in match order, without their rules (one query): a
    tuple of ``_CANDIDATE_FIELDS`` each."""
    return _ACTIVE_DEFINITIONS.fetchall({"tenant": tenant_id})


# Raw SQL: every contract created or edited reads it, and compiling the ORM's query cost more
# client time than matching; prepared, as planning it cost more than running it
# (bench/bench_process.py).
_ACTIVE_DEFINITIONS = Prepared(
    sql(
        f"SELECT {', '.join(f'{{d.{name}}}' for name in _CANDIDATE_FIELDS)}"  # noqa: S608 (names)
        """ FROM {d} WHERE {d.tenant} = %(tenant)s AND {d.is_active}
            ORDER BY {d.priority} DESC, {d.created_at}, {d.pk}""",
        d=WorkflowDefinition,
    )
)


class WorkflowMatchEngine:
    def find_match(self, contract) -> WorkflowDefinition | None:
        """The highest-priority active definition of the contract's tenant that matches it.

        One query lists the candidates (ids and versions, not their rules); rules are loaded and
        compiled only for versions this process has not seen yet (a second query, then cached).
        """
        candidates = active_definitions(contract.tenant_id)
        predicates, missing = _predicates.lookup([(row[0], row[1]) for row in candidates])
        if missing:
            # Keyed by id *and* version: an edit committed since the first query is not cached
            # under the old version (that candidate is skipped this once).
            wanted = reduce(or_, (Q(pk=pk, version=version) for pk, version in missing))
            rules = WorkflowDefinition.objects.filter(wanted).values_list(
                "id", "version", "trigger_conditions"
            )
            for pk, version, conditions in rules:
                predicates[(pk, version)] = _predicates.compile((pk, version), conditions)
        for row in candidates:
            predicate = predicates.get((row[0], row[1]), _INVALID)
            if predicate is not _INVALID and predicate(contract):
                return WorkflowDefinition(**dict(zip(_CANDIDATE_FIELDS, row, strict=True)))
        return None


match_engine = WorkflowMatchEngine()
