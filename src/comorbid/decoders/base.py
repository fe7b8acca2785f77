"""Decoders turn a joint label distribution into the label set that maximises an expected metric.

A decoder is built from a spec string (``"hamming"``, ``"top-k=5"``, ``"mbr=icd-tree"``) by
:func:`comorbid.decoders.registry.get_decoder`. Its life cycle, as :class:`comorbid.model.MultiLabelModel` drives it:

1. ``bind(label_names)``: decoders whose cost depends on what the labels are (an ICD tree
   distance, a cost file) read it here; the others ignore it.
2. ``fit(marginals, labels)``: only decoders with ``needs_fitting`` (thresholds for corpus-level
   metrics) learn from held-out predictions ``[N, M]``; ``state()`` is the JSON-able result,
   saved in the model's ``config.json`` and restored with ``load_state``.
3. ``decode(dist) -> [B, M]`` (subclasses implement ``_decode``); ``is_exact(dist)`` says whether that result is Bayes-optimal for
   this distribution or an approximation (sampling, Monte Carlo marginals, a narrow beam).
   Decoders that restrict a row to a shortlist of its labels (many labels, see
   ``docs/decoders.md``) leave what they left out in ``last_info``
   (:class:`comorbid.decoders.f_measure.ShortlistInfo`); ``decode_with_info`` returns both.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np
import torch

from comorbid.distributions.base import JointLabelDistribution

#: Candidate labels per row of the decoders that are super-linear in M (``instance-f1``) when
#: they are not given a ``shortlist``: they shortlist once a distribution has more labels.
DEFAULT_SHORTLIST = 128


class Decoder:
    """Maps a distribution ``[B]`` over label sets to one label set per row, ``[B, M]`` of 0/1.

    ``metric`` names what the decoder maximises: a per-row utility of
    :mod:`comorbid.metrics.utility` (the conformance suite checks those by brute force for
    small M), ``"precision@k"``, a corpus-level metric (``"macro-f1"``) or ``"-cost"``.
    """

    name: ClassVar[str]
    metric: str
    #: True for decoders that must be fitted on held-out predictions before decoding.
    needs_fitting: ClassVar[bool] = False
    #: What the last ``decode`` left outside its shortlist (a ``ShortlistInfo``), or None when
    #: it considered every label.
    last_info: Any = None

    @property
    def spec(self) -> str:
        """The string :func:`comorbid.decoders.get_decoder` builds this decoder from."""
        return self.name

    def bind(self, label_names: Sequence[str]) -> "Decoder":
        """Learn what the labels are (for label-dependent costs); returns ``self``."""
        return self

    def fit(self, marginals: np.ndarray, labels: np.ndarray) -> "Decoder":
        """Tune on held-out marginals ``[N, M]`` and true labels ``[N, M]``; returns ``self``."""
        return self

    def state(self) -> dict[str, Any]:
        """What ``fit`` learned, as plain JSON (empty for decoders that learn nothing)."""
        return {}

    def load_state(self, state: dict[str, Any]) -> "Decoder":
        """Restore what :meth:`state` returned; returns ``self``."""
        return self

    def is_exact(self, dist: JointLabelDistribution) -> bool:
        """Whether ``decode(dist)`` maximises the expected metric exactly (up to rounding)."""
        return False

    def decode(self, dist: JointLabelDistribution) -> torch.Tensor:
        """One label set per row, ``[B, M]``.

        For a distribution conditioned on y != 0 (``dist.excludes_empty``: every true set has
        a label) every row is non-empty: a row the decoder leaves empty gets
        :meth:`best_nonempty` instead, the best non-empty set for the decoder's metric."""
        self.last_info = None
        chosen = self._decode(dist)
        if dist.excludes_empty and dist.n_labels:
            empty = chosen.sum(-1) == 0
            if empty.any():
                with torch.no_grad():
                    chosen = torch.where(empty[:, None], self.best_nonempty(dist).to(chosen.dtype), chosen)
        return chosen

    def decode_with_info(self, dist: JointLabelDistribution) -> tuple[torch.Tensor, Any]:
        """:meth:`decode` and :attr:`last_info` (None when every label was considered)."""
        chosen = self.decode(dist)
        return chosen, self.last_info

    def _decode(self, dist: JointLabelDistribution) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def best_nonempty(self, dist: JointLabelDistribution) -> torch.Tensor:
        """The set :meth:`decode` returns where ``_decode`` chose the empty set for a
        distribution without it, ``[B, M]``: here the single label of highest marginal.

        That is the Bayes-optimal non-empty set for Hamming accuracy under ANY joint
        distribution: E[sum_j 1[h_j = y_j]] = sum_j (1 - p_j) + sum_{j in h} (2 p_j - 1) is
        additive in the marginals p_j, so among non-empty h it is maximised by taking every j
        with p_j > 1/2, and when there is none (all terms <= 0) by the one j of largest
        2 p_j - 1, i.e. of largest p_j. For marginal thresholds (micro/macro-F1) it is the
        best non-empty completion: the one label the thresholds would admit first were they
        lowered together."""
        marginals = dist.marginals()
        out = torch.zeros(marginals.shape, dtype=torch.get_default_dtype(), device=marginals.device)
        return out.scatter_(1, marginals.argmax(-1, keepdim=True), 1.0)

    def __call__(self, dist: JointLabelDistribution) -> torch.Tensor:
        return self.decode(dist)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"
