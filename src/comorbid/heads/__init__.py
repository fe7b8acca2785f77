"""Heads: encoder features -> joint label distribution. One registry line per head."""

from comorbid.heads.bagging import BaggedHead
from comorbid.heads.base import Head
from comorbid.heads.chain import ChainEnsembleHead, ChainHead
from comorbid.heads.independent import IndependentHead
from comorbid.heads.ising import IsingHead
from comorbid.heads.mixture import MixtureHead
from comorbid.heads.powerset import PowersetHead

HEADS: dict[str, type[Head]] = {
    IndependentHead.name: IndependentHead,
    ChainHead.name: ChainHead,
    ChainEnsembleHead.name: ChainEnsembleHead,
    MixtureHead.name: MixtureHead,
    PowersetHead.name: PowersetHead,
    IsingHead.name: IsingHead,
    BaggedHead.name: BaggedHead,
}
BaggedHead.member_heads = HEADS  # a bag's members are looked up here (see BaggedHead.member_heads)


def get_head(name: str) -> type[Head]:
    if name not in HEADS:
        raise ValueError(f"Unknown model {name!r}; expected one of: {', '.join(sorted(HEADS))}")
    return HEADS[name]


__all__ = [
    "HEADS",
    "BaggedHead",
    "ChainEnsembleHead",
    "ChainHead",
    "Head",
    "IndependentHead",
    "IsingHead",
    "MixtureHead",
    "PowersetHead",
    "get_head",
]
