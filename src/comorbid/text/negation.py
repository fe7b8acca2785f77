"""Negated and uncertain mentions in clinical text (NegEx with an uncertainty class).

Method: NegEx, Chapman et al., "A simple algorithm for identifying negated findings and
diseases in discharge summaries", J Biomed Inform 34(5), 2001; its trigger lists (v1.2,
github.com/chapmanbe/negex) extended with the "possible/hypothetical" class of ConText, Harkema
et al., "ConText: an algorithm for determining negation, experiencer, and temporal status from
clinical reports", J Biomed Inform 42(5), 2009, and with phrases of the CMC 2007 radiology
reports (Pestian et al., BioNLP 2007).

Why an uncertainty class: the ICD-9-CM Official Guidelines for Coding and Reporting (Section
IV.H, outpatient services, which radiology reports are) say "Do not code diagnoses documented as
'probable', 'suspected', 'questionable', 'rule out', or 'working diagnosis' or other similar
terms indicating uncertainty. Rather, code the condition(s) to the highest degree of certainty
for that encounter/visit, such as symptoms, signs ...". CMC's gold codes follow this: "Findings
most consistent with right lower lobe round pneumonia" is coded 780.6 (fever) and 786.2 (cough)
from the history, not 486 (pneumonia). Farkas & Szarvas ("Automatic construction of rule-based
ICD-9-CM coding systems", BMC Bioinformatics 9(Suppl 3), 2008) got their best CMC results by
dropping negated and speculative mentions.

Algorithm, per sentence/clause (see :func:`comorbid.text.tokens.split_sentences`):

1. Find trigger phrases left to right, the longest phrase first at each word.
2. A forward trigger ("no", "possible") scopes the next ``window`` words; a backward trigger
   ("resolved", "cannot be excluded") the previous ``window`` words; a two-way trigger ("vs",
   "absent") both. A scope stops early at the clause end or at any other trigger phrase
   (termination terms such as "but", pseudo-triggers such as "no change", or another negation or
   uncertainty trigger), as in NegEx.
3. A word in a negation scope is ``"negated"``; otherwise one in an uncertainty scope is
   ``"uncertain"``; otherwise ``"affirmed"``. Trigger words are not in scopes; their ``trigger``
   field names their class.

Window: 6 words (NegEx used 5 historically). Six lets radiology's adjective chains through:
"No focal consolidation to suggest pneumonia", "pneumonia in the right upper lobe cannot be
excluded".

Deliberate departures from NegEx (each checked against CMC reports):

* "evaluate for", "rule out", "to exclude", "test for", "checked for" are uncertainty (a reason
  for the exam), not negation; "ruled out" stays negation.
* "free" alone is not a post-negation trigger ("free pelvic fluid" is a finding); "free of" is.
  Nor is "negative" alone ("recurrent urinary tract infection, despite negative previous
  workup"); "is/was/are negative" and "negative for" are. "despite" ends scopes.
* Embedded phrases "to suggest", "to indicate", "to support", "to account for", "to explain"
  are neither triggers nor scope ends, so "No findings to suggest croup" negates croup.
* "not certain whether/if" (NegEx pseudo-negations) are uncertainty triggers.
* Pseudo-triggers also cover "not seen on prior ..." (a new finding) and "not resolved".
* "X or Y" is not treated as uncertain (it also lists negated findings: "no fever or cough");
  "vs"/"versus" is.
"""

from __future__ import annotations

from typing import Iterable, Literal, NamedTuple

from .tokens import split_sentences, word_spans

__all__ = [
    "Token",
    "annotate",
    "mark_scopes",
    "PRE_NEGATION",
    "POST_NEGATION",
    "TWO_WAY_NEGATION",
    "PRE_UNCERTAINTY",
    "POST_UNCERTAINTY",
    "TWO_WAY_UNCERTAINTY",
    "PSEUDO",
    "EMBEDDED",
    "TERMINATION",
    "DEFAULT_WINDOW",
]

