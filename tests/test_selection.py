"""``model="auto"``: the choice among candidates on an inner split of the training rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from comorbid.cli import main
from comorbid.data import MultiLabelDataset, train_validation_split
from comorbid.model import MultiLabelModel
from comorbid.selection import CANDIDATES, AutoModel, Candidate, candidates_for
from comorbid.spec import ModelSpec
from test_model import numeric_dataset, tiny_dataset

#: Two cheap candidates: a chain that cannot see the labels' non-linear rule, and an MLP mixture.
CHEAP = (
    Candidate("independent linear", "independent", "mlp", {"hidden": []}, {"weight_decay": 1.0}),
    Candidate("mixture mlp", "mixture", "mlp", {"hidden": [16], "dropout": 0.0}, {"epochs": 60}),
)


def xor_dataset(n=240, seed=0) -> MultiLabelDataset:
    """Label 0 is x0 XOR x1 (no linear model gets it), label 1 is x2 > 0."""
    x = np.random.default_rng(seed).normal(size=(n, 3))
    labels = np.stack([(x[:, 0] > 0) ^ (x[:, 1] > 0), x[:, 2] > 0], 1).astype(np.int8)
    return MultiLabelDataset([str(i) for i in range(n)], x, labels, ["xor", "c"])


def test_auto_chooses_the_best_candidate_on_held_out_training_rows_and_refits_on_all():
    data = xor_dataset()
    model = AutoModel(ModelSpec(), candidates=CHEAP).fit(data)
    record = model.auto_selection_
    assert record["chosen"] == "mixture mlp"  # the linear one cannot learn XOR
    assert [c["name"] for c in record["candidates"]] == ["independent linear", "mixture mlp"]
    scores = {c["name"]: c["subset_accuracy"] for c in record["candidates"]}
    assert scores["mixture mlp"] > scores["independent linear"]
    inner, validation = train_validation_split(data.labels, 0.2, seed=0)
    assert (record["training_rows"], record["validation_rows"]) == (len(inner), len(validation))
    assert isinstance(model, MultiLabelModel) and model.get_params()["model"] == "mixture"
    assert model.encoder_.options["hidden"] == [16]
    assert model.history_ and len(model.predict(data, ["subset"])["subset"]) == len(data)  # trained on all rows


def test_the_time_budget_stops_further_candidates_but_the_first_always_runs():
    record = AutoModel(ModelSpec(), candidates=CHEAP, budget_s=0.0).fit(xor_dataset(80)).auto_selection_
    assert record["chosen"] == "independent linear"
    assert "subset_accuracy" in record["candidates"][0]
    assert record["candidates"][1] == {"name": "mixture mlp", "skipped": "time budget (0 s) spent"}


def test_texts_keep_the_chain_model_and_nothing_is_chosen():
    data = tiny_dataset()
    model = AutoModel(ModelSpec()).fit(data)
    assert model.get_params()["model"] == "chain" and "candidates" not in model.auto_selection_
    expected = MultiLabelModel("chain").fit(data)
    np.testing.assert_array_equal(model.marginals(data), expected.marginals(data))


def test_a_named_encoder_restricts_the_candidates_and_head_options_need_a_named_model():
    assert {c.encoder for c in candidates_for("trees")} == {"trees"}
    assert candidates_for("auto") == list(CANDIDATES)
    with pytest.raises(ValueError, match="no candidate on the tfidf encoder"):
        candidates_for("tfidf")
    with pytest.raises(ValueError, match="name a model to set head options"):
        AutoModel(ModelSpec(head_options={"order": "given"})).fit(numeric_dataset())


def test_user_training_settings_go_on_top_of_each_candidate():
    spec = ModelSpec(encoder="mlp", encoder_options={"dropout": 0.1}, train={"weight_decay": 0.5})
    chosen = AutoModel(spec)._spec_of(CANDIDATES[1])
    assert chosen.train == {"learning_rate": 1e-3, "weight_decay": 0.5}
    assert chosen.encoder_options == {"hidden": [512], "dropout": 0.1}


ARFF = """@relation 'toy: -C 2'
@attribute lab_a {0,1}
@attribute lab_b {0,1}
@attribute x1 numeric
@attribute colour {red,green,blue}
@data
"""


def test_cli_train_defaults_to_auto_for_features_and_records_the_choice(tmp_path, capsys, monkeypatch):
    import comorbid.selection as selection

    monkeypatch.setattr(selection, "CANDIDATES", CHEAP)
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(60):
        x, colour = rng.normal(), rng.choice(["red", "green", "blue"])
        rows.append(f"{int(x > 0)},{int(colour == 'red')},{x:.3f},{colour}")
    data = tmp_path / "toy.arff"
    data.write_text(ARFF + "\n".join(rows) + "\n")
    out = tmp_path / "model"
    assert main(["train", str(data), "--out", str(out), "--decode", "none"]) == 0
    printed = "".join(capsys.readouterr())
    record = json.loads((out / "config.json").read_text())["auto_selection"]
    assert record["chosen"] in {c.name for c in CHEAP}
    assert f"auto: chose {record['chosen']}" in " ".join(printed.split())
    loaded = MultiLabelModel.load(out)
    assert loaded.auto_selection_ == record
    assert loaded.feature_names_ == ["x1", "colour=red", "colour=green", "colour=blue"]  # nominal: one-hot
    # a named model in the same directory leaves no stale record
    assert main(["train", str(data), "--out", str(out), "--decode", "none", "--model", "independent"]) == 0
    assert "auto_selection" not in json.loads((out / "config.json").read_text())
    assert MultiLabelModel.load(out).auto_selection_ == {}
