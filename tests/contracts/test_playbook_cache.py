"""The process-wide cache of compiled playbooks is bounded by characters, not by count."""

import threading

from contracts.clause_selectors import PLAYBOOK_ENTRY_OVERHEAD, _PlaybookCache, spec_chars
from contracts.playbook import ClauseRuleSpec


def specs(n: int, chars: int) -> tuple[ClauseRuleSpec, ...]:
    """One rule of ``chars`` phrase characters (name and guidance empty, so easy to account)."""
    phrases = tuple("x" * min(400, chars - start) for start in range(0, chars, 400))
    return (ClauseRuleSpec(id=n, name="", kind="required", patterns=phrases, severity="info"),)


def test_an_entry_is_accounted_by_its_rules_characters():
    rules = (
        ClauseRuleSpec(
            id=1,
            name="Name",
            kind="required",
            patterns=("ab", "cde"),
            severity="info",
            guidance="g",
        ),
    )
    assert spec_chars(rules) == PLAYBOOK_ENTRY_OVERHEAD + 4 + 5 + 1
    assert spec_chars(()) == PLAYBOOK_ENTRY_OVERHEAD


def test_filling_past_the_budget_evicts_the_least_recently_used():
    weight = spec_chars(specs(0, 800))  # 1,000 with the overhead
    cache = _PlaybookCache(budget=3 * weight)
    for n in range(3):
        cache.get(n, specs(n, 800))
    assert len(cache) == 3
    assert cache.size == 3 * weight

    cache.get(0, specs(0, 800))  # used again: 1 is now the least recently used
    cache.get(3, specs(3, 800))

    assert 1 not in cache
    assert all(key in cache for key in (0, 2, 3))
    assert cache.size == 3 * weight
    assert cache.compiled == 4


def test_a_big_playbook_evicts_as_many_as_needed_and_one_over_budget_is_not_kept():
    cache = _PlaybookCache(budget=10_000)
    for n in range(8):
        cache.get(n, specs(n, 800))
    assert len(cache) == 8

    cache.get("big", specs(99, 6_000))  # 8,000 + 6,200: the 5 oldest go (4,200 over budget)
    assert "big" in cache
    assert [key in cache for key in range(8)] == [False] * 5 + [True] * 3
    assert cache.size <= 10_000

    playbook = cache.get("huge", specs(100, 20_000))  # compiled for its caller, not cached
    assert playbook.validate("x" * 20_000).valid
    assert "huge" not in cache
    assert "big" in cache
    assert cache.size <= 10_000


def test_the_accounted_size_never_exceeds_the_budget_under_concurrent_use():
    budget = 25_000
    cache = _PlaybookCache(budget=budget)
    seen: list[int] = []
    errors: list[Exception] = []

    def fill(offset: int) -> None:
        try:
            fill_all(offset)
        except Exception as exc:  # a thread's exception would not fail the test by itself
            errors.append(exc)

    def fill_all(offset: int) -> None:
        for n in range(60):
            cache.get((offset, n % 40), specs(n, 100 + 97 * (n % 40)))
            seen.append(cache.size)

    threads = [threading.Thread(target=fill, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert len(seen) == 240
    assert max(seen) <= budget
    assert cache.size == sum(weight for _, weight in cache._items.values())
    cache.clear()
    assert cache.size == 0
    assert len(cache) == 0


def test_the_default_budget_is_the_setting(settings):
    settings.PLAYBOOK_CACHE_CHARS = 1_234
    assert _PlaybookCache().budget == 1_234


def test_the_default_budget_holds_a_full_tenant_many_times():
    from config import settings as production_settings

    assert production_settings.PLAYBOOK_CACHE_CHARS == 4_000_000
    assert (
        production_settings.PLAYBOOK_CACHE_CHARS
        >= 20 * production_settings.QUOTA_CLAUSE_PHRASE_CHARS
    )


def test_scanning_texts_does_not_grow_a_matcher_past_its_memo_budget():
    """A cached playbook's memory stays proportional to its phrases whatever texts it scans."""
    from contracts.playbook import MEMO_ENTRIES_BASE, MEMO_ENTRIES_PER_STATE, PhraseMatcher

    matcher = PhraseMatcher(["ab", "abc", "bcd"])
    states = len(matcher._goto)
    budget = MEMO_ENTRIES_PER_STATE * states + MEMO_ENTRIES_BASE
    # Every CJK ideograph once (not in the phrases: root-row entries), then the phrases' letters.
    distinct = "".join(map(chr, range(0x4E00, 0x4E00 + 3 * budget)))

    hits = matcher.find_all(distinct + " abc bcd ab " + distinct)

    assert matcher.memo_entries() <= budget
    assert [(matcher.phrases[index], start) for index, start, _ in hits] == [
        ("abc", len(distinct) + 1),
        ("bcd", len(distinct) + 5),
        ("ab", len(distinct) + 9),
    ]
    # Past the budget the same text still matches the same (walked instead of looked up).
    assert matcher.find_all(distinct + " abc bcd ab " + distinct) == hits