Status = Literal["affirmed", "negated", "uncertain"]

DEFAULT_WINDOW = 6

# --- Trigger lists (phrases are tokenised like the text: "r/o" == "r o", "x-ray" == "x ray") ---

PRE_NEGATION: tuple[str, ...] = (
    "no", "not", "without", "denies", "denied", "denying", "declines", "declined", "absence of",
    "negative for", "free of", "clear of", "no evidence", "no evidence of", "no sign of",
    "no signs of", "no findings of", "no suggestion of", "no radiographic evidence of",
    "without evidence of", "without any evidence of", "without sign of", "without signs of",
    "without indication of", "no new", "no other evidence", "rather than", "ruled out",
    "rules out", "ruled out for", "not see", "not demonstrate", "not appreciate", "not reveal",
    "fails to reveal", "unremarkable for", "never developed", "never had", "cannot", "cannot see",
    "resolution of", "interval resolution of", "complete resolution of", "no longer",
)  # fmt: skip

POST_NEGATION: tuple[str, ...] = (
    "unlikely", "was negative", "is negative", "are negative", "was ruled out",
    "is ruled out", "are ruled out", "has been ruled out", "have been ruled out", "not seen",
    "not visualized", "not identified", "not demonstrated", "not appreciated", "not present",
    "not evident", "not detected", "no longer seen", "no longer visualized",
    "no longer identified", "no longer present", "no longer evident", "has resolved",
    "have resolved", "is resolved", "are resolved",
)  # fmt: skip

TWO_WAY_NEGATION: tuple[str, ...] = ("resolved", "absent")

PRE_UNCERTAINTY: tuple[str, ...] = (
    "possible", "possibly", "probable", "probably", "questionable", "question", "question of",
    "questioned", "query", "suspect", "suspected", "suspicious for", "suspicion of", "concern for",
    "concerning for", "worrisome for", "may", "might", "could", "likely", "most likely",
    "presumed", "presumably", "suggest", "suggests", "suggesting", "suggestive of",
    "suggestion of", "consistent with", "most consistent with", "compatible with",
    "in keeping with", "raises the question of", "raising the question of", "rule out", "r o",
    "to rule out", "evaluate for", "evaluation for", "eval for", "assess for", "to exclude",
    "exclude", "cannot exclude", "can not exclude", "cannot rule out", "can not rule out",
    "test for", "checked for", "differential", "differential diagnosis", "differential includes",
    "uncertain", "uncertain whether", "uncertain if", "not certain", "not certain whether",
    "not certain if", "not sure", "not clear whether", "unclear whether", "unclear if",
)  # fmt: skip

POST_UNCERTAINTY: tuple[str, ...] = (
    "?", "cannot be excluded", "can not be excluded", "not excluded", "cannot be ruled out",
    "can not be ruled out", "not ruled out", "not been ruled out", "be ruled out",
    "is not excluded", "is possible", "is likely", "is suspected", "is questioned",
    "should be considered", "must be considered",
)  # fmt: skip

TWO_WAY_UNCERTAINTY: tuple[str, ...] = ("vs", "versus")

# Look like triggers but are not, and end any open scope (NegEx pseudo-negations and more).
PSEUDO: tuple[str, ...] = (
    "no increase", "no suspicious change", "no significant change", "no change",
    "no interval change", "no definite change", "no significant interval change",
    "no further", "without further", "without any further", "not extend", "not cause",
    "not drain", "gram negative", "without difficulty",
    "not necessarily", "not only", "not changed", "not significantly changed", "not resolved",
    "not been resolved", "not seen on prior", "not seen on the prior", "not seen previously",
    "not previously seen", "not present on prior", "not present previously", "free fluid",
)  # fmt: skip

# Neither triggers nor scope ends: they sit inside a negation ("no findings to suggest croup").
EMBEDDED: tuple[str, ...] = (
    "to suggest", "to indicate", "to support", "to account for", "to explain",
)  # fmt: skip

