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
import scipy.sparse as sp
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from torch import nn

from comorbid.encoders.base import Encoder, to_torch
from comorbid.encoders.descriptions import DescriptionMatcher
from comorbid.heads.base import Linear
from comorbid.text import preprocess_note


class TfidfEncoder(Encoder):
    """Word n-gram TF-IDF (sublinear tf, l2-normalised rows); the network is the identity.

    Args:
        ngram_range: word n-gram sizes, default unigrams and bigrams.
        min_df: minimum document frequency of a term.
        max_features: vocabulary cap (most frequent terms), per vocabulary.
        analyzer: ``"word"``, ``"char_wb"``...
        binary: term presence (1/0) instead of counts.
        use_idf: weigh terms by inverse document frequency.
        norm: row normalisation, ``"l2"``, ``"l1"`` or ``None`` (each vocabulary on its own).
        sublinear_tf: ``1 + log(tf)`` instead of ``tf``.
        clinical: preprocess each note with :func:`comorbid.text.preprocess_note` first; a dict
            of its options (``negated``, ``uncertain``, ``section_tags``, ``keep_plain``,
            ``window``), or ``None`` for the raw text.
        char_ngram_range: also character n-grams within words (``char_wb``) of these sizes,
            appended to the word features; over the preprocessed words without section tags
            when ``clinical``. ``None``: words only. Character n-grams match the variants of
            a medical word ("pyelectasis"/"pyelocaliectasis", "duplicated"/"duplication").
        max_weights: the most weights (``features x labels``) a linear head over these features
            may have; ``fit`` (given the labels) keeps the most frequent terms within that
            budget, words before character n-grams. ``"auto"`` (the default):
            :data:`MAX_LINEAR_WEIGHTS`, which CMC 2007 (45 codes) never reaches and which keeps
            about 3,800 word features for CodiEsp's 2,194 codes; ``None``: no limit. A linear
            head over 100,000 features and 10,000 codes would hold 10^9 weights (4 GB, and
            L-BFGS keeps ~46 copies). Not applied with a hidden layer.
        hidden: width of a trainable hidden layer (sparse features -> ReLU(x E + c) -> dropout)
            between the features and the head, or ``None`` (the default) for none: the head is
            then linear in the features. The layer holds ``features x hidden`` weights whatever
            the number of codes, and a batch costs O(nnz x hidden); it trains by Adam. On
            CodiEsp's inner split it ranked codes worse than the linear head on the most
            frequent words (MAP 0.14 against 0.31: docs/training.md).
        dropout: dropout after the hidden layer.
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
        char_ngram_range=None,
        max_weights: int | str | None = "auto",
        hidden: int | None = None,
        dropout: float = 0.2,
    ):
        if not (hidden is None or (isinstance(hidden, int) and not isinstance(hidden, bool) and hidden >= 0)):
            raise ValueError(f"Expected `hidden` to be None or a width >= 0, got {hidden!r}")
        if not (max_weights is None or max_weights == "auto"
                or (isinstance(max_weights, int) and not isinstance(max_weights, bool) and max_weights >= 1)):
            raise ValueError(f"Expected `max_weights` to be 'auto', None or an integer >= 1, got {max_weights!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"Expected 0 <= dropout < 1, got {dropout!r}")
        super().__init__(
            ngram_range=list(ngram_range), min_df=min_df, max_features=max_features, analyzer=analyzer,
            binary=binary, use_idf=use_idf, norm=norm, sublinear_tf=sublinear_tf,
            clinical=None if clinical is None else dict(clinical),
            char_ngram_range=None if char_ngram_range is None else list(char_ngram_range),
            max_weights=max_weights, hidden=hidden or None, dropout=float(dropout),
        )  # fmt: skip
        #: the hidden layer (weight ``[hidden, features]``, takes sparse input), or None; built
        #: by fit / load
        self.hidden_layer: Linear | None = None
        self.input_dim = 0
        #: training notes x codes with a note, of the last fit (0 before; saved): beyond
        #: :data:`SCALE_MIN_CELLS` the encoder is :attr:`at_scale`
        self.fit_cells = 0
        if clinical is not None:
            preprocess_note("", **clinical)  # fail early on a bad option
        #: one fitted vectoriser per vocabulary, in feature order: words, then characters
        self.vectorizers: dict[str, TfidfVectorizer] = {}
        #: the codes' descriptions to match (:meth:`use_descriptions`, before fit), and their matcher
        self.label_descriptions: list[str] | None = None
        self.matcher: DescriptionMatcher | None = None

    def use_descriptions(self, descriptions: list[str] | None) -> None:
        """Before :meth:`fit`: also give, after the bag of words, each note's match score with
        each of these ``M`` code descriptions (:class:`comorbid.encoders.descriptions.DescriptionMatcher`,
        ``M`` more columns, sparse), for a head that blends them in
        (:mod:`comorbid.heads.descriptions`). ``None``: no descriptions."""
        if descriptions is not None and self.options["hidden"]:
            raise ValueError("Code descriptions need the bag of words without a hidden layer (hidden=None)")
        self.label_descriptions = None if descriptions is None else [str(text or "") for text in descriptions]

    @property
    def description_columns(self) -> int:
        """How many columns of match scores follow the bag of words (0: none)."""
        return 0 if self.matcher is None else self.matcher.n_codes

    @property
    def vectorizer(self) -> TfidfVectorizer | None:
        """The word vectoriser."""
        return self.vectorizers.get("word")

    def _kinds(self) -> list[str]:
        return ["word"] + (["char"] if self.options["char_ngram_range"] is not None else [])

    def _new_vectorizer(self, kind: str, vocabulary=None, max_features: int | None = None) -> TfidfVectorizer:
        options = self.options
        clinical = options["clinical"]
        if kind == "word":
            text_options = {"analyzer": options["analyzer"], "ngram_range": tuple(options["ngram_range"])}
            if clinical is not None:
                # Preprocessed notes are lower-cased tokens separated by white space; `neg_` and
                # section prefixes are part of a token.
                text_options.update(preprocessor=partial(preprocess_note, **clinical), token_pattern=r"\S+")
        else:
            text_options = {"analyzer": "char_wb", "ngram_range": tuple(options["char_ngram_range"])}
            if clinical is not None:
                plain = {**clinical, "section_tags": False}
                text_options["preprocessor"] = partial(preprocess_note, **plain)
        return TfidfVectorizer(
            min_df=1 if vocabulary is not None else options["min_df"],
            max_features=max_features or options["max_features"],
            binary=options["binary"],
            use_idf=options["use_idf"],
            norm=options["norm"],
            sublinear_tf=options["sublinear_tf"],
            vocabulary=vocabulary,
            dtype=np.float32,
            **text_options,
        )

    def fit(self, inputs: list[str], labels: Any = None) -> "TfidfEncoder":
        """Fit the vocabularies on ``inputs``; ``labels [N, M]`` (optional) tell ``max_weights``
        how many codes a linear head will score."""
        self._fit(inputs, labels)
        return self

    def fit_featurize(self, inputs: list[str], labels: Any = None) -> sp.csr_matrix:
        """:meth:`fit`, returning the training features (:meth:`featurize` of ``inputs``) that
        fitting counted anyway, instead of reading the texts again."""
        parts = self._fit(inputs, labels)
        if parts is None:
            return self.featurize(inputs)
        features = (parts[0] if len(parts) == 1 else sp.hstack(parts)).tocsr()
        if self.matcher is not None:
            features = sp.hstack([features, self.matcher.scores(inputs)], format="csr")
        # featurize's matrix entry for entry, in the same order within each row: a sparse product
        # sums in that order, and another order changes the trained model in its last bits
        features.sort_indices()
        return features

    def _fit(self, inputs: list[str], labels: Any) -> list[sp.csr_matrix] | None:
        """Fit the vocabularies, words first, and return each one's features of ``inputs`` (or
        ``None`` where a capped vocabulary was refitted, see :meth:`_cap`).

        With a budget (``max_weights``, given the labels) the vocabularies keep the most frequent
        terms within it, words before character n-grams: a vocabulary over the room left is cut
        to it, and once the words fill the budget the character n-grams are not counted at all
        (at thousands of codes the budget is a few thousand features, which the words alone
        fill: counting character n-grams of tens of thousands of notes to drop them cost more
        than all the words)."""
        self.check_inputs(inputs)
        hidden = self.options["hidden"]
        budget = MAX_LINEAR_WEIGHTS if self.options["max_weights"] == "auto" else self.options["max_weights"]
        # codes without a training note (a candidate list given beyond the training codes)
        # learn no weights worth budgeting for
        n_labels = 0 if labels is None else int((np.asarray(labels.sum(0)).ravel() > 0).sum())
        room = max(1, budget // n_labels) if not hidden and budget is not None and n_labels else None
        self.fit_cells = len(inputs) * n_labels
        self.vectorizers = {}
        parts: list[sp.csr_matrix] | None = []
        for kind in self._kinds():
            if room == 0:
                break
            vectorizer = self._new_vectorizer(kind)
            features = vectorizer.fit_transform(inputs)
            if room is not None and len(vectorizer.vocabulary_) > room:
                vectorizer, features = self._cap(kind, vectorizer, features, room, inputs)
            self.vectorizers[kind] = vectorizer
            if room is not None:
                room -= min(room, len(vectorizer.vocabulary_))
            parts = None if parts is None or features is None else parts + [features]
        self.matcher = None
        if self.label_descriptions is not None:
            char_range = self.options["char_ngram_range"]
            self.matcher = DescriptionMatcher(self.label_descriptions, self.options["clinical"],
                                              (5, 6) if char_range is None else char_range).fit(inputs)
        self._build(sum(len(v.vocabulary_) for v in self.vectorizers.values()) + self.description_columns, hidden)
        return parts

    def _cap(self, kind: str, vectorizer: TfidfVectorizer, features: sp.csr_matrix, room: int,
             inputs: list[str]) -> tuple[TfidfVectorizer, sp.csr_matrix | None]:
        """The vocabulary cut to its ``room`` most frequent terms, and its features of the
        training ``inputs`` (``None`` when they must be computed again).

        Binary counts without idf or normalisation (the clinical encoder) are cut in place, as
        scikit-learn's ``max_features`` cuts (the largest column sums, ties as its argsort
        breaks them): the same terms whenever the uncapped vocabulary was within
        ``max_features``. Weighted features (idf, norms) are refitted with the cap."""
        options = self.options
        if not (options["binary"] and not options["use_idf"] and options["norm"] is None
                and not options["sublinear_tf"]):
            return self._new_vectorizer(kind, max_features=room).fit(inputs), None
        totals = np.asarray(features.sum(axis=0)).ravel()
        kept = np.sort((-totals).argsort()[:room])
        terms = sorted(vectorizer.vocabulary_.items(), key=lambda item: item[1])
        vectorizer.vocabulary_ = {terms[column][0]: index for index, column in enumerate(kept)}
        vectorizer.max_features = room
        features = features[:, kept].tocsr()
        # its (identity) weighting step learned the old width; without idf refitting it is free
        vectorizer._tfidf.fit(features)
        return vectorizer, features

    @property
    def at_scale(self) -> bool:
        """Fitted on more than :data:`SCALE_MIN_CELLS` label cells: the head trains by
        :data:`SCALE_TRAIN_DEFAULTS` and dense enough batches reach it dense (:func:`_dense_if_dense`)."""
        return self.fit_cells > SCALE_MIN_CELLS

    def _build(self, n_features: int, hidden: int | None) -> None:
        self.input_dim = n_features
        self.hidden_layer = None if not hidden else Linear(n_features, hidden)
        self.output_dim = hidden or n_features

    def forward(self, features) -> torch.Tensor:
        """``featurize``'s CSR matrix ``[B, features]`` -> a sparse tensor (no hidden layer: the
        head is linear in it) or ``ReLU(x E + c)`` ``[B, hidden]`` with dropout in training."""
        if self.hidden_layer is None:
            return to_torch(_dense_if_dense(features) if self.at_scale else features)
        x = to_torch(features)
        return nn.functional.dropout(torch.relu(self.hidden_layer(x)), self.options["dropout"], self.training)

    def training_defaults(self) -> dict[str, Any]:
        if self.hidden_layer is None:
            if self.at_scale:
                return {**self.train_defaults, **SCALE_TRAIN_DEFAULTS}
            return dict(self.train_defaults)
        return dict(HIDDEN_TRAIN_DEFAULTS)

    def sparse_features(self, inputs: list[str]) -> sp.csr_matrix:
        """The features of ``inputs`` as a scipy CSR matrix ``[N, input_dim]`` (float32): the
        vocabularies side by side, words first; other libraries (the benchmark's peer methods)
        can take it as it is."""
        self.check_inputs(inputs)
        if not self.vectorizers:
            raise RuntimeError(f"{type(self).__name__} used before fit")
        parts = [v.transform(inputs) for v in self.vectorizers.values()]
        return (parts[0] if len(parts) == 1 else sp.hstack(parts)).tocsr()

    def featurize(self, inputs: list[str]) -> sp.csr_matrix:
        """The features as a scipy CSR matrix (:meth:`sparse_features`, then the match scores
        with the code descriptions when there are some): kept sparse through training and
        prediction (``forward`` turns a batch into a sparse tensor)."""
        features = self.sparse_features(inputs)
        if self.matcher is None:
            return features
        return sp.hstack([features, self.matcher.scores(inputs)], format="csr")

    def fitted_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"output_dim": self.output_dim, "input_dim": self.input_dim,
                                 "hidden": None if self.hidden_layer is None else self.hidden_layer.out_features,
                                 "kinds": list(self.vectorizers),
                                 "descriptions": None if self.matcher is None else self.matcher.state(),
                                 "fit_cells": self.fit_cells}
        for kind, vectorizer in self.vectorizers.items():
            prefix = "" if kind == "word" else f"{kind}_"
            state[f"{prefix}vocabulary"] = {term: int(index) for term, index in vectorizer.vocabulary_.items()}
            if self.options["use_idf"]:
                state[f"{prefix}idf"] = vectorizer.idf_.tolist()
        return state

    def load_fitted_state(self, state: dict[str, Any]) -> None:
        # Model directories written before the hidden layer existed have neither key.
        n_features = state.get("input_dim", state["output_dim"])
        self.fit_cells = int(state.get("fit_cells", 0))  # saved before issue 13: 0, small
        self._build(n_features, state.get("hidden"))
        described = state.get("descriptions")
        self.matcher = None if described is None else DescriptionMatcher.from_state(described)
        self.label_descriptions = None if self.matcher is None else self.matcher.descriptions
        if self.output_dim != state["output_dim"]:
            raise ValueError(f"Expected output_dim {self.output_dim} (hidden {state.get('hidden')}, "
                             f"{n_features} features), got {state['output_dim']}")
        self.vectorizers = {}
        for kind in state.get("kinds", self._kinds()):
            prefix = "" if kind == "word" else f"{kind}_"
            # Fitting with a fixed vocabulary learns nothing from the text; it only marks the
            # vectoriser fitted (sklearn refuses to transform otherwise).
            vectorizer = self._new_vectorizer(kind, vocabulary=state[f"{prefix}vocabulary"]).fit([""])
            if self.options["use_idf"]:
                # A fixed vocabulary still needs the idf weights: set them instead of refitting.
                vectorizer.idf_ = np.asarray(state[f"{prefix}idf"], dtype=np.float64)
            self.vectorizers[kind] = vectorizer
        width = sum(len(v.vocabulary_) for v in self.vectorizers.values()) + self.description_columns
        if self.input_dim != width:
            raise ValueError(f"Expected input_dim {width} (the vocabulary size, plus the codes whose "
                             f"descriptions are matched), got {self.input_dim!r}")


#: ``max_weights="auto"``: the most weights of a linear head over the features (features x
#: labels). 2^23 weights are 32 MB; L-BFGS keeps ~46 copies (1.5 GB), under
#: ``comorbid.training.LBFGS_MAX_BYTES``. CMC 2007 (45 codes x about 12,000 features: half a
#: million weights) stays far below it.
MAX_LINEAR_WEIGHTS = 1 << 23
#: How the encoder with a hidden layer trains: Adam on mini-batches with early stopping on a
#: validation split (the objective is no longer convex, and full-batch L-BFGS would keep
#: dozens of copies of the weights); dropout regularises, so no weight penalty.
HIDDEN_TRAIN_DEFAULTS = {"optimizer": "adam", "learning_rate": 1e-3, "penalty": "l2", "weight_decay": 0.0,
                         "batch_size": 32, "epochs": 40, "patience": 3}

#: Beyond this many label cells (training notes x codes with a note), the linear head over the bag
#: of words trains by :data:`SCALE_TRAIN_DEFAULTS` instead of full-batch L-BFGS. Each L-BFGS
#: step evaluates every note against every code, and it takes a few hundred: at 45,000 notes x
#: 5,000 codes that is hours. CMC 2007 (978 x 45 = 44,000 cells) and CodiEsp (750 notes x
#: 2,194 codes = 1.6 million) stay below, so their models are unchanged.
SCALE_MIN_CELLS = 4_000_000
#: How such a head trains: Adam on batches of 512 notes for at most 10 epochs, the epoch chosen on
#: a 5% validation split (patience 2) and kept without a refit on every row: about 12 passes over
#: the notes instead of L-BFGS's hundreds, none repeated (``benchmarks/results/scale.md``).
SCALE_TRAIN_DEFAULTS = {"optimizer": "adam", "batch_size": 512, "epochs": 10, "learning_rate": 1e-2,
                        "validation_fraction": 0.05, "patience": 2, "refit": False}
#: A batch of bag-of-words features at least this dense (share of non-zero entries) goes to the
#: head as a dense tensor: a dense matrix product is then faster than the sparse one (one core,
#: 512 notes x 10,000 features x 1,000 codes: dense 0.5 s, sparse 0.7 s at 9% density; at 40%
#: 0.4 s against 2.6 s). Short notes (CMC 2007: well under 1%) stay sparse.
DENSE_MIN_DENSITY = 0.06
#: ... and holds at most this many entries (a full L-BFGS batch can be large).
DENSE_MAX_ENTRIES = 1 << 26


def _dense_if_dense(features):
    """``features`` (a scipy matrix) as a dense float32 array when dense enough to be multiplied
    faster that way (:data:`DENSE_MIN_DENSITY`, :data:`DENSE_MAX_ENTRIES`), else unchanged."""
    if not sp.issparse(features):
        return features
    entries = features.shape[0] * features.shape[1]
    if entries == 0 or entries > DENSE_MAX_ENTRIES or features.nnz < DENSE_MIN_DENSITY * entries:
        return features
    return torch.from_numpy(features.toarray().astype(np.float32, copy=False)).to(torch.get_default_dtype())


#: The clinical note preprocessing of the ``clinical`` encoder (see ``preprocess_note``).
CLINICAL_TEXT = {"negated": "drop", "uncertain": "drop", "section_tags": True, "keep_plain": True}


class ClinicalEncoder(TfidfEncoder):
    """Binary word 1-2-grams of section-tagged notes without negated or uncertain words, and
    binary character 5-6-grams of their words.

    The same options as :class:`TfidfEncoder`, with defaults for clinical notes: ``min_df=2``,
    ``binary=True``, no idf, no normalisation, ``clinical`` = :data:`CLINICAL_TEXT` and
    ``char_ngram_range=(5, 6)``.
    """

    name = "clinical"
    #: Binary features of short notes: a code hangs on a few words, which an L1 penalty finds
    #: (docs/clinical_text.md has the comparison with L2).
    train_defaults = {"penalty": "l1", "weight_decay": 1e-4}

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
        char_ngram_range=(5, 6),
        max_weights: int | str | None = "auto",
        hidden: int | None = None,
        dropout: float = 0.2,
    ):
        super().__init__(
            ngram_range, min_df, max_features, analyzer, binary, use_idf, norm, sublinear_tf,
            CLINICAL_TEXT if clinical is None else clinical, char_ngram_range, max_weights, hidden, dropout,
        )  # fmt: skip
