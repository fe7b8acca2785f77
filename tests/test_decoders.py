"""Decoders beyond the conformance suite: registry, exactness claims, costs, scaling, tuning."""

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import DETERMINISTIC, marginal_vectors

from comorbid.decoders import (
    DECODERS,
    FunctionCost,
    MacroF1Decoder,
    MatrixCost,
    MBRDecoder,
    MicroF1Decoder,
    TopKDecoder,
    UtilityCost,
    best_f1_threshold,
    find_rule,
    get_decoder,
    gfm,
    minimum_bayes_risk,
    parse_decoders,
    read_cost_csv,
)
from comorbid.decoders import top_k_sets
from comorbid.distributions import IndependentBernoulli, JointLabelDistribution, all_label_sets
from comorbid.distributions.chain import ChainBernoulli
from comorbid.metrics.utility import utility
from comorbid.testing.decoders import best_corpus_f1, corpus_f1, naive_nearest_neighbour_cost


pytestmark = pytest.mark.usefixtures("float64")


def independent(probs) -> IndependentBernoulli:
    return IndependentBernoulli(torch.logit(torch.as_tensor(probs, dtype=torch.float64)))


def expected_by_enumeration(probs: torch.Tensor, metric: str) -> tuple[torch.Tensor, torch.Tensor]:
    """All sets [K, M] and E[u(set, y)] [B, K] for independent labels, from the definition."""
    sets = all_label_sets(probs.shape[1], dtype=torch.float64)
    p = probs[:, None, :]
    set_probs = torch.where(sets[None] > 0, p, 1 - p).prod(-1)  # [B, K]
    return sets, set_probs @ utility(metric, sets[:, None, :], sets[None, :, :]).T


# ------------------------------------------------------------------------------ registry
def test_registry_parses_names_and_arguments():
    assert get_decoder("top-k=3").k == 3
    assert parse_decoders("hamming, subset,instance-f1") == ["hamming", "subset", "instance-f1"]
    assert get_decoder("mbr").spec == "mbr=icd-tree"
    assert get_decoder("mbr=jaccard").spec == "mbr=jaccard"
    assert get_decoder("macro-f1=0.30").fbr == 0.3 and get_decoder("macro-f1=0.30").spec == "macro-f1=0.3"
    assert get_decoder("macro-f1").spec == "macro-f1"
    assert {get_decoder(name if name != "top-k" else "top-k=1").spec.partition("=")[0] for name in DECODERS} == set(DECODERS)
    for bad, message in [("nope", "Unknown decoder 'nope'"), ("top-k", "top-k=K"), ("hamming=2", "takes no argument"),
                         ("jaccard=1", "takes no argument"), ("micro-f1=2", "takes no argument"),
                         ("macro-f1=x", "macro-f1=FBR"), ("macro-f1=1", "macro-f1=FBR"), ("mbr=no-such-cost.csv", "icd-tree, one of")]:
        with pytest.raises(ValueError, match=message):
            get_decoder(bad)
    with pytest.raises(ValueError, match="at least one"):
        parse_decoders(" , ")


def test_rules_table_dispatches_by_the_most_specific_class_and_falls_back():
    dist = independent([[0.3, 0.6]])
    chain = ChainBernoulli(torch.zeros(1, 20), torch.zeros(20, 20))
    assert "top-k" in find_rule("jaccard", dist).description
    assert find_rule("jaccard", chain) is None  # no exact rule: sampling MBR
    assert "GFM" in find_rule("instance-f1", chain).description
    assert get_decoder("jaccard").plan(chain) == ("sampling MBR (1000 samples)", False)
    # a distribution the registry has never heard of gets the generic rules and fallbacks

    class Uniform(JointLabelDistribution):
        def log_prob(self, value):
            return torch.full(value.shape[:-1], -self.n_labels * math.log(2.0))

        def sample(self, sample_shape=()):
            return torch.bernoulli(torch.full((*sample_shape, *self.batch_shape, *self.event_shape), 0.5))

    uniform = Uniform(2, 18)
    assert get_decoder("jaccard").plan(uniform) == ("sampling MBR (1000 samples)", False)
    assert get_decoder("jaccard").decode(uniform).shape == (2, 18)
    assert get_decoder("subset").plan(uniform)[0].startswith("rule: joint mode")
    # its mode search is missing (M > 16): subset falls through to sampling instead of failing
    assert get_decoder("subset").decode(uniform).shape == (2, 18)


