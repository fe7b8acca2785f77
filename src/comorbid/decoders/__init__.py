"""Bayes-optimal decoders: one trained distribution, the best label set for each metric."""

from comorbid.decoders import f_measure, simple  # noqa: F401  (registers the decoders)
from comorbid.decoders.base import DECODERS, Decoder, get_decoder, parse_decoders
from comorbid.decoders.f_measure import InstanceF1Decoder, gfm
from comorbid.decoders.simple import HammingDecoder, SubsetDecoder, TopKDecoder

__all__ = [
    "DECODERS",
    "Decoder",
    "HammingDecoder",
    "InstanceF1Decoder",
    "SubsetDecoder",
    "TopKDecoder",
    "get_decoder",
    "gfm",
    "parse_decoders",
]
