"""The classifier-chain head (Dembczynski et al., ICML 2010), trained by teacher forcing."""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse
from torch import nn

from comorbid.distributions.chain import DEFAULT_BEAM_SIZE, ChainBernoulli
from comorbid.distributions.chain_ensemble import ChainEnsemble
from comorbid.heads.base import Head, Linear, label_counts, label_logits, log_odds
from comorbid.heads.descriptions import DEFAULT_STRENGTH, DescriptionBlend, split_scores

ORDERS = ("frequency", "rare-first", "dependence", "index")

#: Up to this many labels a chain head is dense (``parents="auto"``) and the dependence order
#: uses the dense mutual information: CMC 2007's 45 labels keep today's model exactly.
DENSE_MAX_LABELS = 64
#: Parents per label of a sparse chain head (``parents="auto"`` beyond ``DENSE_MAX_LABELS``).
DEFAULT_PARENTS = 16
#: ``mc_samples="auto"``: Monte Carlo chains per row for the marginals: 2,000 (the
#: distribution's default) up to :data:`DENSE_MAX_LABELS` labels, so CMC 2007 is unchanged;
#: beyond, as many as keep ``samples x labels`` at :data:`MC_LABEL_SAMPLES` (at least
#: :data:`MIN_MC_SAMPLES`): a row then costs about as much at 5,000 codes as at 1,000.
#: The marginals are Rao-Blackwellised (averages of each factor's probability given the sampled
#: prefix), so the error is that of the interactions' effect only: small where, as for most of
#: thousands of codes, the code's own evidence dominates.
MC_LABEL_SAMPLES = 500_000
MIN_MC_SAMPLES = 64


