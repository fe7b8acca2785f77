"""Peer methods, each with fixed hyperparameters chosen in advance (never tuned on test folds).

A peer is a :class:`Peer`: ``build()`` returns an object with ``fit(X, Y)`` and
``predict(X, predictor) -> [N, M]`` 0/1, and ``predictors`` lists its rows (one fit serves all
of them, as one of our models serves all its decoders). ``X`` is the dataset's shared
featurisation (a scipy CSR matrix for TF-IDF, a dense float32 array otherwise); ``Y`` is
``[N, M]`` 0/1.

References:
    Binary relevance / classifier chains: Read, Pfahringer, Holmes & Frank (2011), "Classifier
    chains for multi-label classification", Machine Learning 85(3).
    Label powerset and RAkEL: Tsoumakas, Katakis & Vlahavas (2011), "Random k-labelsets for
    multilabel classification", IEEE TKDE 23(7).
    ML-kNN: Zhang & Zhou (2007), "ML-KNN: a lazy learning approach to multi-label learning",
    Pattern Recognition 40(7).
    BOOMER: Rapp, Loza Mencia, Fuernkranz, Nguyen & Huellermeier (2020), "Learning gradient
    boosted multi-label classification rules", ECML PKDD; its GFM and example-wise predictors:
    Rapp et al. (2021), "Gradient-based label binning in multi-label classification", ECML PKDD,
    and the mlrl-boomer documentation.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import ClassifierChain
from sklearn.svm import LinearSVC

#: One fixed value for every dataset: scikit-learn's default inverse regularisation.
LOGISTIC_C = 1.0
SVC_C = 1.0
MAX_ITER = 1000


def _dense_01(predictions: Any) -> np.ndarray:
    if sp.issparse(predictions):
        predictions = predictions.toarray()
    return (np.asarray(predictions) > 0.5).astype(np.int8)


class SingleClassSafe(BaseEstimator, ClassifierMixin):
    """A binary classifier that predicts the constant when its training column has one class.

    scikit-learn's ``ClassifierChain`` fits its base estimator on every label column; with
    ``LogisticRegression`` a training fold where a rare code never occurs raises "needs samples
    of at least 2 classes" (CMC 2007 has codes seen fewer than 5 times).
    ``OneVsRestClassifier`` does this on its own; the chain needs this wrapper.
    """

    def __init__(self, estimator=None):
        self.estimator = estimator

    def fit(self, X, y):
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) == 1:
            self.constant_ = self.classes_[0]
            self.estimator_ = None
        else:
            self.constant_ = None
            self.estimator_ = clone(self.estimator).fit(X, y)
        return self

    def predict(self, X):
        if self.estimator_ is None:
            return np.full(X.shape[0], self.constant_)
        return self.estimator_.predict(X)

    def predict_proba(self, X):
        if self.estimator_ is None:
            return np.ones((X.shape[0], 1))
        return self.estimator_.predict_proba(X)


class SklearnPeer:
    """Any scikit-learn multi-label estimator: one predictor, its ``predict``."""

    predictors = ("",)

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, Y):
        self.estimator.fit(X, Y)
        return self

    def predict(self, X, predictor: str = "") -> np.ndarray:
        return _dense_01(self.estimator.predict(X))


class LabelPowerset:
    """Label powerset (each distinct training label set is a class) with a multi-class LinearSVC.

    A few lines instead of scikit-multilearn's ``LabelPowerset`` (same transformation) so that
    this core baseline needs nothing beyond scikit-learn.
    """

    predictors = ("",)

    def __init__(self, classifier):
        self.classifier = classifier

    def fit(self, X, Y):
        self.label_sets_, classes = np.unique(np.asarray(Y, dtype=np.int8), axis=0, return_inverse=True)
        if len(self.label_sets_) == 1:
            self.constant_ = self.label_sets_[0]
        else:
            self.constant_ = None
            self.classifier.fit(X, classes.ravel())
        return self

    def predict(self, X, predictor: str = "") -> np.ndarray:
        if self.constant_ is not None:
            return np.tile(self.constant_, (X.shape[0], 1))
        return self.label_sets_[self.classifier.predict(X)].astype(np.int8)


class BoomerPeer:
    """BOOMER (mlrl-boomer) with its default hyperparameters, fitted once, predicted three ways.

    The binary predictor is read when predicting (mlrl builds a fresh predictor from the
    estimator's parameters each time), so one fitted rule model serves ``gfm`` (F-measure
    maximiser on its joint probabilities), ``example-wise`` (the known label vector closest to
    the scores) and ``output-wise`` (per-label thresholds). It is fitted with ``gfm`` set so
    that the joint probability calibration GFM needs is trained.

    Threads: training single-threaded (``parallel_rule_refinement`` and
    ``parallel_statistic_update`` off); prediction on its default thread pool, because
    mlrl-boomer 0.12.3 corrupts the heap (``free(): invalid size``) when prediction runs on
    one thread (``parallel_prediction='false'`` or ``num_preferred_threads=1``).
    """

    predictors = ("gfm", "example-wise", "output-wise")

    def __init__(self, seed: int = 1):
        from mlrl.boosting import Boomer

        self.model = Boomer(random_state=seed, binary_predictor="gfm",
                            parallel_rule_refinement="false", parallel_statistic_update="false")

    def fit(self, X, Y):
        X = X.astype(np.float32) if sp.issparse(X) else np.ascontiguousarray(X, dtype=np.float32)
        self.model.fit(X, np.ascontiguousarray(Y, dtype=np.uint8))
        return self

    def predict(self, X, predictor: str = "gfm") -> np.ndarray:
        X = X.astype(np.float32) if sp.issparse(X) else np.ascontiguousarray(X, dtype=np.float32)
        self.model.set_params(binary_predictor=predictor)
        return _dense_01(self.model.predict(X))


@dataclass(frozen=True)
class Peer:
    """A peer method: its name, the module it needs, how to build it, and what it is."""

    name: str
    build: Callable[[], Any]
    description: str
    requires: str | None = None

    def missing(self) -> str | None:
        """Why this peer cannot run here (its package is not installed), or ``None``."""
        if self.requires and importlib.util.find_spec(self.requires.split(".")[0]) is None:
            return f"`{self.requires}` is not installed (`pip install -e '.[bench]'`)"
        return None


def _logistic(C: float = LOGISTIC_C) -> LogisticRegression:
    return LogisticRegression(C=C, max_iter=MAX_ITER)


def _rakel():
    from skmultilearn.ensemble import RakelD

    return SklearnPeer(RakelD(base_classifier=LinearSVC(C=SVC_C), labelset_size=3,
                              base_classifier_require_dense=[False, False]))


def _mlknn():
    from skmultilearn.adapt import MLkNN

    return SklearnPeer(MLkNN(k=10))


PEERS: list[Peer] = [
    Peer("br-lr", lambda: SklearnPeer(OneVsRestClassifier(_logistic())),
         f"binary relevance: one LogisticRegression(C={LOGISTIC_C}) per label (scikit-learn OneVsRestClassifier)"),
    Peer("br-lr C=100", lambda: SklearnPeer(OneVsRestClassifier(_logistic(100.0))),
         "binary relevance with LogisticRegression(C=100): weak regularisation, as text usually wants"),
    Peer("cc-lr", lambda: SklearnPeer(ClassifierChain(SingleClassSafe(_logistic()), order=None, random_state=0)),
         f"scikit-learn ClassifierChain of LogisticRegression(C={LOGISTIC_C}), label order as given"),
    Peer("cc-lr C=100", lambda: SklearnPeer(ClassifierChain(SingleClassSafe(_logistic(100.0)), order=None,
                                                            random_state=0)),
         "ClassifierChain of LogisticRegression(C=100)"),
    Peer("lp-svc", lambda: LabelPowerset(LinearSVC(C=SVC_C)),
         f"label powerset: multi-class LinearSVC(C={SVC_C}, one-vs-rest) over the distinct training label sets"),
    Peer("boomer", BoomerPeer,
         "BOOMER gradient-boosted multi-label rules (mlrl-boomer's default hyperparameters), one fit per "
         "fold read by its gfm / example-wise / output-wise binary predictors",
         requires="mlrl.boosting"),
    Peer("rakel", _rakel,
         f"scikit-multilearn RakelD: disjoint random 3-labelsets, label powerset with LinearSVC(C={SVC_C}) on each",
         requires="skmultilearn"),
    Peer("mlknn", _mlknn, "scikit-multilearn MLkNN, k=10", requires="skmultilearn"),
]
