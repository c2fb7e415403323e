"""Tests for the clause playbook phrase matcher (pure Python, no database)."""

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.playbook import (
    MAX_OCCURRENCES_PER_RULE,
    ClauseRuleSpec,
    PhraseMatcher,
    Playbook,
    _is_unspaced,
    validate_phrase,
)

LIMITATION = "limitation of liability"


def rule(kind, *patterns, name=None, severity="blocking", guidance="", rule_id=None):
    name = name or patterns[0].title()
    return ClauseRuleSpec(rule_id or name, name, kind, tuple(patterns), severity, guidance)


def spans(phrase, text):
    return [(start, end) for _, start, end in PhraseMatcher([phrase]).find_all(text)]


def fold(text):
    return " ".join(text.casefold().split())


# --- validate_phrase -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phrase", "normalized"),
    [
        ("  Limitation \n of\t\tLIABILITY ", LIMITATION),
        ("Straße", "strasse"),
        ("(a+)+$", "(a+)+$"),
        (".*", ".*"),
        ("x" * 500, "x" * 500),
    ],
)
def test_validate_phrase_returns_normalized_phrase(phrase, normalized):
    assert validate_phrase(phrase) == normalized


@pytest.mark.parametrize(
    ("phrase", "message"),
    [
        ("", "empty"),
        ("  \n\t\r\n ", "empty"),
        ("\u00a0\u2003", "empty"),
        ("a\x00b", "NUL"),
        ("x" * 501, "at most 500"),
        (None, "string"),
        (42, "string"),
    ],
)
def test_validate_phrase_rejects_bad_input(phrase, message):
    with pytest.raises(ValueError, match=message):
        validate_phrase(phrase)


# --- word boundaries ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phrase", "text", "expected"),
    [
        ("liability", "liability", [(0, 9)]),
        ("liability", "liability is capped", [(0, 9)]),
        ("liability", "no liability", [(3, 12)]),
        ("liability", "(liability), liability. liability;", [(1, 10), (13, 22), (24, 33)]),
        ("liability", "non-liability", [(4, 13)]),
        ("liability", "xliability", []),
        ("liability", "liabilityx", []),
        ("liability", "_liability", []),
        ("liability", "liability_", []),
        ("liability", "2liability", []),
        ("liability", "liability2", []),
        ("30 days", "within 30 days.", [(7, 14)]),
        ("30 days", "within 130 days", []),
        ("30 days", "within 30 days1", []),
        # Edges that are not word characters still need non-word neighbours.
        ("(a+)+$", "x (a+)+$ y", [(2, 8)]),
        ("(a+)+$", "x (a+)+$y", []),
        ("(a+)+$", "x(a+)+$ y", []),
        ("(a+)+$", "(a+)+$", [(0, 6)]),
    ],
)
def test_word_boundaries(phrase, text, expected):
    assert spans(phrase, text) == expected


def test_adjacent_occurrences_are_all_found():
    assert spans("fee", "fee fee,fee") == [(0, 3), (4, 7), (8, 11)]


# --- case --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phrase", "text", "expected"),
    [
        ("Liability", "LIABILITY liability LiAbIlItY", [(0, 9), (10, 19), (20, 29)]),
        # casefold: ß, ẞ and ss are the same; offsets stay those of the original text.
        ("strasse", "Straße", [(0, 6)]),
        ("straße", "STRASSE", [(0, 7)]),
        ("STRASSE", "STRA\u1e9eE", [(0, 6)]),
        ("ss", "ß", [(0, 1)]),
        ("s", "ß", []),  # a hit never covers half of a character's expansion
        ("financial", "\ufb01nancial", [(0, 8)]),  # ligature fi folds to two letters
        ("inancial", "\ufb01nancial", []),
        ("km", "5 \u212am", [(2, 4)]),  # Kelvin sign folds to k
        (  # Greek capital and final sigma both fold to sigma
            "\u03bf\u03b4\u03bf\u03c3",
            "\u039f\u0394\u039f\u03a3 \u03bf\u03b4\u03bf\u03c2",
            [(0, 4), (5, 9)],
        ),
    ],
)
def test_case_insensitive_via_casefold(phrase, text, expected):
    assert spans(phrase, text) == expected


