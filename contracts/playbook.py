"""Clause playbook: check a contract text against a tenant's required/prohibited clause phrases.

Phrases are plain text, never regular expressions, so a tenant cannot make validation slow or
match more than it wrote. A :class:`Playbook` compiles all phrases of a clause library into one
Aho-Corasick automaton; validating a text is then a single pass over it, linear in its length
whatever the number of rules.

Matching semantics (binding for the API and its tests):

* Text and phrases are normalized the same way: ``str.casefold()`` and every run of whitespace
  (``str.isspace()``: spaces, tabs, ``\\r\\n``, NBSP, ...) becomes one space. Reported offsets
  always point into the *original* text.
* Casefolding is locale-independent: "ß" matches "ss", but Turkish dotless i (U+0131) does not
  match "i", and "İ" folds to "i" + U+0307 so it only matches a phrase written with "İ". A hit
  must cover whole original characters: the phrase "s" does not match half of "ß".
* A hit must stand on word boundaries: the original characters just before and after it must not
  be word characters (``str.isalnum()`` or "_"). Scripts written without spaces between words
  (Han, kana, Thai, Lao, Khmer, Myanmar) are exempt: if the neighbour or the hit's own edge
  character belongs to one of them there is always a boundary, so "責任" matches inside
  "本契約の責任制限". The text is not Unicode-normalized: a decomposed accent (combining mark) is
  not a word character, exactly as with ``re``'s ``\\b``.
* Within one prohibited rule, hits are taken in order of their end (the longest phrase first when
  several end at the same place) and a hit overlapping one already taken is skipped; at most
  ``max_occurrences_per_rule`` are reported. Different rules are independent.
"""

from __future__ import annotations

import re
import sys
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache

KINDS = ("required", "prohibited")
SEVERITIES = ("info", "warning", "blocking")
MAX_PHRASE_LENGTH = 500
MAX_OCCURRENCES_PER_RULE = 20
MEMO_ENTRIES_PER_STATE = 4  # memoized transitions per automaton state (see PhraseMatcher)
MEMO_ENTRIES_BASE = 4_096
EXCERPT_CONTEXT = 30  # characters on each side of a hit, so excerpts are about 60 + hit long

# Code point ranges of scripts written without spaces between words (see module docstring).
_UNSPACED_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3005, 0x3007),  # ideographic iteration mark, closing mark, number zero
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA9E0, 0xA9FF),  # Myanmar extended B
    (0xAA60, 0xAA7F),  # Myanmar extended A
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # halfwidth Katakana
    (0x1B000, 0x1B16F),  # Kana supplement and extensions
    (0x20000, 0x3FFFF),  # CJK extensions B and later, compatibility supplement
)
_UNSPACED_STARTS = tuple(lo for lo, _ in _UNSPACED_RANGES)
_OTHER_WHITESPACE = re.compile(r"[^\S ]")


