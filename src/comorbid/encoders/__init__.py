"""Encoders: texts or feature matrices -> features for a head. One registry line per encoder."""

from comorbid.encoders.base import Encoder
from comorbid.encoders.caml import CAMLEncoder
from comorbid.encoders.mlp import MLPEncoder
from comorbid.encoders.nonlinear import RandomFourierEncoder, TreeLeafEncoder
from comorbid.encoders.sentence import SentenceEncoder
from comorbid.encoders.tfidf import ClinicalEncoder, TfidfEncoder

ENCODERS: dict[str, type[Encoder]] = {
    TfidfEncoder.name: TfidfEncoder,
    ClinicalEncoder.name: ClinicalEncoder,
    MLPEncoder.name: MLPEncoder,
    TreeLeafEncoder.name: TreeLeafEncoder,
    RandomFourierEncoder.name: RandomFourierEncoder,
    SentenceEncoder.name: SentenceEncoder,
    CAMLEncoder.name: CAMLEncoder,
}


def get_encoder(name: str, is_text: bool) -> type[Encoder]:
    """The encoder class for ``name``; ``"auto"`` picks the clinical bag of words for texts and
    the MLP otherwise."""
    if name == "auto":
        name = "clinical" if is_text else "mlp"
    if name not in ENCODERS:
        raise ValueError(f"Unknown encoder {name!r}; expected auto or one of: {', '.join(sorted(ENCODERS))}")
    return ENCODERS[name]


__all__ = [
    "ENCODERS", "CAMLEncoder", "ClinicalEncoder", "Encoder", "MLPEncoder", "RandomFourierEncoder", "SentenceEncoder", "TfidfEncoder",
    "TreeLeafEncoder",
    "get_encoder",
]
