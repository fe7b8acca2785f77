"""TF-IDF features of texts (scikit-learn's TfidfVectorizer), stored without pickle."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from comorbid.encoders.base import Encoder


class TfidfEncoder(Encoder):
    """Word n-gram TF-IDF (sublinear tf, l2-normalised rows); the network is the identity.

    Args:
        ngram_range: word n-gram sizes, default unigrams and bigrams.
        min_df: minimum document frequency of a term.
        max_features: vocabulary cap (most frequent terms).
        analyzer: ``"word"``, ``"char_wb"``...
    """

    name = "tfidf"
    reads_text = True

    def __init__(self, ngram_range=(1, 2), min_df: int = 1, max_features: int | None = 50000, analyzer: str = "word"):
        super().__init__(ngram_range=list(ngram_range), min_df=min_df, max_features=max_features, analyzer=analyzer)
        self.vectorizer: TfidfVectorizer | None = None

    def _new_vectorizer(self, vocabulary=None) -> TfidfVectorizer:
        return TfidfVectorizer(
            ngram_range=tuple(self.options["ngram_range"]),
            min_df=1 if vocabulary is not None else self.options["min_df"],
            max_features=self.options["max_features"],
            analyzer=self.options["analyzer"],
            sublinear_tf=True,
            vocabulary=vocabulary,
            dtype=np.float32,
        )

    def fit(self, inputs: list[str], labels: Any = None) -> "TfidfEncoder":
        self.check_inputs(inputs)
        self.vectorizer = self._new_vectorizer().fit(inputs)
        self.output_dim = len(self.vectorizer.vocabulary_)
        return self

    def featurize(self, inputs: list[str]) -> torch.Tensor:
        self.check_inputs(inputs)
        if self.vectorizer is None:
            raise RuntimeError("TfidfEncoder.featurize called before fit")
        return torch.as_tensor(self.vectorizer.transform(inputs).toarray(), dtype=torch.get_default_dtype())

    def fitted_state(self) -> dict[str, Any]:
        vocabulary = {term: int(index) for term, index in self.vectorizer.vocabulary_.items()}
        return {"output_dim": self.output_dim, "vocabulary": vocabulary, "idf": self.vectorizer.idf_.tolist()}

    def load_fitted_state(self, state: dict[str, Any]) -> None:
        super().load_fitted_state(state)
        self.vectorizer = self._new_vectorizer(vocabulary=state["vocabulary"])
        # A fixed vocabulary still needs the idf weights: set them instead of refitting.
        self.vectorizer.idf_ = np.asarray(state["idf"], dtype=np.float64)
