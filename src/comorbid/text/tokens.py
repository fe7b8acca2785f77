"""Sentence (clause) splitting and word tokens with character offsets into the original text.

Hand-written (a few regular expressions) rather than spaCy/NLTK: the reports are short and
regular, the rules below are all the CMC 2007 reports need, and a tokenizer model would be a
large dependency for the library's default text path.
"""

from __future__ import annotations

import re

__all__ = ["ABBREVIATIONS", "split_sentences", "word_spans"]

# Words that end with a dot without ending the sentence ("Dr. Smith", "Jan. 2", "viral vs.
# reactive"). Compared lower-cased, without the final dot.
ABBREVIATIONS = frozenset(
    {
        "dr", "drs", "mr", "mrs", "ms", "st", "pt", "vs", "approx", "e.g", "i.e", "cf", "fig",
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    }
)  # fmt: skip

# A boundary is '.', '!', '?', ';' or ':' followed by white space or the end of the text, so
# decimals ("1.5 cm"), times ("10:30") and "104?F" never split.
_BOUNDARY = re.compile(r"[.!?;:]+(?=\s|$)")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")
# Words: runs of letters/digits ("x-ray" -> "x", "ray"; "r/o" -> "r", "o"), plus a question
# mark that ends a sentence (it is an uncertainty cue, see comorbid.text.negation).
_TOKEN = re.compile(r"[^\W_]+|\?(?=\s|$)")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the sentences and clauses of ``text``.

    A span ends after '.', '!', '?', ';' or ':' when white space or the end of the text follows,
    except after an abbreviation (:data:`ABBREVIATIONS`). Numbered items ("1. No focal
    pneumonia.") give a span of their own for the number, which holds no finding. Spans are
    stripped of surrounding white space; empty spans are dropped.

    Example:
        >>> text = "Seen by Dr. Smith on Jan. 2. Opacity 1.5 cm; no effusion."
        >>> [text[s:e] for s, e in split_sentences(text)]
        ['Seen by Dr. Smith on Jan. 2.', 'Opacity 1.5 cm;', 'no effusion.']
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if match.group().startswith("."):
            # the word before the dot; 12 characters are more than the longest abbreviation
            before = _WORD_BEFORE.search(text, max(0, match.start() - 12), match.start())
            if before and before.group(1).lower().rstrip(".") in ABBREVIATIONS:
                continue
        _append_stripped(text, start, match.end(), spans)
        start = match.end()
    _append_stripped(text, start, len(text), spans)
    return spans


def _append_stripped(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append((start, end))


def word_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans of the word tokens (and sentence-final '?') of ``text[start:end]``, in ``text``'s offsets.

    Example:
        >>> text = "Chest x-ray: r/o pneumonia?"
        >>> [text[s:e] for s, e in word_spans(text)]
        ['Chest', 'x', 'ray', 'r', 'o', 'pneumonia', '?']
    """
    end = len(text) if end is None else end
    return [match.span() for match in _TOKEN.finditer(text, start, end)]
