"""Heads: encoder features -> joint label distribution. One registry line per head."""

from comorbid.heads.base import Head
from comorbid.heads.chain import ChainHead
from comorbid.heads.independent import IndependentHead

HEADS: dict[str, type[Head]] = {
    IndependentHead.name: IndependentHead,
    ChainHead.name: ChainHead,
}


def get_head(name: str) -> type[Head]:
    if name not in HEADS:
        raise ValueError(f"Unknown model {name!r}; expected one of: {', '.join(sorted(HEADS))}")
    return HEADS[name]


__all__ = ["HEADS", "ChainHead", "Head", "IndependentHead", "get_head"]