@pytest.mark.parametrize(
    ("phrase", "text", "expected"),
    [
        # casefold is locale-independent: dotted capital I folds to "i" + combining dot above,
        # dotless i stays dotless. Turkish users must write the phrase as the text spells it.
        ("\u0130stanbul", "\u0130STANBUL", [(0, 8)]),
        ("\u0130stanbul", "ISTANBUL", []),
        ("istanbul", "\u0130stanbul", []),
        ("istanbul", "ISTANBUL", [(0, 8)]),
        ("\u0131", "i", []),
        ("\u0131", "I", []),
    ],
)
def test_turkish_dotted_and_dotless_i(phrase, text, expected):
    assert spans(phrase, text) == expected


# --- whitespace ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Limitation of Liability",
        "Limitation  of\nLiability",
        "limitation\r\nof\tliability",
        "limitation\u00a0of liability",
        "limitation \r\n\t  of\u2003\u2003liability",
    ],
)
def test_whitespace_runs_and_line_breaks_match_a_single_space(text):
    assert spans(LIMITATION, "See " + text + ".") == [(4, 4 + len(text))]
    assert spans("limitation \n\t of   liability", text) == [(0, len(text))]


def test_missing_whitespace_does_not_match():
    assert spans(LIMITATION, "limitationof liability") == []


def test_offsets_map_back_through_collapsed_whitespace_and_expansions():
    text = "Straße\r\n\r\n  und  STRASSE \t\u00a0Maß\n"
    assert spans("strasse und strasse", text) == [(0, 24)]
    assert text[0:24] == "Straße\r\n\r\n  und  STRASSE"
    assert spans("MASS", text) == [(27, 30)]
    assert text[27:30] == "Maß"


# --- unicode ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phrase", "text", "expected"),
    [
        ("résiliation", "RÉSILIATION du contrat", [(0, 11)]),
        ("resiliation", "résiliation", []),
        ("Zuständigkeit", "zuständigkeit", [(0, 13)]),
        # Emoji are not word characters, so they delimit words.
        ("liability", "🔥liability🔥", [(1, 10)]),
        ("🔥 clause", "the 🔥  clause here", [(4, 13)]),
        # CJK, kana, Thai ... are written without spaces: no boundary is needed next to them.
        ("責任", "本契約の責任制限は", [(4, 6)]),
        ("責任制限", "責任制限", [(0, 4)]),
        ("NDA", "本NDA契約", [(1, 4)]),
        ("契約", "NDA契約", [(3, 5)]),
        ("ความรับผิด", "ข้อจำกัดความรับผิดชอบ", [(8, 18)]),
        # Hangul is written with spaces, so it keeps ordinary word boundaries.
        ("계약", "계약서", []),
        ("계약", "본 계약 조항", [(2, 4)]),
    ],
)
def test_unicode_text(phrase, text, expected):
    assert spans(phrase, text) == expected


def test_decomposed_accents_are_not_word_characters():
    # Text is not Unicode-normalized; a combining mark is not alphanumeric (as with re's \b),
    # so a phrase without the accent matches a decomposed accented word. Documented limitation.
    assert spans("cafe", "cafe\u0301") == [(0, 4)]
    assert spans("café", "cafe\u0301") == []
    assert spans("cafe\u0301", "CAFE\u0301") == [(0, 5)]


def test_unspaced_scripts():
    assert all(map(_is_unspaced, "字本々カかกລကក𠀀"))
    assert not any(map(_is_unspaced, "aé한ㄱ1_ !。"))


# --- literal phrases, no regular expressions -------------------------------------------------


@pytest.mark.parametrize(
    ("phrase", "text", "expected"),
    [
        (".*", "anything goes", []),
        (".*", "pattern .* here", [(8, 10)]),
        ("(a+)+$", "aaaa", []),
        ("a|b", "a b a|b", [(4, 7)]),
        ("[x]", "x [x]", [(2, 5)]),
        ("\\b", "a \\b c", [(2, 4)]),
        ("c++", "C++ and c+", [(0, 3)]),
    ],
)
def test_regex_metacharacters_are_literal(phrase, text, expected):
    assert spans(phrase, text) == expected


