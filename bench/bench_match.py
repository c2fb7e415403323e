"""Benchmark the workflow match engine against the original one-query-per-definition design.

Run from the repository root: ``python bench/bench_match.py`` (or ``make bench``). For W = 10,
100 and 1000 active definitions of one tenant, with varied rules (value thresholds,
``contract_type__in`` lists, metadata keys, some ``any``/``not`` nesting), exactly one definition
matches the contract and it has the lowest priority, so both approaches scan all W of them.

* ours: ``workflows.engine.match_engine.find_match(contract)`` (one query, compiled predicates
  cached per definition version);
* baseline: the original design, one
  ``Contract.objects.filter(id=..., **naive_filter_kwargs).exists()`` per definition in priority
  order.

Times are medians of many calls after a warm-up; queries are counted with
``CaptureQueriesContext``. Then, at W = 1000, the cold first match after a definition edit (one
predicate recompiled) and with an empty predicate cache (a fresh worker process).
"""

import os
import random
import statistics
import sys
import time
from datetime import date
from decimal import Decimal
from functools import reduce
from operator import and_, or_
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _django
from _util import median_of, ms, print_table

SIZES = (10, 100, 1000)
SEED = 20260515
# Each measurement takes about a second or two; the baseline at W=1000 costs ~0.1-0.3 s a call.
TARGET_SECONDS = 1.5
COLD_REPEAT = 15
NESTED_SHARE = 0.3
TARGET_SPEED_UP = 50

CONTRACT = {
    "title": "Master services agreement with Globex",
    "contract_type": "MSA",
    "value": Decimal("750000.00"),
    "currency": "USD",
    "counterparty": "Globex Corporation",
    "department": "sales",
    "region": "EMEA",
    "start_date": date(2026, 3, 1),
    "end_date": date(2029, 2, 28),
    "metadata": {
        "tier": "gold",
        "seats": 120,
        "auto_renew": True,
        "risk": "medium",
        "segment": "enterprise",
    },
}
# The one definition that matches; it has the lowest priority.
MATCHING_RULE = {
    "value__gte": 500000,
    "contract_type__in": ["MSA", "SOW"],
    "metadata__tier": "gold",
}