TERMINATION: tuple[str, ...] = (
    "but", "however", "nevertheless", "yet", "though", "although", "still", "despite", "aside from",
    "except", "apart from", "secondary to", "as the cause of", "as the source of",
    "as the etiology of", "as the reason for", "cause of", "cause for", "source of",
    "etiology of", "reason for", "origin of", "other possibilities of",
)  # fmt: skip


class Token(NamedTuple):
    """A word of the text, where it is, and whether it is negated or uncertain.

    Attributes:
        text: the word as written (``text == source[start:end]``).
        start: offset of its first character in the text given to :func:`annotate`.
        end: offset just after its last character.
        status: ``"affirmed"``, ``"negated"`` or ``"uncertain"``.
        trigger: for words of a trigger phrase, its class (``"pre_negation"``,
            ``"post_uncertainty"``, ``"pseudo"``, ``"termination"``, ...); else ``None``.
    """

    text: str
    start: int
    end: int
    status: Status
    trigger: str | None = None


class _Trigger(NamedTuple):
    words: tuple[str, ...]
    kind: str  # class name reported in Token.trigger
    polarity: str | None  # "negated", "uncertain", or None (pseudo, termination, embedded)
    forward: bool
    backward: bool


def _phrase_words(phrase: str) -> tuple[str, ...]:
    return tuple(phrase[s:e].lower() for s, e in word_spans(phrase))


def _build_index() -> dict[str, list[_Trigger]]:
    """First word -> triggers starting with it, longest first (so the longest phrase wins)."""
    entries: dict[tuple[str, ...], _Trigger] = {}

    def add(phrases: Iterable[str], kind: str, polarity: str | None, fwd: bool, bwd: bool) -> None:
        for phrase in phrases:
            words = _phrase_words(phrase)
            if words in entries:  # a phrase in two lists would make the class depend on order
                raise AssertionError(f"Trigger {phrase!r} is both {entries[words].kind} and {kind}")
            entries[words] = _Trigger(words, kind, polarity, fwd, bwd)

    add(PRE_NEGATION, "pre_negation", "negated", True, False)
    add(POST_NEGATION, "post_negation", "negated", False, True)
    add(TWO_WAY_NEGATION, "two_way_negation", "negated", True, True)
    add(PRE_UNCERTAINTY, "pre_uncertainty", "uncertain", True, False)
    add(POST_UNCERTAINTY, "post_uncertainty", "uncertain", False, True)
    add(TWO_WAY_UNCERTAINTY, "two_way_uncertainty", "uncertain", True, True)
    add(PSEUDO, "pseudo", None, False, False)
    add(EMBEDDED, "embedded", None, False, False)
    add(TERMINATION, "termination", None, False, False)
    index: dict[str, list[_Trigger]] = {}
    for trigger in entries.values():
        index.setdefault(trigger.words[0], []).append(trigger)
    for triggers in index.values():
        triggers.sort(key=lambda t: -len(t.words))
    return index


_INDEX = _build_index()


def _find_triggers(words: list[str]) -> list[tuple[int, int, _Trigger]]:
    """Non-overlapping ``(first, last + 1, trigger)``, left to right, longest phrase first."""
    found = []
    i = 0
    while i < len(words):
        for trigger in _INDEX.get(words[i], ()):
            n = len(trigger.words)
            if tuple(words[i : i + n]) == trigger.words:
                found.append((i, i + n, trigger))
                i += n
                break
        else:
            i += 1
    return found