def test_catastrophic_regex_phrases_stay_fast():
    rules = [rule("prohibited", "(a+)+$", "(.*a){20}", "a " * 100 + "b")]
    text = "a " * 100_000
    started = time.perf_counter()
    result = Playbook(rules).validate(text)
    assert time.perf_counter() - started < 2
    assert result.findings == []


# --- overlapping phrases, repeated phrases, cap -------------------------------------------------


def test_overlapping_phrases_of_different_rules_are_all_reported():
    playbook = Playbook(
        [
            rule("prohibited", LIMITATION, name="LoL"),
            rule("prohibited", "liability", name="Liability"),
            rule("prohibited", "limitation", name="Limitation"),
        ]
    )
    result = playbook.validate("A Limitation of Liability.")
    found = [(f["clause"], f["start"], f["end"]) for f in result.findings]
    # Findings are in document order: by start, then end, then rule order.
    assert found == [("Limitation", 2, 12), ("LoL", 2, 25), ("Liability", 16, 25)]
    assert result.prohibited_found == ["Limitation", "LoL", "Liability"]


def test_overlapping_phrases_of_one_rule_give_one_finding():
    # Hits are taken in order of their end, longest first: the containing phrase wins when both
    # end together, the earlier-ending one when they do not.
    same_end = Playbook([rule("prohibited", "liability", LIMITATION)])
    assert [(f["start"], f["end"]) for f in same_end.validate(LIMITATION).findings] == [(0, 23)]
    earlier_end = Playbook([rule("prohibited", LIMITATION, "limitation")])
    assert [(f["start"], f["end"]) for f in earlier_end.validate(LIMITATION).findings] == [(0, 10)]


def test_same_phrase_in_two_rules():
    playbook = Playbook(
        [
            rule("required", "governing law", name="Law"),
            rule("prohibited", "Governing  Law", name="No law", severity="warning"),
            rule("required", "governing law", name="Law again"),
        ]
    )
    result = playbook.validate("The governing law is Swiss.")
    assert result.missing_required == []
    assert [(f["clause"], f["start"], f["end"]) for f in result.findings] == [("No law", 4, 17)]
    assert result.valid


def test_duplicate_phrases_within_a_rule_count_once():
    result = Playbook([rule("prohibited", "fee", "FEE", " fee ")]).validate("fee")
    assert len(result.findings) == 1


def test_occurrence_cap():
    text = "penalty. " * (MAX_OCCURRENCES_PER_RULE + 5)
    result = Playbook([rule("prohibited", "penalty")]).validate(text)
    assert len(result.findings) == MAX_OCCURRENCES_PER_RULE
    assert [f["start"] for f in result.findings] == [9 * i for i in range(20)]
    capped = Playbook([rule("prohibited", "penalty")], max_occurrences_per_rule=2)
    assert len(capped.validate(text).findings) == 2
    with pytest.raises(ValueError, match="at least 1"):
        Playbook([], max_occurrences_per_rule=0)


def test_cap_is_per_rule():
    playbook = Playbook(
        [rule("prohibited", "a", name="A"), rule("prohibited", "a", name="B")],
        max_occurrences_per_rule=2,
    )
    clauses = [f["clause"] for f in playbook.validate("a a a a").findings]
    assert clauses == ["A", "B", "A", "B"]


# --- required / prohibited / valid --------------------------------------------------------------


def make_playbook():
    return Playbook(
        [
            rule(
                "required",
                LIMITATION,
                "liability cap",
                name="Limitation of Liability",
                guidance="Cap liability at 12 months of fees.",
                rule_id=1,
            ),
            rule("required", "governing law", name="Governing Law", severity="warning", rule_id=2),
            rule(
                "prohibited",
                "unlimited liability",
                name="Unlimited Liability",
                guidance="Never accept.",
                rule_id=3,
            ),
            rule(
                "prohibited",
                "auto-renew",
                "automatic renewal",
                name="Auto Renewal",
                severity="info",
                rule_id=4,
            ),
        ]
    )


def test_all_clean():
    text = "The liability cap applies.\nGoverning law: Swiss."
    result = make_playbook().validate(text)
    assert result.valid
    assert not result.has_blocking_findings
    assert result.findings == []
    assert result.missing_required == []
    assert result.prohibited_found == []


