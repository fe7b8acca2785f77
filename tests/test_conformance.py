"""Every distribution and decoder against brute-force enumeration of all 2^M label sets."""

import pytest
import torch

from comorbid.testing import decoders as decoders_suite
from comorbid.testing import distributions as suite
from examples import DECODERS, DISTRIBUTIONS

SIZES = [1, 2, 5, 8]
SCALES = [0.3, 1.0, 4.0]


pytestmark = pytest.mark.usefixtures("float64")


@pytest.mark.parametrize("example", DISTRIBUTIONS, ids=repr)
@pytest.mark.parametrize("n_labels", SIZES)
@pytest.mark.parametrize("scale", SCALES)
def test_enumeration(example, n_labels, scale):
    dist, _ = example.make(batch_size=4, n_labels=n_labels, scale=scale, seed=n_labels)
    suite.check_normalised(dist)
    suite.check_marginals(dist, example.mc_tolerance)
    suite.check_count_marginals(dist, example.mc_tolerance)
    suite.check_mode(dist)
    suite.check_nonempty_mode(dist)
    suite.check_tempered(dist)
    suite.check_log_prob_nonempty(dist)


@pytest.mark.parametrize("example", DISTRIBUTIONS, ids=repr)
@pytest.mark.parametrize("n_labels", [3, 6])
def test_samples_fit_log_prob(example, n_labels):
    dist, _ = example.make(batch_size=3, n_labels=n_labels, scale=1.0, seed=7)
    suite.check_sample(dist)


@pytest.mark.parametrize("example", DISTRIBUTIONS, ids=repr)
def test_gradcheck(example):
    suite.check_gradients(example)


@pytest.mark.parametrize("example", DISTRIBUTIONS, ids=repr)
def test_extreme_parameters_stay_finite(example):
    suite.check_extreme(example)


@pytest.mark.parametrize("example", DISTRIBUTIONS, ids=repr)
def test_log_prob_rejects_values_that_are_not_label_sets(example):
    dist, _ = example.make(batch_size=2, n_labels=3)
    with pytest.raises(ValueError, match="0/1"):
        dist.log_prob(torch.tensor([[0.0, 2.0, 1.0], [0.0, 0.0, 1.0]]))
    with pytest.raises(ValueError, match="3 labels"):
        dist.log_prob(torch.zeros(2, 4))


@pytest.mark.parametrize("example", DISTRIBUTIONS, ids=repr)
def test_parameters_are_validated(example):
    """``arg_constraints``: a NaN in the first parameter is refused, naming it (unless
    ``validate_args`` is off, which the generic suite above never turns off)."""
    _, params = example.make(batch_size=2, n_labels=3)
    bad = params[0].clone()
    bad.view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match=r"Expected `\w+` of \w+ to be real numbers \(not NaN\), got nan at \[0, 0"):
        example.build(bad, *params[1:])


PER_ROW_DECODERS = [d for d in DECODERS if d.table is not None]
TUNED_DECODERS = [d for d in DECODERS if d.corpus_metric is not None]


@pytest.mark.parametrize("example", DISTRIBUTIONS, ids=repr)
@pytest.mark.parametrize("decoder", PER_ROW_DECODERS, ids=repr)
@pytest.mark.parametrize("n_labels", [1, 4, 7])
@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_decoder_maximises_expected_metric(example, decoder, n_labels, scale):
    dist, _ = example.make(batch_size=6, n_labels=n_labels, scale=scale, seed=11 * n_labels)
    decoders_suite.check_maximises_expected_utility(decoder, dist)


@pytest.mark.parametrize("example", DISTRIBUTIONS, ids=repr)
@pytest.mark.parametrize("decoder", TUNED_DECODERS, ids=repr)
@pytest.mark.parametrize("n_labels", [1, 5])
def test_tuned_decoder_reaches_the_best_heldout_f1(example, decoder, n_labels):
    dist, _ = example.make(batch_size=40, n_labels=n_labels, scale=1.5, seed=3 + n_labels)
    decoders_suite.check_tuned_on_heldout(decoder, dist)