def _clause_statuses(words: list[str], window: int) -> tuple[list[str], list[str | None]]:
    n = len(words)
    negated = [False] * n
    uncertain = [False] * n
    role: list[str | None] = [None] * n
    matches = _find_triggers(words)
    if not matches:  # most sentences of a long note: every word affirmed
        return ["affirmed"] * n, role
    stops_fwd = [False] * n  # a non-embedded trigger starts here
    stops_bwd = [False] * n  # a non-embedded trigger ends here
    for first, last, trigger in matches:
        if trigger.kind != "embedded":
            stops_fwd[first] = True
            stops_bwd[last - 1] = True
            for k in range(first, last):
                role[k] = trigger.kind
    for first, last, trigger in matches:
        if trigger.polarity is None:
            continue
        mark = negated if trigger.polarity == "negated" else uncertain
        if trigger.forward:
            k = last
            while k < n and k < last + window and not stops_fwd[k]:
                mark[k] = True
                k += 1
        if trigger.backward:
            k = first - 1
            while k >= 0 and k >= first - window and not stops_bwd[k]:
                mark[k] = True
                k -= 1
    statuses = [
        "affirmed" if role[k] is not None else
        "negated" if negated[k] else "uncertain" if uncertain[k] else "affirmed"
        for k in range(n)
    ]  # fmt: skip
    return statuses, role


def annotate(text: str, window: int = DEFAULT_WINDOW) -> list[Token]:
    """Every word of ``text`` with its negation/uncertainty status.

    Args:
        text: a sentence or a whole report section.
        window: the most words a trigger's scope reaches (default 6).

    Returns:
        ``[Token(text, start, end, status, trigger)]`` in text order, with
        ``text[token.start:token.end] == token.text``. A sentence-final "?" is a token too
        (a backward uncertainty trigger).

    Example:
        >>> [(t.text, t.status) for t in annotate("No focal pneumonia. Possible atelectasis.")]
        ... # doctest: +NORMALIZE_WHITESPACE
        [('No', 'affirmed'), ('focal', 'negated'), ('pneumonia', 'negated'),
         ('Possible', 'affirmed'), ('atelectasis', 'uncertain')]
    """
    if not isinstance(text, str):
        raise TypeError(f"Expected `text` to be a str, got {type(text).__name__}")
    if window < 1:
        raise ValueError(f"Expected `window` >= 1, got {window}")
    tokens: list[Token] = []
    for start, end in split_sentences(text):
        spans = word_spans(text, start, end)
        words = [text[s:e].lower() for s, e in spans]
        statuses, roles = _clause_statuses(words, window)
        tokens.extend(
            Token(text[s:e], s, e, status, role)  # type: ignore[arg-type]
            for (s, e), status, role in zip(spans, statuses, roles)
        )
    return tokens


def word_statuses(text: str, window: int = DEFAULT_WINDOW) -> list[tuple[str, Status]]:
    """``(lower-cased word, status)`` of every word of ``text``: :func:`annotate`'s words and
    statuses (``[(t.text.lower(), t.status) for t in annotate(text, window)]``) without building
    the tokens, for the bag-of-words preprocessing of every note."""
    if window < 1:
        raise ValueError(f"Expected `window` >= 1, got {window}")
    out: list[tuple[str, Status]] = []
    for start, end in split_sentences(text):
        words = [text[s:e].lower() for s, e in word_spans(text, start, end)]
        statuses, _ = _clause_statuses(words, window)
        out.extend(zip(words, statuses))
    return out


_PREFIX = {"affirmed": "", "negated": "neg_", "uncertain": "unc_"}


def mark_scopes(text: str, window: int = DEFAULT_WINDOW) -> str:
    """``text`` as lower-cased words, those in a negation scope prefixed ``neg_``, uncertain ``unc_``.

    For bag-of-words models: "pneumonia" and "neg_pneumonia" become different features.
    Punctuation is dropped (words are runs of letters/digits, so "x-ray" gives "x ray"), and so
    is the "?" cue; trigger words are kept unprefixed ("no", "possible") since they are
    informative on their own. Words are separated by single spaces.

    Example:
        >>> mark_scopes("Cough. Rule out pneumonia. No focal consolidation, but mild atelectasis.")
        'cough rule out unc_pneumonia no neg_focal neg_consolidation but mild atelectasis'
    """
    return " ".join(_PREFIX[t.status] + t.text.lower() for t in annotate(text, window) if t.text != "?")
