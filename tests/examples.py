"""The one list of every distribution, decoder and reader the conformance suites run over.

Adding a model, decoder or reader = one line here (and it must pass ``test_conformance.py``;
``test_registries.py`` fails naming any registered one that has no line here).
"""

from __future__ import annotations

import bz2
import functools
import gzip

import torch

from comorbid.decoders import InstanceF1Decoder, JaccardDecoder, MatrixCost, MBRDecoder, get_decoder
from comorbid.distributions import IndependentBernoulli, all_label_sets
from comorbid.distributions.chain import ChainBernoulli
from comorbid.distributions.nonempty import NonEmpty
from comorbid.distributions.chain_ensemble import ChainEnsemble
from comorbid.distributions.ensemble import UniformMixture
from comorbid.distributions.ising import IsingLabels
from comorbid.distributions.mixture import BernoulliMixture
from comorbid.distributions.powerset import LabelPowerset
from comorbid.metrics.utility import utility
from comorbid.testing.decoders import DecoderExample, naive_nearest_neighbour_cost
from comorbid.testing.distributions import DistributionExample
from comorbid.testing.readers import ReaderExample


def _normal(generator, *shape, scale=1.0):
    return torch.randn(*shape, generator=generator, dtype=torch.float64) * scale


def _chain_monte_carlo(unary, interactions, beam_size=2):
    """A chain forced onto its Monte Carlo and small-beam code paths."""
    dist = ChainBernoulli(unary, interactions, beam_size=beam_size, n_mc_samples=20000)
    dist.enumerate_max_labels = 0
    return dist


def _random_parents(n_labels, n_parents, seed=0):
    """``[M, K]`` parents of a sparse chain: for position t, up to K distinct earlier positions
    drawn at random, in random slots, the other slots the padding M."""
    generator = torch.Generator().manual_seed(seed + 10 * n_labels + n_parents)
    parents = torch.full((n_labels, n_parents), n_labels)
    for t in range(n_labels):
        chosen = torch.randperm(t, generator=generator)[:n_parents]
        slots = torch.randperm(n_parents, generator=generator)[: len(chosen)]
        parents[t, slots] = chosen
    return parents


def _sparse_chain(n_parents, monte_carlo=False, order="reversed"):
    """A sparse chain of at most ``n_parents`` parents per position (random ones, some padding
    before real ones), optionally forced onto its Monte Carlo and small-beam code paths."""
    def build(unary, weights):
        m = unary.shape[1]
        chain_order = torch.arange(m - 1, -1, -1) if order == "reversed" else None
        dist = ChainBernoulli(unary, weights, chain_order, parents=_random_parents(m, n_parents),
                              **({"beam_size": 8, "n_mc_samples": 20000} if monte_carlo else {}))
        if monte_carlo:
            dist.enumerate_max_labels = 0
        return dist
    return build


def _mixture_searched_mode(mixing, components):
    """A mixture forced onto its approximate mode search (candidates + hill climbing)."""
    dist = BernoulliMixture(mixing, components)
    dist.enumerate_max_labels = 0
    return dist


def _powerset_sets(n_labels):
    """The sets a powerset example 'saw in training': all but those with index 1 mod 3 (so some
    sets are unseen), always including the empty and the full set."""
    sets = all_label_sets(n_labels, dtype=torch.float64)
    index = torch.arange(len(sets))
    return sets[(index % 3 != 1) | (index == len(sets) - 1)]


def _powerset(logits):
    n_labels = logits.shape[1].bit_length() - 1
    sets = _powerset_sets(n_labels)
    keep = (sets @ (2 ** torch.arange(n_labels, dtype=torch.float64))).long()
    return LabelPowerset(logits[:, keep], sets)


def _orders(r, m):
    generator = torch.Generator().manual_seed(r * 100 + m)
    randoms = [torch.randperm(m, generator=generator) for _ in range(r - 2)]
    return torch.stack([torch.arange(m), torch.arange(m - 1, -1, -1)] + randoms)


def _chain_ensemble(unary, interactions):
    return ChainEnsemble(unary, interactions, _orders(unary.shape[1], unary.shape[2]))


def _chain_ensemble_monte_carlo(unary, interactions):
    """A chain ensemble on its Monte Carlo marginals and searched mode."""
    dist = ChainEnsemble(unary, interactions, _orders(unary.shape[1], unary.shape[2]), beam_size=2, n_mc_samples=20000)
    dist.enumerate_max_labels = 0
    for chain in dist.chains:
        chain.enumerate_max_labels = 0
    return dist


