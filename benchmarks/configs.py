"""What the comparison runs: the datasets, how each is featurised, and OUR configurations.

This is the one place to add a configuration. A :class:`Configuration` is one model trained per
fold; each of its decoders is one row of the tables. ``inputs`` says which datasets it runs on
("text": TF-IDF datasets, "features": standardised feature matrices, "any"). Leave
``encoder_options`` as ``None`` to use the dataset's featurisation, which is also what every peer
gets (then "same features" holds); a configuration with its own text pipeline sets
``encoder`` / ``encoder_options`` and its rows say "own features".

Everything here was fixed before looking at any test fold. The regularisation values come from
one inner split (20 %) of fold 1's *training* rows; the comparison itself chooses among these
configurations per fold on an inner validation split of that fold's training rows
(``compare.select``), never on test rows.

To add the models and decoders being built on other branches, append lines such as::

    Configuration("mixture", "mixture", DECODERS_ALL, "any"),
    Configuration("independent", "independent", ("hamming", "macro-f1", "micro-f1"), "text", ...),
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

#: Folds and seed of the comparison (iterative stratification, ``comorbid.data.kfold_indices``).
N_FOLDS = 5
SEED = 0
#: Share of each training fold held out to choose our configuration (inner validation).
INNER_VALIDATION_FRACTION = 0.2
#: The metrics of the tables, in order, and whether larger is better.
METRICS: dict[str, bool] = {
    "subset_accuracy": True,
    "hamming_loss": False,
    "micro_f1": True,
    "macro_f1": True,
    "instance_f1": True,
}
METRIC_TITLES = {
    "subset_accuracy": "subset accuracy",
    "hamming_loss": "Hamming loss",
    "micro_f1": "micro-F1",
    "macro_f1": "macro-F1",
    "instance_f1": "instance F1",
}


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset of the comparison and the one featurisation every method gets.

    Attributes:
        name: short name, also the results file name (``results/<name>.json``).
        path: file under the data root (``$COMORBID_DATA`` or ``../shared/data``).
        features: ``"tfidf"`` (texts; TF-IDF fitted on the training fold) or ``"standardised"``
            (feature matrices; mean/std of the training fold, as comorbid's ``mlp`` encoder).
        tfidf_options: ``TfidfEncoder`` options for ``"tfidf"``.
        words_as_text: the features are binary word indicators: each row becomes the text of
            its present words (then TF-IDF as for real text).
        description: the "features" line printed under the tables.
    """

    name: str
    title: str
    path: str
    features: str
    description: str
    tfidf_options: Mapping[str, Any] = field(default_factory=dict)
    words_as_text: bool = False

    @property
    def kind(self) -> str:
        return "text" if self.features == "tfidf" else "features"


DATASETS: list[DatasetSpec] = [
    DatasetSpec(
        "cmc2007", "CMC 2007 (radiology reports, ICD-9-CM)", "cmc2007/2007ChallengeTrainData.xml", "tfidf",
        "TF-IDF of word unigrams and bigrams (sublinear tf, l2 rows, at most 50,000 terms), fitted on "
        "each training fold (comorbid's `tfidf` encoder); peers get the same sparse matrix.",
    ),
    DatasetSpec(
        "emotions", "MEKA emotions (Music.arff)", "meka/Music.arff", "standardised",
        "the 71 numeric audio features, standardised with the training fold's mean and standard "
        "deviation (comorbid's `mlp` encoder's first step); peers get the same matrix.",
    ),
    DatasetSpec(
        "scene", "MEKA scene", "meka/Scene.arff.bz2", "standardised",
        "the 294 numeric image features, standardised with the training fold's mean and standard "
        "deviation (comorbid's `mlp` encoder's first step); peers get the same matrix.",
    ),
    DatasetSpec(
        "enron", "MEKA enron (e-mails)", "meka/Enron.arff.bz2", "tfidf",
        "the 1,001 binary word-presence features read as a bag of words: TF-IDF of those words "
        "(unigrams, l2 rows) fitted on each training fold; peers get the same sparse matrix. "
        "(Standardising them instead made LinearSVC's label powerset take over an hour per fold: "
        "a word seen once in 1,361 e-mails becomes a feature of size 37.)",
        tfidf_options={"ngram_range": (1, 1)},
        words_as_text=True,
    ),
]


