"""Reader for the CMC 2007 Medical NLP Challenge XML (ICD-9-CM coding of radiology reports).

Pestian, J. P., Brew, C., Matykiewicz, P., Hovermale, D. J., Johnson, N., Cohen, K. B. and
Duch, W. (2007). "A shared task involving multi-label classification of clinical free text".
BioNLP 2007 (ACL workshop), 97-104.

Format (one ``<doc>`` per report)::

    <docs>
      <doc id="97636670" type="RADIOLOGY_REPORT">
        <codes>
          <code origin="CMC_MAJORITY" type="ICD-9-CM">786.2</code>
          <code origin="COMPANY1" type="ICD-9-CM">786.2</code> ...
        </codes>
        <texts>
          <text origin="CCHMC_RADIOLOGY" type="CLINICAL_HISTORY">...</text>
          <text origin="CCHMC_RADIOLOGY" type="IMPRESSION">...</text>
        </texts>
      </doc> ...
    </docs>
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from xml.parsers import expat

import numpy as np

from comorbid.data.dataset import MultiLabelDataset

#: The two report sections, in the order they are joined into one text.
SECTIONS = ("CLINICAL_HISTORY", "IMPRESSION")
#: The header line each section gets in the joined text (see ``comorbid.text.split_sections``).
HEADERS = {"CLINICAL_HISTORY": "CLINICAL HISTORY", "IMPRESSION": "IMPRESSION"}
#: Header of a section whose name cannot be written as a header line (``"1"``, ``"x"``).
OTHER_HEADER = "OTHER"
#: The gold standard of the challenge: codes given by at least two of the three companies.
GOLD_ORIGIN = "CMC_MAJORITY"


def read_cmc_xml(path: str | Path, gold: str = GOLD_ORIGIN) -> MultiLabelDataset:
    """Read a CMC 2007 challenge XML file.

    Args:
        path: the XML file (e.g. ``2007ChallengeTrainData.xml``).
        gold: the ``origin`` whose codes become the labels (``"CMC_MAJORITY"``, the
            challenge's gold standard, or one company, e.g. ``"COMPANY1"``).

    Returns:
        A text dataset: ``ids`` the doc ids, ``inputs`` the notes
        ``f"CLINICAL HISTORY: {history}\\nIMPRESSION: {impression}"`` (a missing section is an
        empty string; the headers let text encoders tell the sections apart; see
        :func:`note_text`), ``labels`` ``[N, M]`` over the ``M`` distinct
        ``gold`` codes, sorted as strings and spelt exactly as in the file. ``extras`` holds
        ``"sections"`` (``[N]`` dicts ``{"CLINICAL_HISTORY": .., "IMPRESSION": .., other: ..}``) and
        ``"annotator_codes"`` (``{origin: [N] lists of codes}`` for every other origin in the
        file; see :func:`annotator_labels`). A file without any codes (the challenge's test
        file) gives ``M = 0`` label columns.

    Section types are matched to :data:`SECTIONS` ignoring case (``impression`` is
    ``IMPRESSION``). Any other type (``FINDINGS``, ``technique``) is kept, under its own name
    after the known ones in document order, and appended to the note under its own header
    line (``"TECHNIQUE: ..."``), with one ``UserWarning`` per file naming the unknown types.

    Raises:
        ValueError: malformed XML, a ``<doc>`` inside a ``<doc>`` (or a ``<doc>``, ``<code>``
            or ``<text>`` inside a ``<code>`` or ``<text>``), a ``<doc>`` without ``id``, a repeated id, a ``<code>``
            without ``origin`` or text, no ``<doc>`` at all, or no code of origin ``gold``
            in a file that has codes; the message names the file and line.
    """
    path = Path(path)
    docs = _parse(path)
    origins = sorted({origin for doc in docs for origin, _ in doc["codes"]})
    if origins and gold not in origins:
        raise ValueError(f"Expected codes of origin {gold!r} in {path}, found origins {origins}")
    gold_codes = [[code for origin, code in doc["codes"] if origin == gold] for doc in docs]
    label_names = sorted({code for codes in gold_codes for code in codes})
    column = {name: j for j, name in enumerate(label_names)}
    labels = np.zeros((len(docs), len(label_names)), dtype=np.int8)
    for i, codes in enumerate(gold_codes):
        labels[i, [column[code] for code in codes]] = 1
    sections = [_known_first(doc["sections"]) for doc in docs]
    _warn_unknown_sections(path, sections)
    annotator_codes = {
        origin: [[code for o, code in doc["codes"] if o == origin] for doc in docs]
        for origin in origins
        if origin != gold
    }
    return MultiLabelDataset(
        ids=[doc["id"] for doc in docs],
        inputs=[note_text(s) for s in sections],
        labels=labels,
        label_names=label_names,
        extras={"sections": sections, "annotator_codes": annotator_codes},
        name=path.name.split(".")[0],
    )


def note_text(sections: dict[str, str]) -> str:
    """A report's sections as one note, each under its header line.

    The two known sections come first (empty when missing), then any other section under
    its name in capitals (``"findings"`` -> ``"FINDINGS: ..."``), so that
    :func:`comorbid.text.split_sections` finds it and the clinical encoder tags its words.

    Example:
        >>> note_text({"CLINICAL_HISTORY": "Cough.", "IMPRESSION": "Normal."})
        'CLINICAL HISTORY: Cough.\\nIMPRESSION: Normal.'
        >>> note_text({"IMPRESSION": "Normal.", "technique": "PA and lateral."})
        'CLINICAL HISTORY: \\nIMPRESSION: Normal.\\nTECHNIQUE: PA and lateral.'
    """
    known = [f"{HEADERS[name]}: {sections.get(name, '')}" for name in SECTIONS]
    other = [f"{section_header(name)}: {text}" for name, text in sections.items() if name not in HEADERS]
    return "\n".join(known + other)


def section_header(name: str) -> str:
    """The header line name of a section type: ``"CLINICAL_HISTORY"`` -> ``"CLINICAL HISTORY"``,
    ``"findings"`` -> ``"FINDINGS"``, and :data:`OTHER_HEADER` for a name without two letters.

    Capitals and letters only, since :func:`comorbid.text.split_sections` recognises an
    unknown header only when it is written in capitals and made of letters.
    """
    if name in HEADERS:
        return HEADERS[name]
    words = re.sub(r"[^A-Za-z]+", " ", name).upper().split()
    header = " ".join(words)[:40].strip()
    return header if len(header.replace(" ", "")) > 1 else OTHER_HEADER


def annotator_labels(dataset: MultiLabelDataset, origin: str) -> np.ndarray:
    """One annotator's codes as a label matrix over ``dataset.label_names``.

    Args:
        dataset: a dataset from :func:`read_cmc_xml` (or a subset of one).
        origin: an annotator, e.g. ``"COMPANY1"``.

    Returns:
        ``[N, M]`` ``np.int8`` 0/1 matrix; codes outside ``dataset.label_names`` are ignored.

    Raises:
        ValueError: if ``origin`` is not among the dataset's annotators.
    """
    codes_by_origin = dataset.extras.get("annotator_codes", {})
    if origin not in codes_by_origin:
        raise ValueError(f"Expected an annotator among {sorted(codes_by_origin)}, got {origin!r}")
    column = {name: j for j, name in enumerate(dataset.label_names)}
    matrix = np.zeros((len(dataset), len(dataset.label_names)), dtype=np.int8)
    for i, codes in enumerate(codes_by_origin[origin]):
        matrix[i, [column[code] for code in codes if code in column]] = 1
    return matrix


def _section_name(section_type: str) -> str:
    """``"impression"``, ``"Clinical history"`` -> the known name in :data:`SECTIONS`; any other
    type as written (stripped)."""
    key = re.sub(r"[^A-Z0-9]+", "_", section_type.upper()).strip("_")
    return key if key in SECTIONS else section_type.strip()


def _known_first(sections: dict[str, str]) -> dict[str, str]:
    """The known sections (empty when missing), then the others in document order."""
    known = {name: sections.get(name, "") for name in SECTIONS}
    return known | {name: text for name, text in sections.items() if name not in known}


def _warn_unknown_sections(path: Path, sections: list[dict[str, str]]) -> None:
    """One warning per file for section types other than :data:`SECTIONS`: their text is kept
    (under their own header), but a reader of the results should know the notes differ."""
    unknown = sorted({name for doc in sections for name in doc if name not in HEADERS})
    if unknown:
        warnings.warn(
            f"{path}: section type(s) {unknown} are not {' or '.join(SECTIONS)}; their text is kept "
            f"under its own header line",
            stacklevel=3,
        )


def _parse(path: Path) -> list[dict]:
    """``[{"id", "codes": [(origin, code)], "sections": {type: text}}]`` in file order.

    Uses the stdlib expat parser directly rather than ElementTree because expat reports the
    line of every element, so structural errors (a doc without id) can name their line;
    ElementTree only has positions for syntax errors and lxml is not a dependency.
    """
    docs: list[dict] = []
    seen: dict[str, int] = {}
    state: dict = {"doc": None, "text": None, "element": None}

    parser = expat.ParserCreate()

    def fail(message: str) -> None:
        raise ValueError(f"{message} in {path} line {parser.CurrentLineNumber}")

    def start(tag: str, attrs: dict[str, str]) -> None:
        if state["element"] is not None and tag in ("doc", "code", "text"):
            fail(f"Expected </{state['element'][0]}> before <{tag}>, got <{tag}> inside it")
        if tag == "doc":
            if state["doc"] is not None:
                fail(f"Expected </doc> before the next <doc>, got a <doc> inside <doc id={state['doc']['id']!r}>")
            doc_id = attrs.get("id", "").strip()
            if not doc_id:
                fail("Expected an `id` attribute on <doc>, got none")
            if doc_id in seen:
                fail(f"Expected unique doc ids, got {doc_id!r} again (first at line {seen[doc_id]})")
            seen[doc_id] = parser.CurrentLineNumber
            state["doc"] = {"id": doc_id, "codes": [], "sections": {}}
        elif tag in ("code", "text"):
            if state["doc"] is None:
                fail(f"Expected <{tag}> inside a <doc>, got it outside")
            key = "origin" if tag == "code" else "type"
            if not attrs.get(key):
                fail(f"Expected a `{key}` attribute on <{tag}>, got none")
            state["element"] = (tag, attrs[key] if tag == "code" else _section_name(attrs[key]))
            state["text"] = []

    def end(tag: str) -> None:
        if tag == "doc":
            docs.append(state["doc"])
            state["doc"] = None
        elif tag in ("code", "text"):
            _, key = state["element"]
            value = "".join(state["text"]).strip()
            if tag == "code":
                if not value:
                    fail(f"Expected an ICD code inside <code origin={key!r}>, got an empty element")
                if (key, value) not in state["doc"]["codes"]:
                    state["doc"]["codes"].append((key, value))
            else:
                sections = state["doc"]["sections"]
                sections[key] = f"{sections[key]}\n{value}" if key in sections else value
            state["element"] = state["text"] = None

    def characters(data: str) -> None:
        if state["text"] is not None:
            state["text"].append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    try:
        with open(path, "rb") as handle:
            parser.ParseFile(handle)
    except expat.ExpatError as error:
        raise ValueError(
            f"Malformed XML in {path} line {error.lineno}, column {error.offset + 1}: "
            f"{expat.ErrorString(error.code)}"
        ) from None
    except FileNotFoundError:
        raise ValueError(f"No such file: {path}") from None
    if not docs:
        raise ValueError(f"Expected <doc> elements in {path}, found none")
    return docs
