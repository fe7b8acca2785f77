"""Decoders turn a joint label distribution into the label set that maximises an expected metric."""

from __future__ import annotations

from typing import Callable, ClassVar

import torch

from comorbid.distributions.base import JointLabelDistribution


class Decoder:
    """Maps a distribution ``[B]`` over label sets to one label set per row, ``[B, M]`` of 0/1.

    ``metric`` names the per-row utility (see ``comorbid.metrics.utility``) whose expectation the
    decoder maximises; the conformance suite checks that by brute force for small M.
    """

    name: ClassVar[str]
    metric: ClassVar[str]

    def decode(self, dist: JointLabelDistribution) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, dist: JointLabelDistribution) -> torch.Tensor:
        return self.decode(dist)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


#: name -> factory(argument string or None) -> Decoder. One line per decoder.
DECODERS: dict[str, Callable[[str | None], Decoder]] = {}


def register(name: str, factory: Callable[[str | None], Decoder]) -> None:
    DECODERS[name] = factory


def get_decoder(spec: str | Decoder) -> Decoder:
    """A decoder from its name, with an optional argument after ``=`` (``"top-k=5"``)."""
    if isinstance(spec, Decoder):
        return spec
    name, _, argument = spec.partition("=")
    name = name.strip()
    if name not in DECODERS:
        raise ValueError(f"Unknown decoder {name!r}; expected one of: {', '.join(sorted(DECODERS))}")
    return DECODERS[name](argument or None)


def parse_decoders(specs: str) -> list[str]:
    """``"hamming,subset"`` -> ``["hamming", "subset"]``, each checked."""
    names = [spec.strip() for spec in specs.split(",") if spec.strip()]
    if not names:
        raise ValueError("Expected at least one decoder name")
    for name in names:
        get_decoder(name)
    return names