DISTRIBUTIONS = [
    DistributionExample(
        "independent",
        lambda b, m, s, g: (_normal(g, b, m, scale=s),),
        IndependentBernoulli,
    ),
    DistributionExample(
        "chain",
        lambda b, m, s, g: (_normal(g, b, m, scale=s), _normal(g, m, m, scale=2 * s)),
        ChainBernoulli,
    ),
    DistributionExample(
        "chain-per-row-weights-reversed-order",
        lambda b, m, s, g: (_normal(g, b, m, scale=s), _normal(g, b, m, m, scale=2 * s)),
        lambda u, a: ChainBernoulli(u, a, order=torch.arange(u.shape[1] - 1, -1, -1)),
    ),
    DistributionExample(
        "chain-monte-carlo",
        lambda b, m, s, g: (_normal(g, b, m, scale=s), _normal(g, m, m, scale=2 * s)),
        _chain_monte_carlo,
        mc_tolerance=0.03,
    ),
    DistributionExample(
        "sparse-chain-1-parent",
        lambda b, m, s, g: (_normal(g, b, m, scale=s), _normal(g, m, 1, scale=2 * s)),
        _sparse_chain(1),
    ),
    DistributionExample(
        "sparse-chain-2-parents-per-row-weights",
        lambda b, m, s, g: (_normal(g, b, m, scale=s), _normal(g, b, m, 2, scale=2 * s)),
        _sparse_chain(2, order="index"),
    ),
    DistributionExample(
        "sparse-chain-2-parents-monte-carlo",
        lambda b, m, s, g: (_normal(g, b, m, scale=s), _normal(g, m, 2, scale=2 * s)),
        _sparse_chain(2, monte_carlo=True),
        mc_tolerance=0.03,
    ),
    DistributionExample(
        "nonempty-sparse-chain-monte-carlo",
        lambda b, m, s, g: (_normal(g, b, m, scale=s) - s, _normal(g, m, 2, scale=2 * s)),
        lambda u, w: NonEmpty(_sparse_chain(2, monte_carlo=True)(u, w)),
        mc_tolerance=0.03,
    ),
    DistributionExample(
        "chain-ensemble",
        lambda b, m, s, g: (_normal(g, b, 3, m, scale=s), _normal(g, 3, m, m, scale=2 * s)),
        _chain_ensemble,
    ),
    DistributionExample(
        "chain-ensemble-per-row-monte-carlo",
        lambda b, m, s, g: (_normal(g, b, 3, m, scale=s), _normal(g, b, 3, m, m, scale=2 * s)),
        _chain_ensemble_monte_carlo,
        mc_tolerance=0.03,
    ),
    DistributionExample(
        "mixture",
        lambda b, m, s, g: (_normal(g, b, 3, scale=s), _normal(g, b, 3, m, scale=2 * s)),
        BernoulliMixture,
    ),
    DistributionExample(
        "mixture-searched-mode",
        lambda b, m, s, g: (_normal(g, b, 4, scale=s), _normal(g, b, 4, m, scale=2 * s)),
        _mixture_searched_mode,
    ),
    DistributionExample(
        "powerset-with-unseen-sets",
        lambda b, m, s, g: (_normal(g, b, 2**m, scale=2 * s),),
        _powerset,
    ),
    DistributionExample(
        "ising",
        lambda b, m, s, g: (_normal(g, b, m, scale=s), _normal(g, m, m, scale=s)),
        IsingLabels,
    ),
    DistributionExample(
        "ising-per-row-couplings",
        lambda b, m, s, g: (_normal(g, b, m, scale=s), _normal(g, b, m, m, scale=s)),
        IsingLabels,
    ),
    DistributionExample(
        "ising-gibbs",
        # weaker couplings than fields: a Gibbs sampler mixes in a few sweeps
        lambda b, m, s, g: (_normal(g, b, m, scale=s), _normal(g, m, m, scale=min(s, 1.0))),
        lambda u, c: IsingLabels(u, c, inference="gibbs", n_mc_samples=4000, gibbs_sweeps=24),
        mc_tolerance=0.03,
    ),
    DistributionExample(  # what a bagged model predicts: members of any kind
        "uniform-mixture-of-independent-and-chain",
        lambda b, m, s, g: (_normal(g, b, m, scale=s), _normal(g, b, m, scale=s), _normal(g, m, m, scale=2 * s)),
        lambda u1, u2, a: UniformMixture([IndependentBernoulli(u1), ChainBernoulli(u2, a)]),
    ),
    DistributionExample(
        "nonempty-independent",
        lambda b, m, s, g: (_normal(g, b, m, scale=s) - s,),  # shifted down: p(0) is large
        lambda logits: NonEmpty(IndependentBernoulli(logits)),
    ),
    DistributionExample(
        "nonempty-chain",
        lambda b, m, s, g: (_normal(g, b, m, scale=s) - s, _normal(g, m, m, scale=2 * s)),
        lambda u, a: NonEmpty(ChainBernoulli(u, a)),
    ),
    DistributionExample(
        "nonempty-chain-monte-carlo",
        lambda b, m, s, g: (_normal(g, b, m, scale=s) - s, _normal(g, m, m, scale=2 * s)),
        lambda u, a: NonEmpty(_chain_monte_carlo(u, a, beam_size=4)),
        mc_tolerance=0.03,
    ),
    DistributionExample(  # exact first-on sampling per component; the enumerated non-empty mode
        "nonempty-mixture",
        lambda b, m, s, g: (_normal(g, b, 3, scale=s), _normal(g, b, 3, m, scale=2 * s) - s),
        lambda gate, logits: NonEmpty(BernoulliMixture(gate, logits)),
    ),
    DistributionExample(
        "nonempty-ising",
        lambda b, m, s, g: (_normal(g, b, m, scale=s) - s, _normal(g, m, m, scale=s)),
        lambda u, c: NonEmpty(IsingLabels(u, c)),
    ),
    DistributionExample(  # Gibbs sampling of p(y | y != 0)
        "nonempty-ising-gibbs",
        lambda b, m, s, g: (_normal(g, b, m, scale=s) - s, _normal(g, m, m, scale=s)),
        lambda u, c: NonEmpty(IsingLabels(u, c, inference="gibbs", n_mc_samples=4000, gibbs_sweeps=24)),
        mc_tolerance=0.03,
    ),
    DistributionExample(  # members picked by their P_r(y != 0), then sampled given y != 0
        "nonempty-uniform-mixture",
        lambda b, m, s, g: (_normal(g, b, m, scale=s) - s, _normal(g, b, m, scale=s) - s, _normal(g, m, m, scale=2 * s)),
        lambda u1, u2, a: NonEmpty(UniformMixture([IndependentBernoulli(u1), ChainBernoulli(u2, a)])),
    ),
]

