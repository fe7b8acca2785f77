"""`comorbid demo` (make demo): the example-notes table, then the independent-vs-chain CV table."""

import re

import comorbid.demo
from comorbid.cli import main
from comorbid.data.synthetic import synthetic_coding_set


def test_quick_demo_codes_held_out_notes_then_compares_the_models(tmp_path, monkeypatch, capsys):
    data = synthetic_coding_set(n=150)
    monkeypatch.setattr(comorbid.demo, "synthetic_coding_set", lambda: data)
    # a folder without cmc2007/: the demo says so and runs on the synthetic set
    assert main(["demo", "--quick", "--data", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "CMC 2007 not found" in err
    notes_part, _, cv_part = out.partition("2-fold CV")
    assert "The default coder on 3 notes of synthetic-coding, held out of training" in notes_part
    assert "words that drove it" in notes_part
    # held-out rows (seed 0 draws them): never trained on, their hand-assigned codes shown too
    held = sorted(set(re.findall(r"synthetic-\d{5}", notes_part)))
    assert len(held) == 3 and notes_part.count("coded by hand:") == 3
    # a suggested code with its probability and ICD description, e.g. "486 | 0.97 | Pneumonia, organism ..."
    assert re.search(r"\b\d{3}(\.\d+)?\s+│\s+[01]\.\d\d\s+│\s+\w", notes_part)
    for row in ("independent / hamming", "chain / subset", "chain / instance-f1"):
        assert row in cv_part
    assert re.search(r"total \d+ s\.", cv_part)
