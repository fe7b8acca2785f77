"""Model-specific behaviour of the joint label models (the shared suite is test_conformance.py)."""

import math

import numpy as np
import pytest
import torch

from comorbid.distributions import (
    BernoulliMixture,
    ChainBernoulli,
    ChainEnsemble,
    IndependentBernoulli,
    IsingLabels,
    LabelPowerset,
    all_label_sets,
)
from comorbid.distributions import ising as ising_module
from comorbid.heads import ChainEnsembleHead, ChainHead, IsingHead, MixtureHead, PowersetHead
from comorbid.heads.chain import (
    DEFAULT_PARENTS,
    DENSE_MAX_LABELS,
    _sparse_dependence_order,
    choose_parents,
    dependence_order,
    mutual_information,
    sparse_mutual_information,
)
from comorbid.heads.mixture import kmeans_components
from comorbid.testing.distributions import enumerate_probs


pytestmark = pytest.mark.usefixtures("float64")


def _normal(seed, *shape, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


# ------------------------------------------------------------------------------- base
def test_chunked_enumeration_equals_one_chunk():
    dist = ChainBernoulli(_normal(0, 3, 7), _normal(1, 7, 7, scale=2))
    whole = (dist._enumerated_marginals(), dist._enumerated_count_marginals(), dist._enumerated_mode())
    dist.enumeration_budget = 7 * 3 * 20  # chunks of 20 sets
    assert len(list(dist._log_prob_chunks())) == math.ceil(2**7 / 20)
    chunked = (dist._enumerated_marginals(), dist._enumerated_count_marginals(), dist._enumerated_mode())
    for a, b in zip(whole, chunked):
        torch.testing.assert_close(a, b)


def test_search_mode_is_never_worse_than_its_best_candidate():
    dist = BernoulliMixture(_normal(2, 5, 6, scale=2), _normal(3, 5, 6, 9, scale=3))
    candidates = (_normal(4, 5, 3, 9) > 0).double()
    found = dist._search_mode(candidates)
    best_candidate = dist.log_prob(candidates.transpose(0, 1)).max(0).values
    assert (dist.log_prob(found) >= best_candidate - 1e-12).all()
    # a local optimum: no single flip improves it
    flips = (found[None] - torch.eye(9)[:, None, :]).abs()
    assert (dist.log_prob(flips) <= dist.log_prob(found) + 1e-12).all()


# ------------------------------------------------------------------------------- mixture
@pytest.mark.parametrize("n_labels", [5, 20])
def test_mixture_of_one_component_is_the_independent_model(n_labels):
    logits = _normal(5, 4, n_labels, scale=2)
    mixture = BernoulliMixture(torch.zeros(4, 1), logits[:, None, :])
    independent = IndependentBernoulli(logits)
    values = (_normal(6, 10, 4, n_labels) > 0).double()
    torch.testing.assert_close(mixture.log_prob(values), independent.log_prob(values))
    torch.testing.assert_close(mixture.marginals(), independent.marginals())
    torch.testing.assert_close(mixture.count_marginals(), independent.count_marginals())
    torch.testing.assert_close(mixture.mode(), independent.mode())
    assert ("mode" in mixture.exact) == (n_labels <= 16)


def test_mixture_mode_beyond_enumeration_is_flagged_and_beats_every_component_mode():
    # 17 labels: the mode is searched, not enumerated (its quality against enumeration is
    # checked by the conformance example "mixture-searched-mode").
    dist = BernoulliMixture(_normal(7, 3, 4, scale=1), _normal(8, 3, 4, 17, scale=2))
    assert "mode" not in dist.exact and "count_marginals" in dist.exact
    found = dist.log_prob(dist.mode())
    component_modes = (dist.component_logits > 0).double().transpose(0, 1)
    assert (found >= dist.log_prob(component_modes).max(0).values - 1e-12).all()
    thresholded = (dist.marginals() > 0.5).double()
    assert (found >= dist.log_prob(thresholded) - 1e-12).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mixture_flip_climb_equals_the_generic_search_over_flipped_sets(seed):
    # the O(B K M) climb scores every single flip from the components' logits; the generic
    # search scores the [M, B, M] flipped sets with log_prob: same steps, same local optimum
    dist = BernoulliMixture(_normal(10 + seed, 6, 5, scale=2), _normal(20 + seed, 6, 5, 30, scale=2))
    candidates = torch.cat([(dist.component_logits > 0).double(), (dist.marginals() > 0.5).double()[:, None]], 1)
    torch.testing.assert_close(dist._climb(candidates), dist._search_mode(candidates))
    dist.enumerate_max_labels = 0
    torch.testing.assert_close(dist.mode(), dist._search_mode(candidates))


def test_mixture_mode_at_ten_thousand_labels_needs_no_label_by_label_sets():
    # the generic search would hold [M, B, M] = 10^4 x 2 x 10^4 floats (800 MB in float32)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 10_000, generator=generator) * 3 - 4
    dist = BernoulliMixture(torch.randn(2, 4, generator=generator), logits)
    found = dist.mode()
    assert found.shape == (2, 10_000)
    component_modes = (logits > 0).double().transpose(0, 1)
    assert (dist.log_prob(found) >= dist.log_prob(component_modes).max(0).values - 1e-6).all()
    # a local optimum: no flip of a label improves it (checked on a sample of labels)
    for j in range(0, 10_000, 997):
        flipped = found.clone()
        flipped[:, j] = 1 - flipped[:, j]
        assert (dist.log_prob(flipped) <= dist.log_prob(found) + 1e-6).all()


def test_mixture_head_shapes_and_kmeans_initialisation():
    labels = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 1], [0, 1, 1], [0, 1, 1]])
    logits, log_weights = kmeans_components(labels, 4)
    assert logits.shape == (4, 3) and torch.allclose(log_weights.exp().sum(), torch.tensor(1.0))
    assert len({tuple(row.tolist()) for row in logits}) == 4, "repeated components must differ"
    centres = {tuple((torch.sigmoid(row) > 0.5).int().tolist()) for row in logits[:2]}
    assert centres == {(1, 0, 0), (0, 1, 1)}
    for slopes in ("shared", "separate"):
        head = MixtureHead(6, 3, n_components=4, slopes=slopes)
        head.prepare(labels)
        dist = head(torch.randn(2, 6))
        assert dist.component_logits.shape == (2, 4, 3)
        # zero slopes: the mixture starts at the k-means fit, marginals near the label frequencies
        torch.testing.assert_close(dist.marginals()[0], torch.tensor(labels.mean(0), dtype=torch.float64), atol=0.1, rtol=0)
    with pytest.raises(ValueError, match="slopes"):
        MixtureHead(6, 3, slopes="tied")