def test_missing_required_and_prohibited_found():
    text = (
        "This contract shall auto-renew yearly. The Supplier accepts Unlimited\n  Liability "
        "for everything. Automatic renewal again."
    )
    result = make_playbook().validate(text)
    assert not result.valid
    assert result.has_blocking_findings
    assert result.missing_required == ["Limitation of Liability", "Governing Law"]
    assert result.prohibited_found == ["Auto Renewal", "Unlimited Liability"]
    missing_lol, missing_law, renew, unlimited, renew_again = result.findings
    assert missing_lol == {
        "clause": "Limitation of Liability",
        "rule": 1,
        "severity": "blocking",
        "message": "Required clause 'Limitation of Liability' is missing. "
        "Guidance: Cap liability at 12 months of fees.",
        "excerpt": "",
        "start": None,
        "end": None,
    }
    assert missing_law["message"] == "Required clause 'Governing Law' is missing."
    assert (renew["rule"], renew["start"], renew["end"]) == (4, 20, 30)
    assert text[unlimited["start"] : unlimited["end"]] == "Unlimited\n  Liability"
    assert unlimited["message"] == (
        "Prohibited clause 'Unlimited Liability' found: \"Unlimited Liability\". "
        "Guidance: Never accept."
    )
    # About 30 characters of context on each side, whitespace collapsed.
    assert unlimited["excerpt"] == (
        "…yearly. The Supplier accepts Unlimited Liability for everything. Automatic ren…"
    )
    assert renew["excerpt"] == "This contract shall auto-renew yearly. The Supplier accepts…"
    assert renew_again["excerpt"].endswith("everything. Automatic renewal again.")


def test_only_non_blocking_findings_keep_the_contract_valid():
    result = make_playbook().validate("liability cap. auto-renew.")
    assert [f["severity"] for f in result.findings] == ["warning", "info"]
    assert result.valid
    assert not result.has_blocking_findings


def test_prohibited_found_deduplicates_names_in_order_of_first_occurrence():
    playbook = Playbook(
        [
            rule("prohibited", "beta", name="Same"),
            rule("prohibited", "alpha", name="Other"),
            rule("prohibited", "gamma", name="Same"),
        ]
    )
    assert playbook.validate("gamma alpha beta").prohibited_found == ["Same", "Other"]


def test_empty_text_and_empty_playbook():
    assert make_playbook().validate("").missing_required == [
        "Limitation of Liability",
        "Governing Law",
    ]
    result = Playbook([]).validate("anything")
    assert result.valid
    assert result.findings == []


def test_as_dict_and_rule_id_pass_through():
    rule_id = object()
    result = Playbook([rule("required", "x", rule_id=rule_id)]).validate("y")
    data = result.as_dict()
    assert set(data) == {
        "valid",
        "findings",
        "missing_required",
        "prohibited_found",
        "has_blocking_findings",
    }
    assert data["findings"][0]["rule"] is rule_id
    assert set(data["findings"][0]) == {
        "clause",
        "rule",
        "severity",
        "message",
        "excerpt",
        "start",
        "end",
    }


def test_playbook_is_reusable_across_texts():
    playbook = make_playbook()
    first = playbook.validate("unlimited liability, liability cap, governing law").as_dict()
    playbook.validate("nothing here")
    playbook.validate("liability cap governing law " * 50)
    assert playbook.validate("unlimited liability, liability cap, governing law").as_dict() == first


@pytest.mark.parametrize(
    ("bad_rule", "message"),
    [
        (ClauseRuleSpec(1, "R", "forbidden", ("x",), "info"), "Rule 'R': kind"),
        (ClauseRuleSpec(1, "R", "required", ("x",), "fatal"), "Rule 'R': severity"),
        (ClauseRuleSpec(1, "R", "required", "xyz", "info"), "not a string"),
        (ClauseRuleSpec(1, "R", "required", (), "info"), "at least one phrase"),
        (ClauseRuleSpec(1, "R", "required", ("ok", " "), "info"), "Rule 'R': Phrase must not"),
    ],
)
def test_invalid_rules_are_rejected(bad_rule, message):
    with pytest.raises(ValueError, match=message):
        Playbook([bad_rule])


def test_non_string_text_is_rejected():
    with pytest.raises(TypeError):
        Playbook([]).validate(b"bytes")


