"""Joint label distributions p(y | x) over label sets y in {0,1}^M."""

from comorbid.distributions.base import JointLabelDistribution, all_label_sets
from comorbid.distributions.independent import IndependentBernoulli

__all__ = ["JointLabelDistribution", "IndependentBernoulli", "all_label_sets"]