def _utility_table(name):
    return lambda sets: utility(name, sets[:, None, :], sets[None, :, :])


def _precision_at_k_table(k):
    """|h & y| / k for sets of size min(k, M); -1 for any other size (not a top-k answer)."""

    def table(sets):
        size_ok = sets.sum(-1) == min(k, sets.shape[1])
        return torch.where(size_ok[:, None], (sets @ sets.T) / k, torch.tensor(-1.0, dtype=sets.dtype))

    return table


def _cost_matrix(n_labels):
    """A fixed random asymmetric label-by-label cost, zero diagonal."""
    generator = torch.Generator().manual_seed(100 + n_labels)
    matrix = torch.rand(n_labels, n_labels, generator=generator, dtype=torch.float64)
    return matrix.fill_diagonal_(0.0)


@functools.lru_cache(maxsize=None)
def _naive_cost_table_of_size(n_labels):
    """Minus the nearest-neighbour set cost from its definition, over all 2^M x 2^M pairs."""
    matrix = _cost_matrix(n_labels)
    empty = matrix.max().item() if n_labels > 1 else 1.0
    sets = all_label_sets(n_labels, dtype=torch.float64)
    return -torch.tensor([[naive_nearest_neighbour_cost(a, b, matrix, empty) for b in sets] for a in sets])


def _naive_cost_table(sets):
    return _naive_cost_table_of_size(sets.shape[1])


def _squared_size_error(y_hat, y):
    """A user's cost function: (|y_hat| - |y|)^2 plus the Hamming distance, [K, S]."""
    return (y_hat.sum(-1)[:, None] - y.sum(-1)[None, :]) ** 2 + (y_hat[:, None, :] != y[None, :, :]).sum(-1)


