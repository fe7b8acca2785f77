"""How well a note matches each code's description: zero-shot evidence for rare and unseen codes.

A code seen in a handful of training notes (or none) has too little data for its own weights;
its official description ("Brucellosis, unspecified") still says which words to look for. A
:class:`DescriptionMatcher` turns the descriptions of the ``M`` codes and a batch of notes into
match scores ``s [B, M]`` in [0, 1]: the share of the description's terms found in the note,
each term weighted by its inverse document frequency over the training notes, so that
"unspecified" counts little and "brucellosis" much:

    s_ij = sum_t [t in note_i] [t in desc_j] idf_t / sum_t [t in desc_j] idf_t

Terms are the description's words and word pairs, and (by default) the character 5-6-grams of
its words, through the same text preprocessing as the notes (negated and uncertain words
dropped, so "without heart failure" does not ask for heart failure). The vocabulary is the
descriptions' own, whatever the encoder's cap on the head's features keeps. Using label
descriptions in the notes' space to score codes never seen in training is the zero-shot
coding of Rios & Kavuluru (EMNLP 2018) and Song et al. (IJCAI 2020), here with a bag of words.

Only the ``top`` best-matching codes of each row are kept (the scores are a sparse
``[B, M]`` matrix), so the cost is O(B x top) memory at any ``M``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

from comorbid.text import preprocess_note

#: Codes per row whose match score is kept (the rest count as 0).
DEFAULT_TOP = 256
#: Rows scored at once (a dense ``[chunk, M]`` block is formed to pick each row's top codes).
_CHUNK_ROWS = 512


class DescriptionMatcher:
    """Match scores ``[B, M]`` between notes and the descriptions of ``M`` codes.

    Args:
        descriptions: one text per code (``""`` for a code without a description: it never matches).
        clinical: options of :func:`comorbid.text.preprocess_note` for both notes and
            descriptions, or ``None`` for the raw text (lower-cased words).
        char_ngram_range: character n-grams of words also count as terms (``None``: words only).
        top: codes kept per row.
    """

    def __init__(self, descriptions: list[str], clinical: dict[str, Any] | None = None,
                 char_ngram_range=(5, 6), top: int = DEFAULT_TOP):
        if not isinstance(top, int) or isinstance(top, bool) or top < 1:
            raise ValueError(f"Expected `top` to be an integer >= 1, got {top!r}")
        self.descriptions = [str(text or "") for text in descriptions]
        self.clinical = None if clinical is None else dict(clinical)
        self.char_ngram_range = None if char_ngram_range is None else tuple(char_ngram_range)
        self.top = top
        self.vectorizers: dict[str, CountVectorizer] = {}
        #: ``[M, terms]`` CSR: each description's terms, idf-weighted, rows summing to 1
        self.weights: sp.csr_matrix | None = None
        self.idf: np.ndarray | None = None

    @property
    def n_codes(self) -> int:
        return len(self.descriptions)

    def _vectorizer(self, kind: str, vocabulary=None) -> CountVectorizer:
        if kind == "word":
            options: dict[str, Any] = {"ngram_range": (1, 2)}
            if self.clinical is not None:
                options.update(preprocessor=partial(preprocess_note, **self.clinical), token_pattern=r"\S+")
        else:
            options = {"analyzer": "char_wb", "ngram_range": self.char_ngram_range}
            if self.clinical is not None:
                options["preprocessor"] = partial(preprocess_note, **{**self.clinical, "section_tags": False})
        return CountVectorizer(binary=True, vocabulary=vocabulary, dtype=np.float32, **options)

    def _kinds(self) -> list[str]:
        return ["word"] + (["char"] if self.char_ngram_range is not None else [])

    def _terms(self, texts: list[str]) -> sp.csr_matrix:
        """Which description terms each text holds ``[B, terms]`` (binary CSR)."""
        parts = [self.vectorizers[kind].transform(texts) for kind in self._kinds()]
        return sp.hstack(parts, format="csr") if len(parts) > 1 else parts[0].tocsr()

    def fit(self, notes: list[str]) -> "DescriptionMatcher":
        """Learn the descriptions' vocabulary, and the terms' idf over the training ``notes``."""
        self.vectorizers = {}
        for kind in self._kinds():
            described = [text for text in self.descriptions if text.strip()]
            try:
                self.vectorizers[kind] = self._vectorizer(kind).fit(described or ["unknown"])
            except ValueError:  # no term at all (descriptions of stop words only)
                self.vectorizers[kind] = self._vectorizer(kind, vocabulary={"unknown": 0}).fit([""])
        presence = self._terms(notes)
        document_frequency = np.bincount(presence.indices, minlength=presence.shape[1])
        # scikit-learn's smoothed idf: log((1 + N) / (1 + df)) + 1
        self.idf = np.log((1.0 + len(notes)) / (1.0 + document_frequency)) + 1.0
        self._build_weights()
        return self

    def _build_weights(self) -> None:
        terms = self._terms(self.descriptions).astype(np.float64)
        weighted = terms.multiply(self.idf[None, :]).tocsr()
        totals = np.asarray(weighted.sum(1)).ravel()
        self.weights = (sp.diags(np.where(totals > 0, 1.0 / np.maximum(totals, 1e-300), 0.0)) @ weighted).tocsr()

    def scores(self, texts: list[str]) -> sp.csr_matrix:
        """Match scores ``[B, M]`` (float32 CSR), each row's ``top`` largest kept."""
        if self.weights is None:
            raise RuntimeError("DescriptionMatcher used before fit")
        m = self.n_codes
        blocks = []
        for start in range(0, len(texts), _CHUNK_ROWS):
            presence = self._terms(texts[start : start + _CHUNK_ROWS]).astype(np.float64)
            dense = np.asarray((presence @ self.weights.T).todense(), dtype=np.float32)
            if m > self.top:
                cut = np.argpartition(-dense, self.top - 1, axis=1)[:, : self.top]
                kept = np.zeros_like(dense)
                np.put_along_axis(kept, cut, np.take_along_axis(dense, cut, axis=1), axis=1)
                dense = kept
            blocks.append(sp.csr_matrix(dense))
        if not blocks:
            return sp.csr_matrix((0, m), dtype=np.float32)
        return sp.vstack(blocks, format="csr")

    def state(self) -> dict[str, Any]:
        """JSON-able state that :meth:`from_state` restores."""
        state: dict[str, Any] = {"descriptions": self.descriptions, "clinical": self.clinical,
                                 "char_ngram_range": None if self.char_ngram_range is None else list(self.char_ngram_range),
                                 "top": self.top, "idf": [] if self.idf is None else self.idf.tolist()}
        for kind, vectorizer in self.vectorizers.items():
            state[f"{kind}_vocabulary"] = {term: int(index) for term, index in vectorizer.vocabulary_.items()}
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "DescriptionMatcher":
        matcher = cls(state["descriptions"], state["clinical"], state["char_ngram_range"], int(state["top"]))
        matcher.vectorizers = {kind: matcher._vectorizer(kind, vocabulary=state[f"{kind}_vocabulary"]).fit([""])
                               for kind in matcher._kinds()}
        matcher.idf = np.asarray(state["idf"], dtype=np.float64)
        width = sum(len(v.vocabulary_) for v in matcher.vectorizers.values())
        if len(matcher.idf) != width:
            raise ValueError(f"Expected {width} idf weights (the description vocabulary), got {len(matcher.idf)}")
        matcher._build_weights()
        return matcher
