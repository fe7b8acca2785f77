"""Label powerset: a softmax over the label sets seen in training.

Label powerset (Boutell, Luo, Shen & Brown, 2004, Pattern Recognition 37; Tsoumakas & Katakis,
2007, "Multi-label classification: an overview", IJDWM 3) turns multi-label learning into one
multi-class problem whose classes are the K distinct label sets of the training data:

    p(y = S_k | x) = softmax(z(x))_k,    p(y | x) = 0 for every set not among S_1..S_K.

**Sets never seen** get probability exactly 0: ``log_prob`` is ``-inf`` for them, ``sample`` and
``mode`` never return them. (The hamming and F-measure decoders read marginals and count
marginals, so their predictions may still be unseen sets.) This is the model as published; a
smoothed alternative is to mix it with an independent model, which is then a different model.

Everything is exact, in O(K M) per row: marginals, count marginals and the mode are sums and
an argmax over the K sets.
"""

from __future__ import annotations

import torch
from torch.distributions import constraints

from comorbid.distributions.base import METHODS, JointLabelDistribution, count_marginals_from_sets
from comorbid.distributions.noise import Noise, categorical

#: Bits packed per int64 word when looking label sets up.
_BITS_PER_WORD = 62


def pack_label_sets(sets: torch.Tensor) -> torch.Tensor:
    """0/1 label sets ``[..., M]`` as integer keys ``[..., W]`` (W = ceil(M / 62)), equal
    exactly when the sets are equal."""
    m = sets.shape[-1]
    words = max(1, -(-m // _BITS_PER_WORD))
    padded = torch.nn.functional.pad(sets.to(torch.int64), (0, words * _BITS_PER_WORD - m))
    weights = torch.ones(_BITS_PER_WORD, dtype=torch.int64, device=sets.device) << torch.arange(
        _BITS_PER_WORD, device=sets.device
    )
    return (padded.reshape(*sets.shape[:-1], words, _BITS_PER_WORD) * weights).sum(-1)


class _DistinctLabelSets(constraints.Constraint):
    """``[K, M]`` distinct rows of 0/1."""

    event_dim = 2
    description = "distinct label sets of 0/1"

    @staticmethod
    def _problem(sets: torch.Tensor) -> str | None:
        bad = (sets != 0) & (sets != 1)
        if bad.any():
            where = bad.nonzero()[0].tolist()
            return f"{sets[tuple(where)].item()} at {where}"
        keys = pack_label_sets(sets)
        unique, inverse = torch.unique(keys, dim=0, return_inverse=True)
        if unique.shape[0] != keys.shape[0]:
            first = torch.full((unique.shape[0],), keys.shape[0], dtype=torch.long)
            first = first.scatter_reduce(0, inverse, torch.arange(keys.shape[0]), "amin")
            repeat = int((first[inverse] != torch.arange(keys.shape[0])).nonzero()[0, 0])
            return f"row {repeat} repeating row {int(first[inverse[repeat]])}"
        return None

    def check(self, value: torch.Tensor) -> torch.Tensor:
        return torch.tensor(self._problem(value) is None)

    def explain(self, value: torch.Tensor) -> str:
        return self._problem(value) or "valid sets"


class LabelPowerset(JointLabelDistribution):
    """A batch of label-powerset distributions over the same K label sets.

    Args:
        logits: ``[B, K]`` unnormalised log probabilities of the sets.
        label_sets: ``[K, M]`` the distinct 0/1 label sets (rows must be distinct).
    """

    arg_constraints = {"logits": constraints.real, "label_sets": _DistinctLabelSets()}
    arg_shapes = {"logits": "[B, K]", "label_sets": "[K, M]"}

    def __init__(self, logits: torch.Tensor, label_sets: torch.Tensor, validate_args: bool | None = None):
        size = self._check_shapes(logits=logits, label_sets=label_sets)
        if size["K"] == 0:
            raise ValueError("Expected at least one label set, got none")
        self.logits = logits
        self.label_sets = label_sets.to(logits.dtype)
        super().__init__(size["B"], size["M"], validate_args)
        self._keys = pack_label_sets(self.label_sets)  # [K, W]

    def tempered(self, temperature: float) -> "LabelPowerset":
        """The set scores divided by ``temperature``: p(y)^(1/T), renormalised."""
        return LabelPowerset(self.logits / temperature, self.label_sets, self._validate_args).with_seed(self.seed)

    @property
    def exact(self) -> frozenset[str]:
        return METHODS

    def log_prob_nonempty(self) -> torch.Tensor:
        """log of the probability of the non-empty sets among the K, without cancellation."""
        nonempty = self.label_sets.sum(-1) > 0
        if not nonempty.any():
            return torch.full(self.logits.shape[:1], -torch.inf, dtype=self.logits.dtype)
        return torch.logsumexp(self.logits[:, nonempty], -1) - torch.logsumexp(self.logits, -1)

    @property
    def set_probs(self) -> torch.Tensor:
        """Probabilities of the K sets, ``[B, K]``."""
        return torch.softmax(self.logits, -1)

    def set_index(self, value: torch.Tensor) -> torch.Tensor:
        """Index among the K sets of each label set in ``value [..., M]``, ``-1`` if unseen."""
        keys = pack_label_sets(value)  # [..., W]
        if keys.shape[-1] == 1:
            # One word: a sorted search, O(log K) per set and no [.., K] intermediate.
            order = self._keys[:, 0].argsort()
            sorted_keys = self._keys[order, 0]
            position = torch.searchsorted(sorted_keys, keys[..., 0].contiguous()).clamp_max(len(order) - 1)
            found = sorted_keys[position] == keys[..., 0]
            return torch.where(found, order[position], torch.full_like(position, -1))
        match = (keys[..., None, :] == self._keys).all(-1)  # [..., K]
        return torch.where(match.any(-1), match.to(torch.int64).argmax(-1), torch.full(match.shape[:-1], -1))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        value = self._as_label_sets(value)
        index = self.set_index(value)  # [..., B]
        log_probs = torch.log_softmax(self.logits, -1)  # [B, K]
        index, log_probs = torch.broadcast_tensors(index[..., None], log_probs)
        picked = log_probs.gather(-1, index.clamp_min(0)[..., :1]).squeeze(-1)
        return torch.where(index[..., 0] >= 0, picked, torch.full_like(picked, -torch.inf))

    def sample_with(self, noise: Noise) -> torch.Tensor:
        with torch.no_grad():
            return self.label_sets[categorical(self.set_probs, noise.uniform("set", 1))]  # [n, B, M]

    def marginals(self) -> torch.Tensor:
        return self.set_probs @ self.label_sets

    def mode(self, beam_size: int | None = None) -> torch.Tensor:
        return self.label_sets[self.logits.argmax(-1)]

    def count_marginals(self) -> torch.Tensor:
        return count_marginals_from_sets(self.label_sets, self.set_probs.detach())

    def entropy(self) -> torch.Tensor:
        return torch.distributions.Categorical(logits=self.logits).entropy()
