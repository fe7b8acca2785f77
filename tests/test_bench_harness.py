"""The benchmark harness end to end on tiny synthetic data (peers that are not installed skip)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import compare, report  # noqa: E402
from benchmarks.configs import METRICS, Configuration, DatasetSpec  # noqa: E402
from benchmarks.peers import PEERS, LabelPowerset, Peer, SingleClassSafe, SklearnPeer  # noqa: E402
from comorbid.data import MultiLabelDataset  # noqa: E402
from comorbid.data.synthetic import dependent_label_problem, synthetic_coding_set  # noqa: E402

FEATURES = DatasetSpec("tiny", "tiny features", "", "standardised", "five synthetic features, standardised")
TEXT = DatasetSpec("tinytext", "tiny text", "", "tfidf", "TF-IDF of word unigrams", text_options={"ngram_range": (1, 1)})
CLINICAL = DatasetSpec("tinyclinical", "tiny clinical", "", "clinical", "the clinical encoder's features")
QUICK = [
    Configuration("independent linear", "independent", ("hamming", "subset", "instance-f1"), "features",
                  encoder_options={"hidden": []}, train={"weight_decay": 1e-2}),
    Configuration("chain linear", "chain", ("hamming", "subset"), "features",
                  encoder_options={"hidden": []}, train={"weight_decay": 1e-2}),
    Configuration("independent text", "independent", ("hamming", "instance-f1"), "text",
                  train={"weight_decay": 1e-4}),
]
PEER_NAMES = ("br-lr", "cc-lr", "lp-svc", "boomer", "rakel")


def _crash():
    os._exit(3)  # a native crash, as far as the parent can tell


def _check_schema(result: dict, n_folds: int) -> None:
    assert result["folds"] == n_folds and result["seed"] == 0 and isinstance(result["dataset"], str)
    assert result["rows"], "no rows"
    for row in result["rows"]:
        assert row["kind"] in ("ours", "peer")
        assert isinstance(row["method"], str)
        for metric in METRICS:
            value = row["metrics"][metric]
            assert set(value) == {"mean", "std"}
            assert 0.0 <= value["mean"] <= 1.0 and value["std"] >= 0.0
        assert row["train_s"] >= 0.0 and row["predict_s"] >= 0.0
        assert len(row["train_s_per_fold"]) == n_folds
    json.dumps(result)  # plain JSON


@pytest.mark.slow
def test_features_dataset_end_to_end(tmp_path):
    dataset, _ = dependent_label_problem(n=160, n_features=5, n_labels=4, seed=1)
    peers = [p for p in PEERS if p.name in PEER_NAMES] + [
        Peer("absent", lambda: None, "needs a module that is not there", requires="no_such_module_for_tests"),
        Peer("crashes", _crash, "dies while building"),
    ]
    result = compare.run_dataset(dataset, FEATURES, QUICK, peers, n_folds=2, seed=0, log=lambda line: None)
    _check_schema(result, 2)
    names = {row["method"] for row in result["rows"]}
    # every configuration that runs on features, once per decoder; no text configuration
    assert {"independent linear / hamming", "independent linear / instance-f1", "chain linear / subset"} <= names
    assert not any(name.startswith("independent text") for name in names)
    assert {"br-lr", "cc-lr", "lp-svc"} <= names
    assert "crashes" not in names and any("crashes: failed" in note and "died" in note for note in result["notes"])
    assert any(note.startswith("absent: not run") for note in result["notes"])
    # one selected row per metric, each fold's choice one of our rows
    selected = [row for row in result["rows"] if "selected_for" in row]
    assert sorted(row["selected_for"] for row in selected) == sorted(METRICS)
    ours = {row["method"] for row in result["rows"] if row["kind"] == "ours" and "selected_for" not in row}
    for row in selected:
        assert len(row["selected_per_fold"]) == 2 and set(row["selected_per_fold"]) <= ours
    # one model per fold serves every decoder of its configuration
    rows = {row["method"]: row for row in result["rows"]}
    assert rows["independent linear / hamming"]["train_s"] == rows["independent linear / subset"]["train_s"]

    path = compare.write_results(result, tmp_path)
    assert json.loads(path.read_text())["dataset"] == "tiny"
    table = (tmp_path / "tiny.md").read_text()
    assert "| ours, selected for subset accuracy |" in table and "five synthetic features" in table
    for metric in METRICS:
        png = tmp_path / f"tiny_{metric}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 200_000


@pytest.mark.slow
def test_text_dataset_peers_get_our_features(tmp_path):
    dataset = synthetic_coding_set(n=90, seed=2)
    train, test = dataset.subset(np.arange(60)), dataset.subset(np.arange(60, 90))
    X_train, X_test = compare.featurise(TEXT, train, test)
    model = compare.make_model(QUICK[2], TEXT, seed=0).fit(train)
    assert sp.issparse(X_train)
    np.testing.assert_allclose(X_test.toarray(), model.encoder_.featurize(test.inputs).toarray(), rtol=1e-6)
    peers = [p for p in PEERS if p.name == "br-lr"]
    result = compare.run_dataset(dataset, TEXT, QUICK, peers, n_folds=2, seed=0, log=lambda line: None)
    _check_schema(result, 2)
    assert {row["method"] for row in result["rows"] if row["kind"] == "ours" and "selected_for" not in row} == {
        "independent text / hamming", "independent text / instance-f1"}


@pytest.mark.slow
def test_clinical_dataset_peers_get_our_features(tmp_path):
    dataset = synthetic_coding_set(n=90, seed=3)
    train, test = dataset.subset(np.arange(60)), dataset.subset(np.arange(60, 90))
    clinical = Configuration("chain clinical", "chain", ("hamming", "subset"), "clinical", train={"max_iterations": 20})
    model = compare.make_model(clinical, CLINICAL, seed=0)
    model.fit(train)
    # the encoder's own training defaults (L1) under the configuration's settings
    assert model.encoder_name == "clinical"
    assert model.train_config_.penalty == "l1" and model.train_config_.max_iterations == 20
    X_train, X_test = compare.featurise(CLINICAL, train, test)
    assert sp.issparse(X_train) and X_train.shape == (60, model.encoder_.output_dim)
    # words and characters side by side, exactly what our model sees
    assert model.encoder_.output_dim > len(model.encoder_.vectorizer.vocabulary_)
    np.testing.assert_array_equal(X_test.toarray(), model.encoder_.featurize(test.inputs).toarray())
    assert set(np.unique(X_train.data)) == {1.0}  # binary features
    peers = [p for p in PEERS if p.name == "lp-svc"]
    result = compare.run_dataset(dataset, CLINICAL, QUICK + [clinical], peers, n_folds=2, seed=0, log=lambda line: None)
    _check_schema(result, 2)
    ours = {row["method"] for row in result["rows"] if row["kind"] == "ours" and "selected_for" not in row}
    # text configurations run on any text featurisation; clinical-only ones only on clinical
    assert ours == {"independent text / hamming", "independent text / instance-f1", "chain clinical / hamming",
                    "chain clinical / subset"}
    assert "lp-svc" in {row["method"] for row in result["rows"]}
    assert all(row["features"] == "shared" for row in result["rows"] if row["method"] in ours)


def test_configurations_run_on_their_featurisation():
    clinical = Configuration("c", "chain", ("hamming",), "clinical")
    tfidf = Configuration("t", "chain", ("hamming",), "tfidf")
    assert clinical.runs_on(CLINICAL) and not clinical.runs_on(TEXT) and not clinical.runs_on(FEATURES)
    assert tfidf.runs_on(TEXT) and not tfidf.runs_on(CLINICAL)
    assert QUICK[2].runs_on(TEXT) and QUICK[2].runs_on(CLINICAL) and not QUICK[2].runs_on(FEATURES)
    assert compare.own_features(Configuration("o", "chain", ("hamming",), "text", encoder="tfidf"), CLINICAL)
    assert not compare.own_features(clinical, CLINICAL)
    with pytest.raises(ValueError, match="features"):
        DatasetSpec("bad", "bad", "", "words", "unknown featurisation")


def test_words_as_text():
    matrix = sp.csr_matrix(np.array([[0, 1, 1], [0, 0, 0], [1, 0, 0]], dtype=float))
    dataset = MultiLabelDataset(["a", "b", "c"], matrix, np.zeros((3, 1)), ["x"])
    assert compare.words_as_text(dataset).inputs == ["w1 w2", "", "w0"]


def test_select_prefers_the_metric_decoder_on_ties():
    validation = {
        "m / hamming": {"subset_accuracy": 0.5, "hamming_loss": 0.2},
        "m / subset": {"subset_accuracy": 0.5, "hamming_loss": 0.3},
        "n / hamming": {"subset_accuracy": 0.4, "hamming_loss": 0.1},
    }
    targets = {"m / hamming": "hamming", "m / subset": "subset", "n / hamming": "hamming"}
    chosen = compare.select(validation, {"subset_accuracy": True, "hamming_loss": False}, targets)
    assert chosen == {"subset_accuracy": "m / subset", "hamming_loss": "n / hamming"}


def test_verdict_respects_the_direction_of_each_metric():
    def row(method, kind, value, **extra):
        return {"method": method, "kind": kind, "metrics": {m: {"mean": value, "std": 0.0} for m in METRICS},
                "train_s": 0.0, "predict_s": 0.0, **extra}

    rows = [row(f"ours {m}", "ours", 0.3, selected_for=m) for m in METRICS] + [row("peer", "peer", 0.2)]
    verdicts = {e["metric"]: e["at_least_equal"] for e in report.comparison({"rows": rows})}
    assert verdicts["subset_accuracy"] is True and verdicts["hamming_loss"] is False


def test_peer_adapters_handle_constant_labels():
    X = np.random.default_rng(0).normal(size=(30, 3))
    Y = np.zeros((30, 3), dtype=np.int8)
    Y[:15, 0] = 1  # label 0 varies; labels 1 and 2 never occur
    from sklearn.linear_model import LogisticRegression
    from sklearn.multioutput import ClassifierChain

    chain = SklearnPeer(ClassifierChain(SingleClassSafe(LogisticRegression()), random_state=0)).fit(X, Y)
    assert chain.predict(X).shape == (30, 3) and chain.predict(X)[:, 1:].sum() == 0
    powerset = LabelPowerset(None).fit(X, np.zeros((30, 3), dtype=np.int8))
    assert powerset.predict(X).sum() == 0


@pytest.mark.skipif(sys.platform == "win32", reason="the decoder benchmark forks")
def test_decoder_throughput_table(tmp_path):
    from benchmarks import bench_decoders

    bench_decoders.main(["--labels", "4", "8", "--heads", "independent", "--decoders", "hamming", "instance-f1",
                         "--shortlist", "4", "--shortlist-from", "8", "--out", str(tmp_path)])
    records = json.loads((tmp_path / "decoders.json").read_text())["records"]
    assert {(r["decoder"], r["n_labels"], r["shortlist"]) for r in records} == {
        ("hamming", 4, None), ("hamming", 8, None), ("hamming", 8, 4),
        ("instance-f1", 4, None), ("instance-f1", 8, None), ("instance-f1", 8, 4)}
    assert all(r["rows_per_s"] > 0 for r in records)
    assert "| independent | instance-f1 (shortlist L=4) |" in (tmp_path / "decoders.md").read_text()

    # --merge replaces only the rows of the decoders it measures; mbr runs with a set cost
    bench_decoders.main(["--labels", "4", "--heads", "independent", "--decoders", "instance-f1", "mbr", "--merge",
                         "--out", str(tmp_path)])
    merged = json.loads((tmp_path / "decoders.json").read_text())["records"]
    assert {(r["decoder"], r["n_labels"], r["shortlist"]) for r in merged} == {
        ("hamming", 4, None), ("hamming", 8, None), ("hamming", 8, 4), ("instance-f1", 4, None), ("mbr=jaccard", 4, None)}
    assert all(r["rows_per_s"] > 0 for r in merged)


def test_configurations_run_on_a_named_dataset():
    only_tiny_text = Configuration("t", "chain", ("hamming",), "tinytext")
    assert only_tiny_text.runs_on(TEXT)
    # another dataset of the same featurisation or kind is not enough
    other_text = DatasetSpec("othertext", "other text", "", "tfidf", "TF-IDF")
    assert not only_tiny_text.runs_on(other_text) and not only_tiny_text.runs_on(CLINICAL)
    assert not compare.own_features(only_tiny_text, TEXT)


def test_the_comparison_datasets_and_configurations():
    from benchmarks import configs, inner_split

    specs = {spec.name: spec for spec in configs.DATASETS}
    assert len(specs) == len(configs.DATASETS)
    # CMC twice: clinical features (the headline, in the README) and plain TF-IDF (the reference)
    assert specs["cmc2007"].features == "clinical" and specs["cmc2007"].encoder == "clinical"
    assert specs["cmc2007-tfidf"].features == "tfidf" and specs["cmc2007-tfidf"].encoder == "tfidf"
    assert specs["cmc2007"].path == specs["cmc2007-tfidf"].path and specs["cmc2007"].kind == "text"
    assert report.README_DATASET == "cmc2007"
    inputs = {"any", "text", "features", *configs.FEATURE_ENCODERS, *specs}
    for config in configs.CONFIGURATIONS + inner_split.CANDIDATES:
        # a misspelt dataset name would silently run nowhere
        assert config.inputs in inputs, config.name
    for spec in configs.DATASETS:
        ours = [c for c in configs.CONFIGURATIONS if c.runs_on(spec)]
        assert ours, f"no configuration runs on {spec.name}"
        # one row name per (configuration, decoder) on each dataset, candidates included
        names = [c.name for c in configs.CONFIGURATIONS + inner_split.CANDIDATES if c.runs_on(spec)]
        assert len(names) == len(set(names)), spec.name


@pytest.mark.slow
def test_inner_split_scores_candidates_without_the_test_fold(tmp_path):
    from benchmarks import configs, inner_split
    from comorbid.data import kfold_indices

    dataset, _ = dependent_label_problem(n=120, n_features=5, n_labels=3, seed=4)
    train, validation = inner_split.inner_split(dataset)
    train_rows, test_rows = kfold_indices(dataset.labels, n_folds=configs.N_FOLDS, seed=configs.SEED)[0]
    ids = np.asarray(dataset.ids)
    assert len(set(ids)) == len(dataset) and len(train) + len(validation) == len(train_rows)
    # fold 1's training rows split in two; no test row of fold 1 anywhere
    assert not set(train.ids) & set(validation.ids)
    assert set(train.ids) | set(validation.ids) == set(ids[train_rows])

    peers = [p for p in PEERS if p.name == "br-lr"]
    result = inner_split.run(FEATURES, dataset, QUICK, peers, log=lambda line: None)
    assert result["inner_train_rows"] == len(train) and result["inner_validation_rows"] == len(validation)
    # the text configuration does not run on features; peers are scored on the same split
    assert set(result["rows"]) == {"independent linear / hamming", "independent linear / subset",
                                   "independent linear / instance-f1", "chain linear / hamming",
                                   "chain linear / subset", "br-lr"}
    assert result["rows"]["br-lr"]["kind"] == "peer"
    table = inner_split.markdown(result)
    assert "| chain linear / subset | ours |" in table and f"Trained on {len(train)} rows" in table
    # a later run keeps the rows it does not rerun and replaces those it does
    later = {**result, "rows": {"br-lr": {**result["rows"]["br-lr"], "train_s": 99.0}}}
    both = inner_split.merged(result, later)
    assert len(both["rows"]) == len(result["rows"]) and both["rows"]["br-lr"]["train_s"] == 99.0


def test_keep_rows_keeps_the_earlier_peers_and_drops_earlier_choices(tmp_path):
    def row(method, kind, **extra):
        return {"method": method, "kind": kind, **extra}

    base = {"dataset": "tiny", "folds": 2, "seed": 0, "n_rows": 10, "notes": [], "peers": {},
            "environment": {"versions": {"scikit-learn": "old"}}, "command": "python -m benchmarks.compare"}
    earlier = {**base, "rows": [row("ours, selected for subset accuracy", "ours", selected_for="subset_accuracy"),
                                row("chain linear / subset", "ours"), row("old config / subset", "ours"),
                                row("br-lr", "peer"), row("boomer / gfm", "peer")],
               "notes": ["mlknn: failed"], "peers": {"br-lr": "binary relevance"}}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(earlier))
    new = {**base, "rows": [row("ours, selected for subset accuracy", "ours", selected_for="subset_accuracy"),
                            row("chain linear / subset", "ours")], "selections": {"subset_accuracy": ["x"]},
           "environment": {"versions": {"scikit-learn": "new"}}}
    merged = compare.keep_rows(new, path)
    assert [r["method"] for r in merged["rows"]] == [
        "ours, selected for subset accuracy", "chain linear / subset", "br-lr", "boomer / gfm"]
    assert merged["notes"][0] == "mlknn: failed" and "rather than rerun: boomer, br-lr." in merged["notes"][1]
    assert merged["peers"] == {"br-lr": "binary relevance"}
    assert merged["kept_environment"]["versions"]["scikit-learn"] == "old"
    assert compare.keep_rows(new, tmp_path / "absent.json") is new
    with pytest.raises(ValueError, match="folds=2, this run 5"):
        compare.keep_rows({**new, "folds": 5}, path)
