"""The decoder registry: one line per decoder, ``name -> factory(argument or None) -> Decoder``.

A spec is a name with an optional argument after ``=`` (``"top-k=5"``, ``"mbr=icd-tree"``,
``"macro-f1=0.1"``); :func:`get_decoder` splits it and calls the name's factory with the
argument (``None`` when there is none). Adding a decoder = its module + one line in
:data:`DECODERS` + one example in ``tests/examples.py`` (``tests/test_registries.py`` checks).
"""

from __future__ import annotations

from typing import Callable

from comorbid.decoders.base import Decoder
from comorbid.decoders.mbr import MBRDecoder
from comorbid.decoders.rules import HammingDecoder, InstanceF1Decoder, JaccardDecoder, SubsetDecoder
from comorbid.decoders.simple import TopKDecoder
from comorbid.decoders.thresholds import MacroF1Decoder, MicroF1Decoder
from comorbid.metrics.utility import UTILITIES

DecoderFactory = Callable[[str | None], Decoder]


def usage(spec: str) -> Callable[[DecoderFactory], DecoderFactory]:
    """Marks a factory with how its spec is written (``"top-k=K"``), for help texts."""

    def mark(factory: DecoderFactory) -> DecoderFactory:
        factory.usage = spec  # type: ignore[attr-defined]
        return factory

    return mark


def _instance_f1(argument: str | None) -> Decoder:
    """``instance-f1`` or ``instance-f1=L``: GFM on each row's top-L labels (0: no shortlist)."""
    if argument is None:
        return InstanceF1Decoder()
    if not argument.isdigit():
        raise ValueError(f"Expected instance-f1 or instance-f1=L with a whole number L (the shortlist; 0: none), "
                         f"got {argument!r}")
    return InstanceF1Decoder(shortlist=int(argument))


def no_argument(cls: type[Decoder]) -> DecoderFactory:
    """The factory of a decoder that takes no ``=argument``."""

    def factory(argument: str | None) -> Decoder:
        if argument is not None:
            raise ValueError(f"The {cls.name} decoder takes no argument, got {argument!r}")
        return cls()

    return usage(cls.name)(factory)


@usage("mbr[=COST]")
def mbr_factory(argument: str | None) -> Decoder:
    """``mbr[=COST]``: minimum Bayes risk under COST (default ``icd-tree``)."""
    return MBRDecoder(argument or "icd-tree")


@usage("top-k=K")
def top_k_factory(argument: str | None) -> Decoder:
    """``top-k=K``: the K labels of highest marginal."""
    if argument is None or not argument.isdigit():
        raise ValueError(f"Expected the top-k decoder as 'top-k=K' with a whole number K, got {argument!r}")
    return TopKDecoder(int(argument))


@usage("macro-f1[=FBR]")
def macro_f1_factory(argument: str | None) -> Decoder:
    """``macro-f1[=FBR]``: per-label thresholds, with the SCutFBR bound ``0 <= FBR < 1``."""
    if argument is None:
        return MacroF1Decoder()
    try:
        fbr = float(argument)
    except ValueError:
        fbr = -1.0
    if not 0.0 <= fbr < 1.0:
        raise ValueError(f"Expected macro-f1 or macro-f1=FBR with 0 <= FBR < 1 (the SCutFBR bound), got {argument!r}")
    return MacroF1Decoder(fbr=fbr)


#: name -> factory(argument string or None) -> Decoder. One line per decoder.
DECODERS: dict[str, DecoderFactory] = {
    "hamming": no_argument(HammingDecoder),
    "subset": no_argument(SubsetDecoder),
    "instance-f1": _instance_f1,
    "jaccard": no_argument(JaccardDecoder),
    "top-k": top_k_factory,
    "mbr": mbr_factory,
    "macro-f1": macro_f1_factory,
    "micro-f1": no_argument(MicroF1Decoder),
}


def get_decoder(spec: str | Decoder) -> Decoder:
    """A decoder from its name, with an optional argument after ``=`` (``"top-k=5"``)."""
    if isinstance(spec, Decoder):
        return spec
    name, _, argument = spec.partition("=")
    name = name.strip()
    if name not in DECODERS:
        raise ValueError(f"Unknown decoder {name!r}; expected one of: {', '.join(sorted(DECODERS))}")
    return DECODERS[name](argument.strip() or None)


def parse_decoders(specs: str) -> list[str]:
    """``"hamming,subset"`` -> ``["hamming", "subset"]``, each checked."""
    names = [spec.strip() for spec in specs.split(",") if spec.strip()]
    if not names:
        raise ValueError("Expected at least one decoder name")
    for name in names:
        get_decoder(name)
    return names


def decoders_help() -> str:
    """The decoder specs, as ``--decode`` help lists them: from :data:`DECODERS`."""
    specs = ", ".join(getattr(factory, "usage", name) for name, factory in DECODERS.items())
    costs = ", ".join(UTILITIES)
    return f"{specs}; mbr's COST: icd-tree (default), {costs} or a CSV cost-matrix file"