# ------------------------------------------------------------------------------- powerset
def test_powerset_gives_unseen_sets_probability_zero():
    sets = torch.tensor([[0.0, 0, 0], [1, 1, 0], [0, 0, 1]])
    dist = LabelPowerset(_normal(9, 2, 3), sets)
    unseen = torch.tensor([[1.0, 0, 0], [1, 1, 1]])
    assert torch.isneginf(dist.log_prob(unseen)).all()
    _, probs = enumerate_probs(dist)
    assert (probs > 0).sum(-1).tolist() == [3, 3]
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))
    seen_keys = {tuple(s) for s in sets.tolist()}
    assert {tuple(s) for s in dist.sample((500,)).reshape(-1, 3).tolist()} <= seen_keys
    assert {tuple(s) for s in dist.mode().tolist()} <= seen_keys
    # marginals come from the seen sets only: label 0 is on only in {0, 1}
    torch.testing.assert_close(dist.marginals()[:, 0], dist.set_probs[:, 1])


def test_powerset_looks_up_sets_of_more_than_62_labels():
    generator = torch.Generator().manual_seed(0)
    sets = (torch.rand(5, 70, generator=generator) > 0.5).double()
    dist = LabelPowerset(torch.zeros(1, 5), sets)
    assert dist.set_index(sets).tolist() == [0, 1, 2, 3, 4]
    other = sets[2].clone()
    other[65] = 1 - other[65]  # differs in the second packed word only
    assert dist.set_index(other[None]).tolist() == [-1]
    torch.testing.assert_close(dist.log_prob(sets[3:4]), torch.tensor([-math.log(5)]))


def test_powerset_rejects_repeated_sets():
    with pytest.raises(ValueError, match="distinct"):
        LabelPowerset(torch.zeros(1, 2), torch.tensor([[1.0, 0], [1.0, 0]]))


def test_powerset_head_starts_at_training_frequencies_and_refuses_unseen_training_sets():
    labels = np.array([[1, 0], [1, 0], [1, 0], [0, 1]])
    head = PowersetHead(3, 2)
    with pytest.raises(RuntimeError, match="prepare"):
        head(torch.zeros(1, 3))
    head.prepare(labels)
    assert head.options["n_sets"] == 2
    dist = head(torch.randn(4, 3))
    torch.testing.assert_close(dist.marginals()[0], torch.tensor([0.75, 0.25]))
    with pytest.raises(ValueError, match="did not see"):
        head.nll(torch.zeros(1, 3), torch.tensor([[1.0, 1.0]]))


# ------------------------------------------------------------------------------- ising
def test_ising_switch_from_exact_to_approximate():
    u, c = _normal(10, 3, 6), _normal(11, 6, 6, scale=0.5)
    exact = IsingLabels(u, c)
    beyond = IsingLabels(u, c, max_exact_labels=5, n_mc_samples=4000, gibbs_sweeps=30)
    mean_field = IsingLabels(u, c, max_exact_labels=5, inference="mean-field")
    assert exact.method == "enumeration" and exact.exact == frozenset(
        {"log_prob", "sample", "marginals", "mode", "count_marginals"}
    )
    assert beyond.method == "gibbs" and beyond.exact == frozenset()
    assert mean_field.method == "mean-field"
    values = all_label_sets(6)[:, None, :].expand(-1, 3, -1)
    # mean field lower-bounds log Z, so the approximate log_prob is an upper bound
    assert (beyond.log_prob(values) >= exact.log_prob(values) - 1e-12).all()
    assert (beyond.log_prob(values).exp().sum(0) >= 1 - 1e-12).all()
    torch.testing.assert_close(beyond.energy(values) - exact.energy(values), torch.zeros(64, 3))
    truth = exact.marginals()
    torch.testing.assert_close(beyond.marginals(), truth, atol=0.03, rtol=0)
    torch.testing.assert_close(beyond.count_marginals(), exact.count_marginals(), atol=0.03, rtol=0)
    torch.testing.assert_close(mean_field.marginals(), truth, atol=0.1, rtol=0)  # weak couplings
    assert (exact.log_prob(beyond.mode()) >= exact.log_prob(exact.mode()) - 0.1).all()


