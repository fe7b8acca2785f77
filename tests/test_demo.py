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


def test_default_demo_compares_the_models_on_one_held_out_split(tmp_path, monkeypatch, capsys):
    """Without --folds: fold 1 of 5 (seed 0) is held out, both models train on the rest (the
    chain is the coder of the notes table, trained once), the notes come from the held-out rows."""
    from rich.console import Console

    from comorbid.data.splits import kfold_indices

    data = synthetic_coding_set(n=150)
    monkeypatch.setattr(comorbid.demo, "synthetic_coding_set", lambda: data)
    trainings = []
    fit = comorbid.demo.MultiLabelModel.fit
    monkeypatch.setattr(comorbid.demo.MultiLabelModel, "fit",
                        lambda self, dataset, *a, **k: trainings.append((self.model, len(dataset)))
                        or fit(self, dataset, *a, **k))
    result = comorbid.demo.run_demo(str(tmp_path), None, 0, Console(width=250), Console(stderr=True))
    out = capsys.readouterr().out
    train_rows, test_rows = kfold_indices(data.labels, n_folds=5, seed=0)[0]
    assert f"{len(test_rows)} held-out reports, one stratified split (seed 0)" in out
    assert "standard error of subset accuracy" in out
    notes = [note["id"] for note in result["notes"]]
    assert set(notes) <= {data.ids[i] for i in test_rows}  # never trained on
    assert trainings == [("chain", len(train_rows)), ("independent", len(train_rows))]
    for row in ("independent / hamming", "chain / subset", "chain / instance-f1"):
        assert row in out and row in result["metrics"]
    assert re.search(r"one split \(\d+ held-out reports; --folds K to cross-validate\)\..*total \d+ s\.", out)
    assert result["folds"] is None and set(result["seconds"]) == {"coder", "independent", "chain", "total"}
