"""`comorbid inspect`: label statistics, held-out dependence, predicted gains, recommendation."""

import json

import numpy as np
import pytest
import torch

from comorbid.cli import main
from comorbid.data import dependent_label_problem
from comorbid.data.dataset import MultiLabelDataset
from comorbid.distributions import ChainBernoulli, IndependentBernoulli
from comorbid.distributions.nonempty import NonEmpty
from comorbid.inspection import (expected_micro_f1, inspect_dataset, label_statistics, micro_f1_threshold,
                                 model_factories, per_label_log_prob)
from comorbid.report.inspection import inspection_html, inspection_tables


def _features_dataset(x, y, name):
    return MultiLabelDataset([str(i) for i in range(len(y))], x, y, [f"y{j}" for j in range(y.shape[1])],
                             [f"x{d}" for d in range(x.shape[1])], {}, name)


def _independent_problem(n=1500, seed=0):
    """Labels independent given x: y_j ~ Bernoulli(sigmoid(x w_j)), sharp enough that the
    marginals decide most labels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8))
    w = 1.5 * rng.normal(size=(8, 5))
    y = (rng.random((n, 5)) < 1 / (1 + np.exp(-(x @ w)))).astype(np.int8)
    return _features_dataset(x, y, "independent-labels")


def _copies_problem(n=1500, seed=0):
    """Strong dependence x does not explain: y1 is a copy of y0 and y2 its complement (an
    exclusion), all three a coin flip given x; y3, y4 follow x."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    coin = (rng.random(n) < 0.5).astype(np.int8)
    other = (rng.random((n, 2)) < 1 / (1 + np.exp(-2 * x[:, :2]))).astype(np.int8)
    y = np.column_stack([coin, coin, 1 - coin, other])
    return _features_dataset(x, y, "copies")


def gains_of(result):
    return {g.metric: g for g in result.gains}


def recommendation_of(result):
    return {r.metric: r for r in result.recommendations}


# ------------------------------------------------------------------------- label statistics
def test_label_statistics_counts_sets_pairs_and_exclusions():
    # a, b always together; c never with a although both are frequent; d rare
    rows = [[1, 1, 0, 0]] * 10 + [[0, 0, 1, 0]] * 10 + [[0, 0, 0, 0]] * 9 + [[0, 0, 1, 1]]
    stats = label_statistics(np.array(rows), ["a", "b", "c", "d"])
    assert stats.rows == 30 and stats.labels == 4
    assert stats.cardinality == pytest.approx((20 + 10 + 2) / 30)
    assert stats.distinct_sets == 4 and stats.unique_set_rows == pytest.approx(1 / 30)
    assert stats.empty_rows == 9 and stats.max_labels_per_row == 2 and stats.size_counts == [9, 10, 11]
    assert (stats.top_pairs[0].first, stats.top_pairs[0].second, stats.top_pairs[0].together) == ("a", "b", 10)
    # a-c and b-c: 10 x 11 / 30 = 3.7 rows expected together, none seen; d is too rare
    assert {frozenset((p.first, p.second)) for p in stats.exclusions} == {frozenset("ac"), frozenset("bc")}
    assert stats.n_exclusions == 2
    assert all(p.expected == pytest.approx(110 / 30) for p in stats.exclusions)


def test_label_statistics_without_pairs():
    stats = label_statistics(np.array([[1], [0]]), ["a"])
    assert stats.top_pairs == [] and stats.exclusions == [] and stats.n_exclusions == 0


# ----------------------------------------------------------------- per-code log-likelihood
@pytest.mark.parametrize("nonempty", [False, True])
def test_per_label_log_prob_sums_to_the_log_prob(nonempty):
    torch.manual_seed(0)
    b, m = 7, 5
    y = (torch.rand(b, m) < 0.5).float()
    y[:, 0] = 1.0  # non-empty rows
    dists = [IndependentBernoulli(torch.randn(b, m)),
             ChainBernoulli(torch.randn(b, m), torch.randn(m, m), order=torch.tensor([3, 1, 4, 0, 2]))]
    for dist in dists:
        if nonempty:
            dist = NonEmpty(dist)
        terms = per_label_log_prob(dist, y)
        offset = -dist.log_base_nonempty if nonempty else 0.0
        assert terms.shape == (b, m)
        assert torch.allclose(terms.sum(-1) + offset, dist.log_prob(y), atol=1e-5)


# ------------------------------------------------------------------------ micro-F1 helpers
def test_micro_f1_threshold_maximises_the_expected_micro_f1():
    rng = np.random.default_rng(0)
    marginals = rng.random((50, 6)) ** 3
    best = micro_f1_threshold(marginals)
    expected = expected_micro_f1(marginals, (marginals > best).astype(float))
    for threshold in np.linspace(0.01, 0.99, 99):
        assert expected_micro_f1(marginals, (marginals > threshold).astype(float)) <= expected + 1e-12