# --- property: the matcher agrees with a slow, obviously correct scan ---------------------------

ALPHABET = [
    "a", "b", "A", "ab", " ", "  ", "\n", "\r\n", "\t", "\u00a0", "ß", "s", "S", "\u1e9e",
    "\u0130", "i", "I", "\u0131", "\u0307", "\u01f0", "j", "\ufb01", "f", "_", "1", ".", "(",
    "*", "é", "e\u0301", "字", "本", "カ", "ก", "한", "\u0345", "\u03c2", "\u03a3", "\u03c3",
    "\u212a", "k", "🙂",
]  # fmt: skip
UNSPACED = set("字本カก")
WORD = re.compile(r"\w")

texts = st.lists(st.sampled_from(ALPHABET), max_size=14).map("".join)


def reference_hits(text, phrase):
    """Every span whose folded text equals the folded phrase, between non-word neighbours."""
    target = fold(phrase)

    def joined(outside, edge):
        return WORD.match(outside) and not ({outside, edge} & UNSPACED)

    found = []
    for start in range(len(text)):
        for end in range(start + 1, len(text) + 1):
            if text[start].isspace() or text[end - 1].isspace():
                continue
            if fold(text[start:end]) != target:
                continue
            if start and joined(text[start - 1], text[start]):
                continue
            if end < len(text) and joined(text[end], text[end - 1]):
                continue
            found.append((start, end))
    return found


@st.composite
def text_and_phrases(draw):
    text = draw(texts)
    phrases = []
    for _ in range(draw(st.integers(1, 4))):
        if text and draw(st.booleans()):
            start = draw(st.integers(0, len(text) - 1))
            phrase = text[start : draw(st.integers(start + 1, len(text)))]
        else:
            phrase = draw(texts)
        if fold(phrase):
            phrases.append(phrase)
    return text, phrases or ["a"]


@settings(max_examples=400, deadline=None)
@given(text_and_phrases())
def test_matcher_equals_reference_scan(case):
    text, phrases = case
    found = PhraseMatcher(phrases).find_all(text)
    expected = [
        (i, s, e) for i, phrase in enumerate(phrases) for s, e in reference_hits(text, phrase)
    ]
    assert sorted(found) == sorted(expected)
    # Reported in order of their end, the longest first among those ending together.
    assert [(e, s) for _, s, e in found] == sorted((e, s) for _, s, e in found)
    for index, start, end in found:
        assert fold(text[start:end]) == fold(phrases[index])


@settings(max_examples=200, deadline=None)
@given(text_and_phrases(), st.data())
def test_playbook_equals_reference_selection(case, data):
    text, phrases = case
    cap = data.draw(st.integers(1, 3))
    rules = []
    for number in range(data.draw(st.integers(1, 4))):
        patterns = data.draw(st.lists(st.sampled_from(phrases), min_size=1, max_size=3))
        kind = data.draw(st.sampled_from(["required", "prohibited"]))
        severity = data.draw(st.sampled_from(["info", "warning", "blocking"]))
        rules.append(ClauseRuleSpec(number, f"r{number}", kind, tuple(patterns), severity))
    result = Playbook(rules, max_occurrences_per_rule=cap).validate(text)

    missing, occurrences = [], []
    for number, spec in enumerate(rules):
        hits = sorted(
            {h for p in spec.patterns for h in reference_hits(text, p)}, key=lambda h: (h[1], h[0])
        )
        if spec.kind == "required":
            if not hits:
                missing.append(spec.name)
            continue
        taken = []
        for start, end in hits:
            if len(taken) < cap and not (taken and start < taken[-1][1]):
                taken.append((start, end))
        occurrences += [(start, end, number) for start, end in taken]
    occurrences.sort()
    assert result.missing_required == missing
    assert [(f["start"], f["end"], f["clause"]) for f in result.findings] == [
        (None, None, name) for name in missing
    ] + [(start, end, f"r{number}") for start, end, number in occurrences]
    assert result.prohibited_found == list(dict.fromkeys(f"r{n}" for _, _, n in occurrences))
    blocking = any(f["severity"] == "blocking" for f in result.findings)
    assert result.valid is not blocking
    assert result.has_blocking_findings is blocking