def test_ising_exact_log_partition_is_chunked_without_changing_values_or_gradients(monkeypatch):
    u = _normal(12, 3, 7).requires_grad_()
    c = _normal(13, 7, 7).requires_grad_()
    y = (_normal(14, 3, 7) > 0).double()
    whole = IsingLabels(u, c).log_prob(y).sum()
    grads = torch.autograd.grad(whole, (u, c))
    monkeypatch.setattr(ising_module, "_CHUNK_BUDGET", 3 * 7 * 9)  # chunks of 9 sets
    chunked = IsingLabels(u, c).log_prob(y).sum()
    torch.testing.assert_close(chunked, whole)
    for a, b in zip(torch.autograd.grad(chunked, (u, c)), grads):
        torch.testing.assert_close(a, b)


def test_ising_pseudo_log_prob_is_the_sum_of_full_conditionals():
    dist = IsingLabels(_normal(15, 2, 5), _normal(16, 5, 5))
    y = (_normal(17, 2, 5) > 0).double()
    want = torch.zeros(2)
    for j in range(5):
        flipped = y.clone()
        flipped[:, j] = 1 - flipped[:, j]
        want += dist.log_prob(y) - torch.logaddexp(dist.log_prob(y), dist.log_prob(flipped))
    torch.testing.assert_close(dist.pseudo_log_prob(y), want)


