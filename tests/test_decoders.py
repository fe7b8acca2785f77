import pytest
import torch

from comorbid.decoders import TopKDecoder, get_decoder, gfm, parse_decoders
from comorbid.distributions import IndependentBernoulli


def test_registry_parses_names_and_arguments():
    assert get_decoder("top-k=3").k == 3
    assert parse_decoders("hamming, subset,instance-f1") == ["hamming", "subset", "instance-f1"]
    with pytest.raises(ValueError, match="Unknown decoder 'nope'"):
        get_decoder("nope")
    with pytest.raises(ValueError, match="top-k=K"):
        get_decoder("top-k")
    with pytest.raises(ValueError, match="takes no argument"):
        get_decoder("hamming=2")
    with pytest.raises(ValueError, match="at least one"):
        parse_decoders(" , ")


def test_top_k_breaks_ties_towards_lower_index():
    dist = IndependentBernoulli(torch.tensor([[0.0, 1.0, 0.0, 1.0]]))
    assert TopKDecoder(3).decode(dist).tolist() == [[1.0, 1.0, 0.0, 1.0]]
    assert TopKDecoder(10).decode(dist).sum() == 4


def test_gfm_predicts_empty_set_when_it_is_likely_and_nothing_when_no_labels():
    dist = IndependentBernoulli(torch.full((2, 3), -4.0))
    assert get_decoder("instance-f1").decode(dist).sum() == 0
    assert gfm(torch.zeros(3, 0, 1), torch.ones(3)).shape == (3, 0)


def test_gfm_can_beat_thresholding_marginals():
    # Two labels at 0.45 each: thresholding predicts nothing (F = P(empty) = 0.3025), but
    # predicting both has expected F1 0.45*0.55*2*(2/3) + 0.45^2 = 0.5325.
    logit = torch.logit(torch.tensor(0.45, dtype=torch.float64))
    dist = IndependentBernoulli(torch.full((1, 2), logit.item(), dtype=torch.float64))
    assert get_decoder("hamming").decode(dist).sum() == 0
    assert get_decoder("instance-f1").decode(dist).tolist() == [[1.0, 1.0]]