@dataclass(frozen=True)
class Configuration:
    """One of our models, trained once per fold and decoded by each of ``decoders``.

    Attributes:
        name: row-name prefix (rows are ``"<name> / <decoder>"``).
        model: head name (``comorbid.heads.HEADS``).
        decoders: decoder specs (``comorbid.decoders.DECODERS``).
        inputs: ``"text"``, ``"features"`` or ``"any"``.
        head_options: head keyword arguments (e.g. ``{"loss": "lsep"}``).
        encoder_options: for feature matrices, the ``mlp`` encoder's options (its standardisation
            is the shared featurisation, its hidden layers part of the model); for texts, ``None``
            keeps the dataset's TF-IDF (the same features as the peers).
        encoder: encoder name; ``"auto"`` is ``tfidf`` for texts and ``mlp`` for features.
        train: ``TrainConfig`` fields that differ from its defaults.
    """

    name: str
    model: str
    decoders: tuple[str, ...]
    inputs: str
    head_options: Mapping[str, Any] = field(default_factory=dict)
    encoder_options: Mapping[str, Any] | None = None
    encoder: str = "auto"
    train: Mapping[str, Any] = field(default_factory=dict)

    def runs_on(self, spec: DatasetSpec) -> bool:
        return self.inputs in ("any", spec.kind)


ALL_THREE = ("hamming", "subset", "instance-f1")
#: Loss-trained independent models: their mode (the subset decoder) is the Hamming rule, not repeated.
MARGINAL_DECODERS = ("hamming", "instance-f1")
LINEAR = {"hidden": []}
MLP = {"hidden": [512], "dropout": 0.5}
MLP_TRAIN = {"learning_rate": 1e-3, "weight_decay": 1e-4}

CONFIGURATIONS: list[Configuration] = [
    # texts: linear models on TF-IDF, trained to convergence with L-BFGS; weak L2 (text likes it)
    Configuration("independent wd=1e-6", "independent", ALL_THREE, "text", train={"weight_decay": 1e-6}),
    Configuration("chain wd=1e-6", "chain", ALL_THREE, "text", train={"weight_decay": 1e-6}),
    Configuration("independent+lsep wd=1e-5", "independent", MARGINAL_DECODERS, "text",
                  head_options={"loss": "lsep"}, train={"weight_decay": 1e-5}),
    Configuration("independent+zlpr wd=1e-5", "independent", MARGINAL_DECODERS, "text",
                  head_options={"loss": "zlpr"}, train={"weight_decay": 1e-5}),
    # feature matrices: linear (L-BFGS) and one-hidden-layer MLP (Adam, early stopping) encoders
    Configuration("independent linear", "independent", ALL_THREE, "features",
                  encoder_options=LINEAR, train={"weight_decay": 1e-2}),
    Configuration("chain linear", "chain", ALL_THREE, "features",
                  encoder_options=LINEAR, train={"weight_decay": 1e-2}),
    Configuration("independent mlp512", "independent", ALL_THREE, "features",
                  encoder_options=MLP, train=MLP_TRAIN),
    Configuration("chain mlp512", "chain", ALL_THREE, "features", encoder_options=MLP, train=MLP_TRAIN),
    Configuration("independent+lsep linear", "independent", MARGINAL_DECODERS, "features",
                  head_options={"loss": "lsep"}, encoder_options=LINEAR, train={"weight_decay": 1e-2}),
    Configuration("independent+zlpr linear", "independent", MARGINAL_DECODERS, "features",
                  head_options={"loss": "zlpr"}, encoder_options=LINEAR, train={"weight_decay": 1e-2}),
]