def resolve_mc_samples(mc_samples, n_labels: int) -> int:
    """The Monte Carlo sample count of a chain head's ``mc_samples`` option."""
    if mc_samples == "auto":
        if n_labels <= DENSE_MAX_LABELS:
            return 2000
        return max(MIN_MC_SAMPLES, min(2000, MC_LABEL_SAMPLES // max(n_labels, 1)))
    if isinstance(mc_samples, bool) or not isinstance(mc_samples, int) or mc_samples < 1:
        raise ValueError(f"Expected `mc_samples` 'auto' or an integer >= 1, got {mc_samples!r}")
    return mc_samples


def cooccurrence(labels) -> sparse.csr_matrix:
    """``Y^T Y`` ``[M, M]`` (scipy CSR, float64): how often two labels are on together; the
    diagonal holds each label's count. Only co-occurring pairs are stored."""
    y = sparse.csr_matrix(labels, dtype=np.float64)
    return (y.T @ y).tocsr()


def frequency_order(labels: np.ndarray) -> np.ndarray:
    """Labels from the most to the least frequent (ties by index).

    Frequent labels first: the rare labels, whose own evidence is weakest, get to condition on
    the labels that are already well determined.
    """
    counts = label_counts(labels)
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


def sparse_mutual_information(labels, smoothing: float = 0.5) -> sparse.csr_matrix:
    """:func:`mutual_information` at the pairs of labels that are on together at least once,
    ``[M, M]`` scipy CSR (diagonal and never co-occurring pairs not stored).

    The 2x2 table of a pair follows from its co-occurrence count and the two labels' counts,
    so this costs O(nnz(Y^T Y)) time and memory, never O(M^2): at N = 50,000 notes of ~10 codes
    ``Y^T Y`` has at most ~100 entries per note."""
    both = cooccurrence(labels).tocoo()
    n = labels.shape[0]
    ones = both.diagonal()
    off = both.row != both.col
    row, col, n11 = both.row[off], both.col[off], both.data[off]
    total = n + 4 * smoothing
    p_row = (ones[row] + 2 * smoothing) / total
    p_col = (ones[col] + 2 * smoothing) / total
    cells = (
        (n11, p_row, p_col),
        (ones[row] - n11, p_row, 1.0 - p_col),
        (ones[col] - n11, 1.0 - p_row, p_col),
        (n - ones[row] - ones[col] + n11, 1.0 - p_row, 1.0 - p_col),
    )
    mi = np.zeros(len(n11))
    for count, marginal_row, marginal_col in cells:
        joint = (count + smoothing) / total
        with np.errstate(divide="ignore", invalid="ignore"):
            term = joint * np.log(joint / (marginal_row * marginal_col))
        mi += np.where(joint > 0, term, 0.0)  # 0 log 0 = 0
    return sparse.csr_matrix((np.maximum(mi, 0.0), (row, col)), shape=both.shape)


def choose_parents(labels, order: np.ndarray, n_parents: int, smoothing: float = 0.5) -> np.ndarray:
    """Parents of a sparse chain ``[M, K]`` (int64 chain positions, padded with M): for the
    label at each position, the K earlier labels of largest mutual information among those it
    is on together with at least once (ties: the earlier position first).

    Restricting each factor to a few parents picked by pairwise mutual information is the
    Bayesian chain classifier of Zaragoza et al. (IJCAI 2011), with more than one parent per
    label; computed from the sparse ``Y^T Y``, O(nnz log nnz), no Python loop over labels.
    """
    m = labels.shape[1]
    parents = np.full((m, n_parents), m, dtype=np.int64)
    if m == 0 or n_parents == 0:
        return parents
    position = np.empty(m, dtype=np.int64)
    position[np.asarray(order)] = np.arange(m)
    mi = sparse_mutual_information(labels, smoothing).tocoo()
    child, parent, score = position[mi.row], position[mi.col], mi.data
    earlier = parent < child
    child, parent, score = child[earlier], parent[earlier], score[earlier]
    ranked = np.lexsort((parent, -score, child))  # by child, then MI down, then position
    child, parent = child[ranked], parent[ranked]
    first = np.searchsorted(child, child, side="left")  # index of each child's first entry
    rank = np.arange(len(child)) - first
    keep = rank < n_parents
    parents[child[keep], rank[keep]] = parent[keep]
    return parents


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
    if m > DENSE_MAX_LABELS:
        return _sparse_dependence_order(labels)
    if sparse.issparse(labels):
        labels = labels.toarray()
    mi = mutual_information(labels)
    # scipy reads 0 as "no edge": turn the maximum-MI tree into a minimum tree of positive costs.
    cost = (mi.max() + 1.0) - mi
    np.fill_diagonal(cost, 0.0)
    tree = minimum_spanning_tree(cost)
    root = int(frequency_order(labels)[0])
    order, _ = breadth_first_order(tree, root, directed=False)
    return order.astype(np.int64)


def _sparse_dependence_order(labels) -> np.ndarray:
    """:func:`dependence_order` from :func:`sparse_mutual_information`: the maximum spanning
    forest over co-occurring pairs (labels never on together are not linked). A virtual root
    joins each tree at its most frequent label (edges dearer than any real one, cheaper for
    more frequent labels), so one breadth-first pass from the root orders every label after
    its tree parent; the most frequent label comes first."""
    from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

    m = labels.shape[1]
    by_frequency = frequency_order(labels)
    node = np.empty(m, dtype=np.int64)  # node of label l: 1 + its frequency rank (0 is the root)
    node[by_frequency] = np.arange(1, m + 1)
    mi = sparse.triu(sparse_mutual_information(labels), k=1).tocoo()
    ceiling = (mi.data.max() if mi.nnz else 0.0) + 1.0
    # scipy reads 0 as "no edge": turn the maximum-MI forest into a minimum one of positive costs
    rows = np.concatenate([node[mi.row], np.zeros(m, dtype=np.int64)])
    cols = np.concatenate([node[mi.col], np.arange(1, m + 1)])
    costs = np.concatenate([ceiling - mi.data, ceiling + 1.0 + np.arange(m)])
    tree = minimum_spanning_tree(sparse.csr_matrix((costs, (rows, cols)), shape=(m + 1, m + 1)))
    nodes, _ = breadth_first_order(tree, 0, directed=False)
    return by_frequency[nodes[1:] - 1].astype(np.int64)


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


def resolve_parents(parents, n_labels: int) -> int | None:
    """The number of parents per label of a chain head's ``parents`` option, None for dense.

    ``"auto"``: dense up to :data:`DENSE_MAX_LABELS` labels, else :data:`DEFAULT_PARENTS`;
    ``"dense"`` or None: dense; an integer K >= 1: at most K parents, dense when K >= M - 1
    (a dense chain is the sparse chain of every earlier position, cheaper to compute)."""
    if parents == "auto":
        parents = "dense" if n_labels <= DENSE_MAX_LABELS else DEFAULT_PARENTS
    if parents is None or parents == "dense":
        return None
    if isinstance(parents, bool) or not isinstance(parents, int) or parents < 1:
        raise ValueError(f"Expected `parents` 'auto', 'dense', None or an integer >= 1, got {parents!r}")
    return None if parents >= n_labels - 1 else parents


class ChainHead(Head):
    """u = W h + b; label-on-label weights along a label order: a dense [M, M] matrix, or at
    most K parents per label (a sparse chain, for thousands of labels).

    Args:
        input_dim: ``d``.
        n_labels: ``M``.
        order: ``"dependence"`` (default: the Chow-Liu tree order, see
            :func:`dependence_order`), ``"frequency"`` (most frequent label first),
            ``"rare-first"`` (least frequent first, see :func:`label_order`), ``"index"``
            or an explicit permutation. On CMC 2007 the dependence order beat the frequency
            order on every fold and decoder (docs/models.md).
        beam_size: beam width of the mode search.
        parents: ``"auto"`` (default: dense up to 64 labels, so CMC 2007's 45 stay dense; else
            16 parents), ``"dense"`` or an integer K (see :func:`resolve_parents`). A sparse
            head conditions each label on the K earlier labels of largest mutual information
            (:func:`choose_parents`, at :meth:`prepare`): ``M K`` weights and a ``[M, K]``
            index buffer ``parents`` (chain positions, padded with M) instead of ``M^2``
            weights, and O(M K) rather than O(M^2) per sample.
        mc_samples: chains sampled per row for Monte Carlo marginals beyond 12 labels:
            ``"auto"`` (:func:`resolve_mc_samples`: 2,000 up to 64 labels, 227 at 2,194, 100
            at 5,000, 64 from 7,813 on) or an integer.
        descriptions: the last ``n_labels`` features are description match scores, blended
            into each code's unary logit (:mod:`comorbid.heads.descriptions`); set by the model.
        description_strength: ``k`` of that blend.
    """

    name = "chain"
    accepts_per_label = True
    linear_logits = True
    accepts_descriptions = True

    def __init__(self, input_dim: int, n_labels: int, order="dependence", beam_size: int = DEFAULT_BEAM_SIZE,
                 parents="auto", mc_samples="auto", descriptions: bool = False,
                 description_strength: float = DEFAULT_STRENGTH):
        super().__init__(input_dim, n_labels, order=order, beam_size=beam_size, parents=parents,
                         mc_samples=mc_samples, **({"descriptions": True, "description_strength": description_strength}
                                                   if descriptions else {}))
        self.description_blend = DescriptionBlend(n_labels, description_strength) if descriptions else None
        if descriptions:
            input_dim -= n_labels
        if isinstance(order, str) and order not in ORDERS:
            raise ValueError(f"Expected `order` in {ORDERS} or a permutation, got {order!r}")
        self.n_parents = resolve_parents(parents, n_labels)
        self.n_mc_samples = resolve_mc_samples(mc_samples, n_labels)
        self.linear = Linear(input_dim, n_labels)
        nn.init.zeros_(self.linear.weight)
        if self.n_parents is None:
            self.interactions = nn.Parameter(torch.zeros(n_labels, n_labels))
        else:
            self.parent_weights = nn.Parameter(torch.zeros(n_labels, self.n_parents))
            # no parents until prepare(): every entry is the padding M
            self.register_buffer("parents", torch.full((n_labels, self.n_parents), n_labels, dtype=torch.long))
        initial = torch.arange(n_labels) if isinstance(order, str) else torch.as_tensor(order, dtype=torch.long)
        self.register_buffer("order", initial.clone())

    def forward(self, h: torch.Tensor) -> ChainBernoulli:
        if self.description_blend is None:
            unary = label_logits(self.linear, h)
        else:
            features, scores = split_scores(h, self.n_labels)
            unary = self.description_blend(label_logits(self.linear, features), scores)
        if self.n_parents is None:
            return ChainBernoulli(unary, self.interactions, self.order, beam_size=self.options["beam_size"],
                                  n_mc_samples=self.n_mc_samples)
        return ChainBernoulli(unary, self.parent_weights, self.order, beam_size=self.options["beam_size"],
                              parents=self.parents, n_mc_samples=self.n_mc_samples)

    def prepare(self, labels, label_names: list[str] | None = None) -> None:
        """Label order, parents (sparse head) and initial biases from the training labels
        ``[N, M]`` (a dense 0/1 array or a scipy sparse matrix)."""
        if isinstance(self.options["order"], str):
            self.order.copy_(torch.as_tensor(label_order(self.options["order"], labels)))
        if self.description_blend is not None:
            self.description_blend.prepare(labels)
        with torch.no_grad():
            self.linear.bias.copy_(log_odds(labels))
            if self.n_parents is not None:
                self.parents.copy_(torch.as_tensor(choose_parents(labels, self.order.cpu().numpy(), self.n_parents)))


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
        parents: as :class:`ChainHead`'s: ``"auto"`` (dense up to 64 labels, else 16 parents
            per label in each chain, chosen for that chain's order), ``"dense"`` or K.
        mc_samples: as :class:`ChainHead`'s (shared out among the chains).
    """

    name = "chain-ensemble"
    accepts_per_label = True

    def __init__(self, input_dim: int, n_labels: int, n_orders: int = 4, orders="auto",
                 beam_size: int = DEFAULT_BEAM_SIZE, objective: str = "chains", seed: int = 0,
                 parents="auto", mc_samples="auto"):
        super().__init__(input_dim, n_labels, n_orders=n_orders, orders=orders, beam_size=beam_size,
                         objective=objective, seed=seed, parents=parents, mc_samples=mc_samples)
        if objective not in ("chains", "mixture"):
            raise ValueError(f"Expected `objective` 'chains' or 'mixture', got {objective!r}")
        if n_orders < 1:
            raise ValueError(f"Expected n_orders >= 1, got {n_orders}")
        if orders != "auto" and len(orders) != n_orders:
            raise ValueError(f"Expected {n_orders} orders, got {len(orders)}")
        self.n_parents = resolve_parents(parents, n_labels)
        self.n_mc_samples = resolve_mc_samples(mc_samples, n_labels)
        self.linear = Linear(input_dim, n_orders * n_labels)
        nn.init.zeros_(self.linear.weight)
        if self.n_parents is None:
            self.interactions = nn.Parameter(torch.zeros(n_orders, n_labels, n_labels))
        else:  # sparse chains: K weights and K parent positions per label and chain
            self.parent_weights = nn.Parameter(torch.zeros(n_orders, n_labels, self.n_parents))
            self.register_buffer("parents", torch.full((n_orders, n_labels, self.n_parents), n_labels, dtype=torch.long))
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
        if self.n_parents is None:
            return ChainEnsemble(unary, self.interactions, self.orders, beam_size=self.options["beam_size"],
                                 n_mc_samples=self.n_mc_samples)
        return ChainEnsemble(unary, self.parent_weights, self.orders, beam_size=self.options["beam_size"],
                             n_mc_samples=self.n_mc_samples, parents=self.parents)

    def row_losses(self, h, y):
        """``objective="chains"``: sum_r -log p_r(y | x), each chain conditioned as the model
        is (given y != 0 when ``nonempty``, as a ``chain`` head with that order would be
        trained); ``"mixture"``: the mixture's own ``-log p(y | x)``."""
        if self.options["objective"] == "mixture":
            return super().row_losses(h, y)
        return -sum(self.conditioned(chain).log_prob(y) for chain in self(h).chains)

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
            if self.n_parents is not None:
                for r, order in enumerate(self.orders.cpu().numpy()):
                    self.parents[r].copy_(torch.as_tensor(choose_parents(labels, order, self.n_parents)))
