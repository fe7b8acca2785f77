"""A scikit-learn estimator around :class:`comorbid.model.MultiLabelModel`.

``MultiLabelClassifier`` takes what scikit-learn classifiers take (a dense or sparse feature
matrix, or a list of texts, and a 0/1 indicator matrix ``Y [n_samples, n_labels]``), so a comorbid
model drops into ``Pipeline``, ``GridSearchCV``, ``cross_val_score`` and ``clone``. It adds
nothing to the model: every parameter is passed on unchanged, and ``random_state`` becomes the
training seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from scipy.special import logit
from sklearn.base import BaseEstimator, ClassifierMixin, MultiOutputMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from comorbid.constraints import ParameterError
from comorbid.data.dataset import MultiLabelDataset
from comorbid.decoders import Decoder
from comorbid.model import MultiLabelModel
from comorbid.spec import ModelSpec

#: :meth:`MultiLabelClassifier.decision_function` clips marginals to ``[LOWEST, HIGHEST]``, the float64
#: numbers nearest 0 and 1 inside (0, 1), so that a marginal of exactly 0 or 1 (a float32 sigmoid
#: that saturates, a Monte Carlo estimate) gets a finite logit while every other pair of distinct
#: marginals keeps its order (no float32 number lies strictly between 0 and LOWEST, or HIGHEST and 1).
LOWEST = np.finfo(np.float64).tiny
HIGHEST = np.nextafter(1.0, 0.0)
#: The parameters passed on to the model: :class:`comorbid.spec.ModelSpec` checks them, by its rules
#: (:data:`comorbid.spec.MODEL_RULES`, :data:`comorbid.training.TRAIN_RULES` and the registries).
MODEL_PARAMETERS = ("model", "encoder", "head_options", "encoder_options", "nonempty", "calibrate", "ensemble",
                    "train")


class MultiLabelClassifier(MultiOutputMixin, ClassifierMixin, BaseEstimator):
    """A joint label model with a Bayes-optimal decoder, as a scikit-learn classifier.

    Parameters
    ----------
    model : str, default="chain"
        The joint label model (head): ``independent``, ``chain``, ``chain-ensemble``,
        ``mixture``, ``powerset``, ``ising`` (``docs/models.md``).
    encoder : str, default="auto"
        ``auto`` (the ``clinical`` bag of words for texts, the ``mlp`` for feature matrices) or
        an encoder name (``docs/encoders.md``).
    decoder : str or Decoder, default="hamming"
        What :meth:`predict` maximises in expectation: ``hamming``, ``subset``, ``instance-f1``,
        ``jaccard``, ``top-k=K``, ``micro-f1``, ``macro-f1``, ``mbr[=COST]``
        (``docs/decoders.md``). ``micro-f1`` and ``macro-f1`` are tuned on held-out folds during
        :meth:`fit`, which trains the model once more per fold.
    head_options : dict, default=None
        Keyword arguments of the head, e.g. ``{"loss": "focal"}``.
    encoder_options : dict, default=None
        Keyword arguments of the encoder, e.g. ``{"hidden": []}`` for a linear model on
        standardised features.
    train : dict, default=None
        Fields of :class:`comorbid.training.TrainConfig` set on top of the encoder's
        recommended settings, e.g. ``{"epochs": 20, "learning_rate": 1e-3}``. Not ``seed``:
        that is ``random_state``.
    nonempty : bool or "auto", default="auto"
        Condition the distribution on at least one label; ``auto``: when every training row
        has one.
    calibrate : bool, default=False
        Fit a temperature on held-out folds (``docs/training.md``).
    ensemble : int, default=1
        Bag this many heads (needs an encoder without trainable parameters).
    random_state : int, RandomState instance or None, default=0
        The training seed (split, initial weights, batch order, Monte Carlo draws). An int is
        the seed itself; a RandomState or None draws one.

    Attributes
    ----------
    model_ : MultiLabelModel
        The trained model.
    classes_ : ndarray of shape (n_labels, 2)
        Row ``j`` holds the values of label ``j``, ``[0, 1]``: ``ClassifierChain``'s list of
        per-label classes as one array. scikit-learn's scorers read it as multilabel for any
        number of labels, and ``cross_val_predict`` finds one row per label. (``np.arange(n_labels)``,
        ``MLPClassifier``'s choice, reads as a binary problem for one or two labels, which
        inverts ``roc_auc`` of a single label; a list breaks ``cross_val_predict`` with
        ``method="predict_proba"``.)
    n_features_in_ : int
        Number of features seen in :meth:`fit` (feature matrices only; absent for texts).
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names of a DataFrame seen in :meth:`fit` (only then).

    Notes
    -----
    :meth:`predict_proba` returns the marginals ``P(y_j = 1 | x)`` as one ``[n_samples,
    n_labels]`` array (as ``ClassifierChain`` and ``MLPClassifier`` do), not the list of
    ``[n_samples, 2]`` arrays of ``MultiOutputClassifier``. Unlike ``ClassifierChain``, whose
    ``predict_proba`` conditions each label on the *predicted* earlier labels, these are true
    marginals of the joint distribution. :meth:`predict` is the decoder's label set, which
    need not be ``predict_proba > 0.5`` (it is for ``hamming``).

    References
    ----------
    Dembczynski, Cheng and Huellermeier, "Bayes Optimal Multilabel Classification via
    Probabilistic Classifier Chains", ICML 2010.
    Dembczynski, Waegeman, Cheng and Huellermeier, "On label dependence and loss minimization
    in multi-label classification", Machine Learning 88, 2012.

    Examples
    --------
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from comorbid import MultiLabelClassifier
    >>> X, Y = make_multilabel_classification(n_samples=60, n_classes=4, random_state=0)
    >>> clf = MultiLabelClassifier(model="independent", encoder_options={"hidden": []}).fit(X, Y)
    >>> clf.predict(X[:2]).shape
    (2, 4)
    """

    # scikit-learn's parameter validation for the estimator's own parameters; the model's are
    # checked by ModelSpec (:meth:`_spec`), so that each rule is declared once.
    _parameter_constraints: dict = {
        **{name: "no_validation" for name in MODEL_PARAMETERS},
        "decoder": [str, Decoder],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        model="chain",
        encoder="auto",
        decoder="hamming",
        head_options=None,
        encoder_options=None,
        train=None,
        nonempty="auto",
        calibrate=False,
        ensemble=1,
        random_state=0,
    ):
        self.model = model
        self.encoder = encoder
        self.decoder = decoder
        self.head_options = head_options
        self.encoder_options = encoder_options
        self.train = train
        self.nonempty = nonempty
        self.calibrate = calibrate
        self.ensemble = ensemble
        self.random_state = random_state

    def fit(self, X, Y):
        """Train the model on ``X`` and the indicator matrix ``Y``.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features), or list of str
            Feature matrix, or one text per row.
        Y : array-like or sparse matrix of shape (n_samples, n_labels)
            0/1 label indicators. One label is ``Y.reshape(-1, 1)``.

        Returns
        -------
        self : MultiLabelClassifier
        """
        self._validate_params()
        for name in ("model_", "classes_"):  # a refit that fails leaves the estimator unfitted, not stale
            self.__dict__.pop(name, None)
        spec = self._spec()
        texts = _as_texts(X)
        if texts is None:
            X, Y = validate_data(self, X, Y, accept_sparse=("csr", "csc", "coo"), multi_output=True,
                                 ensure_all_finite="allow-nan")
            inputs = X.tocsr() if sp.issparse(X) else X
        else:
            for name in ("n_features_in_", "feature_names_in_"):  # from an earlier fit on a matrix
                self.__dict__.pop(name, None)
            Y = _check_texts_target(texts, Y)
            inputs = texts
        labels = _indicator_matrix(Y)
        n, m = labels.shape
        dataset = MultiLabelDataset(ids=[str(i) for i in range(n)], inputs=inputs, labels=labels,
                                    label_names=[str(j) for j in range(m)])
        model = MultiLabelModel.from_spec(spec)
        model.fit(dataset, decoders=[self.decoder])
        model.decoder(self.decoder)  # a decoder that cannot decode these labels fails here, not in predict
        self.model_ = model
        self.classes_ = np.tile([0, 1], (m, 1))
        return self

    def _spec(self) -> ModelSpec:
        """The model's parameters, with ``random_state`` as the training seed, checked by
        :class:`ModelSpec`: a bad one raises scikit-learn's ``InvalidParameterError`` naming it."""
        train = self.train
        if train is None or isinstance(train, Mapping):
            if "seed" in (train or {}):
                raise InvalidParameterError("Set the training seed with `random_state`, not train['seed']")
            train = {**(train or {}), "seed": _seed(self.random_state)}
        try:
            return ModelSpec(**{name: getattr(self, name) for name in MODEL_PARAMETERS} | {"train": train})
        except ParameterError as error:
            label = f"the {error.name!r} parameter of {type(self).__name__}"
            message = (error.describe(label) if error.template is not None
                       else f"{label} must be {error.expected}. Got {error.value!r} instead.")
            raise InvalidParameterError(message[0].upper() + message[1:]) from None

    def __sklearn_is_fitted__(self) -> bool:
        # Not "any attribute ending in _": validate_data sets n_features_in_ before training,
        # which can still fail.
        return hasattr(self, "model_")

    def _inputs(self, X):
        texts = _as_texts(X)
        if texts is not None:
            return texts
        X = validate_data(self, X, accept_sparse=("csr", "csc", "coo"), reset=False, ensure_all_finite="allow-nan")
        return X.tocsr() if sp.issparse(X) else X

    def predict(self, X):
        """The decoder's label set for each row.

        Returns
        -------
        Y : ndarray of shape (n_samples, n_labels), int64
            0/1 label indicators.
        """
        check_is_fitted(self)
        sets = self.model_.predict(self._inputs(X), decoders=[self.decoder])
        return next(iter(sets.values())).astype(np.int64)

    def predict_proba(self, X):
        """The marginals ``P(y_j = 1 | x)`` of the model's joint distribution.

        Returns
        -------
        P : ndarray of shape (n_samples, n_labels), float64
            One probability per label (not a list of ``[n_samples, 2]`` arrays); a row need not
            sum to 1.
        """
        check_is_fitted(self)
        return self.model_.marginals(self._inputs(X)).astype(np.float64)

    def decision_function(self, X):
        """The log-odds of :meth:`predict_proba`, ``log(p / (1 - p))``; a marginal of exactly 0
        or 1 is moved to the nearest float64 inside (0, 1), so that scores stay finite (about
        -708 and +37) and rank the rows exactly as :meth:`predict_proba` does.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_labels), float64
            Positive where the marginal exceeds 1/2.
        """
        check_is_fitted(self)
        return logit(np.clip(self.predict_proba(X), LOWEST, HIGHEST))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False  # Y is always [n_samples, n_labels]
        tags.classifier_tags.multi_label = True
        tags.classifier_tags.multi_class = False  # each label is 0/1
        tags.input_tags.sparse = True
        tags.input_tags.allow_nan = True  # the mlp encoder reads NaN as the training mean
        tags.input_tags.string = True  # a list of texts
        return tags