@dataclass(frozen=True)
class ClauseRuleSpec:
    """One clause-library rule, decoupled from the ORM so the matcher stays pure Python."""

    id: object
    name: str
    kind: str
    patterns: tuple[str, ...]
    severity: str
    guidance: str = ""


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of :meth:`Playbook.validate`; ``as_dict()`` is what the API serializes."""

    valid: bool
    findings: list[dict[str, object]]
    missing_required: list[str]
    prohibited_found: list[str]
    has_blocking_findings: bool

    def as_dict(self) -> dict[str, object]:
        # Not dataclasses.asdict: that deep-copies rule ids, which may be arbitrary objects.
        return {
            "valid": self.valid,
            "findings": [dict(finding) for finding in self.findings],
            "missing_required": list(self.missing_required),
            "prohibited_found": list(self.prohibited_found),
            "has_blocking_findings": self.has_blocking_findings,
        }


def _fold(text: str) -> str:
    """Normalize a phrase: casefold, collapse whitespace runs, strip."""
    return " ".join(text.casefold().split())


def validate_phrase(phrase: str) -> str:
    """Return the normalized form of a user-entered phrase or raise ValueError saying what's wrong.

    Used by the API when a rule is saved, so a bad phrase is rejected there rather than when a
    contract is validated.
    """
    if not isinstance(phrase, str):
        raise ValueError("Phrase must be a string.")
    if "\x00" in phrase:
        raise ValueError("Phrase must not contain NUL characters.")
    if len(phrase) > MAX_PHRASE_LENGTH:
        raise ValueError(f"Phrase must be at most {MAX_PHRASE_LENGTH} characters long.")
    folded = _fold(phrase)
    if not folded:
        raise ValueError("Phrase must not be empty or only whitespace.")
    return folded


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _is_unspaced(char: str) -> bool:
    code = ord(char)
    index = bisect_right(_UNSPACED_STARTS, code) - 1
    return index >= 0 and code <= _UNSPACED_RANGES[index][1]


def _at_word_boundaries(text: str, start: int, end: int) -> bool:
    """Whether the original span ``text[start:end]`` is delimited as the module docstring says."""
    if start > 0:
        before = text[start - 1]
        if _is_word(before) and not (_is_unspaced(before) or _is_unspaced(text[start])):
            return False
    if end < len(text):
        after = text[end]
        if _is_word(after) and not (_is_unspaced(after) or _is_unspaced(text[end - 1])):
            return False
    return True


@cache
def _length_changing_spans() -> re.Pattern[str]:
    """Match what normalization shortens or lengthens: whitespace runs and expanding characters.

    Everything else maps one character to one, so only these need entries in the offset map.
    The expanding characters (ß -> ss, İ -> i̇, ...) are found by scanning all code points once
    per process (~40 ms) instead of a hand-kept table that would go stale with new Unicode data;
    no code point folds to nothing, so a chunk changes length only if it holds one of them.
    """
    expanding = []
    step = 4096
    for low in range(0, sys.maxunicode + 1, step):
        chunk = "".join(map(chr, range(low, min(low + step, sys.maxunicode + 1))))
        if len(chunk.casefold()) != len(chunk):
            expanding.extend(char for char in chunk if len(char.casefold()) != 1)
    return re.compile(r"\s{2,}|[" + "".join(map(re.escape, expanding)) + "]")


class _NormalizedText:
    """A text normalized for matching, with a piecewise map back to original offsets.

    Outside the recorded segments one normalized character is one original character, so the map
    costs memory only for whitespace runs and expanding characters, and a lookup is one bisect.
    """

    __slots__ = ("_seg_norm", "_seg_norm_len", "_seg_orig", "_seg_orig_len", "norm", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._seg_norm: list[int] = []
        self._seg_norm_len: list[int] = []
        self._seg_orig: list[int] = []
        self._seg_orig_len: list[int] = []
        pieces = []
        pos = norm_pos = 0
        for match in _length_changing_spans().finditer(text):
            start, end = match.span()
            replacement = " " if text[start].isspace() else text[start].casefold()
            norm_pos += start - pos
            self._seg_norm.append(norm_pos)
            self._seg_norm_len.append(len(replacement))
            self._seg_orig.append(start)
            self._seg_orig_len.append(end - start)
            pieces.append(text[pos:start])
            pieces.append(replacement)
            norm_pos += len(replacement)
            pos = end
        pieces.append(text[pos:])
        # Left: single whitespace characters, which become a space without changing offsets.
        self.norm = _OTHER_WHITESPACE.sub(" ", "".join(pieces).casefold())

    def _char(self, pos: int) -> tuple[int, int, bool, bool]:
        """Original span producing normalized char ``pos``; is ``pos`` its first / last char."""
        index = bisect_right(self._seg_norm, pos) - 1
        if index < 0:
            return pos, pos + 1, True, True
        offset = pos - self._seg_norm[index]
        norm_len = self._seg_norm_len[index]
        orig_end = self._seg_orig[index] + self._seg_orig_len[index]
        if offset < norm_len:
            return self._seg_orig[index], orig_end, offset == 0, offset == norm_len - 1
        orig = orig_end + offset - norm_len
        return orig, orig + 1, True, True

    def span(self, start: int, end: int) -> tuple[int, int] | None:
        """Original span of normalized ``[start, end)``; None if it splits a character."""
        if not self._seg_norm:
            return start, end
        orig_start, _, first, _ = self._char(start)
        _, orig_end, _, last = self._char(end - 1)
        return (orig_start, orig_end) if first and last else None


class PhraseMatcher:
    """Aho-Corasick automaton over normalized phrases; finds all their hits in one pass.

    The goto/fail walk is memoized into ``_delta`` as texts are scanned, so after warm-up each
    text character costs one dict lookup. Memoization is restricted to characters occurring in
    phrases (plus the root row), and to ``MEMO_ENTRIES_PER_STATE`` entries per state plus
    ``MEMO_ENTRIES_BASE`` in all: texts cannot grow a (cached) matcher towards the full automaton
    (states times alphabet, or every code point in the root row), so its memory stays
    proportional to its phrase characters; past the budget a transition is walked, not stored.
    Concurrent scans only ever store identical values, so sharing one matcher between threads is
    safe (the budget is then approximate by a few entries).
    """

    def __init__(self, phrases: Iterable[str]) -> None:
        self.phrases = tuple(_fold(phrase) for phrase in phrases)
        if not all(self.phrases):
            raise ValueError("Phrases must not be empty or only whitespace.")
        self._lengths = tuple(len(phrase) for phrase in self.phrases)
        self._alphabet = frozenset("".join(self.phrases))
        goto: list[dict[str, int]] = [{}]
        own: list[list[int]] = [[]]
        for index, phrase in enumerate(self.phrases):
            state = 0
            for char in phrase:
                following = goto[state].get(char)
                if following is None:
                    following = goto[state][char] = len(goto)
                    goto.append({})
                    own.append([])
                state = following
            own[state].append(index)
        fail = [0] * len(goto)
        # Outputs of a state: its own phrase, then (shorter) ones ending there via fail links,
        # so hits at one position come longest first.
        out: list[tuple[int, ...]] = [()] * len(goto)
        queue = deque(goto[0].values())
        for state in queue:
            out[state] = tuple(own[state])
        while queue:
            state = queue.popleft()
            for char, child in goto[state].items():
                back = fail[state]
                while back and char not in goto[back]:
                    back = fail[back]
                fail[child] = goto[back].get(char, 0)
                out[child] = tuple(own[child]) + out[fail[child]]
                queue.append(child)
        self._goto = goto
        self._fail = fail
        self._out = tuple(out)
        self._delta = [dict(row) for row in goto]
        self._memo_left = MEMO_ENTRIES_PER_STATE * len(goto) + MEMO_ENTRIES_BASE
        self._states_with: list[list[int]] = [[] for _ in self.phrases]
        for state, outputs in enumerate(out):
            for index in outputs:
                self._states_with[index].append(state)

    def _transition(self, state: int, char: str) -> int:
        if char not in self._alphabet:
            if state == 0:
                self._memoize(0, char, 0)
            return 0
        origin = state
        while char not in self._goto[state] and state:
            state = self._fail[state]
        following = self._goto[state].get(char, 0)
        self._memoize(origin, char, following)
        return following

    def _memoize(self, state: int, char: str, following: int) -> None:
        if self._memo_left > 0:
            self._memo_left -= 1
            self._delta[state][char] = following

    def memo_entries(self) -> int:
        """Transitions memoized beyond the automaton's own edges (observable in tests)."""
        return sum(map(len, self._delta)) - sum(map(len, self._goto))

    def _hits(
        self, text: _NormalizedText, out: list[tuple[int, ...]]
    ) -> Iterator[tuple[int, int, int]]:
        delta = self._delta
        lengths = self._lengths
        original = text.text
        state = 0
        for end, char in enumerate(text.norm, 1):
            try:
                state = delta[state][char]
            except KeyError:
                state = self._transition(state, char)
            if out[state]:
                for index in out[state]:
                    span = text.span(end - lengths[index], end)
                    if span is not None and _at_word_boundaries(original, *span):
                        yield index, span[0], span[1]

    def scan(self, text: str) -> _Scan:
        """Iterate ``(phrase index, start, end)`` hits in order of their end, longest first."""
        return _Scan(self, text)

    def find_all(self, text: str) -> list[tuple[int, int, int]]:
        return list(self.scan(text))


