"""Code syntax: system names and the canonical dotted form (no look-up in the classification).

Kept apart from the tables so that formatting a code never loads the 2-second ICD-10-CM table.
"""

from __future__ import annotations

import re
from typing import Literal

System = Literal["icd9", "icd10"]

_SYSTEM_ALIASES = {
    "icd9": "icd9",
    "icd9cm": "icd9",
    "icd-9": "icd9",
    "icd-9-cm": "icd9",
    "icd10": "icd10",
    "icd10cm": "icd10",
    "icd-10": "icd10",
    "icd-10-cm": "icd10",
}

SYSTEM_TITLES = {"icd9": "ICD-9-CM", "icd10": "ICD-10-CM"}

# ICD-9-CM diagnosis codes: a 3-character category (3 digits, "V" + 2 digits or "E" + 3 digits),
# then up to 2 more digits (E codes: 1), written after a dot.
_ICD9_NUMERIC_OR_V = re.compile(r"(?P<cat>\d{3}|V\d{2})\.?(?P<sub>\d{0,2})")
_ICD9_E = re.compile(r"(?P<cat>E\d{3})\.?(?P<sub>\d?)")
_ICD9_RANGE = re.compile(r"(?P<lo>\d{3}|V\d{2}|E\d{3})-(?P<hi>\d{3}|V\d{2}|E\d{3})")
# ICD-10-CM: a 3-character category (letter, then 2 letters/digits: "J18", "C4A", "QA0"), then
# up to 4 characters after the dot (7th-character extensions and "X" placeholders included).
_ICD10_CODE = re.compile(r"(?P<cat>[A-Z][0-9A-Z]{2})\.?(?P<sub>[0-9A-Z]{0,4})")
_ICD10_RANGE = re.compile(r"(?P<lo>[A-Z][0-9A-Z]{2})-(?P<hi>[A-Z][0-9A-Z]{2})")
_ICD10_CHAPTER = re.compile(r"0*(?P<num>[1-9]\d?)")


def check_system(system: str) -> System:
    """The canonical system name (``"icd9"`` or ``"icd10"``) for ``system`` or one of its aliases."""
    if not isinstance(system, str) or system.lower() not in _SYSTEM_ALIASES:
        raise ValueError(f"Expected `system` to be 'icd9' or 'icd10', got {system!r}")
    return _SYSTEM_ALIASES[system.lower()]  # type: ignore[return-value]


def syntax_error(code: object, system: System) -> str | None:
    """Why ``code`` is not written like a code of ``system``, or ``None`` if it is."""
    if not isinstance(code, str):
        return f"expected a string, got {type(code).__name__}"
    text = code.strip().upper()
    if not text:
        return "the code is empty"
    if _parse(text, system) is not None:
        return None
    if system == "icd9":
        if re.fullmatch(r"\d{1,2}\.\d{1,2}", text):
            return (
                "a diagnosis code has 3 digits before the dot (this looks like an ICD-9-CM "
                "procedure code, or a code that lost its leading zero)"
            )
        return (
            "expected 3 digits, 'V' + 2 digits or 'E' + 3 digits, optionally a dot, then up to 2 "
            "digits (E codes: 1), e.g. 786.2, 7862, V42.81, E880.9"
        )
    return (
        "expected a letter and 2 letters/digits, optionally a dot, then up to 4 letters/digits, "
        "e.g. J18.9, J189, S72.001A (or a block 'J09-J18', or a chapter number 1-22)"
    )


def normalize(code: str, system: str = "icd9") -> str:
    """The canonical dotted, upper-case form of ``code``.

    Only the writing is changed: digits are never added or removed, so ``786.20`` stays
    ``786.20`` (which is not an ICD-9-CM code: 786.2 "Cough" has no 5th digit) and is told apart
    from ``786.2``; a trailing zero is significant in ICD-9-CM (599.0 "Urinary tract infection"
    is not 599). Whether the code exists is :func:`comorbid.icd.is_valid`'s job.

    Accepted forms: with or without the dot, any case, surrounding spaces, a trailing dot
    (``"518."`` -> ``"518"``). Blocks/chapters are accepted as ranges (``"460-519"``,
    ``"J09-J18"``) and ICD-10-CM chapter numbers (``"10"``), so that the output of
    :func:`comorbid.icd.ancestors` can be fed back in.

    Args:
        code: e.g. ``" v4281 "``, ``"E8809"``, ``"7862"``, ``"j189"``.
        system: ``"icd9"`` (ICD-9-CM diagnoses) or ``"icd10"`` (ICD-10-CM).

    Returns:
        e.g. ``"V42.81"``, ``"E880.9"``, ``"786.2"``, ``"J18.9"``.

    Raises:
        ValueError: when ``code`` is not written like a code of ``system`` (the message says
            what was expected).

    Example:
        >>> normalize("v4281"), normalize("E8809"), normalize("j189", "icd10")
        ('V42.81', 'E880.9', 'J18.9')
    """
    system = check_system(system)
    reason = syntax_error(code, system)
    if reason is not None:
        raise ValueError(f"{code!r} is not a valid {SYSTEM_TITLES[system]} code: {reason}")
    parsed = _parse(code.strip().upper(), system)
    assert parsed is not None
    return parsed


def _parse(text: str, system: System) -> str | None:
    """Canonical form of an upper-cased, stripped code, or ``None`` if it is malformed."""
    if text.endswith(".") and "-" not in text:
        text = text[:-1]
        if "." in text:  # "786.2." is malformed, not "786.2"
            return None
    if system == "icd9":
        match = _ICD9_E.fullmatch(text) or _ICD9_NUMERIC_OR_V.fullmatch(text)
        if match:
            return match["cat"] + ("." + match["sub"] if match["sub"] else "")
        if _ICD9_RANGE.fullmatch(text):
            return text
        return None
    match = _ICD10_CODE.fullmatch(text)
    if match:
        return match["cat"] + ("." + match["sub"] if match["sub"] else "")
    if _ICD10_RANGE.fullmatch(text):
        return text
    match = _ICD10_CHAPTER.fullmatch(text)
    if match and 1 <= int(match["num"]) <= 22:
        return match["num"]
    return None


def structural_parent(code: str, system: System) -> str | None:
    """The parent a canonical code would have from its writing alone (drop one character).

    ``"786.20"`` -> ``"786.2"`` -> ``"786"`` -> ``None``; ranges and chapters -> ``None``. Used
    to place codes that are missing from the tables (obsolete or misspelt) in the tree.
    """
    if "-" in code or "." not in code:
        return None
    head, tail = code.split(".")
    return head if len(tail) == 1 else f"{head}.{tail[:-1]}"