@pytest.mark.parametrize("objective", ["likelihood", "pseudo-likelihood"])
def test_ising_head_recovers_the_sign_of_couplings(objective):
    truth = torch.zeros(4, 4)
    truth[0, 1], truth[2, 3] = -3.0, 3.0  # 0 and 1 exclude each other; 2 and 3 attract
    generator = IsingLabels(torch.zeros(1, 4), truth)
    torch.manual_seed(0)
    y = generator.sample((3000,))[:, 0]
    head = IsingHead(1, 4, objective=objective)
    head.prepare(y.numpy())
    h = torch.ones(len(y), 1)
    optimizer = torch.optim.LBFGS(head.parameters(), max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = head.nll(h, y)
        loss.backward()
        return loss

    optimizer.step(closure)
    assert head.uses_pseudo_likelihood == (objective == "pseudo-likelihood")
    learned = head.couplings.detach()
    assert learned[0, 1] < -2 and learned[2, 3] > 2
    assert learned[0, 2].abs() < 0.5


def test_ising_head_switches_to_pseudo_likelihood_beyond_the_exact_regime():
    head = IsingHead(2, 5, max_exact_labels=4)
    assert head.uses_pseudo_likelihood
    h, y = torch.randn(3, 2), (torch.randn(3, 5) > 0).double()
    torch.testing.assert_close(head.nll(h, y), -head(h).pseudo_log_prob(y).mean())
    with pytest.raises(ValueError, match="max_exact_labels"):
        IsingHead(2, 5, max_exact_labels=4, objective="likelihood")
    with pytest.raises(ValueError, match="max_exact_labels"):
        IsingLabels(torch.zeros(1, 3), torch.zeros(3, 3), max_exact_labels=21)


# ------------------------------------------------------------------------------- chains
def test_chain_ensemble_of_one_chain_is_the_chain():
    u, a = _normal(18, 3, 6), _normal(19, 6, 6)
    order = torch.tensor([2, 0, 5, 1, 4, 3])
    chain = ChainBernoulli(u, a, order)
    ensemble = ChainEnsemble(u[:, None], a[None], order[None])
    values = all_label_sets(6)[:, None, :].expand(-1, 3, -1)
    torch.testing.assert_close(ensemble.log_prob(values), chain.log_prob(values))
    torch.testing.assert_close(ensemble.marginals(), chain.marginals())


def test_mutual_information_matches_scikit_learn():
    from sklearn.metrics import mutual_info_score

    rng = np.random.default_rng(0)
    y = (rng.random((200, 4)) < 0.3).astype(int)
    y[:, 1] = y[:, 0] ^ (rng.random(200) < 0.1)
    mi = mutual_information(y, smoothing=0.0)
    for j in range(4):
        for k in range(4):
            want = 0.0 if j == k else mutual_info_score(y[:, j], y[:, k])
            assert mi[j, k] == pytest.approx(want, abs=1e-12)


def test_dependence_order_follows_the_chow_liu_tree():
    # a path 3 - 0 - 2 - 1 of strong dependences; label 3 the most frequent
    rng = np.random.default_rng(1)
    y = np.zeros((2000, 4), dtype=int)
    y[:, 3] = rng.random(2000) < 0.6
    y[:, 0] = y[:, 3] ^ (rng.random(2000) < 0.05)
    y[:, 2] = y[:, 0] ^ (rng.random(2000) < 0.05)
    y[:, 1] = y[:, 2] ^ (rng.random(2000) < 0.05)
    assert dependence_order(y).tolist() == [3, 0, 2, 1]


# ------------------------------------------------------------------------------- sparse chains
def _as_sparse_chain(dense: ChainBernoulli, n_parents: int) -> ChainBernoulli:
    """The same chain with every earlier position as a parent (K = M - 1 slots, padded with M)."""
    m = dense.n_labels
    parents = torch.full((m, n_parents), m)
    weights = torch.zeros(m, n_parents, dtype=dense._weights.dtype)
    for t in range(m):
        parents[t, :t] = torch.arange(t)
        weights[t, :t] = dense._weights[t, :t]
    return ChainBernoulli(dense.unary_logits, weights, dense.order, parents=parents, n_mc_samples=dense.n_mc_samples)


@pytest.mark.parametrize("n_labels", [1, 5, 8, 14])
def test_a_sparse_chain_of_every_earlier_position_is_the_dense_chain(n_labels):
    dense = ChainBernoulli(_normal(30, 3, n_labels), _normal(31, n_labels, n_labels, scale=2),
                           torch.randperm(n_labels, generator=torch.Generator().manual_seed(n_labels)),
                           n_mc_samples=256)
    sparse = _as_sparse_chain(dense, max(n_labels - 1, 1))
    values = (_normal(32, 20, 3, n_labels) > 0).double()
    torch.testing.assert_close(sparse.log_prob(values), dense.log_prob(values))
    torch.testing.assert_close(sparse.marginals(), dense.marginals())  # Monte Carlo for 14 labels: same draws
    torch.testing.assert_close(sparse.mode(), dense.mode())
    torch.testing.assert_close(sparse.sample((5,)), dense.sample((5,)))


def _random_sparse_chain(n_labels, n_parents, shift, seed, per_row=False, batch=5):
    """A sparse chain with random parents (some padding) and, with a negative ``shift``, rare
    labels (the regime where the beam search passes positions in blocks), and the same chain
    as a dense one (its weights scattered into ``[M, M]``)."""
    g = torch.Generator().manual_seed(seed)
    parents = torch.full((n_labels, n_parents), n_labels)
    for t in range(1, n_labels):
        chosen = torch.randperm(t, generator=g)[: int(torch.randint(0, n_parents + 1, (1,), generator=g))]
        parents[t, : len(chosen)] = chosen
    shape = (batch, n_labels, n_parents) if per_row else (n_labels, n_parents)
    weights = torch.randn(*shape, generator=g, dtype=torch.float64) * 3
    unary = torch.randn(batch, n_labels, generator=g, dtype=torch.float64) * 2 + shift
    order = torch.randperm(n_labels, generator=g)
    dense_weights = torch.zeros(*shape[:-2], n_labels, n_labels + 1, dtype=torch.float64)
    dense_weights[..., torch.arange(n_labels)[:, None], parents] = weights  # column M: padding, dropped
    dense_weights = dense_weights[..., :n_labels]
    in_label_order = torch.empty_like(dense_weights)  # [j, k] by label: position t is label order[t]
    in_label_order[..., order[:, None], order[None, :]] = dense_weights
    sparse = ChainBernoulli(unary, weights, order, parents=parents, n_mc_samples=64)
    dense = ChainBernoulli(unary, in_label_order, order, n_mc_samples=64)
    return sparse, dense


@pytest.mark.parametrize("n_labels,n_parents,shift,per_row", [(40, 3, -4.0, False), (60, 2, -6.0, True),
                                                              (25, 4, -1.0, False), (30, 16, -3.0, False)])
def test_a_sparse_chain_samples_marginals_and_mode_as_the_dense_chain_with_its_weights(n_labels, n_parents, shift,
                                                                                      per_row):
    """Sampling level by level of the parent graph draws what position-by-position sampling
    draws; the marginals are the same Rao-Blackwellised averages (parentless positions exactly
    sigmoid(u)); the beam search on live slots, passing blocks of positions, finds the dense
    chain's beams, for every width."""
    sparse, dense = _random_sparse_chain(n_labels, n_parents, shift, seed=n_labels, per_row=per_row)
    assert torch.equal(sparse.sample((7,)), dense.sample((7,)))
    for nonempty in (False, True):
        noise = sparse.common_noise("test", 40)
        draws, conditionals = sparse._ancestral(noise, record_probs=True, nonempty=nonempty)
        dense_draws, dense_conditionals = dense._ancestral(noise, record_probs=True, nonempty=nonempty)
        assert torch.equal(draws, dense_draws)
        torch.testing.assert_close(conditionals, dense_conditionals, rtol=0, atol=1e-12)
        torch.testing.assert_close(sparse._monte_carlo_marginals(nonempty), dense._monte_carlo_marginals(nonempty),
                                   rtol=0, atol=1e-12)
    for width in (1, 3, 64):
        assert torch.equal(sparse._beam_search(width), dense._beam_search(width))
    assert torch.equal(sparse.mode(), dense.mode()) and torch.equal(sparse.nonempty_mode(), dense.nonempty_mode())


@pytest.mark.parametrize("per_row", [False, True])
def test_sparse_chain_flip_log_probs_are_log_probs_of_the_flipped_sets(per_row):
    sparse, dense = _random_sparse_chain(30, 3, -1.0, seed=4, per_row=per_row)
    value = (_normal(40, 5, 30) > 0.5).double()
    flipped = (value[None] - torch.eye(30, dtype=torch.float64)[:, None, :]).abs()  # [M, B, M]
    torch.testing.assert_close(sparse.flip_log_probs(value), sparse.log_prob(flipped).T, rtol=0, atol=1e-10)
    assert dense.flip_log_probs(value) is None  # the dense chain scores flips with log_prob


def test_mode_of_a_mixture_of_sparse_chains_climbs_as_the_neighbour_search():
    from comorbid.distributions.ensemble import UniformMixture

    first, _ = _random_sparse_chain(30, 3, -1.0, seed=4)
    other, _ = _random_sparse_chain(30, 3, -1.0, seed=5)
    second = ChainBernoulli(first.unary_logits + 0.5, other.interactions, other.order, parents=other.parents)
    mixture = UniformMixture([first, second])
    candidates = torch.stack([first.mode(), second.mode(), torch.zeros_like(first.mode())], 1)
    climbed = mixture._climb_by_flips(candidates)
    assert torch.equal(climbed, mixture._search_mode(candidates)) and torch.equal(mixture.mode(), climbed)


def test_a_mixture_of_chains_draws_each_member_only_for_its_own_samples_with_the_same_draws():
    from comorbid.distributions.ensemble import UniformMixture
    from comorbid.distributions.noise import categorical

    base, _ = _random_sparse_chain(30, 3, -1.0, seed=4)
    members = [base] + [ChainBernoulli(base.unary_logits + shift, other.interactions, other.order, parents=other.parents)
                        for shift, other in ((0.3, _random_sparse_chain(30, 3, -1.0, seed=5)[0]),
                                             (-0.3, _random_sparse_chain(30, 3, -1.0, seed=6)[0]))]
    mixture = UniformMixture(members)
    noise = mixture.common_noise("test", 37)
    every = torch.stack([member.sample_with(noise.child(f"member-{r}")) for r, member in enumerate(members)])
    which = categorical(torch.ones(5, 3, dtype=torch.float64), noise.uniform("which", 1))  # [n, B]
    expected = every.gather(0, which[None, :, :, None].expand(1, -1, -1, 30))[0]
    assert torch.equal(mixture.sample_with(noise), expected)
    assert torch.equal(mixture.sample_with(noise.part(5, 20)), expected[5:25])  # chunks: the same draws


def test_sparse_chain_predictions_do_not_depend_on_the_batch():
    sparse, _ = _random_sparse_chain(80, 4, -4.0, seed=3, batch=9)

    def row(i):
        return ChainBernoulli(sparse.unary_logits[i : i + 1], sparse.interactions, sparse.order, parents=sparse.parents,
                              n_mc_samples=64)

    marginals, mode = sparse.marginals(), sparse.mode()
    for i in range(9):  # vectorised and scalar exp may differ in the last bit: marginals to rounding
        torch.testing.assert_close(row(i).marginals()[0], marginals[i], rtol=0, atol=1e-15)
        assert torch.equal(row(i).mode()[0], mode[i])


def test_sparse_chain_monte_carlo_does_not_depend_on_the_chunk_size(monkeypatch):
    from comorbid.distributions import base as distribution_base

    def chain():
        m = 20
        parents = torch.stack([torch.arange(m) - 1, torch.arange(m) - 3]).T
        parents[parents < 0] = m
        return ChainBernoulli(_normal(33, 5, m), _normal(34, m, 2, scale=2), parents=parents, n_mc_samples=100)

    whole = chain().marginals()
    monkeypatch.setattr(distribution_base, "MC_CHUNK_BYTES", 1)  # one noise block per chunk
    assert torch.equal(chain().marginals(), whole)


def test_sparse_chain_refuses_parents_that_are_not_earlier_positions():
    u, w = torch.zeros(2, 3), torch.zeros(3, 1)
    for bad, message in (([[3], [0], [2]], "t=2"), ([[3], [1], [0]], "t=1"), ([[3], [-1], [0]], "t=1")):
        with pytest.raises(ValueError, match=message):
            ChainBernoulli(u, w, parents=torch.tensor(bad))
    with pytest.raises(ValueError, match=r"parents.*\[3, K\]"):
        ChainBernoulli(u, w, parents=torch.tensor([3, 0, 1]))
    with pytest.raises(ValueError, match=r"`interactions` of ChainBernoulli of shape \[3, 1\] or \[2, 3, 1\], got \(3, 2\)"):
        ChainBernoulli(u, torch.zeros(3, 2), parents=torch.tensor([[3], [0], [1]]))


def _label_matrix(seed, n=400, m=12):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, m)) < rng.uniform(0.02, 0.4, m)).astype(np.int8)
    y[:, 1] = y[:, 0] ^ (rng.random(n) < 0.1)
    y[:, 5] = y[:, 2] & (rng.random(n) < 0.7)
    y[:, 7] = 0  # never on: no co-occurrence at all
    return y


