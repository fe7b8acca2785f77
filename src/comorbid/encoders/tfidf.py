"""Bag-of-words features of texts (scikit-learn's TfidfVectorizer), stored without pickle.

Two registered encoders share this code:

* ``tfidf``: word n-gram TF-IDF of the raw text (sublinear tf, l2-normalised rows);
* ``clinical``: the default for notes. Each note is split into sections at its header lines
  ("IMPRESSION: ..."), words in a negation or uncertainty scope are dropped (NegEx-style,
  :mod:`comorbid.text.negation`), every word is emitted plain and tagged with its section
  (``i_pneumonia``), and the features are binary word n-grams (present or not, no idf, no
  normalisation). Why these choices, and the measurements behind them: ``docs/clinical_text.md``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from comorbid.encoders.base import Encoder
from comorbid.text import preprocess_note


class TfidfEncoder(Encoder):
    """Word n-gram TF-IDF (sublinear tf, l2-normalised rows); the network is the identity.

    Args:
        ngram_range: word n-gram sizes, default unigrams and bigrams.
        min_df: minimum document frequency of a term.
        max_features: vocabulary cap (most frequent terms).
        analyzer: ``"word"``, ``"char_wb"``...
        binary: term presence (1/0) instead of counts.
        use_idf: weigh terms by inverse document frequency.
        norm: row normalisation, ``"l2"``, ``"l1"`` or ``None``.
        sublinear_tf: ``1 + log(tf)`` instead of ``tf``.
        clinical: preprocess each note with :func:`comorbid.text.preprocess_note` first; a dict
            of its options (``negated``, ``uncertain``, ``section_tags``, ``keep_plain``,
            ``window``), or ``None`` for the raw text.
    """

    name = "tfidf"
    reads_text = True

    def __init__(
        self,
        ngram_range=(1, 2),
        min_df: int = 1,
        max_features: int | None = 50000,
        analyzer: str = "word",
        binary: bool = False,
        use_idf: bool = True,
        norm: str | None = "l2",
        sublinear_tf: bool = True,
        clinical: dict[str, Any] | None = None,
    ):
        super().__init__(
            ngram_range=list(ngram_range), min_df=min_df, max_features=max_features, analyzer=analyzer,
            binary=binary, use_idf=use_idf, norm=norm, sublinear_tf=sublinear_tf,
            clinical=None if clinical is None else dict(clinical),
        )  # fmt: skip
        if clinical is not None:
            preprocess_note("", **clinical)  # fail early on a bad option
        self.vectorizer: TfidfVectorizer | None = None

    def _new_vectorizer(self, vocabulary=None) -> TfidfVectorizer:
        options = self.options
        clinical = options["clinical"]
        text_options = {}
        if clinical is not None:
            # Preprocessed notes are lower-cased tokens separated by white space; `neg_` and
            # section prefixes are part of a token.
            text_options = {"preprocessor": partial(preprocess_note, **clinical), "token_pattern": r"\S+"}
        return TfidfVectorizer(
            ngram_range=tuple(options["ngram_range"]),
            min_df=1 if vocabulary is not None else options["min_df"],
            max_features=options["max_features"],
            analyzer=options["analyzer"],
            binary=options["binary"],
            use_idf=options["use_idf"],
            norm=options["norm"],
            sublinear_tf=options["sublinear_tf"],
            vocabulary=vocabulary,
            dtype=np.float32,
            **text_options,
        )

    def fit(self, inputs: list[str], labels: Any = None) -> "TfidfEncoder":
        self.check_inputs(inputs)
        self.vectorizer = self._new_vectorizer().fit(inputs)
        self.output_dim = len(self.vectorizer.vocabulary_)
        return self

    def featurize(self, inputs: list[str]) -> torch.Tensor:
        self.check_inputs(inputs)
        if self.vectorizer is None:
            raise RuntimeError(f"{type(self).__name__}.featurize called before fit")
        return torch.as_tensor(self.vectorizer.transform(inputs).toarray(), dtype=torch.get_default_dtype())

    def fitted_state(self) -> dict[str, Any]:
        vocabulary = {term: int(index) for term, index in self.vectorizer.vocabulary_.items()}
        state: dict[str, Any] = {"output_dim": self.output_dim, "vocabulary": vocabulary}
        if self.options["use_idf"]:
            state["idf"] = self.vectorizer.idf_.tolist()
        return state

    def load_fitted_state(self, state: dict[str, Any]) -> None:
        super().load_fitted_state(state)
        # Fitting with a fixed vocabulary learns nothing from the text; it only marks the
        # vectoriser fitted (sklearn refuses to transform otherwise).
        self.vectorizer = self._new_vectorizer(vocabulary=state["vocabulary"]).fit([""])
        if self.options["use_idf"]:
            # A fixed vocabulary still needs the idf weights: set them instead of refitting.
            self.vectorizer.idf_ = np.asarray(state["idf"], dtype=np.float64)


#: The clinical note preprocessing of the ``clinical`` encoder (see ``preprocess_note``).
CLINICAL_TEXT = {"negated": "drop", "uncertain": "drop", "section_tags": True, "keep_plain": True}


class ClinicalEncoder(TfidfEncoder):
    """Binary word 1-2-grams of section-tagged notes without negated or uncertain words.

    The same options as :class:`TfidfEncoder`, with defaults for clinical notes: ``min_df=2``,
    ``binary=True``, no idf, no normalisation, and ``clinical`` = :data:`CLINICAL_TEXT`.
    """

    name = "clinical"

    def __init__(
        self,
        ngram_range=(1, 2),
        min_df: int = 2,
        max_features: int | None = 50000,
        analyzer: str = "word",
        binary: bool = True,
        use_idf: bool = False,
        norm: str | None = None,
        sublinear_tf: bool = False,
        clinical: dict[str, Any] | None = None,
    ):
        super().__init__(
            ngram_range, min_df, max_features, analyzer, binary, use_idf, norm, sublinear_tf,
            CLINICAL_TEXT if clinical is None else clinical,
        )  # fmt: skip
