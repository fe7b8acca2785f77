"""An ensemble of probabilistic classifier chains over several label orders.

A chain's quality depends on its label order (Read, Pfahringer, Holmes & Frank, 2011,
"Classifier chains for multi-label classification", Machine Learning 85). Averaging chains
over R orders (Dembczynski, Cheng & Huellermeier, ICML 2010, "EPCC") is, as a distribution,
the uniform mixture

    p(y | x) = (1 / R) sum_r p_r(y | x),

so ``log_prob`` is exact (a log-mean-exp) and so is ``sample`` (pick a chain, then sample it).
``marginals`` and ``count_marginals`` are linear in the distribution: the averages of the
chains' own, exact when those are (enumeration up to 12 labels) and Monte Carlo beyond.
``mode`` enumerates all 2^M sets up to 12 labels (exact); beyond, it takes the best of the
chains' beam-search modes under the mixture and improves it by single-label flips
(approximate).
"""

from __future__ import annotations

import math

import torch

from comorbid.distributions.base import METHODS, JointLabelDistribution
from comorbid.distributions.chain import DEFAULT_BEAM_SIZE, ChainBernoulli


class ChainEnsemble(JointLabelDistribution):
    """A batch of uniform mixtures of R classifier chains.

    Args:
        unary_logits: ``[B, R, M]`` each chain's input-dependent logits, in label order.
        interactions: ``[R, M, M]`` (shared over rows) or ``[B, R, M, M]`` each chain's
            label-on-label weights (see :class:`ChainBernoulli`).
        orders: ``[R, M]`` each chain's label order.
        beam_size: beam width of each chain's mode search.
        n_mc_samples: Monte Carlo samples when M > 12, shared out among the chains (each
            draws ``ceil(n_mc_samples / R)``), so the ensemble costs what one chain costs.
    """

    enumerate_max_labels = 12

    def __init__(
        self,
        unary_logits: torch.Tensor,
        interactions: torch.Tensor,
        orders: torch.Tensor,
        beam_size: int = DEFAULT_BEAM_SIZE,
        n_mc_samples: int = 2000,
        validate_args: bool | None = False,
    ):
        if unary_logits.dim() != 3:
            raise ValueError(f"Expected `unary_logits` of shape [B, R, M], got {tuple(unary_logits.shape)}")
        b, r, m = unary_logits.shape
        orders = torch.as_tensor(orders, dtype=torch.long)
        if orders.shape != (r, m):
            raise ValueError(f"Expected `orders` of shape [{r}, {m}], got {tuple(orders.shape)}")
        if interactions.shape == (r, m, m):
            per_chain = [interactions[i] for i in range(r)]
        elif interactions.shape == (b, r, m, m):
            per_chain = [interactions[:, i] for i in range(r)]
        else:
            raise ValueError(
                f"Expected `interactions` of shape [{r}, {m}, {m}] or [{b}, {r}, {m}, {m}], "
                f"got {tuple(interactions.shape)}"
            )
        self.unary_logits = unary_logits
        self.interactions = interactions
        self.orders = orders
        self.beam_size = beam_size
        self.n_mc_samples = n_mc_samples
        per_chain_samples = -(-n_mc_samples // r)
        self.chains = [
            ChainBernoulli(
                unary_logits[:, i], per_chain[i], orders[i], beam_size=beam_size, n_mc_samples=per_chain_samples
            )
            for i in range(r)
        ]
        super().__init__(b, m, validate_args)

    @property
    def n_chains(self) -> int:
        return len(self.chains)

    @property
    def exact(self) -> frozenset[str]:
        exact = {"log_prob", "sample"}
        for method in ("marginals", "count_marginals"):
            if all(method in chain.exact for chain in self.chains):
                exact.add(method)
        if self.n_labels <= self.enumerate_max_labels:
            exact.add("mode")
        return frozenset(exact) & METHODS

    def chain_log_probs(self, value: torch.Tensor) -> torch.Tensor:
        """Each chain's log p_r(y | x), ``[..., B, M] -> [..., B, R]``."""
        value = self._check_value(value)
        return torch.stack([chain.log_prob(value) for chain in self.chains], -1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self.chain_log_probs(value), -1) - math.log(self.n_chains)

    def sample(self, sample_shape=()) -> torch.Tensor:
        shape = torch.Size(sample_shape)
        n = max(shape.numel(), 1)
        with torch.no_grad():
            # Draw every chain, then keep one chain's draw per (sample, row), chosen uniformly.
            draws = torch.stack([chain.sample((n,)) for chain in self.chains])  # [R, n, B, M]
            which = torch.randint(self.n_chains, (n, self.batch_size), device=draws.device)
            picked = draws.gather(0, which[None, :, :, None].expand(1, -1, -1, self.n_labels))[0]
        return picked.reshape(*shape, *self.batch_shape, *self.event_shape)

    def marginals(self) -> torch.Tensor:
        return torch.stack([chain.marginals() for chain in self.chains]).mean(0)

    def count_marginals(self) -> torch.Tensor:
        return torch.stack([chain.count_marginals() for chain in self.chains]).mean(0)

    def mode(self, beam_size: int | None = None) -> torch.Tensor:
        if self.n_labels <= self.enumerate_max_labels:
            return self._enumerated_mode()
        with torch.no_grad():
            candidates = torch.stack([chain.mode(beam_size) for chain in self.chains], 1)  # [B, R, M]
        return self._search_mode(candidates)