def test_sparse_mutual_information_equals_the_dense_one_where_labels_co_occur():
    from scipy import sparse

    y = _label_matrix(4)
    dense = mutual_information(y)
    got = sparse_mutual_information(sparse.csr_matrix(y))
    support = (y.T.astype(float) @ y) > 0
    np.fill_diagonal(support, False)
    rows, cols = got.nonzero()
    assert set(zip(rows.tolist(), cols.tolist())) <= set(zip(*np.nonzero(support)))
    np.testing.assert_allclose(got.toarray()[support], dense[support], rtol=1e-12, atol=1e-15)
    assert (got.toarray()[~support] == 0).all()
    np.testing.assert_array_equal(sparse_mutual_information(y).toarray(), got.toarray())  # dense input too


@pytest.mark.parametrize("n_parents", [1, 2, 4])
def test_parents_are_the_earlier_co_occurring_labels_of_largest_mutual_information(n_parents):
    y = _label_matrix(5)
    m = y.shape[1]
    order = np.random.default_rng(6).permutation(m)
    parents = choose_parents(y, order, n_parents)
    assert parents.shape == (m, n_parents) and parents.dtype == np.int64
    mi, both = mutual_information(y), y.T.astype(float) @ y
    for t in range(m):
        earlier = [s for s in range(t) if both[order[t], order[s]] > 0]
        want = sorted(earlier, key=lambda s: (-mi[order[t], order[s]], s))[:n_parents]
        assert parents[t].tolist() == want + [m] * (n_parents - len(want)), f"position {t}"
    assert ((parents < np.arange(m)[:, None]) | (parents == m)).all()