# ------------------------------------------------------------------ the whole, on known truths
def test_strong_dependence_gives_a_large_gain_and_a_joint_recommendation():
    data, _ = dependent_label_problem(n=1500, seed=0)
    result = inspect_dataset(data, *model_factories(nonempty=False), samples=100)
    dependence = result.dependence
    assert dependence.gain > 0.5 and dependence.gain > 5 * dependence.gain_se
    gains = gains_of(result)
    # true values (docs of dependent_label_problem): subset accuracy 0.37 of the mode vs 0.20
    assert gains["subset_accuracy"].predicted_gain > 0.08
    assert gains["instance_f1"].predicted_gain > 0.08
    assert gains["hamming"].predicted_gain == 0.0
    advice = recommendation_of(result)
    assert (advice["subset_accuracy"].model, advice["subset_accuracy"].decoder) == ("chain", "subset")
    assert (advice["instance_f1"].model, advice["instance_f1"].decoder) == ("chain", "instance-f1")
    assert advice["hamming"].decoder == "hamming"


def test_copies_pay_in_likelihood_but_not_in_decoding():
    result = inspect_dataset(_copies_problem(), *model_factories(nonempty=False), samples=100)
    assert result.statistics.top_pairs[0].mutual_information > 0.6  # log 2 = 0.69 for a copy
    assert result.dependence.gain > 0.5  # log 4 = 1.39 nats/row is what knowing both copies saves
    # the chain's later copies gain; the labels that follow x alone do not
    assert result.dependence.per_code["y3"] == pytest.approx(0.0, abs=0.05)
    assert max(result.dependence.per_code[c] for c in ("y0", "y1", "y2")) > 0.5
    # but no decoding gain: the chain's marginals of a copy and a complement are consistent
    # (p, p, 1 - p), so thresholding them already gives a set the chain finds likely
    assert abs(gains_of(result)["subset_accuracy"].predicted_gain) < 0.03
    advice = recommendation_of(result)["subset_accuracy"]
    assert (advice.model, advice.decoder) == ("chain", "hamming")


def test_independent_labels_give_no_gain_and_an_independent_recommendation():
    result = inspect_dataset(_independent_problem(), *model_factories(nonempty=False), samples=100)
    dependence = result.dependence
    assert abs(dependence.gain) < 0.02
    gains = gains_of(result)
    assert abs(gains["subset_accuracy"].predicted_gain) < 0.01
    assert abs(gains["micro_f1"].predicted_gain) < 0.01
    assert abs(gains["instance_f1"].predicted_gain) < 0.02
    for metric, advice in recommendation_of(result).items():
        assert advice.model == "independent", metric
    assert recommendation_of(result)["hamming"].decoder == "hamming"
    assert recommendation_of(result)["subset_accuracy"].decoder == "hamming"


def test_report_renders_tables_and_html():
    data = _copies_problem(n=300)
    result = inspect_dataset(data, *model_factories(nonempty=False), samples=20)
    titles = [table.title for table in inspection_tables(result)]
    assert any("recommendation" in t for t in titles) and any("exclusions" in t for t in titles)
    page = inspection_html(result, data.labels, list(data.label_names))
    assert page.startswith("<!DOCTYPE html>") and page.count("<img") >= 3 and "Recommendation" in page
    json.dumps(result.to_dict())  # serialisable


# -------------------------------------------------------------------------------------- CLI
def test_cli_inspect_writes_html_and_json(tiny_csv, tmp_path, capsys):
    html, out = tmp_path / "inspect.html", tmp_path / "inspect.json"
    code = main(["inspect", str(tiny_csv), "--html", str(html), "--json", str(out), "--samples", "20"])
    stdout, _ = capsys.readouterr()
    assert code == 0
    assert "recommendation" in stdout
    result = json.loads(out.read_text())
    assert {g["metric"] for g in result["gains"]} == {"subset_accuracy", "instance_f1", "micro_f1", "hamming"}
    assert result["statistics"]["rows"] == 60 and result["dependence"]["heldout_rows"] == 12
    assert "<img" in html.read_text()


def test_cli_inspect_refuses_bad_arguments(tiny_csv, tmp_path, capsys):
    assert main(["inspect", str(tiny_csv), "--samples", "0"]) == 2
    assert "--samples" in capsys.readouterr().err


def test_cli_inspect_uses_a_saved_models_configuration(tiny_csv, tmp_path, capsys):
    model_dir, out = tmp_path / "model", tmp_path / "inspect.json"
    assert main(["train", str(tiny_csv), "--model", "mixture", "--decode", "none", "--out", str(model_dir)]) == 0
    code = main(["inspect", str(tiny_csv), "--model", str(model_dir), "--json", str(out), "--samples", "10"])
    capsys.readouterr()
    assert code == 0
    result = json.loads(out.read_text())
    assert result["dependence"]["joint_model"] == "mixture"
    assert result["dependence"]["per_code"] == {}  # a mixture does not factor by code
