"""Text matching: one combined pattern per phrase table, and NegEx-style context.

`PhraseMatcher` finds every whole-word occurrence of every phrase of a table in one pass (a
trie-shaped regular expression tried at each word start), so the cost is linear in the text,
not one search per phrase. `NegationRules` (terminology/negation.yaml) says whether a match is
affirmed, negated or uncertain (Chapman et al. 2001, NegEx).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

AFFIRMED = "affirmed"
NEGATED = "negated"
UNCERTAIN = "uncertain"

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE_END = re.compile(r"[.!;](?=\s|$)|\n")
_KINDS = (
    "pre_negation",
    "post_negation",
    "pre_uncertain",
    "post_uncertain",
    "pseudo",
    "termination",
)


def trie_pattern(phrases: Iterable[str]) -> str:
    """One regular expression matching any of `phrases`, factored as a trie (longest first)."""
    trie: dict[str, Any] = {}
    for phrase in phrases:
        node = trie
        for ch in phrase:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + build(node[ch]) for ch in sorted(k for k in node if k)]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return "(?:" + body + ")?" if "" in node else body

    return build(trie)


def _bounded(phrases: Iterable[str]) -> str:
    """One pattern for `phrases`, with a whole-word edge where a phrase starts or ends with a
    letter or digit (so "?" matches attached to a word: "?pneumonitis", "pneumonitis?")."""
    groups: dict[tuple[bool, bool], list[str]] = {}
    for p in sorted(set(phrases)):
        groups.setdefault((p[0] in _ALNUM, p[-1] in _ALNUM), []).append(p)
    alts = [
        ("(?<![a-z0-9])" if head else "")
        + "(?:"
        + trie_pattern(words)
        + ")"
        + ("(?![a-z0-9])" if tail else "")
        for (head, tail), words in sorted(groups.items(), reverse=True)
    ]
    return "|".join(alts) if alts else r"(?!x)x"


class PhraseMatcher:
    """Which phrases of a table occur in a text (whole words), and where each one occurs."""

    def __init__(self, phrases: Iterable[str]) -> None:
        names = sorted({p for p in phrases if p})
        body = trie_pattern(names) if names else r"(?!x)x"
        # One pass: the longest phrase at each word start, matches not overlapping.
        self._scan = re.compile(r"(?<![a-z0-9])(?:" + body + r")(?![a-z0-9])")
        self._one: dict[str, re.Pattern[str]] = {
            n: re.compile(re.escape(n) + r"(?![a-z0-9])") for n in names
        }
        # Phrases inside a longer one ("trastuzumab" in "ado-trastuzumab emtansine"), and
        # phrases that can start inside another and run past its end: those the one pass can
        # hide, so each is looked for on its own when it may be there.
        self._inner = {n: tuple(p for p in names if p != n and self._in(p, n)) for n in names}
        self._straddling = tuple(p for p in names if any(_straddles(p, n) for n in names))

    def _in(self, phrase: str, text: str) -> bool:
        return next(self.positions(phrase, text), None) is not None

    def positions(self, phrase: str, text: str) -> Iterator[tuple[int, int]]:
        """(start, end) of each whole-word occurrence of one phrase of the table."""
        for m in self._one[phrase].finditer(text):
            if m.start() == 0 or text[m.start() - 1] not in _ALNUM:
                yield m.start(), m.end()

    def present(self, text: str) -> set[str]:
        """The phrases that occur in `text`, overlapping and nested ones included."""
        found = set(self._scan.findall(text))
        for n in list(found):
            found.update(self._inner[n])
        found.update(p for p in self._straddling if p not in found and self._in(p, text))
        return found


def _straddles(phrase: str, other: str) -> bool:
    """Whether `phrase` can begin at a word start inside `other` and end after it."""
    return any(
        other[i - 1] not in _ALNUM and len(phrase) > len(other) - i and phrase.startswith(other[i:])
        for i in range(1, len(other))
    )


@dataclass(frozen=True)
class NegationRules:
    """NegEx triggers (terminology/negation.yaml): is a match affirmed, negated or uncertain?"""

    version: str
    window: int
    context_chars: int
    triggers: re.Pattern[str]
    kinds: dict[str, frozenset[str]]
    safety_concepts: frozenset[str] = frozenset()
    max_checks: int = 100

    @classmethod
    def of(cls, data: dict[str, Any]) -> NegationRules:
        kinds: dict[str, set[str]] = {}
        for kind in _KINDS:
            for phrase in data[kind]:
                kinds.setdefault(" ".join(phrase.lower().split()), set()).add(kind)
        pattern = _bounded(kinds).replace(r"\ ", r"\s+")
        return cls(
            version=str(data["version"]),
            window=int(data["window"]),
            context_chars=int(data["context_chars"]),
            triggers=re.compile(pattern),
            kinds={k: frozenset(v) for k, v in kinds.items()},
            safety_concepts=frozenset(data.get("safety_concepts", [])),
            max_checks=int(data["max_checks"]),
        )

    def _kind(self, m: re.Match[str]) -> frozenset[str]:
        return self.kinds.get(" ".join(m.group().split()), frozenset())

    def _before(self, text: str) -> set[str]:
        found: set[str] = set()
        for m in reversed(list(self.triggers.finditer(text))):
            kinds = self._kind(m)
            if "termination" in kinds:
                break
            if "pseudo" in kinds or not kinds & {"pre_negation", "pre_uncertain"}:
                continue
            if len(_WORD.findall(text, m.end())) > self.window:
                break
            found |= {NEGATED} if "pre_negation" in kinds else set()
            found |= {UNCERTAIN} if "pre_uncertain" in kinds else set()
        return found

    def _after(self, text: str) -> set[str]:
        found: set[str] = set()
        for m in self.triggers.finditer(text):
            kinds = self._kind(m)
            if "termination" in kinds:
                break
            if "pseudo" in kinds or not kinds & {"post_negation", "post_uncertain"}:
                continue
            if len(_WORD.findall(text, 0, m.start())) > self.window:
                break
            found |= {NEGATED} if "post_negation" in kinds else set()
            found |= {UNCERTAIN} if "post_uncertain" in kinds else set()
        return found

    def assertion(self, text: str, start: int, end: int) -> str:
        """AFFIRMED, NEGATED or UNCERTAIN for the match text[start:end] of a lowercase text.

        Uncertain wins over negated: an uncertain mention is said on a card, a negated one not.
        """
        before = text[max(0, start - self.context_chars) : start]
        ends = list(_SENTENCE_END.finditer(before))
        if ends:
            before = before[ends[-1].end() :]
        after = text[end : end + self.context_chars]
        stop = _SENTENCE_END.search(after)
        if stop is not None:
            after = after[: stop.start()]
        found = self._before(before) | self._after(after)
        if UNCERTAIN in found:
            return UNCERTAIN
        return NEGATED if NEGATED in found else AFFIRMED


@dataclass(frozen=True)
class Mention:
    """One phrase of a table found in a text, with how the text asserts it."""

    phrase: str
    assertion: str
    start: int


def mentions(text: str, matcher: PhraseMatcher, rules: NegationRules) -> dict[str, Mention]:
    """Per phrase found: its first affirmed occurrence, else its first uncertain, else its
    first occurrence. At most `rules.max_checks` occurrences of a phrase are read in context:
    a text that names a phrase more often than that without affirming it does not affirm it."""
    out: dict[str, Mention] = {}
    rank = {AFFIRMED: 0, UNCERTAIN: 1, NEGATED: 2}
    for phrase in matcher.present(text):
        best: Mention | None = None
        for n, (start, end) in enumerate(matcher.positions(phrase, text)):
            if n >= rules.max_checks:
                break
            how = rules.assertion(text, start, end)
            if best is None or rank[how] < rank[best.assertion]:
                best = Mention(phrase, how, start)
            if how == AFFIRMED:
                break
        if best is not None:
            out[phrase] = best
    return out


def affirmed_substring(text: str, words: Iterable[str], rules: NegationRules) -> bool:
    """Whether any of `words` occurs in `text` (as a substring) at a place not negated nor
    uncertain (specimen site words such as "metasta")."""
    for word in words:
        start = text.find(word)
        while start >= 0:
            if rules.assertion(text, start, start + len(word)) == AFFIRMED:
                return True
            start = text.find(word, start + 1)
    return False


# -- medication text ---------------------------------------------------------------------------
_STRENGTH = re.compile(
    r"\b\d+(\.\d+)?\s*(mg|mcg|g|ml|unt|units?|iu|%|mg/ml|mg/kg|mg/m2)\b|\b\d+(\.\d+)?\b"
)
_FORM_WORDS = re.compile(
    r"\b(injection|injectable|solution|suspension|powder|for|oral|tablet|tablets|capsule|capsules|"
    r"intravenous|iv|subcutaneous|sc|vial|kit|prefilled|syringe|hydrochloride|hcl|lyophilized|"
    r"reconstitution|extended|release|film|coated|chewable|product|mg|ml|per|each)\b"
)
_BIOSIMILAR_SUFFIX = re.compile(r"-(?:[a-z]{4})\b")
_NON_WORD = re.compile(r"[^a-z0-9+/\- ]+")
_SPACES = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Lowercase, strip strengths, dose forms and biosimilar suffixes (trastuzumab-dkst)."""
    t = text.lower().replace("®", " ").replace("™", " ")
    t = _NON_WORD.sub(" ", t)
    t = _BIOSIMILAR_SUFFIX.sub("", t)
    t = _STRENGTH.sub(" ", t)
    t = _FORM_WORDS.sub(" ", t)
    t = t.replace("/", " ")
    return _SPACES.sub(" ", t).strip()


