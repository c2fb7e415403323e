"""Benchmark the clause playbook against the naive one-regex-per-phrase approach.

Run from the repository root: ``python bench/bench_clauses.py``. Builds a ~1 MB synthetic contract
and 200 rules x 3 phrases, half required and half prohibited, about half of them occurring.
"""

import random
import re
import sys
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _util import best_of, print_table

from contracts.playbook import (
    MAX_OCCURRENCES_PER_RULE,
    ClauseRuleSpec,
    PhraseMatcher,
    Playbook,
)

TEXT_SIZE = 1_000_000
RULES = 200
PHRASES_PER_RULE = 3
REPEAT = 5

_COMMON_WORDS = (
    "the party shall agreement contract liability limitation of and to in any for this such "
    "other may not be by with under notice term termination law governing damages indirect "
    "confidential information services payment fees invoice days written consent breach "
    "obligations rights warranty indemnify claims losses costs provided that without"
)
COMMON = _COMMON_WORDS.split()


def _words(rng: random.Random) -> list[str]:
    syllables = ["ka", "ro", "men", "ti", "sul", "vra", "do", "lex", "pan", "qui", "ter", "no"]
    invented = {"".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(3000)}
    return sorted(invented - set(COMMON))


def build_contract(rng: random.Random, inserts: list[str]) -> str:
    """Paragraphs of wrapped sentences with headings, blank lines and the given phrases mixed in."""
    invented = _words(rng)
    paragraphs: list[str] = []
    size = 0
    section = 0
    while size < TEXT_SIZE:
        section += 1
        sentences = []
        for _ in range(rng.randint(3, 8)):
            words = [
                rng.choice(COMMON) if rng.random() < 0.6 else rng.choice(invented)
                for _ in range(rng.randint(8, 24))
            ]
            if rng.random() < 0.05:
                words.insert(rng.randrange(len(words)), rng.choice(inserts))
            sentences.append(" ".join(words).capitalize() + ".")
        body = "  ".join(sentences)
        lines, line = [], ""
        for word in body.split(" "):
            if len(line) + len(word) > 78:
                lines.append(line)
                line = ""
            line = f"{line} {word}" if line else word
        lines.append(line)
        paragraph = f"{section}. {rng.choice(invented).title()}\n" + "\n".join(lines)
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs)[:TEXT_SIZE]


def build_rules(rng: random.Random) -> tuple[list[ClauseRuleSpec], list[str]]:
    """Rules and the phrases to plant in the text (those of every other rule)."""
    invented = _words(rng)
    rules, planted = [], []
    for number in range(RULES):
        phrases = tuple(
            " ".join(rng.choice(COMMON + invented) for _ in range(rng.randint(2, 4)))
            for _ in range(PHRASES_PER_RULE)
        )
        if number % 2:
            planted.append(rng.choice(phrases).title())
        rules.append(
            ClauseRuleSpec(
                id=number,
                name=f"Clause {number}",
                kind="required" if number < RULES // 2 else "prohibited",
                patterns=phrases,
                severity=rng.choice(("info", "warning", "blocking")),
                guidance="Ask legal.",
            )
        )
    return rules, planted


def regex_for(phrase: str) -> re.Pattern[str]:
    """The naive matcher: word-bounded, case-insensitive, any whitespace between words."""
    body = r"\s+".join(map(re.escape, phrase.split()))
    return re.compile(r"\b" + body + r"\b", re.IGNORECASE)


def compile_regexes(rules: list[ClauseRuleSpec]) -> list[list[re.Pattern[str]]]:
    re.purge()  # 600 patterns overflow re's cache anyway; purge so every run really compiles
    return [[regex_for(phrase) for phrase in rule.patterns] for rule in rules]


def validate_naive(rules, regexes, text):
    """Same job as Playbook.validate: first hit for required rules, capped hits for prohibited."""
    missing, found = [], {}
    for rule, patterns in zip(rules, regexes, strict=True):
        if rule.kind == "required":
            if not any(pattern.search(text) for pattern in patterns):
                missing.append(rule.name)
        else:
            hits = [
                m.span()
                for p in patterns
                for m in islice(p.finditer(text), MAX_OCCURRENCES_PER_RULE)
            ]
            if hits:
                found[rule.name] = hits
    return missing, found


def all_hits_naive(regexes, text):
    return {m.span() for patterns in regexes for p in patterns for m in p.finditer(text)}


def main() -> None:
    rng = random.Random(20240601)
    rules, planted = build_rules(rng)
    text = build_contract(rng, planted)
    playbook = Playbook(rules)
    regexes = compile_regexes(rules)

    result = playbook.validate(text)
    missing, found = validate_naive(rules, regexes, text)
    assert result.missing_required == missing, "required-rule results differ"
    assert set(result.prohibited_found) == set(found), "prohibited-rule results differ"
    matcher = PhraseMatcher(phrase for rule in rules for phrase in rule.patterns)
    ours_hits = {(start, end) for _, start, end in matcher.find_all(text)}
    naive_hits = all_hits_naive(regexes, text)
    assert ours_hits == naive_hits, "hit sets differ"

    measures = [
        ("compile 600 phrases", lambda: Playbook(rules), lambda: compile_regexes(rules)),
        (
            "validate 1 MB",
            lambda: playbook.validate(text),
            lambda: validate_naive(rules, regexes, text),
        ),
    ]
    rows: list[list[object]] = [["measure", "ours (ms)", "baseline (ms)", "baseline/ours"]]
    for label, ours, baseline in measures:
        ours_s, baseline_s = best_of(ours, REPEAT), best_of(baseline, REPEAT)
        rows.append(
            [label, f"{ours_s * 1e3:.1f}", f"{baseline_s * 1e3:.1f}", f"{baseline_s / ours_s:.1f}x"]
        )
    print(
        f"text {len(text):,} chars, {len(rules)} rules x {PHRASES_PER_RULE} phrases, "
        f"{len(result.missing_required)} required missing, "
        f"{len(result.prohibited_found)} prohibited found, {len(naive_hits)} hits in all; "
        "results identical to the baseline"
    )
    print_table(f"Clause playbook, best of {REPEAT}", rows)


if __name__ == "__main__":
    main()
