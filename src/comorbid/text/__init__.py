"""Clinical text for coding models: negation/uncertainty scopes and section tags.

Example:
    >>> from comorbid.text import preprocess_report
    >>> preprocess_report({"IMPRESSION": "No focal pneumonia."}, section_tags=False)
    'no neg_focal neg_pneumonia'
"""

from .negation import Token, annotate, mark_scopes
from .preprocess import preprocess_note, preprocess_report
from .sections import section_prefix, section_text, split_sections
from .tokens import split_sentences, word_spans

__all__ = [
    "Token",
    "annotate",
    "mark_scopes",
    "preprocess_note",
    "preprocess_report",
    "section_prefix",
    "section_text",
    "split_sections",
    "split_sentences",
    "word_spans",
]