TYPES = ["NDA", "MSA", "SOW", "DPA", "Lease", "Purchase", "License", "Employment", "Reseller"]
REGIONS = ["EMEA", "NA", "APAC", "LATAM"]
DEPARTMENTS = ["sales", "procurement", "hr", "it", "marketing", "legal"]
TIERS = ["bronze", "silver", "gold", "platinum"]
RISKS = ["low", "medium", "high"]
SEGMENTS = ["smb", "midmarket", "enterprise", "public"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF"]
WORDS = ["acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "cyberdyne"]


def _some(rng: random.Random, items: list, low: int = 1, high: int = 3) -> list:
    return rng.sample(items, rng.randint(low, high))


def _amount(rng: random.Random) -> int:
    return rng.choice([10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000, 2_500_000, 5_000_000])


def _flat_rule(rng: random.Random) -> dict:
    """A plain ``field__lookup`` dict, as the original design stored them."""
    templates = [
        lambda: {"value__gte": _amount(rng), "contract_type__in": _some(rng, TYPES, 2, 4)},
        lambda: {
            "contract_type": rng.choice(TYPES),
            "region__in": _some(rng, REGIONS),
            "metadata__tier": rng.choice(TIERS),
        },
        lambda: {
            "value__range": sorted([_amount(rng), _amount(rng)]),
            "currency": rng.choice(CURRENCIES),
            "department__iexact": rng.choice(DEPARTMENTS).upper(),
        },
        lambda: {
            "metadata__seats__gte": rng.choice([50, 200, 500, 1000]),
            "metadata__segment": rng.choice(SEGMENTS),
            "counterparty__icontains": rng.choice(WORDS),
        },
        lambda: {"contract_type__in": _some(rng, TYPES), "end_date__lte": "2027-12-31"},
        lambda: {
            "region": rng.choice(REGIONS),
            "metadata__risk__in": _some(rng, RISKS, 1, 2),
            "value__lt": _amount(rng),
        },
    ]
    return rng.choice(templates)()


def _nested_rule(rng: random.Random) -> dict:
    templates = [
        lambda: {
            "contract_type__in": _some(rng, TYPES, 1, 3),
            "any": [{"value__gte": _amount(rng)}, {"metadata__risk": "high"}],
        },
        lambda: {"value__gte": _amount(rng), "not": {"region__in": _some(rng, REGIONS, 1, 3)}},
        lambda: {
            "department": rng.choice(DEPARTMENTS),
            "any": [
                {"metadata__auto_renew": False},
                {"not": {"currency__in": _some(rng, CURRENCIES, 1, 3)}},
            ],
        },
        lambda: {
            "any": [
                {"contract_type": rng.choice(TYPES), "metadata__tier": rng.choice(TIERS)},
                {"region": rng.choice(REGIONS), "value__lt": _amount(rng)},
            ]
        },
    ]
    return rng.choice(templates)()


def build_rules(rng: random.Random, count: int, matches) -> list[dict]:
    """``count`` rules none of which match (``matches`` is our predicate test), then MATCHING."""
    rules = []
    while len(rules) < count - 1:
        rule = _nested_rule(rng) if rng.random() < NESTED_SHARE else _flat_rule(rng)
        if not matches(rule):
            rules.append(rule)
    return [*rules, MATCHING_RULE]


# --- the baseline: the original design, kept ONLY here --------------------------------------


OPERATORS = ("any", "all", "not")


def naive_q(rules: dict):
    """BASELINE ONLY: a rule as Q objects, ``Q(**flat)`` combined for any/all/not."""
    from django.db.models import Q

    # BASELINE ONLY: stored keys passed straight to the ORM, see naive_find_match.
    naive_filter_kwargs = {key: value for key, value in rules.items() if key not in OPERATORS}
    q = Q(**naive_filter_kwargs)
    for key, value in rules.items():
        if key == "any":
            q &= reduce(or_, (naive_q(item) for item in value))
        elif key == "all":
            q &= reduce(and_, (naive_q(item) for item in value))
        elif key == "not":
            q &= ~naive_q(value)
    return q


def naive_find_match(contract):
    """BASELINE ONLY: the original design, one ``exists()`` query per definition.

    Never do this in application code: passing stored rule keys straight to ``filter(**...)``
    lets a rule author inject ORM arguments (CVE-2025-64459); ``workflows.rules`` replaced it.
    Here the rules are the benchmark's own, generated above.
    """
    from django.db.models import Q

    from contracts.models import Contract
    from workflows.models import WorkflowDefinition

    definitions = WorkflowDefinition.objects.filter(
        tenant_id=contract.tenant_id, is_active=True
    ).order_by("-priority", "created_at", "id")
    for definition in definitions:
        rules = definition.trigger_conditions
        # BASELINE ONLY: the plain field__lookup entries, exactly as the original design passed
        # them to filter(); any/all/not (which it could not express) as Q objects.
        naive_filter_kwargs = {key: value for key, value in rules.items() if key not in OPERATORS}
        nested = Q(*(naive_q({key: value}) for key, value in rules.items() if key in OPERATORS))
        if Contract.objects.filter(nested, id=contract.id, **naive_filter_kwargs).exists():
            return definition
    return None


# --- set-up and measurement ----------------------------------------------------------------


def build_tenant(size: int, rng: random.Random):
    from contracts.models import Contract
    from tenancy.models import Tenant, User
    from workflows.models import WorkflowDefinition
    from workflows.rules import compile_predicate, parse_rules

    tenant = Tenant.objects.create(name=f"Bench {size}", slug=f"bench-{size}")
    user = User.objects.create_user(
        f"owner{size}@bench.example", password=None, tenant=tenant, full_name="Owner"
    )
    contract = Contract.objects.create(tenant=tenant, created_by=user, **CONTRACT)
    contract.refresh_from_db()  # the values as stored (Decimal, date, JSON), as the engine sees

    def matches(rule: dict) -> bool:
        return compile_predicate(parse_rules(rule))(contract)

    rules = build_rules(rng, size, matches)
    priorities = [*rng.sample(range(1, 1_000_000), size - 1), 0]  # MATCHING_RULE is last
    WorkflowDefinition.objects.bulk_create(
        WorkflowDefinition(
            tenant=tenant,
            name=f"Workflow {number}",
            trigger_conditions=rule,
            priority=priority,
        )
        for number, (rule, priority) in enumerate(zip(rules, priorities, strict=True))
    )
    nested = sum(any(key in rule for key in ("any", "all", "not")) for rule in rules)
    return tenant, user, contract, nested


def queries_of(fn) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        fn()
    return len(captured.captured_queries)


def repeat_for(fn) -> int:
    """How many timed calls fit TARGET_SECONDS, from one probe call (at least 5, at most 500)."""
    started = time.perf_counter()
    fn()
    return max(5, min(500, int(TARGET_SECONDS / max(time.perf_counter() - started, 1e-6))))


def cold_measures(tenant, user, contract, baseline_s: float) -> list[list[object]]:
    """At the largest W: the first match after an edit, and with an empty predicate cache."""
    from workflows import engine
    from workflows.engine import match_engine
    from workflows.models import WorkflowDefinition
    from workflows.services import definition_update

    expected = match_engine.find_match(contract)
    candidates = WorkflowDefinition.objects.filter(tenant=tenant, is_active=True).exclude(
        pk=expected.pk
    )
    edited = candidates.order_by("-priority")[candidates.count() // 2]
    rules = [{"value__gte": 9_000_000, "currency": "CHF"}, edited.trigger_conditions]

    def edit(number: int) -> None:
        """A real edit through the service: validated, version bumped, audited."""
        definition_update(
            definition_id=edited.pk,
            tenant=tenant,
            updated_by=user,
            trigger_conditions=rules[number % 2],
        )

    after_edit = []
    for number in range(COLD_REPEAT):
        edit(number)
        started = time.perf_counter()
        found = match_engine.find_match(contract)
        after_edit.append(time.perf_counter() - started)
        assert found == expected, "the edit must not change the match"
    edit(COLD_REPEAT)
    edit_queries = queries_of(lambda: match_engine.find_match(contract))

    empty_cache, saved = [], engine._predicates
    try:
        for _ in range(COLD_REPEAT):
            engine._predicates = engine._PredicateCache(engine._CACHE_SIZE)  # a fresh process
            started = time.perf_counter()
            found = match_engine.find_match(contract)
            empty_cache.append(time.perf_counter() - started)
            assert found == expected
        engine._predicates = engine._PredicateCache(engine._CACHE_SIZE)
        cold_queries = queries_of(lambda: match_engine.find_match(contract))
    finally:
        engine._predicates = saved

    rows = []
    for label, times, queries in (
        ("first match after a definition edit (1 recompiled)", after_edit, edit_queries),
        (f"first match, empty predicate cache ({SIZES[-1]} compiled)", empty_cache, cold_queries),
    ):
        median = statistics.median(times)
        rows.append(
            [
                label,
                ms(median, fine=3),
                queries,
                ms(baseline_s, fine=3),
                f"{baseline_s / median:.1f}x",
            ]
        )
    return rows


def main() -> None:
    load = os.getloadavg()[0]
    _django.setup()
    from workflows.engine import match_engine

    rng = random.Random(SEED)
    rows: list[list[object]] = [
        ["W", "ours ms", "ours queries", "baseline ms", "baseline queries", "speed-up"]
    ]
    notes = []
    last = None
    for size in SIZES:
        tenant, user, contract, nested = build_tenant(size, rng)
        ours_pick = match_engine.find_match(contract)
        baseline_pick = naive_find_match(contract)
        assert ours_pick is not None, "the matching definition must match"
        assert ours_pick.pk == baseline_pick.pk, "ours and the baseline picked different ones"
        ours = lambda contract=contract: match_engine.find_match(contract)  # noqa: E731
        baseline = lambda contract=contract: naive_find_match(contract)  # noqa: E731
        ours_s = median_of(ours, repeat=repeat_for(ours), warmup=3)
        baseline_s = median_of(baseline, repeat=repeat_for(baseline), warmup=1)
        rows.append(
            [
                size,
                ms(ours_s, fine=3),
                queries_of(ours),
                ms(baseline_s, fine=3),
                queries_of(baseline),
                f"{baseline_s / ours_s:.1f}x",
            ]
        )
        notes.append(f"W={size}: {nested} nested")
        last = (tenant, user, contract, baseline_s)

    print(
        f"{_django.database_description()}; load average {load:.1f} at start on "
        f"{os.cpu_count()} CPUs; one tenant per W, exactly one matching definition "
        f"at the lowest priority; rules with any/not: {', '.join(notes)}; "
        "both approaches pick the same definition"
    )
    print_table("Match one contract against W active definitions (median per match)", rows)
    largest = rows[-1]
    speed_up = float(largest[-1].rstrip("x"))
    constant = all(row[2] == 1 for row in rows[1:])
    verdict = "met" if constant and speed_up >= TARGET_SPEED_UP else "MISSED"
    print(
        f"Target: constant queries and >= {TARGET_SPEED_UP}x at W={SIZES[-1]}: queries "
        f"{'constant (1)' if constant else 'NOT constant'}, {largest[-1]} -> {verdict}"
    )
    print()
    print_table(
        f"Cold first match at W={SIZES[-1]} (median of {COLD_REPEAT})",
        [["measure", "ours ms", "ours queries", "baseline ms", "speed-up"], *cold_measures(*last)],
    )


if __name__ == "__main__":
    main()
