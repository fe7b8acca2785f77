"""Same answer twice (issue 11): predictions are a pure function of the model, the data, the
decoder and the seed; they do not depend on the batch a row is in, and never touch the global
torch generator. Also the chunked Monte Carlo of the chain (issue 13) against one chunk."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from comorbid.data import MultiLabelDataset
from comorbid.distributions import base as distribution_base
from comorbid.distributions.chain import ChainBernoulli
from comorbid.distributions.nonempty import NonEmpty
from comorbid.model import MultiLabelModel
from comorbid.training import TrainConfig
from conftest import REPO

#: More labels than the chain enumerates (12): its marginals are Monte Carlo.
N_LABELS = 14
DECODERS = ["hamming", "subset", "instance-f1", "jaccard", "top-k=3", "mbr=hamming", "micro-f1", "macro-f1"]


def many_label_dataset(n=40, seed=0) -> MultiLabelDataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    weights = rng.normal(size=(5, N_LABELS))
    labels = (x @ weights + rng.normal(size=(n, N_LABELS)) > 0.8).astype(np.int8)
    labels[labels.sum(1) == 0, 0] = 1  # every row coded: the model conditions on y != 0
    return MultiLabelDataset([str(i) for i in range(n)], x, labels, [f"L{j}" for j in range(N_LABELS)])


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    data = many_label_dataset()
    model = MultiLabelModel("chain", train=TrainConfig(epochs=15, seed=3))
    model.fit(data)
    model.fit_decoders(["micro-f1", "macro-f1"], None)  # thresholds 1/2: enough to exercise them
    directory = tmp_path_factory.mktemp("determinism") / "model"
    model.save(directory)
    return directory, data


def _digest(predictions: dict) -> str:
    return hashlib.sha256(b"".join(predictions[d].tobytes() for d in DECODERS)).hexdigest()


def test_same_predictions_twice_in_one_process_for_every_decoder(saved_model):
    directory, data = saved_model
    model = MultiLabelModel.load(directory)
    assert model.head_.nonempty
    first, second = model.predict(data, DECODERS), model.predict(data, DECODERS)
    for decoder in DECODERS:
        np.testing.assert_array_equal(first[decoder], second[decoder], err_msg=decoder)
    np.testing.assert_array_equal(model.marginals(data), model.marginals(data))


def test_same_predictions_in_two_processes(saved_model):
    directory, data = saved_model
    script = (
        "import sys, hashlib, numpy as np\n"
        "sys.path.insert(0, 'tests')\n"
        "from test_reliability_determinism import many_label_dataset, DECODERS, _digest\n"
        "from comorbid.model import MultiLabelModel\n"
        f"model = MultiLabelModel.load({str(directory)!r})\n"
        "print(_digest(model.predict(many_label_dataset(), DECODERS)))\n"
    )
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    digests = {subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                              check=True).stdout.strip() for _ in range(2)}
    assert digests == {_digest(MultiLabelModel.load(directory).predict(data, DECODERS))}


def test_predictions_do_not_depend_on_the_batch_size(saved_model):
    directory, data = saved_model
    model = MultiLabelModel.load(directory)
    by_size = {size: model.predict(data, DECODERS, batch_size=size) for size in (1, 7, 256)}
    for decoder in DECODERS:
        np.testing.assert_array_equal(by_size[1][decoder], by_size[7][decoder], err_msg=decoder)
        np.testing.assert_array_equal(by_size[1][decoder], by_size[256][decoder], err_msg=decoder)
    # and a row's answer does not depend on the rows before it
    reversed_rows = model.predict(data.inputs[::-1].copy(), DECODERS, batch_size=7)
    for decoder in DECODERS:
        np.testing.assert_array_equal(reversed_rows[decoder][::-1], by_size[7][decoder], err_msg=decoder)


def test_seed_changes_monte_carlo_but_is_reproducible(saved_model):
    directory, data = saved_model
    model = MultiLabelModel.load(directory)
    default, same = model.marginals(data), model.marginals(data, seed=model.train_config_.seed)
    np.testing.assert_array_equal(default, same)
    other = model.marginals(data, seed=12345)
    assert not np.array_equal(default, other)
    np.testing.assert_allclose(default, other, atol=0.1)  # two Monte Carlo estimates of one thing


def test_predict_leaves_the_global_generator_alone(saved_model):
    directory, data = saved_model
    model = MultiLabelModel.load(directory)
    torch.manual_seed(99)
    before = torch.random.get_rng_state()
    model.predict(data, DECODERS)
    model.marginals(data)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_sample_is_seeded_and_leaves_the_global_generator_alone():
    generator = torch.Generator().manual_seed(0)
    dist = NonEmpty(ChainBernoulli(torch.randn(3, 6, generator=generator), torch.randn(6, 6, generator=generator)))
    before = torch.random.get_rng_state()
    draws = dist.sample((50,))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert (draws.sum(-1) > 0).all()
    again = NonEmpty(ChainBernoulli(dist.base.unary_logits, dist.base.interactions))
    assert torch.equal(again.sample((50,)), draws)
    assert not torch.equal(again.sample((50,)), draws)  # successive calls continue the stream


def _chain(b, m, seed=0, n_mc_samples=300):
    generator = torch.Generator().manual_seed(seed)
    unary = torch.randn(b, m, generator=generator) - 1.0
    interactions = torch.randn(m, m, generator=generator)
    return ChainBernoulli(unary, interactions, n_mc_samples=n_mc_samples)


@pytest.mark.parametrize("nonempty", [False, True])
def test_chunked_chain_monte_carlo_equals_one_chunk(monkeypatch, nonempty):
    def marginals(dist):
        return (NonEmpty(dist) if nonempty else dist).marginals()

    whole = marginals(_chain(5, 20))
    count_whole = _chain(5, 20).count_marginals()
    monkeypatch.setattr(distribution_base, "MC_CHUNK_BYTES", 1)  # one noise block per chunk
    assert _chain(5, 20)._mc_chunk(1) == 16
    assert torch.equal(marginals(_chain(5, 20)), whole)
    assert torch.equal(_chain(5, 20).count_marginals(), count_whole)


def test_chain_monte_carlo_of_a_row_does_not_depend_on_its_batch():
    dist = _chain(9, 16)
    rows = [2, 7]
    alone = ChainBernoulli(dist.unary_logits[rows], dist.interactions, n_mc_samples=dist.n_mc_samples)
    assert torch.equal(alone.marginals(), dist.marginals()[rows])
    assert torch.equal(alone.count_marginals(), dist.count_marginals()[rows])
