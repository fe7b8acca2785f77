"""The registry of exact decoding rules, ``(metric, distribution type) -> rule``, and the
decoders that use it.

A :class:`MetricDecoder` for a per-row utility (``hamming``, ``subset``, ``instance-f1``,
``jaccard``) picks, for each distribution it is given:

1. the rule registered for its metric and the distribution's class (the most specific class
   in the distribution's MRO wins), if that rule is exact for this instance;
2. otherwise, up to ``enumerate_max_labels`` labels, minimum-Bayes-risk over all ``2^M`` sets
   with exact probabilities (exact for every distribution);
3. otherwise the rule, approximate (Monte Carlo marginals, a narrow beam);
4. with no rule at all, sampling minimum-Bayes-risk (:mod:`comorbid.decoders.mbr`).

A new distribution (subclassing ``JointLabelDistribution``) gets the generic rules and the
fallbacks without any registration; a rule that raises ``NotImplementedError`` (a mode search
the model lacks) falls through to sampling too. :meth:`MetricDecoder.plan` says which path a
distribution takes and whether it is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Callable

import torch

from comorbid.decoders import top_k_sets
from comorbid.decoders import base
from comorbid.decoders.base import Decoder
from comorbid.decoders.costs import UtilityCost
from comorbid.decoders.f_measure import gfm, shortlist_gfm
from comorbid.decoders.mbr import DEFAULT_ENUMERATE_MAX_LABELS, DEFAULT_SAMPLES, minimum_bayes_risk
from comorbid.distributions.base import JointLabelDistribution
from comorbid.distributions.independent import IndependentBernoulli
from comorbid.distributions.nonempty import NonEmpty


@dataclass(frozen=True)
class Rule:
    """An exact decoding rule for one metric on one family of distributions.

    Attributes:
        metric: the utility name it maximises.
        distribution: the class it applies to (and its subclasses).
        description: the rule in a few words (shown by :meth:`MetricDecoder.plan`).
        decode: ``dist -> [B, M]``, or ``([B, M], ShortlistInfo | None)`` for a rule that
            considers only some labels per row.
        exact: ``dist -> bool``, whether the rule is exact for this instance.
        applies: ``dist -> bool``, whether the rule applies to this instance at all (a rule
            for a wrapper that needs a particular wrapped distribution); default always.
    """

    metric: str
    distribution: type
    description: str
    decode: Callable[[JointLabelDistribution], torch.Tensor]
    exact: Callable[[JointLabelDistribution], bool]
    applies: Callable[[JointLabelDistribution], bool] = lambda dist: True


def _needs(method: str) -> Callable[[JointLabelDistribution], bool]:
    return lambda dist: method in dist.exact


def _threshold_half(dist):
    return (dist.marginals() > 0.5).to(torch.get_default_dtype())


def _mode(dist):
    return dist.mode().to(torch.get_default_dtype())


def _gfm(dist):
    return gfm(dist.count_marginals(), dist.size_distribution()[:, 0])


def _top_k(metric, dist):
    return top_k_sets.best_top_k_set_with_info(dist.marginals(), metric)


def _top_k_exact(metric, dist):
    return "marginals" in dist.exact and top_k_sets.is_exact(metric, dist.n_labels)


def _independent_base(dist):
    return isinstance(dist.base, IndependentBernoulli)


def _nonempty_top_k(metric, dist):
    """Independent labels given y != 0: E[u_k | y != 0] = E[u_k] / P(y != 0) for k >= 1 (u(h, 0)
    = 0 for a non-empty h), and the exchange argument of top_k_sets never reaches y = 0, so the
    best non-empty set is the best top-k set of the base with k >= 1."""
    chosen, info = top_k_sets.best_top_k_set_with_info(dist.base.marginals(), metric, nonempty=True)
    if info is not None:
        scale = (-dist.log_base_nonempty.double()).exp()  # the bound of E[u] is one of P(y != 0) E[u | y != 0]
        info = replace(info, loss_bound=(info.loss_bound.double() * scale).to(info.loss_bound.dtype),
                       outside_mass=dist.marginals().double().scatter(1, info.shortlist, 0.0).sum(-1).to(info.outside_mass.dtype))
    return chosen, info


#: One line per rule. Marginals > 1/2 maximise expected Hamming accuracy and the mode expected
#: subset accuracy for any distribution (Dembczynski, Waegeman, Cheng & Huellermeier, 2012, MLJ
#: 88); GFM is exact for F1 given the count marginals (Dembczynski et al., 2011, NeurIPS);
#: under independence the F1- and Jaccard-optimal sets are top-k sets (see top_k_sets).
RULES: list[Rule] = [
    Rule("hamming", JointLabelDistribution, "marginals > 1/2", _threshold_half, _needs("marginals")),
    Rule("subset", JointLabelDistribution, "joint mode", _mode, _needs("mode")),
    Rule("instance-f1", JointLabelDistribution, "GFM on count marginals", _gfm, _needs("count_marginals")),
    Rule("instance-f1", IndependentBernoulli, "best top-k set (quadrature)", partial(_top_k, "instance-f1"),
         partial(_top_k_exact, "instance-f1")),
    Rule("jaccard", IndependentBernoulli, "best top-k set (quadrature)", partial(_top_k, "jaccard"),
         partial(_top_k_exact, "jaccard")),
    Rule("instance-f1", NonEmpty, "best non-empty top-k set (quadrature)", partial(_nonempty_top_k, "instance-f1"),
         partial(_top_k_exact, "instance-f1"), _independent_base),
    Rule("jaccard", NonEmpty, "best non-empty top-k set (quadrature)", partial(_nonempty_top_k, "jaccard"),
         partial(_top_k_exact, "jaccard"), _independent_base),
]


def find_rule(metric: str, dist: JointLabelDistribution) -> Rule | None:
    """The rule for ``metric`` registered for the most specific class of ``dist``, or None."""
    for cls in type(dist).__mro__:
        for rule in RULES:
            if rule.metric == metric and rule.distribution is cls and rule.applies(dist):
                return rule
    return None


class MetricDecoder(Decoder):
    """Maximises the expected per-row utility ``metric`` (see the module docstring).

    Args:
        metric: a name in :data:`comorbid.metrics.utility.UTILITIES`.
        n_samples: samples for the sampling fallback.
        seed: seed of the sampling fallback.
        enumerate_max_labels: enumerate all sets up to this many labels (0 never does).
        shortlist: instance F1 only: beyond this many labels (and beyond
            ``enumerate_max_labels``), GFM on the top-``shortlist`` labels of each row by
            marginal (:func:`comorbid.decoders.f_measure.shortlist_gfm`); None:
            :data:`comorbid.decoders.base.DEFAULT_SHORTLIST`; 0: never (``O(M^2)`` memory per row).
        max_size: the largest label-set size |y| the shortlist keeps (None: adaptive, see
            :func:`comorbid.decoders.f_measure.default_max_size`).
    """

    name = "metric"

    def __init__(self, metric: str | None = None, n_samples: int = DEFAULT_SAMPLES, seed: int = 0,
                 enumerate_max_labels: int = DEFAULT_ENUMERATE_MAX_LABELS, shortlist: int | None = None,
                 max_size: int | None = None):
        self.metric = metric or type(self).metric
        self.cost = UtilityCost(self.metric)
        self.n_samples = n_samples
        self.seed = seed
        self.enumerate_max_labels = enumerate_max_labels
        if shortlist is not None and shortlist < 0:
            raise ValueError(f"Expected shortlist >= 0 (0: no shortlist), got {shortlist}")
        if max_size is not None and max_size < 1:
            raise ValueError(f"Expected max_size >= 1, got {max_size}")
        self.shortlist = shortlist
        self.max_size = max_size

    @property
    def spec(self) -> str:
        name = self.name if type(self) is not MetricDecoder else self.metric
        return name if self.shortlist is None else f"{name}={self.shortlist}"

    @property
    def shortlist_size(self) -> int:
        """L, the candidate labels per row once shortlisting (0: never)."""
        return base.DEFAULT_SHORTLIST if self.shortlist is None else self.shortlist

    def uses_shortlist(self, dist: JointLabelDistribution) -> bool:
        """Whether ``decode(dist)`` runs GFM on a shortlist (instance F1 beyond L labels)."""
        size = self.shortlist_size
        return self.metric == "instance-f1" and 0 < size < dist.n_labels and dist.n_labels > self.enumerate_max_labels

    def plan(self, dist: JointLabelDistribution) -> tuple[str, bool]:
        """``(what decode will do, whether it is exact)`` for this distribution."""
        if self.uses_shortlist(dist):
            return (f"GFM on a shortlist of the top-{self.shortlist_size} labels per row "
                    "(rows certified exact in last_info.exact)", False)
        rule = find_rule(self.metric, dist)
        if rule is not None and rule.exact(dist):
            return f"rule: {rule.description}", True
        if dist.n_labels <= self.enumerate_max_labels:
            return "enumeration of all label sets", "log_prob" in dist.exact
        if rule is not None:
            return f"rule: {rule.description} (approximate)", False
        return f"sampling MBR ({self.n_samples} samples)", False

    def is_exact(self, dist: JointLabelDistribution) -> bool:
        return self.plan(dist)[1]

    def _decode(self, dist: JointLabelDistribution) -> torch.Tensor:
        if self.uses_shortlist(dist):
            chosen, self.last_info = shortlist_gfm(dist, self.shortlist_size, self.max_size)
            return chosen
        rule = find_rule(self.metric, dist)
        with torch.no_grad():
            if rule is not None and (rule.exact(dist) or dist.n_labels > self.enumerate_max_labels):
                try:
                    chosen = rule.decode(dist)
                except NotImplementedError:
                    pass
                else:
                    if isinstance(chosen, tuple):
                        chosen, self.last_info = chosen
                    return chosen
            return minimum_bayes_risk(dist, self.cost, self.n_samples, self.seed, self.enumerate_max_labels)

    def best_nonempty(self, dist: JointLabelDistribution) -> torch.Tensor:
        """Instance F1: GFM restricted to sizes k >= 1, exact among non-empty sets given the
        count marginals (GFM scores each size k separately; dropping k = 0 leaves the others).
        Subset accuracy never gets here (the mode of a distribution without the empty set is
        non-empty); Jaccard's enumeration and sampling paths exclude the empty set themselves.
        Otherwise (Hamming) the base's single most probable label, optimal for Hamming."""
        if self.uses_shortlist(dist):
            return shortlist_gfm(dist, self.shortlist_size, self.max_size, nonempty=True)[0]
        if self.metric == "instance-f1":
            return gfm(dist.count_marginals(), torch.full((dist.batch_size,), -torch.inf))
        return super().best_nonempty(dist)


class HammingDecoder(MetricDecoder):
    """Maximises expected Hamming accuracy (1 - Hamming loss): marginals > 1/2."""

    name = metric = "hamming"


class SubsetDecoder(MetricDecoder):
    """Maximises expected subset accuracy (exact match): the joint mode."""

    name = metric = "subset"


class InstanceF1Decoder(MetricDecoder):
    """Maximises expected instance (example-based) F1: GFM, or the best top-k set under
    independence; beyond ``shortlist`` labels (default 128) GFM on each row's top-``shortlist``
    labels (``instance-f1=L`` sets L; see :func:`comorbid.decoders.f_measure.shortlist_gfm`)."""

    name = metric = "instance-f1"


class JaccardDecoder(MetricDecoder):
    """Maximises expected Jaccard index: the best top-k set under independence (exact), all
    sets up to ``enumerate_max_labels`` labels (exact), sampling MBR otherwise."""

    name = metric = "jaccard"