def test_top_k_breaks_ties_towards_lower_index():
    dist = IndependentBernoulli(torch.tensor([[0.0, 1.0, 0.0, 1.0]]))
    assert TopKDecoder(3).decode(dist).tolist() == [[1.0, 1.0, 0.0, 1.0]]
    assert TopKDecoder(10).decode(dist).sum() == 4


def test_gfm_predicts_empty_set_when_it_is_likely_and_nothing_when_no_labels():
    dist = IndependentBernoulli(torch.full((2, 3), -4.0))
    assert get_decoder("instance-f1").decode(dist).sum() == 0
    assert gfm(torch.zeros(3, 0, 1), torch.ones(3)).shape == (3, 0)


def test_f1_decoding_can_beat_thresholding_marginals():
    # Two labels at 0.45 each: thresholding predicts nothing (F = P(empty) = 0.3025), but
    # predicting both has expected F1 0.45*0.55*2*(2/3) + 0.45^2 = 0.5325.
    dist = independent([[0.45, 0.45]])
    assert get_decoder("hamming").decode(dist).sum() == 0
    assert get_decoder("instance-f1").decode(dist).tolist() == [[1.0, 1.0]]


# ------------------------------------------------------------------------------ top-k sets
@settings(DETERMINISTIC, max_examples=30)
@given(probs=marginal_vectors(max_labels=7), metric=st.sampled_from(["jaccard", "instance-f1"]))
def test_expected_utility_of_every_top_k_set_equals_enumeration(probs, metric):
    probs = torch.as_tensor(probs)[None]
    values, order = top_k_sets.expected_utility_of_top_k(probs, metric)
    sets, expected = expected_by_enumeration(probs, metric)
    powers = 2 ** torch.arange(probs.shape[1])
    for k in range(probs.shape[1] + 1):
        index = int(powers[order[0, :k]].sum())
        assert abs(values[0, k].item() - expected[0, index].item()) < 1e-12, (k, values[0, k], expected[0, index])


@settings(DETERMINISTIC, max_examples=30)
@given(probs=marginal_vectors(max_labels=7), metric=st.sampled_from(["jaccard", "instance-f1"]))
def test_under_independence_the_best_set_is_a_top_k_set(probs, metric):
    """The exchange argument of top_k_sets, checked: the best top-k set is as good as the best
    of all 2^M sets."""
    probs = torch.as_tensor(probs)[None]
    chosen = top_k_sets.best_top_k_set(probs, metric)
    sets, expected = expected_by_enumeration(probs, metric)
    index = int((chosen[0] * 2 ** torch.arange(probs.shape[1])).sum())
    assert expected[0, index] >= expected.max() - 1e-12


def test_top_k_sets_scale_with_a_shortlist_and_converge_in_the_node_count():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1000, generator=generator) * 2 - 6  # ~15 expected labels of 1000
    probs = torch.sigmoid(logits)
    assert not top_k_sets.is_exact("jaccard", 1000)
    for metric in ("jaccard", "instance-f1"):
        capped, order = top_k_sets.expected_utility_of_top_k(probs, metric)  # 256 nodes, sets <= 256
        assert capped.shape == (3, 257) and torch.isfinite(capped).all()
        reference, _ = top_k_sets.expected_utility_of_top_k(probs, metric, max_nodes=1000)  # exact nodes
        # 256 nodes: a quadrature error, largest for the largest sets (t^255 is hard to integrate)
        torch.testing.assert_close(capped, reference[:, :257], rtol=0, atol=1e-10)
    assert torch.equal(order[:, :5], probs.argsort(dim=1, descending=True, stable=True)[:, :5])