def _function_table(sets):
    return -_squared_size_error(sets, sets).double()


#: Samples drawn by the sampling variants below (their tolerance depends on it).
N_SAMPLES = 4000

#: Every decoder, once; variants force the paths (sampling, no enumeration) that small M skips.
DECODERS = [
    DecoderExample("hamming", lambda m: get_decoder("hamming"), _utility_table("hamming")),
    DecoderExample("subset", lambda m: get_decoder("subset"), _utility_table("subset")),
    DecoderExample("instance-f1", lambda m: get_decoder("instance-f1"), _utility_table("instance-f1")),
    DecoderExample("instance-f1-rules-only", lambda m: InstanceF1Decoder(enumerate_max_labels=0), _utility_table("instance-f1")),
    DecoderExample("jaccard", lambda m: get_decoder("jaccard"), _utility_table("jaccard")),
    DecoderExample("jaccard-no-enumeration", lambda m: JaccardDecoder(n_samples=N_SAMPLES, enumerate_max_labels=0),
                   _utility_table("jaccard"), n_samples=N_SAMPLES),
    DecoderExample("top-k=2", lambda m: get_decoder("top-k=2"), _precision_at_k_table(2)),
    DecoderExample("mbr=jaccard", lambda m: get_decoder("mbr=jaccard"), _utility_table("jaccard")),
    DecoderExample("mbr-cost-matrix", lambda m: MBRDecoder(MatrixCost(_cost_matrix(m))), _naive_cost_table),
    DecoderExample("mbr-cost-matrix-sampled", lambda m: MBRDecoder(MatrixCost(_cost_matrix(m)), n_samples=N_SAMPLES,
                   enumerate_max_labels=0), _naive_cost_table, n_samples=N_SAMPLES),
    DecoderExample("mbr-function-sampled", lambda m: MBRDecoder(_squared_size_error, n_samples=N_SAMPLES,
                   enumerate_max_labels=0), _function_table, n_samples=N_SAMPLES),
    # fbr=0: the pure per-label maximiser (the SCutFBR fallback is tested in test_decoders.py)
    DecoderExample("macro-f1", lambda m: get_decoder("macro-f1=0"), corpus_metric="macro-f1"),
    DecoderExample("micro-f1", lambda m: get_decoder("micro-f1"), corpus_metric="micro-f1"),
]


_CMC_XML = b"""<?xml version='1.0'?>
<docs>
  <doc id="1" type="RADIOLOGY_REPORT">
    <codes><code origin="CMC_MAJORITY" type="ICD-9-CM">786.2</code></codes>
    <texts><text origin="X" type="IMPRESSION">Cough.</text></texts>
  </doc>
  <doc id="2" type="RADIOLOGY_REPORT">
    <codes><code origin="CMC_MAJORITY" type="ICD-9-CM">599.0</code></codes>
    <texts><text origin="X" type="IMPRESSION">Normal kidneys.</text></texts>
  </doc>
</docs>
"""
_ARFF = b"@relation 'tiny: -C 2'\n@attribute a {0,1}\n@attribute b {0,1}\n@attribute x numeric\n@data\n1,0,0.5\n0,1,-1\n"
_CSV = b"id,text,labels\nr1,cough and fever,786.2;780.6\nr2,normal,599.0\n"
_JSONL = b'{"id": "r1", "text": "cough and fever", "labels": "786.2;780.6"}\n{"id": "r2", "text": "normal", "labels": ["599.0"]}\n'

#: Every file ending of ``comorbid.data.readers.READERS``, once: a small valid file.
READERS = [
    ReaderExample(".xml", _CMC_XML, ["599.0", "786.2"], 2),
    ReaderExample(".arff", _ARFF, ["a", "b"], 2),
    ReaderExample(".arff.gz", gzip.compress(_ARFF, mtime=0), ["a", "b"], 2),
    ReaderExample(".arff.bz2", bz2.compress(_ARFF), ["a", "b"], 2),
    ReaderExample(".csv", _CSV, ["599.0", "780.6", "786.2"], 2),
    ReaderExample(".tsv", _CSV.replace(b",", b"\t"), ["599.0", "780.6", "786.2"], 2),
    ReaderExample(".jsonl", _JSONL, ["599.0", "780.6", "786.2"], 2),
    ReaderExample(".json", _JSONL, ["599.0", "780.6", "786.2"], 2),
]
