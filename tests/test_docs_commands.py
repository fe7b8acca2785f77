"""The shell blocks of README.md and docs/*.md marked ``<!-- runs-in-ci -->`` run as pasted.

A marked block is the fenced block right after the marker line. The blocks of one page run in
order, in one ``bash -euo pipefail`` script, in a fresh temporary folder, with ``comorbid`` on
the PATH (this interpreter, this source tree).

Substitutions, so that the whole page runs in well under two minutes:

1. ``$COMORBID_DATA`` points to a folder whose ``cmc2007/`` holds 60 evenly spaced ``<doc>`` of
   each CMC 2007 file (a 60-report sample made from the real files, found via ``$COMORBID_DATA`` or
   ``../shared/data`` beside the repository; the test skips, saying so, without them);
2. every ``comorbid cv`` line gets ``--folds 2`` appended.

Nothing else in a block is changed: a command that does not run as written fails here.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from conftest import shared_data

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = "<!-- runs-in-ci -->"
SAMPLE_ROWS = 60
CMC_FILES = ("2007ChallengeTrainData.xml", "2007ChallengeTestDataNoCodes.xml")


def marked_blocks(page: Path) -> list[str]:
    """The fenced blocks that follow a :data:`MARKER` line, in page order."""
    return re.findall(re.escape(MARKER) + r"\s*\n```[a-z]*\n(.*?)```", page.read_text(), flags=re.DOTALL)


def quick(block: str) -> str:
    """Substitution 2: ``--folds 2`` at the end of each ``comorbid cv`` command."""
    return re.sub(r"^(comorbid cv (?:.*\\\n)*.*?)(\s*#.*)?$", r"\1 --folds 2\2", block, flags=re.MULTILINE)


def cmc_sample(target: Path) -> Path:
    """Substitution 1: :data:`SAMPLE_ROWS` evenly spaced reports of each CMC 2007 file under
    ``target/cmc2007`` (the files are grouped by code: their first rows share one)."""
    root = shared_data()
    if root is None or not all((root / "cmc2007" / name).is_file() for name in CMC_FILES):
        pytest.skip("CMC 2007 not found in $COMORBID_DATA or ../shared/data: the README commands need it")
    (target / "cmc2007").mkdir(parents=True)
    for name in CMC_FILES:
        tree = ElementTree.parse(root / "cmc2007" / name)
        docs = tree.getroot()
        every = docs.findall("doc")
        kept = {id(every[i * len(every) // SAMPLE_ROWS]) for i in range(SAMPLE_ROWS)}
        for doc in every:
            if id(doc) not in kept:
                docs.remove(doc)
        tree.write(target / "cmc2007" / name, encoding="utf-8", xml_declaration=True)
    return target


def test_quick_adds_two_folds_to_cv_only():
    block = "comorbid cv a.xml --json x  # comment\ncomorbid train a.xml --out m\ncomorbid cv a \\\n    --json y\n"
    assert quick(block) == ("comorbid cv a.xml --json x --folds 2  # comment\ncomorbid train a.xml --out m\n"
                            "comorbid cv a \\\n    --json y --folds 2\n")


def test_readme_marks_its_command_blocks():
    blocks = marked_blocks(ROOT / "README.md")
    assert len(blocks) >= 2 and all(re.search(r"^comorbid ", b, flags=re.MULTILINE) for b in blocks)


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if marked_blocks(p)], ids=lambda p: p.name)
def test_marked_command_blocks_run_as_pasted(page, tmp_path):
    data = cmc_sample(tmp_path / "data")
    work = tmp_path / "work"
    (work / "bin").mkdir(parents=True)
    shim = work / "bin" / "comorbid"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m comorbid "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "COMORBID_DATA": str(data), "PATH": f"{work / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
           "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    script = "\n".join(quick(block) for block in marked_blocks(page))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"{page.name}:\n{script}\n--- stderr:\n{done.stderr[-3000:]}"
    if page.name == "README.md":  # what the prose says the commands write
        with open(work / "pred.csv", newline="") as stream:
            rows = list(csv.reader(stream))
        assert rows[0] == ["id", "labels"] and len(rows) == SAMPLE_ROWS + 1
        explained = [json.loads(line) for line in (work / "explain.jsonl").read_text().splitlines()]
        assert len(explained) == SAMPLE_ROWS
        assert "training data" in done.stderr and 'class="warning"' in (work / "report.html").read_text()
        out_of_fold = (work / "cv-report" / "instance-f1.html").read_text()  # cv --report: no in-sample banner
        assert "Out-of-fold predictions" in out_of_fold and 'class="warning"' not in out_of_fold
        scores = [json.loads(line) for line in (work / "scores.jsonl").read_text().splitlines()]
        assert len(scores) == SAMPLE_ROWS and all(len(s["scores"]) == 5 for s in scores)