def test_instance_f1_top_k_rule_agrees_with_gfm():
    generator = torch.Generator().manual_seed(1)
    dist = IndependentBernoulli(torch.randn(20, 30, generator=generator) * 2)
    values, _ = top_k_sets.expected_utility_of_top_k(dist.marginals(), "instance-f1")
    by_rule = get_decoder("instance-f1").decode(dist)
    by_gfm = gfm(dist.count_marginals(), dist.size_distribution()[:, 0])
    # equal sets, up to ties in expected F1
    assert (by_rule.sum(1) == by_gfm.sum(1)).float().mean() > 0.9
    best = values.max(1).values
    gfm_value = values.gather(1, by_gfm.sum(1).long()[:, None]).squeeze(1)  # GFM's set is a top-k set too
    assert (best - gfm_value).abs().max() < 1e-10


def test_jaccard_and_f1_pick_different_sets_when_they_should():
    # E[J] punishes a doubtful extra label more than E[F1] does: with (0.8, 0.43),
    # E[F1] is 0.685 for {0} and 0.705 for {0, 1}; E[J] is 0.628 and 0.615
    dist = independent([[0.8, 0.43]])
    assert get_decoder("instance-f1").decode(dist).tolist() == [[1.0, 1.0]]
    assert get_decoder("jaccard").decode(dist).tolist() == [[1.0, 0.0]]


# ------------------------------------------------------------------------------ costs
@DETERMINISTIC
@given(seed=st.integers(0, 10**6), n_labels=st.integers(1, 6))
def test_nearest_neighbour_cost_equals_its_definition_and_hamming_for_a_zero_one_matrix(seed, n_labels):
    generator = torch.Generator().manual_seed(seed)
    sets_a = (torch.rand(5, n_labels, generator=generator) < 0.4).double()
    sets_b = (torch.rand(4, n_labels, generator=generator) < 0.4).double()
    matrix = torch.rand(n_labels, n_labels, generator=generator).fill_diagonal_(0.0)
    cost = MatrixCost(matrix, empty_cost=0.7)
    expected = torch.tensor([[naive_nearest_neighbour_cost(a, b, matrix, 0.7) for b in sets_b] for a in sets_a])
    torch.testing.assert_close(cost(sets_a, sets_b), expected, rtol=0, atol=1e-12)
    zero_one = MatrixCost(1.0 - torch.eye(n_labels))
    hamming_distance = (sets_a[:, None, :] != sets_b[None, :, :]).sum(-1).double()
    torch.testing.assert_close(zero_one(sets_a, sets_b), hamming_distance, rtol=0, atol=1e-12)
    # restricted to the labels in use, the cost is the same
    used = torch.nonzero(torch.cat([sets_a, sets_b]).any(0)).flatten()
    restricted = cost.restrict(used, n_labels)
    torch.testing.assert_close(restricted(sets_a[:, used], sets_b[:, used]), expected, rtol=0, atol=1e-12)
    hamming = UtilityCost("hamming").restrict(used, n_labels)
    torch.testing.assert_close(hamming(sets_a[:, used], sets_b[:, used]), hamming_distance / n_labels, rtol=0, atol=1e-12)


def test_matrix_cost_rejects_bad_matrices():
    with pytest.raises(ValueError, match="square"):
        MatrixCost(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="zero diagonal"):
        MatrixCost(torch.ones(2, 2))
    with pytest.raises(ValueError, match="non-negative"):
        MatrixCost(-(1 - torch.eye(2)))
    with pytest.raises(ValueError, match="2 label"):
        MatrixCost(1 - torch.eye(3)).bind(["a", "b"])