class _Scan:
    """One pass of a matcher over a text.

    ``retire()`` drops a phrase whose hits the caller no longer needs; this keeps the pass linear
    in the text even when nested phrases ("a", "a a", "a a a", ...) hit at every position.
    """

    def __init__(self, matcher: PhraseMatcher, text: str) -> None:
        self._matcher = matcher
        self._out = list(matcher._out)
        self._hits = matcher._hits(_NormalizedText(text), self._out)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        return self._hits

    def retire(self, index: int) -> None:
        for state in self._matcher._states_with[index]:
            self._out[state] = tuple(other for other in self._out[state] if other != index)


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _excerpt(text: str, start: int, end: int) -> str:
    low = max(0, start - EXCERPT_CONTEXT)
    high = min(len(text), end + EXCERPT_CONTEXT)
    prefix = "…" if low else ""
    suffix = "…" if high < len(text) else ""
    return prefix + _collapse(text[low:high]) + suffix


def _with_guidance(message: str, rule: ClauseRuleSpec) -> str:
    guidance = _collapse(rule.guidance or "")
    return f"{message} Guidance: {guidance}" if guidance else message


class Playbook:
    """A compiled clause library: build once per set of rules, then validate many texts."""

    def __init__(
        self,
        rules: Iterable[ClauseRuleSpec],
        *,
        max_occurrences_per_rule: int = MAX_OCCURRENCES_PER_RULE,
    ) -> None:
        if max_occurrences_per_rule < 1:
            raise ValueError("max_occurrences_per_rule must be at least 1.")
        self.rules = tuple(rules)
        self.max_occurrences_per_rule = max_occurrences_per_rule
        phrase_index: dict[str, int] = {}
        rules_of_phrase: list[list[int]] = []
        phrases_of_rule: list[tuple[int, ...]] = []
        for rule_index, rule in enumerate(self.rules):
            indexes = tuple(
                dict.fromkeys(
                    phrase_index.setdefault(phrase, len(phrase_index))
                    for phrase in _checked_phrases(rule)
                )
            )
            for index in indexes:
                if index == len(rules_of_phrase):
                    rules_of_phrase.append([])
                rules_of_phrase[index].append(rule_index)
            phrases_of_rule.append(indexes)
        self._matcher = PhraseMatcher(list(phrase_index))  # keys in index order
        self._rules_of_phrase = tuple(map(tuple, rules_of_phrase))
        self._phrases_of_rule = tuple(phrases_of_rule)

    def validate(self, text: str) -> ValidationResult:
        """Check one contract text; one pass, stopping early once every rule is settled."""
        if not isinstance(text, str):
            raise TypeError("Contract text must be a string.")
        rules = self.rules
        cap = self.max_occurrences_per_rule
        done = [False] * len(rules)  # required: found; prohibited: cap reached
        taken: list[list[tuple[int, int]]] = [[] for _ in rules]
        open_rules = [len(rule_indexes) for rule_indexes in self._rules_of_phrase]
        open_phrases = len(open_rules)
        scan = self._matcher.scan(text)
        for index, start, end in scan if open_phrases else ():
            for rule_index in self._rules_of_phrase[index]:
                if done[rule_index]:
                    continue
                if rules[rule_index].kind == "prohibited":
                    spans = taken[rule_index]
                    if spans and start < spans[-1][1]:
                        continue
                    spans.append((start, end))
                    if len(spans) < cap:
                        continue
                done[rule_index] = True
                for phrase in self._phrases_of_rule[rule_index]:
                    open_rules[phrase] -= 1
                    if not open_rules[phrase]:
                        scan.retire(phrase)
                        open_phrases -= 1
            if not open_phrases:
                break  # every rule is settled: the rest of the text cannot change the result
        return self._result(text, done, taken)

    def _result(
        self, text: str, done: list[bool], taken: list[list[tuple[int, int]]]
    ) -> ValidationResult:
        findings: list[dict[str, object]] = []
        missing: list[str] = []
        for rule_index, rule in enumerate(self.rules):
            if rule.kind == "required" and not done[rule_index]:
                missing.append(rule.name)
                message = _with_guidance(f"Required clause '{rule.name}' is missing.", rule)
                findings.append(_finding(rule, message, "", None, None))
        hits = sorted(
            (start, end, rule_index)
            for rule_index, spans in enumerate(taken)
            for start, end in spans
        )
        for start, end, rule_index in hits:
            rule = self.rules[rule_index]
            found = f"Prohibited clause '{rule.name}' found: \"{_collapse(text[start:end])}\"."
            message = _with_guidance(found, rule)
            findings.append(_finding(rule, message, _excerpt(text, start, end), start, end))
        prohibited = list(dict.fromkeys(self.rules[rule_index].name for _, _, rule_index in hits))
        blocking = any(finding["severity"] == "blocking" for finding in findings)
        return ValidationResult(
            valid=not blocking,
            findings=findings,
            missing_required=missing,
            prohibited_found=prohibited,
            has_blocking_findings=blocking,
        )


def _checked_phrases(rule: ClauseRuleSpec) -> list[str]:
    """Normalized phrases of a rule, or ValueError naming the rule and the problem."""
    if rule.kind not in KINDS:
        raise ValueError(f"Rule '{rule.name}': kind must be one of {', '.join(KINDS)}.")
    if rule.severity not in SEVERITIES:
        raise ValueError(f"Rule '{rule.name}': severity must be one of {', '.join(SEVERITIES)}.")
    if isinstance(rule.patterns, str):
        raise ValueError(f"Rule '{rule.name}': patterns must be a list of phrases, not a string.")
    if not rule.patterns:
        raise ValueError(f"Rule '{rule.name}': at least one phrase is required.")
    try:
        return [validate_phrase(phrase) for phrase in rule.patterns]
    except ValueError as exc:
        raise ValueError(f"Rule '{rule.name}': {exc}") from exc


def _finding(
    rule: ClauseRuleSpec, message: str, excerpt: str, start: int | None, end: int | None
) -> dict[str, object]:
    return {
        "clause": rule.name,
        "rule": rule.id,
        "severity": rule.severity,
        "message": message,
        "excerpt": excerpt,
        "start": start,
        "end": end,
    }