def _head(text: str, limit: int) -> str:
    """The first `limit` characters, cut at a space so no word is split."""
    if len(text) <= limit:
        return text
    cut = max(text.rfind(" ", 0, limit), text.rfind("\n", 0, limit))
    return text[: cut if cut > 0 else limit]


@dataclass(frozen=True)
class MedicationText:
    """The names of the medication table, matched in one pass over the raw and the normalised
    text. Table order decides (conjugates and Phesgo before plain trastuzumab); a negated or
    uncertain name ("no trastuzumab", "? T-DXd") names no drug."""

    entries: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, ...], ...]], ...]
    matcher: PhraseMatcher
    rules: NegationRules
    # Normalisation (strengths and dose forms removed) reads at most this much of a text; the
    # raw text is always read in full (medications.yaml `normalise_max_chars`).
    normalise_max_chars: int

    @classmethod
    def of(
        cls,
        entries: Iterable[tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, ...], ...]]],
        rules: NegationRules,
        normalise_max_chars: int,
    ) -> MedicationText:
        table = tuple(entries)
        phrases = {
            n for _, names, groups in table for n in (*names, *(x for g in groups for x in g))
        }
        return cls(table, PhraseMatcher(phrases), rules, normalise_max_chars)

    def match(self, text: str) -> tuple[str, ...] | None:
        raw = mentions(text.lower(), self.matcher, self.rules)
        norm = mentions(
            normalise_text(_head(text, self.normalise_max_chars)), self.matcher, self.rules
        )

        def affirmed(name: str) -> bool:
            found = raw.get(name) or norm.get(name)  # where the raw text has it, the raw decides
            return found is not None and found.assertion == AFFIRMED

        for drugs, names, groups in self.entries:
            if any(affirmed(n) for n in names) or any(
                all(n in norm and affirmed(n) for n in g) for g in groups
            ):
                return drugs
        return None


