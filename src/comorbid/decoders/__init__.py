"""Bayes-optimal decoders: one trained distribution, the best label set for each metric.

See ``docs/decoders.md``. One registry line per decoder (:data:`DECODERS`, name -> factory, in
:mod:`comorbid.decoders.registry`); the exact rules per (metric, distribution type) are in
:data:`comorbid.decoders.rules.RULES`.
"""

from comorbid.decoders.base import Decoder
from comorbid.decoders.costs import FunctionCost, IcdTreeCost, MatrixCost, SetCost, UtilityCost, cost_from_spec, read_cost_csv
from comorbid.decoders.f_measure import gfm
from comorbid.decoders.mbr import MBRDecoder, minimum_bayes_risk
from comorbid.decoders.registry import DECODERS, decoders_help, get_decoder, parse_decoders
from comorbid.decoders.rules import (
    RULES,
    HammingDecoder,
    InstanceF1Decoder,
    JaccardDecoder,
    MetricDecoder,
    Rule,
    SubsetDecoder,
    find_rule,
)
from comorbid.decoders.simple import TopKDecoder
from comorbid.decoders.thresholds import MacroF1Decoder, MicroF1Decoder, ThresholdDecoder, best_f1_threshold

__all__ = [
    "DECODERS",
    "RULES",
    "Decoder",
    "FunctionCost",
    "HammingDecoder",
    "IcdTreeCost",
    "InstanceF1Decoder",
    "JaccardDecoder",
    "MBRDecoder",
    "MacroF1Decoder",
    "MatrixCost",
    "MetricDecoder",
    "MicroF1Decoder",
    "Rule",
    "SetCost",
    "SubsetDecoder",
    "ThresholdDecoder",
    "TopKDecoder",
    "UtilityCost",
    "best_f1_threshold",
    "cost_from_spec",
    "decoders_help",
    "find_rule",
    "get_decoder",
    "gfm",
    "minimum_bayes_risk",
    "parse_decoders",
    "read_cost_csv",
]
