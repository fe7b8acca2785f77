"""Section-tagged text: a vectoriser can tell "pneumonia" in the history from the impression.

Representation (chosen for TF-IDF / bag-of-words models, where a token is a feature):

* every word of section ``s`` is emitted twice: once plain (``pneumonia``) and once tagged with
  the section's prefix (``i_pneumonia``), so a linear model can share evidence across sections
  (plain feature) and still weigh a section differently (tagged feature). In CMC 2007 the same
  word means different things by section: "pneumonia" in the history is a suspicion ("Evaluate
  for pneumonia", coded as the symptom), in the impression a radiological diagnosis (486).
* each section gives two lines, plain words then tagged words, so word n-grams never mix plain
  and tagged words (the vectoriser's n-grams still run across line ends);
* prefixes: ``h_`` history (CLINICAL_HISTORY, HISTORY, INDICATION, REASON_FOR_EXAM), ``i_``
  impression (IMPRESSION, CONCLUSION), ``f_`` findings; any other section is tagged with its own
  name, lower-cased with non-alphanumerics as ``_`` (``"TECHNIQUE"`` -> ``technique_``). Words
  never contain ``_`` (they are runs of letters/digits), so a prefix cannot be confused with a
  word.

``keep_plain=False`` emits only the tagged line (smaller vocabulary, no sharing).
"""

from __future__ import annotations

import re
from typing import Mapping

from .tokens import word_spans

__all__ = ["SECTION_PREFIXES", "section_prefix", "section_text", "split_sections"]

SECTION_PREFIXES: dict[str, str] = {
    "clinical_history": "h",
    "history": "h",
    "indication": "h",
    "indications": "h",
    "reason_for_exam": "h",
    "impression": "i",
    "conclusion": "i",
    "conclusions": "i",
    "findings": "f",
}

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def section_prefix(name: str) -> str:
    """The tag prefix of a section name: ``"CLINICAL_HISTORY"`` -> ``"h_"``, ``"Technique"`` -> ``"technique_"``.

    Raises:
        ValueError: for a name with no letter or digit.
    """
    key = _NON_ALNUM.sub("_", str(name).lower()).strip("_")
    if not key:
        raise ValueError(f"Expected a section name with a letter or digit, got {name!r}")
    return SECTION_PREFIXES.get(key, key) + "_"


def plain_words(text: str) -> list[str]:
    """Lower-cased words of ``text`` (no "?" cue), as :func:`section_text` emits them."""
    return [text[s:e].lower() for s, e in word_spans(text) if text[s:e] != "?"]


def check_sections(sections):
    """``sections`` unchanged (a ``{section: text}`` dict, a list of ``(section or None, text)``
    pairs, or a str), or a ``TypeError`` naming what is not a str."""
    if isinstance(sections, str):
        return sections
    if isinstance(sections, Mapping):
        pairs = sections.items()
    elif isinstance(sections, (list, tuple)) and all(isinstance(p, tuple) and len(p) == 2 for p in sections):
        pairs = sections
    else:
        raise TypeError(
            f"Expected `sections` to be a dict {{section: text}}, a list of (section, text) pairs or a str, "
            f"got {type(sections).__name__}"
        )
    for name, text in pairs:
        if text is not None and not isinstance(text, str):
            raise TypeError(
                f"Expected the text of section {name!r} to be a str, got {type(text).__name__}"
            )
    return sections

def join_section_lines(
    section_words: list[tuple[str | None, list[str]]], mark: bool, keep_plain: bool
) -> str:
    """Lines of words per section (plain, then tagged) -> the final text. ``None`` = untagged."""
    lines: list[str] = []
    for name, words in section_words:
        if not words:
            continue
        if not mark or name is None:
            lines.append(" ".join(words))
            continue
        if keep_plain:
            lines.append(" ".join(words))
        prefix = section_prefix(name)
        lines.append(" ".join(prefix + word for word in words))
    return "\n".join(lines)


def section_text(
    sections: Mapping[str, str] | str, mark: bool = True, keep_plain: bool = True
) -> str:
    """Lower-cased words of a report's sections, tagged by section (see the module docstring).

    Args:
        sections: ``{section name: text}`` in report order (e.g. a CMC 2007 report's
            ``{"CLINICAL_HISTORY": ..., "IMPRESSION": ...}``); a plain ``str`` is one untagged
            section. ``None`` or empty texts are skipped.
        mark: tag words with their section's prefix; ``False`` gives only plain words.
        keep_plain: with ``mark``, also emit each section's plain words.

    Returns:
        Lines of space-separated words.

    Example:
        >>> print(section_text({"CLINICAL_HISTORY": "Cough.", "IMPRESSION": "Left lower lobe pneumonia."}))
        cough
        h_cough
        left lower lobe pneumonia
        i_left i_lower i_lobe i_pneumonia
    """
    sections = check_sections(sections)
    if isinstance(sections, str):
        return join_section_lines([(None, plain_words(sections))], mark, keep_plain)
    return join_section_lines(
        [(name, plain_words(text or "")) for name, text in sections.items()], mark, keep_plain
    )


# A header opens a line: a known section name in any case ("Impression:"), or any name in
# capitals ("TECHNIQUE:"), followed by a colon. Mixed-case unknown names ("Note:") are text.
_HEADER = re.compile(r"^[ \t]*([A-Za-z][A-Za-z _/-]{0,40}?)[ \t]*:[ \t]*", re.MULTILINE)


def _is_header(name: str) -> bool:
    key = _NON_ALNUM.sub("_", name.lower()).strip("_")
    return key in SECTION_PREFIXES or (name.isupper() and len(key) > 1)


def split_sections(note: str) -> list[tuple[str | None, str]]:
    r"""A note's sections, from header lines such as ``"IMPRESSION: ..."``.

    Radiology and discharge notes announce their sections with a header at the start of a line.
    Recognised: the names in :data:`SECTION_PREFIXES` in any case and spacing
    (``"Clinical history:"``), and any other name written in capitals (``"TECHNIQUE:"``).
    Text before the first header is an untagged section (name ``None``).

    Args:
        note: the text of one note.

    Returns:
        ``[(section name or None, section text)]`` in note order; names as written in the
        header (``"CLINICAL HISTORY"``); texts stripped; sections with an empty text dropped.

    Example:
        >>> split_sections("CLINICAL HISTORY: Cough.\nIMPRESSION: Normal chest.")
        [('CLINICAL HISTORY', 'Cough.'), ('IMPRESSION', 'Normal chest.')]
        >>> split_sections("Cough and fever.")
        [(None, 'Cough and fever.')]
    """
    if not isinstance(note, str):
        raise TypeError(f"Expected a note as str, got {type(note).__name__}")
    headers = [m for m in _HEADER.finditer(note) if _is_header(m.group(1))]
    pieces = [(None, 0, headers[0].start() if headers else len(note))]
    for k, match in enumerate(headers):
        end = headers[k + 1].start() if k + 1 < len(headers) else len(note)
        pieces.append((match.group(1).strip(), match.end(), end))
    return [(name, note[start:end].strip()) for name, start, end in pieces if note[start:end].strip()]
