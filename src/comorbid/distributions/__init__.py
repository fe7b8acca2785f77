"""Joint label distributions p(y | x) over label sets y in {0,1}^M."""

from comorbid.distributions.base import JointLabelDistribution, ShortlistCounts, all_label_sets
from comorbid.distributions.chain import ChainBernoulli
from comorbid.distributions.chain_ensemble import ChainEnsemble
from comorbid.distributions.independent import IndependentBernoulli
from comorbid.distributions.ising import IsingLabels
from comorbid.distributions.mixture import BernoulliMixture
from comorbid.distributions.powerset import LabelPowerset

__all__ = [
    "BernoulliMixture",
    "ChainBernoulli",
    "ChainEnsemble",
    "IndependentBernoulli",
    "IsingLabels",
    "JointLabelDistribution",
    "LabelPowerset",
    "ShortlistCounts",
    "all_label_sets",
]