def test_sparse_dependence_order_follows_the_chow_liu_tree_and_keeps_unlinked_labels():
    rng = np.random.default_rng(1)
    y = np.zeros((2000, 6), dtype=int)
    y[:, 3] = rng.random(2000) < 0.6
    y[:, 0] = y[:, 3] ^ (rng.random(2000) < 0.05)
    y[:, 2] = y[:, 0] ^ (rng.random(2000) < 0.05)
    y[:, 1] = y[:, 2] ^ (rng.random(2000) < 0.05)
    y[:, 4] = 0  # never on
    y[:, 5] = rng.random(2000) < 0.01
    y[y[:, 5] == 1, :4] = 0  # never with another label: its own tree
    order = _sparse_dependence_order(y).tolist()
    assert sorted(order) == list(range(6))
    path = [label for label in order if label < 4]
    assert path == [3, 0, 2, 1]
    wide = np.zeros((50, DENSE_MAX_LABELS + 1), dtype=int)
    wide[:, :6] = y[:50]
    assert sorted(dependence_order(wide).tolist()) == list(range(DENSE_MAX_LABELS + 1))


def test_chain_head_parents_option():
    assert hasattr(ChainHead(3, DENSE_MAX_LABELS), "interactions")  # auto: CMC's 45 labels stay dense
    wide = ChainHead(3, DENSE_MAX_LABELS + 1)
    assert wide.n_parents == DEFAULT_PARENTS and not hasattr(wide, "interactions")
    assert wide.parents.shape == (DENSE_MAX_LABELS + 1, DEFAULT_PARENTS)
    assert (wide.parents == DENSE_MAX_LABELS + 1).all()  # no parents before prepare()
    assert ChainHead(3, 6, parents=5).n_parents is None  # K >= M - 1: the dense chain
    assert ChainHead(3, 6, parents="dense").n_parents is None and ChainHead(3, 6, parents=None).n_parents is None
    for bad in (0, -1, 2.5, "sparse", True):
        with pytest.raises(ValueError, match="parents"):
            ChainHead(3, 6, parents=bad)


def test_chain_head_with_parents_prepares_from_a_sparse_label_matrix_and_trains():
    from scipy import sparse

    y = _label_matrix(7)
    head = ChainHead(4, y.shape[1], parents=2)
    head.prepare(sparse.csr_matrix(y))
    again = ChainHead(4, y.shape[1], parents=2)
    again.prepare(y)
    for key, value in head.state_dict().items():
        torch.testing.assert_close(value, again.state_dict()[key])
    torch.testing.assert_close(head.parents, torch.as_tensor(choose_parents(y, head.order.numpy(), 2)))
    h, target = _normal(8, len(y), 4), torch.as_tensor(y, dtype=torch.float64)
    with torch.no_grad():
        head.parent_weights.normal_()
    loss = head.nll(h, target)
    loss.backward()
    assert torch.isfinite(loss) and head.parent_weights.grad.abs().sum() > 0
    # the teacher-forced NLL of the head is the chain's, with only K weights per label
    dist = head(h)
    assert dist.sparse and dist.parents is head.parents
    torch.testing.assert_close(loss, -dist.log_prob(target).mean())


