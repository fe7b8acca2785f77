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

from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch

from comorbid.decoders import top_k_sets
from comorbid.decoders.base import Decoder
from comorbid.decoders.costs import UtilityCost
from comorbid.decoders.f_measure import gfm
from comorbid.decoders.mbr import DEFAULT_ENUMERATE_MAX_LABELS, DEFAULT_SAMPLES, minimum_bayes_risk
from comorbid.distributions.base import JointLabelDistribution
from comorbid.distributions.independent import IndependentBernoulli


@dataclass(frozen=True)
class Rule:
    """An exact decoding rule for one metric on one family of distributions.

    Attributes:
        metric: the utility name it maximises.
        distribution: the class it applies to (and its subclasses).
        description: the rule in a few words (shown by :meth:`MetricDecoder.plan`).
        decode: ``dist -> [B, M]``.
        exact: ``dist -> bool``, whether the rule is exact for this instance.
    """

    metric: str
    distribution: type
    description: str
    decode: Callable[[JointLabelDistribution], torch.Tensor]
    exact: Callable[[JointLabelDistribution], bool]


def _needs(method: str) -> Callable[[JointLabelDistribution], bool]:
    return lambda dist: method in dist.exact


def _threshold_half(dist):
    return (dist.marginals() > 0.5).to(torch.get_default_dtype())


def _mode(dist):
    return dist.mode().to(torch.get_default_dtype())


def _gfm(dist):
    return gfm(dist.count_marginals(), dist.size_distribution()[:, 0])


def _top_k(metric, dist):
    return top_k_sets.best_top_k_set(dist.marginals(), metric)


def _top_k_exact(metric, dist):
    return "marginals" in dist.exact and top_k_sets.is_exact(metric, dist.n_labels)


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
]


def find_rule(metric: str, dist: JointLabelDistribution) -> Rule | None:
    """The rule for ``metric`` registered for the most specific class of ``dist``, or None."""
    for cls in type(dist).__mro__:
        for rule in RULES:
            if rule.metric == metric and rule.distribution is cls:
                return rule
    return None


class MetricDecoder(Decoder):
    """Maximises the expected per-row utility ``metric`` (see the module docstring).

    Args:
        metric: a name in :data:`comorbid.metrics.utility.UTILITIES`.
        n_samples: samples for the sampling fallback.
        seed: seed of the sampling fallback.
        enumerate_max_labels: enumerate all sets up to this many labels (0 never does).
    """

    name = "metric"

    def __init__(self, metric: str | None = None, n_samples: int = DEFAULT_SAMPLES, seed: int = 0,
                 enumerate_max_labels: int = DEFAULT_ENUMERATE_MAX_LABELS):
        self.metric = metric or type(self).metric
        self.cost = UtilityCost(self.metric)
        self.n_samples = n_samples
        self.seed = seed
        self.enumerate_max_labels = enumerate_max_labels

    @property
    def spec(self) -> str:
        return self.name if type(self) is not MetricDecoder else self.metric

    def plan(self, dist: JointLabelDistribution) -> tuple[str, bool]:
        """``(what decode will do, whether it is exact)`` for this distribution."""
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
        rule = find_rule(self.metric, dist)
        with torch.no_grad():
            if rule is not None and (rule.exact(dist) or dist.n_labels > self.enumerate_max_labels):
                try:
                    return rule.decode(dist)
                except NotImplementedError:
                    pass
            return minimum_bayes_risk(dist, self.cost, self.n_samples, self.seed, self.enumerate_max_labels)

    def best_nonempty(self, dist: JointLabelDistribution) -> torch.Tensor:
        """Instance F1: GFM restricted to sizes k >= 1, exact among non-empty sets given the
        count marginals (GFM scores each size k separately; dropping k = 0 leaves the others).
        Subset accuracy never gets here (the mode of a distribution without the empty set is
        non-empty); Jaccard's enumeration and sampling paths exclude the empty set themselves.
        Otherwise (Hamming) the base's single most probable label, optimal for Hamming."""
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
    independence."""

    name = metric = "instance-f1"


class JaccardDecoder(MetricDecoder):
    """Maximises expected Jaccard index: the best top-k set under independence (exact), all
    sets up to ``enumerate_max_labels`` labels (exact), sampling MBR otherwise."""

    name = metric = "jaccard"
