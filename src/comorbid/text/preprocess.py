"""One call from a report's sections (or a note with section headers) to the text a
bag-of-words vectoriser should see."""

from __future__ import annotations

from typing import Mapping, Sequence

from .negation import DEFAULT_WINDOW, word_statuses
from .sections import check_sections, join_section_lines, plain_words, split_sections

__all__ = ["preprocess_note", "preprocess_report", "SCOPE_MODES"]

#: What becomes of a word in a negation / uncertainty scope: ``"mark"`` prefixes it (``neg_``,
#: ``unc_``), ``"drop"`` leaves it out, ``"keep"`` keeps it as if it were affirmed.
SCOPE_MODES = ("mark", "drop", "keep")
_PREFIX = {"negated": "neg_", "uncertain": "unc_"}


def _check_mode(name: str, mode: str) -> None:
    if mode not in SCOPE_MODES:
        raise ValueError(f"Expected `{name}` to be one of {', '.join(SCOPE_MODES)}, got {mode!r}")


def preprocess_report(
    sections: Mapping[str, str] | Sequence[tuple[str | None, str]] | str,
    negation: bool = True,
    section_tags: bool = True,
    keep_plain: bool = True,
    window: int = DEFAULT_WINDOW,
    negated: str = "mark",
    uncertain: str = "mark",
) -> str:
    """Lower-cased words of a report with negation/uncertainty handling and section tags.

    Each section is processed on its own (scopes never cross sections): with ``negation``,
    words in a negation scope are handled as ``negated`` says and words in an uncertainty scope
    as ``uncertain`` says (:func:`comorbid.text.negation.annotate`): ``"mark"`` gives
    ``neg_word`` / ``unc_word``, ``"drop"`` removes them (what the ICD-9-CM guidelines ask of
    a coder: negated and uncertain diagnoses are not coded), ``"keep"`` ignores the scope. With
    ``section_tags``, each section's words are emitted plain and again with the section prefix
    (:mod:`comorbid.text.sections`), giving e.g. ``i_neg_pneumonia``. Deterministic; a pure
    function of its arguments.

    Args:
        sections: ``{section name: text}`` in report order, a list of ``(section name or None,
            text)`` pairs (what :func:`comorbid.text.split_sections` gives), or a ``str`` (one
            untagged section).
        negation: find negation/uncertainty scopes at all (``False``: every word plain).
        section_tags: add the section-tagged copy of each section's words.
        keep_plain: with ``section_tags``, keep the plain copy too.
        window: negation/uncertainty scope in words.
        negated: ``"mark"``, ``"drop"`` or ``"keep"`` negated words.
        uncertain: ``"mark"``, ``"drop"`` or ``"keep"`` uncertain words.

    Returns:
        Lines of space-separated tokens.

    Example:
        >>> print(preprocess_report({"CLINICAL_HISTORY": "Fever, rule out pneumonia.",
        ...                          "IMPRESSION": "No focal pneumonia."}))
        fever rule out unc_pneumonia
        h_fever h_rule h_out h_unc_pneumonia
        no neg_focal neg_pneumonia
        i_no i_neg_focal i_neg_pneumonia
        >>> print(preprocess_report("Cough. No focal pneumonia.", negated="drop"))
        cough no
    """
    sections = check_sections(sections)
    if isinstance(sections, str):
        items = [(None, sections)]
    else:
        items = list(sections.items()) if isinstance(sections, Mapping) else list(sections)
    _check_mode("negated", negated)
    _check_mode("uncertain", uncertain)
    modes = {"negated": negated, "uncertain": uncertain}

    def words(text: str | None) -> list[str]:
        if not text:
            return []
        if not negation:
            return plain_words(text)
        out = []
        for word, status in word_statuses(text, window):
            if word == "?":
                continue
            mode = modes.get(status, "keep")
            if mode == "drop":
                continue
            out.append((_PREFIX[status] if mode == "mark" else "") + word)
        return out

    return join_section_lines([(name, words(text)) for name, text in items], section_tags, keep_plain)


def preprocess_note(note: str, **options) -> str:
    r""":func:`preprocess_report` of a note whose sections are announced by header lines
    (``"IMPRESSION: ..."``, see :func:`comorbid.text.sections.split_sections`); text before the
    first header is an untagged section. ``options`` are :func:`preprocess_report`'s.

    Example:
        >>> print(preprocess_note("CLINICAL HISTORY: Cough.\nIMPRESSION: No pneumonia.", negated="drop"))
        cough
        h_cough
        no
        i_no
    """
    return preprocess_report(split_sections(note), **options)