def test_cost_csv_is_read_by_label_name_and_errors_name_the_line(tmp_path):
    path = tmp_path / "cost.csv"
    path.write_text("label,a,b,c\nc,2,1,0\na,0,1,2\nb,1,0,1\n")
    cost = read_cost_csv(path).bind(["c", "a"])  # the model's order, a subset of the file's labels
    assert cost.matrix.tolist() == [[0.0, 2.0], [2.0, 0.0]]
    with pytest.raises(ValueError, match="no row for 1 label"):
        read_cost_csv(path).bind(["a", "z"])
    for text, message in [
        ("label,a,b\na,0,1\n", "no row for label"),
        ("label,a,b\na,0,x\nb,1,0\n", "line 2: expected numbers"),
        ("label,a,b\na,0,1\nb,1,0,4\n", "line 3: expected 3 cells"),
        ("label,a,b\na,1,1\nb,1,0\n", "line 2: expected cost 0"),
        ("label,a,b\na,0,1\nq,1,0\n", "line 3: label 'q' is not in the header"),
        ("label,a,b\na,0,-1\nb,1,0\n", "line 2: expected finite, non-negative"),
        ("", "line 1"),
    ]:
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_cost_csv(path)


def test_function_cost_checks_what_the_function_returns():
    dist = independent([[0.2] * 12])
    bad_shape = MBRDecoder(lambda y_hat, y: torch.zeros(3), n_samples=10, enumerate_max_labels=0)
    with pytest.raises(ValueError, match="return shape"):
        bad_shape.decode(dist)
    with pytest.raises(ValueError, match="finite"):
        FunctionCost(lambda a, b: torch.full((a.shape[0], b.shape[0]), math.nan))(torch.zeros(1, 2), torch.zeros(2, 2))


# ------------------------------------------------------------------------------ MBR
def test_sampling_mbr_is_seeded_and_leaves_the_global_generator_alone():
    generator = torch.Generator().manual_seed(2)
    chain = ChainBernoulli(torch.randn(5, 14, generator=generator), torch.randn(14, 14, generator=generator))
    decoder = get_decoder("mbr=jaccard")
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = decoder.decode(chain)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, decoder.decode(chain))


def test_mbr_with_the_icd_tree_cost_prefers_a_near_miss():
    # 250.00 (diabetes) is nearer 250.01 than 486 (pneumonia): when unsure between two diabetes
    # codes, the tree cost predicts one of them rather than nothing
    names = ["250.00", "250.01", "486"]
    dist = independent([[0.45, 0.45, 0.02]])
    decoder = get_decoder("mbr").bind(names)
    assert decoder.is_exact(dist)
    chosen = decoder.decode(dist)
    assert chosen[0, :2].sum() >= 1 and chosen[0, 2] == 0
    assert get_decoder("hamming").decode(dist).sum() == 0


def test_sampling_mbr_scales_to_many_labels_and_matches_the_exact_hamming_optimum():
    """M = 3000, about 6 likely labels a row: the sampling path works on the labels in use, and
    its choice's exact expected number of errors is within 2 eps of the optimum's, eps from
    Hoeffding (n = 1000 samples, per-sample errors in [0, 30], K <= 1300 candidates, B = 4 rows:
    false-failure rate 1e-6, plus P(|y| > 18), below 1e-9 here). With the fixed seed it is in
    fact within 0.05."""
    generator = torch.Generator().manual_seed(3)
    logits = torch.full((4, 3000), -9.0)
    logits[:, :12] = torch.randn(4, 12, generator=generator) * 2
    dist = IndependentBernoulli(logits)
    chosen = minimum_bayes_risk(dist, UtilityCost("hamming"), n_samples=1000, seed=0, enumerate_max_labels=0)
    p = dist.marginals()
    expected_errors = lambda h: (h * (1 - p) + (1 - h) * p).sum(1)  # noqa: E731  exact E[|h xor y|]
    best = get_decoder("hamming").decode(dist)
    eps = 30 * math.sqrt(math.log(2 * 1300 * 4 / 1e-6) / (2 * 1000))
    gap = (expected_errors(chosen) - expected_errors(best)).max()
    assert gap <= 2 * eps
    assert gap <= 0.05


