"""One call from a report's sections to the text a TF-IDF vectoriser should see."""

from __future__ import annotations

from typing import Mapping

from .negation import DEFAULT_WINDOW, mark_scopes
from .sections import check_sections, plain_words, join_section_lines

__all__ = ["preprocess_report"]


def preprocess_report(
    sections: Mapping[str, str] | str,
    negation: bool = True,
    section_tags: bool = True,
    keep_plain: bool = True,
    window: int = DEFAULT_WINDOW,
) -> str:
    """Lower-cased words of a report with negation/uncertainty prefixes and section tags.

    Each section is processed on its own (scopes never cross sections): with ``negation``,
    words in a negation scope become ``neg_word`` and in an uncertainty scope ``unc_word``
    (:func:`comorbid.text.negation.mark_scopes`); with ``section_tags``, each section's words are
    emitted plain and again with the section prefix (:mod:`comorbid.text.sections`), giving e.g.
    ``i_neg_pneumonia``. Deterministic; a pure function of its arguments.

    Args:
        sections: ``{section name: text}`` in report order, or a ``str`` (one untagged section).
        negation: prefix negated/uncertain words.
        section_tags: add the section-tagged copy of each section's words.
        keep_plain: with ``section_tags``, keep the plain copy too.
        window: negation/uncertainty scope in words.

    Returns:
        Lines of space-separated tokens.

    Example:
        >>> print(preprocess_report({"CLINICAL_HISTORY": "Fever, rule out pneumonia.",
        ...                          "IMPRESSION": "No focal pneumonia."}))
        fever rule out unc_pneumonia
        h_fever h_rule h_out h_unc_pneumonia
        no neg_focal neg_pneumonia
        i_no i_neg_focal i_neg_pneumonia
    """
    sections = check_sections(sections)
    items = [(None, sections)] if isinstance(sections, str) else list(sections.items())

    def words(text: str | None) -> list[str]:
        if not text:
            return []
        return mark_scopes(text, window).split() if negation else plain_words(text)

    return join_section_lines([(name, words(text)) for name, text in items], section_tags, keep_plain)
