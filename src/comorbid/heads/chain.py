"""The classifier-chain head (Dembczynski et al., ICML 2010), trained by teacher forcing."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from comorbid.distributions.chain import DEFAULT_BEAM_SIZE, ChainBernoulli
from comorbid.distributions.chain_ensemble import ChainEnsemble
from comorbid.heads.base import Head, Linear, label_logits, log_odds

ORDERS = ("frequency", "rare-first", "dependence", "index")


def frequency_order(labels: np.ndarray) -> np.ndarray:
    """Labels from the most to the least frequent (ties by index).

    Frequent labels first: the rare labels, whose own evidence is weakest, get to condition on
    the labels that are already well determined.
    """
    counts = labels.sum(0)
    return np.lexsort((np.arange(labels.shape[1]), -counts))


def mutual_information(labels: np.ndarray, smoothing: float = 0.5) -> np.ndarray:
    """Pairwise mutual information (nats) between binary labels ``[N, M] -> [M, M]``, from
    add-``smoothing`` estimates of the 2x2 tables; the diagonal is zero."""
    y = np.asarray(labels, dtype=np.float64)
    n = y.shape[0]
    both = y.T @ y
    ones = np.diag(both)
    tables = {
        (1, 1): both,
        (1, 0): ones[:, None] - both,
        (0, 1): ones[None, :] - both,
        (0, 0): n - ones[:, None] - ones[None, :] + both,
    }
    total = n + 4 * smoothing
    p1 = (ones + 2 * smoothing) / total
    marginal = {1: p1, 0: 1.0 - p1}
    mi = np.zeros_like(both)
    for (a, b), count in tables.items():
        joint = (count + smoothing) / total
        with np.errstate(divide="ignore", invalid="ignore"):
            term = joint * np.log(joint / (marginal[a][:, None] * marginal[b][None, :]))
        mi += np.where(joint > 0, term, 0.0)  # 0 log 0 = 0
    np.fill_diagonal(mi, 0.0)
    return np.maximum(mi, 0.0)


def dependence_order(labels: np.ndarray) -> np.ndarray:
    """Breadth-first order of the Chow-Liu tree of the labels, from the most frequent label.

    The Chow-Liu tree (Chow & Liu, 1968, IEEE Trans. Inf. Theory 14) is the maximum spanning
    tree of pairwise mutual information; in breadth-first order each label comes after the
    label it depends on most along the tree, so the chain can condition on it. This is the
    order of the Bayesian chain classifiers of Zaragoza, Sucar, Morales, Bielza & Larranaga
    (IJCAI 2011).
    """
    from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

    m = labels.shape[1]
    if m <= 1:
        return np.arange(m)
    mi = mutual_information(labels)
    # scipy reads 0 as "no edge": turn the maximum-MI tree into a minimum tree of positive costs.
    cost = (mi.max() + 1.0) - mi
    np.fill_diagonal(cost, 0.0)
    tree = minimum_spanning_tree(cost)
    root = int(frequency_order(labels)[0])
    order, _ = breadth_first_order(tree, root, directed=False)
    return order.astype(np.int64)


def label_order(kind: str, labels: np.ndarray) -> np.ndarray:
    """A chain order by name: ``frequency``, ``rare-first``, ``dependence`` or ``index``.

    ``rare-first`` is the frequency order reversed. In coding data the rare codes are the
    specific diagnoses and the frequent ones the symptoms (cough, fever) that a coder leaves out
    once a diagnosis explains them (ICD-9-CM guidelines, Section IV); deciding the diagnosis
    first lets the symptom's factor condition on it.
    """
    if kind == "frequency":
        return frequency_order(labels)
    if kind == "rare-first":
        return frequency_order(labels)[::-1].copy()
    if kind == "dependence":
        return dependence_order(labels)
    if kind == "index":
        return np.arange(labels.shape[1])
    raise ValueError(f"Expected a label order in {ORDERS} or a permutation, got {kind!r}")


class ChainHead(Head):
    """u = W h + b; a learned [M, M] matrix of label-on-label weights along a label order.

    Args:
        input_dim: ``d``.
        n_labels: ``M``.
        order: ``"dependence"`` (default: the Chow-Liu tree order, see
            :func:`dependence_order`), ``"frequency"`` (most frequent label first),
            ``"rare-first"`` (least frequent first, see :func:`label_order`), ``"index"``
            or an explicit permutation. On CMC 2007 the dependence order beat the frequency
            order on every fold and decoder (docs/models.md).
        beam_size: beam width of the mode search.
    """

    name = "chain"
    accepts_per_label = True

    def __init__(self, input_dim: int, n_labels: int, order="dependence", beam_size: int = DEFAULT_BEAM_SIZE):
        super().__init__(input_dim, n_labels, order=order, beam_size=beam_size)
        if isinstance(order, str) and order not in ORDERS:
            raise ValueError(f"Expected `order` in {ORDERS} or a permutation, got {order!r}")
        self.linear = Linear(input_dim, n_labels)
        nn.init.zeros_(self.linear.weight)
        self.interactions = nn.Parameter(torch.zeros(n_labels, n_labels))
        initial = torch.arange(n_labels) if isinstance(order, str) else torch.as_tensor(order, dtype=torch.long)
        self.register_buffer("order", initial.clone())

    def forward(self, h: torch.Tensor) -> ChainBernoulli:
        unary = label_logits(self.linear, h)
        return ChainBernoulli(unary, self.interactions, self.order, beam_size=self.options["beam_size"])

    def prepare(self, labels: np.ndarray, label_names: list[str] | None = None) -> None:
        if isinstance(self.options["order"], str):
            self.order.copy_(torch.as_tensor(label_order(self.options["order"], labels)))
        with torch.no_grad():
            self.linear.bias.copy_(log_odds(labels))


class ChainEnsembleHead(Head):
    """R classifier chains over different label orders, as one uniform mixture (EPCC).

    Each chain has its own ``u_r = W_r h + b_r`` and label-on-label weights ``A_r``. With
    ``objective="chains"`` (default) every chain is fitted to the data on its own, as in the
    ensembles of Read et al. (2011) and Dembczynski et al. (2010): the loss is
    sum_r -log p_r(y | x), whose optimum in each chain's parameters is the one a ``chain``
    head with that order and the same weight decay has. ``objective="mixture"`` fits the
    mixture's own likelihood -log (1/R) sum_r p_r(y | x) instead, which lets chains
    specialise but is not convex (see docs/models.md for how the two compare on CMC 2007).

    Args:
        input_dim: ``d``.
        n_labels: ``M``.
        n_orders: ``R``, the number of chains.
        orders: ``"auto"``: the dependence order, the frequency order, then random orders
            (seeded by ``seed``); or a list of R order names / permutations.
        beam_size: beam width of each chain's mode search.
        objective: ``"chains"`` or ``"mixture"``.
        seed: seed of the random orders.
    """

    name = "chain-ensemble"
    accepts_per_label = True

    def __init__(self, input_dim: int, n_labels: int, n_orders: int = 4, orders="auto",
                 beam_size: int = DEFAULT_BEAM_SIZE, objective: str = "chains", seed: int = 0):
        super().__init__(input_dim, n_labels, n_orders=n_orders, orders=orders, beam_size=beam_size,
                         objective=objective, seed=seed)
        if objective not in ("chains", "mixture"):
            raise ValueError(f"Expected `objective` 'chains' or 'mixture', got {objective!r}")
        if n_orders < 1:
            raise ValueError(f"Expected n_orders >= 1, got {n_orders}")
        if orders != "auto" and len(orders) != n_orders:
            raise ValueError(f"Expected {n_orders} orders, got {len(orders)}")
        self.linear = Linear(input_dim, n_orders * n_labels)
        nn.init.zeros_(self.linear.weight)
        self.interactions = nn.Parameter(torch.zeros(n_orders, n_labels, n_labels))
        self.register_buffer("orders", torch.arange(n_labels).repeat(n_orders, 1))

    def order_names(self) -> list:
        if self.options["orders"] != "auto":
            return list(self.options["orders"])
        return (["dependence", "frequency"] + ["random"] * self.options["n_orders"])[: self.options["n_orders"]]

    def forward(self, h: torch.Tensor) -> ChainEnsemble:
        r, m = self.options["n_orders"], self.n_labels
        if h.dim() == 3 and h.shape[1] == m:
            # per-label features [B, M, d]: chain r scores label j with its own row (as label_logits)
            weight = self.linear.weight.reshape(r, m, -1)
            unary = torch.einsum("bmd,rmd->brm", h, weight) + self.linear.bias.reshape(r, m)
        elif h.dim() == 2:
            unary = self.linear(h).reshape(h.shape[0], r, m)
        else:
            raise ValueError(
                f"Expected features [B, {self.input_dim}] or per-label [B, {m}, {self.input_dim}], got {list(h.shape)}"
            )
        return ChainEnsemble(unary, self.interactions, self.orders, beam_size=self.options["beam_size"])

    def nll(self, h, y, sample_weight=None):
        if self.options["objective"] == "mixture":
            return super().nll(h, y, sample_weight)
        per_row = -self.forward(h).chain_log_probs(y).sum(-1)
        if sample_weight is None:
            return per_row.mean()
        return (per_row * sample_weight).sum() / sample_weight.sum().clamp_min(1e-12)

    def prepare(self, labels: np.ndarray, label_names: list[str] | None = None) -> None:
        generator = torch.Generator().manual_seed(self.options["seed"])
        orders = []
        for kind in self.order_names():
            if kind == "random":
                orders.append(torch.randperm(self.n_labels, generator=generator))
            elif isinstance(kind, str):
                orders.append(torch.as_tensor(label_order(kind, labels)))
            else:
                orders.append(torch.as_tensor(kind, dtype=torch.long))
        with torch.no_grad():
            self.orders.copy_(torch.stack(orders))
            self.linear.bias.copy_(log_odds(labels).repeat(self.options["n_orders"]))