def test_chain_head_nll_gradcheck_with_parents():
    y = _label_matrix(9, n=6, m=8)
    head = ChainHead(3, 8, parents=2).double()
    head.prepare(y)
    h, target = _normal(10, 6, 3), torch.as_tensor(y, dtype=torch.float64)
    weight, bias, pw = (p.detach().clone().normal_().requires_grad_() for p in
                        (head.linear.weight, head.linear.bias, head.parent_weights))

    def nll(weight, bias, pw):
        unary = h @ weight.T + bias
        return -ChainBernoulli(unary, pw, head.order, parents=head.parents).log_prob(target)

    assert torch.autograd.gradcheck(nll, (weight, bias, pw))


def test_chain_ensemble_head_orders():
    labels = (np.random.default_rng(2).random((50, 5)) < 0.4).astype(int)
    head = ChainEnsembleHead(3, 5, n_orders=3)
    head.prepare(labels)
    orders = head.orders.tolist()
    assert all(sorted(order) == list(range(5)) for order in orders)
    assert orders[0] == dependence_order(labels).tolist()
    again = ChainEnsembleHead(3, 5, n_orders=3)
    again.prepare(labels)
    assert again.orders.tolist() == orders  # seeded
    dist = head(torch.randn(2, 3))
    assert dist.n_chains == 3 and dist.unary_logits.shape == (2, 3, 5)


def test_chain_ensemble_head_with_parents_is_the_ensemble_of_sparse_chain_heads():
    """Sparse chains (``parents=K``): each chain's parents are chosen for its own order, the
    ensemble's chains are the sparse chains a ``chain`` head with that order and K would build,
    and nothing ``[R, M, M]`` is allocated."""
    from scipy import sparse

    labels = (np.random.default_rng(4).random((80, 9)) < 0.3).astype(int)
    head = ChainEnsembleHead(3, 9, n_orders=2, parents=2)
    head.prepare(sparse.csr_matrix(labels))
    assert not hasattr(head, "interactions") and head.parent_weights.shape == (2, 9, 2)
    with torch.no_grad():
        head.parent_weights.normal_()
    h = torch.randn(4, 3)
    dist = head(h)
    for r, chain in enumerate(dist.chains):
        order = head.orders[r].numpy()
        assert chain.sparse and torch.equal(chain.parents, torch.as_tensor(choose_parents(labels, order, 2)))
        single = ChainHead(3, 9, order=order.tolist(), parents=2)
        single.prepare(labels)
        with torch.no_grad():
            single.linear.weight.copy_(head.linear.weight.reshape(2, 9, 3)[r])
            single.linear.bias.copy_(head.linear.bias.reshape(2, 9)[r])
            single.parent_weights.copy_(head.parent_weights[r])
        values = torch.bernoulli(torch.full((4, 9), 0.3))
        torch.testing.assert_close(chain.log_prob(values), single(h).log_prob(values))
    assert ChainEnsembleHead(3, 9, parents="auto").n_parents is None  # dense up to 64 labels (CMC 2007)
    assert ChainEnsembleHead(3, 100).n_parents == 16


# ------------------------------------------------------------------------------- end to end
def test_mixture_beats_true_marginals_on_strongly_dependent_data():
    """On the known-p(y|x) problem the mixture's mode nears the Bayes-optimal subset accuracy,
    far above what even the true marginals thresholded at 0.5 achieve (benchmarks/synthetic_joint.py
    runs every model on more data and seeds)."""
    from comorbid.data.synthetic import (
        bayes_optimal_subset_accuracy,
        dependent_label_problem,
        expected_subset_accuracy,
        threshold_marginals,
    )
    from comorbid.model import MultiLabelModel

    torch.set_default_dtype(torch.float32)
    data, true_probs = dependent_label_problem(n=3000, seed=5)
    train, test, test_probs = data.subset(np.arange(2000)), data.subset(np.arange(2000, 3000)), true_probs[2000:]
    from comorbid.training import TrainConfig

    model = MultiLabelModel("mixture", encoder="mlp", encoder_options={"hidden": []}, train=TrainConfig(max_iterations=60))
    model.fit(train)
    got = expected_subset_accuracy(test_probs, model.predict(test, ["subset"])["subset"])
    thresholded = expected_subset_accuracy(test_probs, threshold_marginals(test_probs, 6))
    assert got > thresholded + 0.1
    assert got > bayes_optimal_subset_accuracy(test_probs) - 0.03



