"""The match engine: which active definition of a tenant a contract goes to.

One query loads the tenant's active definitions in priority order (highest first, ties to the
older one); each definition's rule is compiled once per (id, version) and cached in the process,
then evaluated in Python against the contract. The cost is one query whatever the number of
definitions, instead of one query per definition.
"""

import logging
from collections import OrderedDict
from collections.abc import Callable
from threading import Lock

from workflows.models import WorkflowDefinition
from workflows.rules import RuleValidationError, compile_predicate, parse_rules

logger = logging.getLogger(__name__)

_CACHE_SIZE = 20_000


class _PredicateCache:
    """A small thread-safe LRU of compiled predicates keyed by (definition id, version)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = Lock()

    def get(self, definition) -> Callable | None:
        key = (definition.pk, definition.version)
        with self._lock:
            predicate = self._items.get(key)
            if predicate is not None:
                self._items.move_to_end(key)
                return predicate
        try:
            predicate = compile_predicate(parse_rules(definition.trigger_conditions))
        except RuleValidationError:
            # Rules are validated when saved; a row edited behind the service's back never matches.
            logger.warning(
                "skipping workflow definition with invalid stored rules",
                extra={"definition_id": str(definition.pk)},
            )
            return None
        with self._lock:
            self._items[key] = predicate
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return predicate


_predicates = _PredicateCache(_CACHE_SIZE)


def active_definitions(tenant_id):
    return (
        WorkflowDefinition.objects.filter(tenant_id=tenant_id, is_active=True)
        .order_by("-priority", "created_at", "id")
        .only(
            "id",
            "tenant_id",
            "name",
            "version",
            "priority",
            "trigger_conditions",
            "created_at",
            "is_active",  # workflow_start reads it; deferred, it cost one query per start
        )
    )


class WorkflowMatchEngine:
    def find_match(self, contract) -> WorkflowDefinition | None:
        """The highest-priority active definition of the contract's tenant that matches it."""
        for definition in active_definitions(contract.tenant_id):
            predicate = _predicates.get(definition)
            if predicate is not None and predicate(contract):
                return definition
        return None


match_engine = WorkflowMatchEngine()
