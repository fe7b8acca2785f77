"""An ensemble of probabilistic classifier chains over several label orders.

A chain's quality depends on its label order (Read, Pfahringer, Holmes & Frank, 2011,
"Classifier chains for multi-label classification", Machine Learning 85). Averaging chains
over R orders (Dembczynski, Cheng & Huellermeier, ICML 2010, "EPCC") is, as a distribution,
the uniform mixture

    p(y | x) = (1 / R) sum_r p_r(y | x),

a :class:`comorbid.distributions.ensemble.UniformMixture` of chains: ``log_prob`` and
``sample`` exact; ``marginals`` and ``count_marginals`` the chains' averages (exact by
enumeration up to 12 labels, Monte Carlo beyond); ``mode`` exact up to 12 labels, beyond the
best of the chains' beam-search modes improved by single-label flips (approximate).
"""

from __future__ import annotations

import torch
from torch.distributions import constraints

from comorbid.distributions.base import permutation
from comorbid.distributions.chain import DEFAULT_BEAM_SIZE, ChainBernoulli
from comorbid.distributions.ensemble import UniformMixture


class ChainEnsemble(UniformMixture):
    """A batch of uniform mixtures of R classifier chains.

    Args:
        unary_logits: ``[B, R, M]`` each chain's input-dependent logits, in label order.
        interactions: dense chains: ``[R, M, M]`` (shared over rows) or ``[B, R, M, M]`` each
            chain's label-on-label weights (see :class:`ChainBernoulli`); sparse chains
            (``parents`` given): ``[R, M, K]`` or ``[B, R, M, K]`` parent weights.
        orders: ``[R, M]`` each chain's label order.
        beam_size: beam width of each chain's mode search.
        n_mc_samples: Monte Carlo samples when M > 12, shared out among the chains (each
            draws ``ceil(n_mc_samples / R)``), so the ensemble costs what one chain costs.
        parents: ``[R, M, K]`` each chain's parents (chain positions, padded with M; see
            :class:`ChainBernoulli`), or None (default) for dense chains: O(R M K) memory and
            time per sample instead of O(R M^2), what thousands of labels need.
    """

    arg_constraints = {"unary_logits": constraints.real, "interactions": constraints.real, "orders": permutation}
    #: ``K`` is ``M`` for dense chains (``parents`` None).
    arg_shapes = {"unary_logits": "[B, R, M]", "parents": "[R, M, K]", "interactions": "[R, M, K] or [B, R, M, K]",
                  "orders": "[R, M]"}

    def __init__(
        self,
        unary_logits: torch.Tensor,
        interactions: torch.Tensor,
        orders: torch.Tensor,
        beam_size: int = DEFAULT_BEAM_SIZE,
        n_mc_samples: int = 2000,
        validate_args: bool | None = None,
        seed: int | None = None,
        parents: torch.Tensor | None = None,
    ):
        orders = torch.as_tensor(orders, dtype=torch.long)
        dense = None if parents is not None else {"K": unary_logits.shape[-1]}
        r = self._check_shapes(dense, unary_logits=unary_logits, parents=parents, interactions=interactions,
                               orders=orders)["R"]
        self.parents = parents
        self.unary_logits = unary_logits
        self.interactions = interactions
        self.orders = orders
        self.beam_size = beam_size
        self.n_mc_samples = n_mc_samples
        validate = self._validate_args if validate_args is None else bool(validate_args)
        if validate:
            self._validate_parameters()  # once, before the chains below index by the orders
            earlier = ChainBernoulli.arg_constraints["parents"]
            for i in range(r if parents is not None else 0):
                if not bool(earlier.check(parents[i])):
                    raise ValueError(f"Expected `parents` of ChainEnsemble to be {earlier.description} (chain {i}), "
                                     f"got {earlier.explain(parents[i])}")
        shared = interactions.dim() == 3
        per_chain_samples = -(-n_mc_samples // r)
        chains = [
            ChainBernoulli(unary_logits[:, i], interactions[i] if shared else interactions[:, i], orders[i],
                           beam_size=beam_size, n_mc_samples=per_chain_samples, validate_args=False,
                           parents=None if parents is None else parents[i])
            for i in range(r)
        ]
        super().__init__(chains, validate_args=False, seed=seed)
        self._validate_args = validate

    @property
    def chains(self) -> list[ChainBernoulli]:
        return self.members

    @property
    def n_chains(self) -> int:
        return self.n_members

    def tempered(self, temperature: float) -> "ChainEnsemble":
        """Every chain tempered (see :meth:`ChainBernoulli.tempered`)."""
        tempered = ChainEnsemble(self.unary_logits / temperature, self.interactions / temperature, self.orders,
                                 self.beam_size, self.n_mc_samples, self._validate_args, seed=self.seed,
                                 parents=self.parents)
        tempered.enumerate_max_labels = self.enumerate_max_labels
        return tempered

    def chain_log_probs(self, value: torch.Tensor) -> torch.Tensor:
        """Each chain's log p_r(y | x), ``[..., B, M] -> [..., B, R]``."""
        return self.member_log_probs(value)