def test_jaccard_on_a_long_chain_uses_sampling_and_beats_simple_candidates():
    generator = torch.Generator().manual_seed(4)
    chain = ChainBernoulli(torch.randn(3, 40, generator=generator) - 2, torch.randn(40, 40, generator=generator))
    decoder = get_decoder("jaccard")
    assert not decoder.is_exact(chain)
    chosen = decoder.decode(chain)
    torch.manual_seed(0)
    truth = chain.sample((20000,))  # [n, B, M]: an independent estimate of E[J]
    score = lambda h: utility("jaccard", h[None], truth).mean(0)  # noqa: E731
    for rival in ("hamming", "subset"):
        assert (score(chosen) >= score(get_decoder(rival).decode(chain)) - 0.02).all()


# ------------------------------------------------------------------------------ thresholds
@DETERMINISTIC
@given(scores=st.lists(st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.7, 1.0]) | st.floats(0, 1), min_size=1, max_size=12),
       seed=st.integers(0, 1000))
def test_best_f1_threshold_is_the_best_cut(scores, seed):
    scores = np.asarray(scores)
    labels = np.random.default_rng(seed).integers(0, 2, scores.size)
    threshold, f1 = best_f1_threshold(scores, labels)
    pred = (scores > threshold).astype(float)
    assert abs(corpus_f1(labels[:, None], pred[:, None], "micro-f1") - f1) < 1e-12
    assert abs(f1 - best_corpus_f1(scores[:, None], labels[:, None], "micro-f1")) < 1e-12


def test_threshold_tuning_falls_back_for_a_label_never_positive_in_the_heldout_part():
    rng = np.random.default_rng(0)
    marginals = rng.random((50, 3))
    labels = (rng.random((50, 3)) < marginals).astype(np.int8)
    labels[:, 2] = 0  # never positive among the held-out rows
    macro = MacroF1Decoder().fit(marginals, labels)
    assert macro.fallback_labels_ == [2]
    assert macro.thresholds_[2] == macro.global_threshold_
    micro = MicroF1Decoder().fit(marginals, labels)
    assert np.all(micro.thresholds_ == micro.global_threshold_) and micro.global_threshold_ == macro.global_threshold_
    # min_positives: labels with few positives share the global threshold too
    assert MacroF1Decoder(min_positives=100).fit(marginals, labels).fallback_labels_ == [0, 1, 2]
    # SCutFBR: a label whose best held-out F1 is poor is predicted only above every held-out score
    hopeless = np.zeros((50, 1), dtype=np.int8)
    hopeless[marginals[:, 0].argmin()] = 1  # one positive, ranked last: best F1 = 2/51
    fbr = MacroF1Decoder().fit(marginals[:, :1], hopeless)
    assert fbr.fbr_labels_ == [0] and fbr.thresholds_[0] == marginals[:, 0].max()
    assert MacroF1Decoder(fbr=0.0).fit(marginals[:, :1], hopeless).thresholds_[0] < marginals[:, 0].min()
    # no positive anywhere: every threshold is 1/2
    assert MacroF1Decoder().fit(marginals, np.zeros_like(labels)).thresholds_.tolist() == [0.5] * 3
    assert MacroF1Decoder().fit(np.zeros((0, 3)), np.zeros((0, 3))).thresholds_.tolist() == [0.5] * 3


def test_threshold_state_round_trips_through_json_and_is_checked():
    rng = np.random.default_rng(1)
    marginals = rng.random((30, 4))
    labels = (rng.random((30, 4)) < marginals).astype(np.int8)
    fitted = MacroF1Decoder().fit(marginals, labels)
    loaded = MacroF1Decoder().load_state(json.loads(json.dumps(fitted.state())))
    dist = independent(torch.as_tensor(marginals).clamp(1e-6, 1 - 1e-6))
    assert torch.equal(loaded.decode(dist), fitted.decode(dist))
    with pytest.raises(RuntimeError, match="no thresholds"):
        MacroF1Decoder().decode(dist)
    with pytest.raises(ValueError, match="thresholds"):
        MacroF1Decoder().load_state({"nope": 1})
    with pytest.raises(ValueError, match="same shape"):
        MacroF1Decoder().fit(marginals, labels[:, :2])
    with pytest.raises(ValueError, match="Expected 4 labels"):
        fitted.decode(independent([[0.5, 0.5]]))