def test_powerset_beats_true_marginals_on_parity_data():
    """On the order-3 parity problem (no pairwise part, tendencies non-linear in x) even a
    powerset on linear features predicts sets far likelier than the thresholded *true*
    marginals, and the independent model's mode (its thresholded marginals) falls below both
    (benchmarks/synthetic_joint.py --problem parity runs every model with an MLP)."""
    from comorbid.data.synthetic import (
        bayes_optimal_subset_accuracy,
        expected_subset_accuracy,
        parity_label_problem,
        threshold_marginals,
    )
    from comorbid.model import MultiLabelModel
    from comorbid.training import TrainConfig

    torch.set_default_dtype(torch.float32)
    data, true_probs = parity_label_problem(n=3000, seed=6)
    train, test, test_probs = data.subset(np.arange(2000)), data.subset(np.arange(2000, 3000)), true_probs[2000:]
    scores = {}
    for name in ("powerset", "independent"):
        model = MultiLabelModel(name, encoder="mlp", encoder_options={"hidden": []},
                                train=TrainConfig(max_iterations=60), nonempty=False).fit(train)
        scores[name] = expected_subset_accuracy(test_probs, model.predict(test, ["subset"])["subset"])
    thresholded = expected_subset_accuracy(test_probs, threshold_marginals(test_probs, 6))
    assert scores["powerset"] > thresholded + 0.04  # measured 0.331 against 0.280
    assert scores["independent"] < thresholded  # measured 0.180
    assert scores["powerset"] < bayes_optimal_subset_accuracy(test_probs)  # 0.373

def test_chain_ensemble_head_objectives():
    labels = (np.random.default_rng(3).random((20, 4)) < 0.4).astype(int)
    h, y = torch.randn(20, 3), torch.as_tensor(labels, dtype=torch.float64)
    head = ChainEnsembleHead(3, 4, n_orders=2)
    head.prepare(labels)
    with torch.no_grad():
        head.linear.weight.normal_()
        head.interactions.normal_()
    dist = head(h)
    separate = -sum(chain.log_prob(y) for chain in dist.chains).mean()
    torch.testing.assert_close(head.nll(h, y), separate)
    mixture = ChainEnsembleHead(3, 4, n_orders=2, objective="mixture")
    mixture.load_state_dict(head.state_dict())
    torch.testing.assert_close(mixture.nll(h, y), -dist.log_prob(y).mean())
    with pytest.raises(ValueError, match="objective"):
        ChainEnsembleHead(3, 4, objective="boosting")


# ------------------------------------------------------------------------------- every head
from hypothesis import given, settings  # noqa: E402
from strategies import DETERMINISTIC, label_matrices  # noqa: E402

from comorbid.heads import HEADS  # noqa: E402


@pytest.mark.parametrize("name", sorted(HEADS))
@settings(DETERMINISTIC, max_examples=15)
@given(labels=label_matrices(max_rows=8, max_labels=5))
def test_every_head_prepares_on_any_label_matrix_into_a_valid_distribution(name, labels):
    """Empty rows, full rows, labels never on, a single row, fewer distinct sets than mixture
    components: prepare() copes, and the untrained head is a normalised distribution under
    which every training row has a finite log-likelihood."""
    head = HEADS[name](3, labels.shape[1])
    head.prepare(labels, [f"l{j}" for j in range(labels.shape[1])])
    h = torch.randn(len(labels), 3)
    dist = head(h)
    _, probs = enumerate_probs(dist)
    torch.testing.assert_close(probs.sum(-1), torch.ones(len(labels)))
    y = torch.as_tensor(labels, dtype=torch.float64)
    assert torch.isfinite(dist.log_prob(y)).all()
    assert torch.isfinite(head.nll(h, y))


def test_chain_ensemble_and_ising_take_per_label_features():
    from torch import nn

    from comorbid.heads.base import label_logits

    head = ChainEnsembleHead(4, 3, n_orders=2)
    with torch.no_grad():
        head.linear.weight.normal_()
        head.linear.bias.normal_()
    h = torch.randn(5, 3, 4)
    unary = head(h).unary_logits
    for r in range(2):
        chain_linear = nn.Linear(4, 3)
        chain_linear.weight.data = head.linear.weight[r * 3 : (r + 1) * 3]
        chain_linear.bias.data = head.linear.bias[r * 3 : (r + 1) * 3]
        torch.testing.assert_close(unary[:, r], label_logits(chain_linear, h))
    with pytest.raises(ValueError, match="per-label"):
        head(torch.randn(5, 2, 4))
    ising = IsingHead(4, 3)
    torch.testing.assert_close(ising(h).unary_logits, label_logits(ising.linear, h))
    assert ChainEnsembleHead.accepts_per_label and IsingHead.accepts_per_label
    assert not MixtureHead.accepts_per_label and not PowersetHead.accepts_per_label


def test_count_marginals_from_sets_shared_and_per_row_agree_with_a_dense_product():
    from comorbid.distributions.base import count_marginals_from_sets

    generator = torch.Generator().manual_seed(4)
    sets = (torch.rand(3, 7, 5, generator=generator) > 0.5).double()  # [B, K, M]
    weights = torch.rand(3, 7, generator=generator, dtype=torch.float64)
    one_hot = torch.nn.functional.one_hot(sets.sum(-1).long(), 6).double()
    dense = torch.einsum("bk,bkj,bks->bjs", weights, sets, one_hot)
    torch.testing.assert_close(count_marginals_from_sets(sets, weights), dense)
    shared = count_marginals_from_sets(sets[0], weights)
    torch.testing.assert_close(shared, torch.einsum("bk,kj,bks->bjs", weights, sets[0], one_hot[0].expand(3, -1, -1)))
    with pytest.raises(ValueError, match=r"\[K, M\]"):
        count_marginals_from_sets(sets[None], weights)
