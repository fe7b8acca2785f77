"""The conditional Bernoulli mixture head (Li, Wang, Pavlu & Aslam, ICML 2016)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from comorbid.distributions.mixture import BernoulliMixture
from comorbid.heads.base import Head, Linear

SLOPES = ("shared", "separate")


def kmeans_components(labels: np.ndarray, n_components: int, seed: int = 0, smoothing: float = 0.5):
    """Initial component logits ``[K, M]`` and log mixing weights ``[K]`` from k-means of the
    training label vectors (as Li et al. initialise their EM).

    Each component starts at a cluster's smoothed label frequencies, its weight at the cluster's
    share of rows. With fewer distinct label sets than components, the largest clusters are
    repeated with a small seeded jitter so that no two components are identical (identical
    components get identical gradients and would stay identical).
    """
    from sklearn.cluster import KMeans

    y = np.asarray(labels, dtype=np.float64)
    n, m = y.shape
    distinct = len(np.unique(y, axis=0)) if n else 0
    k = max(1, min(n_components, distinct))
    if n == 0:
        centres, sizes = np.full((1, m), 0.5), np.ones(1)
    elif k == 1:
        centres, sizes = ((y.sum(0) + smoothing) / (n + 2 * smoothing))[None], np.array([float(n)])
    else:
        assignment = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(y)
        sizes = np.bincount(assignment, minlength=k).astype(np.float64)
        sums = np.stack([y[assignment == c].sum(0) for c in range(k)])
        centres = (sums + smoothing) / (sizes[:, None] + 2 * smoothing)
    logits = np.log(centres) - np.log1p(-centres)
    weights = sizes / sizes.sum()
    if k < n_components:
        rng = np.random.default_rng(seed)
        repeat = np.argsort(-sizes, kind="stable")[np.arange(n_components - k) % k]
        logits = np.concatenate([logits, logits[repeat] + rng.normal(scale=0.1, size=(len(repeat), m))])
        weights = np.concatenate([weights, weights[repeat]])
    log_weights = np.log(weights / weights.sum())
    dtype = torch.get_default_dtype()
    return torch.as_tensor(logits, dtype=dtype), torch.as_tensor(log_weights, dtype=dtype)


class MixtureHead(Head):
    """pi(x) = softmax(V h + c); component k's logits l_k(x), a mixture of K Bernoulli products.

    Args:
        input_dim: ``d``.
        n_labels: ``M``.
        n_components: ``K`` (default 16; on CMC 2007 K = 4, 8, 16, 32 gave subset accuracy
            0.597, 0.641, 0.661, 0.663 with the subset decoder).
        slopes: ``"shared"`` (default): l_k(x) = W h + b_k, the components differ by their
            biases only (M d + K d + K M parameters; the gating carries the input dependence);
            ``"separate"``: l_k(x) = W_k h + b_k, a logistic regression per component as in Li
            et al. (K M d parameters).
        seed: seeds the k-means initialisation.
    """

    name = "mixture"
    # Per-label features [B, M, d] are not taken: the gating needs one vector per document.

    def __init__(self, input_dim: int, n_labels: int, n_components: int = 16, slopes: str = "shared", seed: int = 0):
        super().__init__(input_dim, n_labels, n_components=n_components, slopes=slopes, seed=seed)
        if n_components < 1:
            raise ValueError(f"Expected n_components >= 1, got {n_components}")
        if slopes not in SLOPES:
            raise ValueError(f"Expected `slopes` in {SLOPES}, got {slopes!r}")
        self.gating = Linear(input_dim, n_components)
        width = n_labels if slopes == "shared" else n_components * n_labels
        self.components = Linear(input_dim, width, bias=False)
        for layer in (self.gating, self.components):
            nn.init.zeros_(layer.weight)
        nn.init.zeros_(self.gating.bias)
        # Flat so that the trainer's weight decay (on parameters of 2+ dimensions) leaves it alone.
        self.component_bias = nn.Parameter(torch.zeros(n_components * n_labels))

    def forward(self, h: torch.Tensor) -> BernoulliMixture:
        k, m = self.options["n_components"], self.n_labels
        slopes = self.components(h)
        if self.options["slopes"] == "shared":
            logits = slopes[:, None, :] + self.component_bias.reshape(k, m)
        else:
            logits = slopes.reshape(h.shape[0], k, m) + self.component_bias.reshape(k, m)
        return BernoulliMixture(self.gating(h), logits)

    def prepare(self, labels: np.ndarray, label_names: list[str] | None = None) -> None:
        logits, log_weights = kmeans_components(labels, self.options["n_components"], self.options["seed"])
        with torch.no_grad():
            self.component_bias.copy_(logits.reshape(-1))
            self.gating.bias.copy_(log_weights)
