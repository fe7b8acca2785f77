"""Decoders whose rule is one line: marginals, the mode, the top k."""

from __future__ import annotations

import torch

from comorbid.decoders.base import Decoder, register
from comorbid.distributions.base import JointLabelDistribution


class HammingDecoder(Decoder):
    """Each label where its marginal exceeds 1/2: maximises expected Hamming accuracy
    (1 - Hamming loss), whatever the dependence between labels (Dembczynski et al., 2012, MLJ)."""

    name = "hamming"
    metric = "hamming"

    def decode(self, dist: JointLabelDistribution) -> torch.Tensor:
        return (dist.marginals() > 0.5).to(torch.get_default_dtype())


class SubsetDecoder(Decoder):
    """The joint mode: maximises expected subset accuracy (exact match)."""

    name = "subset"
    metric = "subset"

    def __init__(self, beam_size: int | None = None):
        self.beam_size = beam_size

    def decode(self, dist: JointLabelDistribution) -> torch.Tensor:
        return dist.mode(beam_size=self.beam_size).to(torch.get_default_dtype())


class TopKDecoder(Decoder):
    """The k labels with the highest marginals (for precision@k; ties to the lower index)."""

    name = "top-k"
    metric = "precision@k"

    def __init__(self, k: int):
        if k < 1:
            raise ValueError(f"Expected k >= 1 for the top-k decoder, got {k}")
        self.k = k

    def decode(self, dist: JointLabelDistribution) -> torch.Tensor:
        marginals = dist.marginals()
        k = min(self.k, marginals.shape[-1])
        # stable sort: among equal marginals the lower label index comes first
        top = marginals.argsort(dim=-1, descending=True, stable=True)[:, :k]
        out = torch.zeros_like(marginals, dtype=torch.get_default_dtype())
        return out.scatter_(1, top, 1.0)

    def __repr__(self) -> str:
        return f"TopKDecoder(k={self.k})"


def _top_k_factory(argument: str | None) -> Decoder:
    if argument is None or not argument.isdigit():
        raise ValueError(f"Expected the top-k decoder as 'top-k=K' with a whole number K, got {argument!r}")
    return TopKDecoder(int(argument))


def _no_argument(cls):
    def factory(argument: str | None) -> Decoder:
        if argument is not None:
            raise ValueError(f"The {cls.name} decoder takes no argument, got {argument!r}")
        return cls()

    return factory


register("hamming", _no_argument(HammingDecoder))
register("subset", _no_argument(SubsetDecoder))
register("top-k", _top_k_factory)
