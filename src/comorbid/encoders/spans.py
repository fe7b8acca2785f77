"""Which words of a note produce each bag-of-words feature (the ``tfidf`` and ``clinical`` encoders).

A linear head scores code ``j`` of a note as ``u_j = sum_f W[j, f] x_f + b_j``. To say which words
of the note drove ``u_j``, each present feature ``f`` (a word, a section-tagged word, a word
bigram, a character n-gram) is traced back to the words it was made of, with their character
spans in the original note, and its term ``W[j, f] x_f`` is shared among them:
:func:`token_feature_shares` gives the matrix ``S [T, d]`` (tokens x features) such that
``S @ (x * W[j])`` is each token's share of ``u_j - b_j``, and the shares of a feature sum to 1.

A feature made by several occurrences (a word said twice, a character n-gram of two words) is
split equally between them, and an n-gram occurrence equally between its n words: what each
contributes on average when the others stay (a Shapley-style split of a binary OR).

The tracing re-runs the encoder's own text pipeline with offsets: the section split, the
negation/uncertainty scopes (:func:`comorbid.text.negation.annotate`) and the section tags of
:func:`comorbid.text.preprocess_report` for ``clinical``; scikit-learn's token pattern on the
lower-cased note otherwise. It is checked against the encoder's real features of the note: when
the two differ (an option this module does not know), :func:`token_feature_shares` returns
``None`` and the caller falls back to occlusion.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import numpy as np
import scipy.sparse as sp

from comorbid.text.negation import annotate
from comorbid.text.preprocess import preprocess_report
from comorbid.text.sections import section_prefix, split_sections
from comorbid.text.tokens import word_spans

Span = tuple[int, int]
#: preprocess_report's defaults, for the options a ``clinical`` dict leaves out
_REPORT_DEFAULTS = {name: p.default for name, p in inspect.signature(preprocess_report).parameters.items()
                    if p.default is not inspect.Parameter.empty}
_SCOPE_PREFIX = {"negated": "neg_", "uncertain": "unc_"}


def _section_offsets(note: str) -> list[tuple[str | None, int, str]]:
    """``(name, start offset, text)`` of :func:`split_sections`' sections, in note order."""
    out, cursor = [], 0
    for name, text in split_sections(note):
        start = note.find(text, cursor)
        if start < 0:  # pragma: no cover - split_sections returns stripped substrings
            raise ValueError("section text not found in the note")
        out.append((name, start, text))
        cursor = start + len(text)
    return out


def _clinical_words(note: str, clinical: dict[str, Any], tags: bool) -> list[tuple[str, Span]]:
    """The tokens (with spans) of ``preprocess_note(note, **clinical)``, in the vectoriser's order:
    per section the plain line, then the tagged line (``tags``)."""
    options = {**_REPORT_DEFAULTS, **clinical}
    modes = {"negated": options["negated"], "uncertain": options["uncertain"]}
    stream: list[tuple[str, Span]] = []
    for name, offset, text in _section_offsets(note):
        words: list[tuple[str, Span]] = []
        if not options["negation"]:
            words = [(text[s:e].lower(), (offset + s, offset + e)) for s, e in word_spans(text) if text[s:e] != "?"]
        else:
            for token in annotate(text, options["window"]):
                mode = modes.get(token.status, "keep")
                if token.text == "?" or mode == "drop":
                    continue
                prefix = _SCOPE_PREFIX[token.status] if mode == "mark" else ""
                words.append((prefix + token.text.lower(), (offset + token.start, offset + token.end)))
        if not words:
            continue
        if not (tags and options["section_tags"]) or name is None:
            stream += words
            continue
        if options["keep_plain"]:
            stream += words
        prefix = section_prefix(name)
        stream += [(prefix + word, span) for word, span in words]
    return stream


def _plain_words(note: str, vectorizer) -> list[tuple[str, Span]] | None:
    """Tokens of scikit-learn's default word pipeline (lower-case, ``token_pattern``) with spans;
    ``None`` when lower-casing changes the note's length (the spans would not line up)."""
    lowered = note.lower()
    if len(lowered) != len(note):
        return None
    return [(m.group(), m.span()) for m in re.finditer(vectorizer.token_pattern, lowered)]


def token_feature_shares(encoder, note: str, features: sp.csr_matrix) -> tuple[list[Span], sp.csr_matrix] | None:
    """The note's tokens and each one's share of each present feature.

    Args:
        encoder: a fitted ``tfidf`` or ``clinical`` encoder (without a hidden layer).
        note: the text.
        features: the encoder's features of ``note``, ``[1, d]`` (``encoder.featurize([note])``).

    Returns:
        ``(spans, shares)``: the token spans ``[T]`` (``note[start:end]`` is the token) and
        ``shares [T, d]`` (CSR), each present feature's column summing to 1; ``None`` when the
        traced features are not exactly the note's features.
    """
    options = encoder.options
    clinical = options["clinical"]
    spans: dict[Span, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    offset = 0
    occurrences: dict[int, list[tuple[int, ...]]] = {}
    for kind, vectorizer in encoder.vectorizers.items():
        vocabulary = vectorizer.vocabulary_
        if kind == "word":
            if vectorizer.analyzer != "word":
                return None
            tokens = _clinical_words(note, clinical, tags=True) if clinical is not None else _plain_words(note, vectorizer)
            if tokens is None:
                return None
            low, high = vectorizer.ngram_range
            ids = [spans.setdefault(span, len(spans)) for _, span in tokens]
            strings = [text for text, _ in tokens]
            for n in range(low, high + 1):
                for i in range(len(strings) - n + 1):
                    column = vocabulary.get(" ".join(strings[i : i + n]))
                    if column is not None:
                        occurrences.setdefault(offset + column, []).append(tuple(ids[i : i + n]))
        else:
            tokens = (_clinical_words(note, {**clinical, "section_tags": False}, tags=False)
                      if clinical is not None else _plain_words_char(note))
            for text, span in tokens:
                token = spans.setdefault(span, len(spans))
                for gram in vectorizer._char_wb_ngrams(text):
                    column = vocabulary.get(gram)
                    if column is not None:
                        occurrences.setdefault(offset + column, []).append((token,))
        offset += len(vocabulary)
    present = set(features.indices.tolist())
    if set(occurrences) != present:
        return None
    for column, found in occurrences.items():
        for occurrence in found:
            share = 1.0 / (len(found) * len(occurrence))
            for token in occurrence:
                rows.append(token)
                cols.append(column)
                vals.append(share)
    shares = sp.csr_matrix((np.asarray(vals), (rows, cols)), shape=(len(spans), features.shape[1]))
    return list(spans), shares


def _plain_words_char(note: str) -> list[tuple[str, Span]]:
    """Whitespace-separated tokens of the lower-cased note (what ``char_wb`` reads without preprocessing)."""
    return [(m.group().lower(), m.span()) for m in re.finditer(r"\S+", note)]