def _as_texts(X) -> list[str] | None:
    """``X`` as a list of texts when it is a 1-D sequence of strings, else ``None``."""
    if isinstance(X, str):
        raise ValueError("Expected a list of texts (one per row), got a single string")
    if sp.issparse(X) or not hasattr(X, "__len__"):
        return None
    values = X.to_numpy() if hasattr(X, "to_numpy") and getattr(X, "ndim", 2) == 1 else X
    if getattr(values, "ndim", 1) != 1 or len(values) == 0:
        return None
    if all(isinstance(value, str) for value in values):
        return [str(value) for value in values]
    return None


def _check_texts_target(texts: list[str], Y):
    if Y is None:
        raise ValueError("MultiLabelClassifier requires y to be passed, but the target y is None.")
    Y = Y if sp.issparse(Y) else np.asarray(Y)
    if Y.shape[0] != len(texts):
        raise ValueError(f"Expected one row of Y per text: {len(texts)} texts, {Y.shape[0]} rows of Y")
    return Y


def _indicator_matrix(Y) -> np.ndarray:
    """``Y`` checked to be a 0/1 matrix ``[n_samples, n_labels]``, as ``np.int8``."""
    check_classification_targets(Y)  # "Unknown label type" for continuous targets
    kind = type_of_target(Y, input_name="Y")
    if kind not in ("binary", "multilabel-indicator"):
        raise ValueError(f"Only binary classification is supported for each label: Y must be a 0/1 indicator "
                         f"matrix [n_samples, n_labels], got a target of type {kind}")
    if Y.ndim != 2:
        raise ValueError(f"Expected Y to be a 0/1 indicator matrix [n_samples, n_labels], got shape {Y.shape}; "
                         "for a single label pass Y.reshape(-1, 1)")
    dense = Y.toarray() if sp.issparse(Y) else np.asarray(Y)
    if dense.dtype.kind not in "biuf":
        raise ValueError(f"Expected Y to contain only 0/1, got values of type {dense.dtype} "
                         f"(e.g. {dense.flat[0]!r}); encode class names with MultiLabelBinarizer")
    bad = np.argwhere((dense != 0) & (dense != 1))
    if len(bad):
        row, column = bad[0]
        raise ValueError(f"Expected Y to contain only 0/1, got {dense[row, column].item()!r} "
                         f"at row {row}, column {column}")
    return dense.astype(np.int8)


def _seed(random_state) -> int:
    """The training seed: ``random_state`` itself when it is an int, else a draw from it."""
    if isinstance(random_state, Integral):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


__all__ = ["MultiLabelClassifier"]