# -- condition text ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ConditionText:
    """The text phrases of the condition table, matched in one pass per text."""

    entries: tuple[tuple[str, ...], ...]  # per table entry, its phrases
    matcher: PhraseMatcher
    rules: NegationRules

    @classmethod
    def of(cls, entries: Iterable[tuple[str, ...]], rules: NegationRules) -> ConditionText:
        table = tuple(entries)
        return cls(table, PhraseMatcher(p for e in table for p in e), rules)

    def match(self, texts: Iterable[str]) -> tuple[int | None, list[tuple[int, Mention]]]:
        """(the first table entry an affirmed phrase names, or None; the entries mentioned but
        negated or uncertain, with their mention). The first text naming an entry decides how
        the record asserts it (Condition.code.text before the codings' displays)."""
        decided: dict[int, Mention] = {}
        best: int | None = None
        for text in texts:
            found = mentions(text.lower(), self.matcher, self.rules)
            for i, phrases in enumerate(self.entries):
                hits = [found[p] for p in phrases if p in found]
                if hits and i not in decided:
                    decided[i] = min(hits, key=lambda m: (m.assertion != AFFIRMED, m.start))
            best = min((i for i, m in decided.items() if m.assertion == AFFIRMED), default=None)
            if best is not None:
                break
        dropped = [(i, decided[i]) for i in sorted(decided) if decided[i].assertion != AFFIRMED]
        return best, dropped
