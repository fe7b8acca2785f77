"""Blend each code's learned logit with a zero-shot logit from its description, by its training count.

With code descriptions on (``descriptions=True`` on the independent or chain head; ``"auto"``,
the default, leaves it off: :data:`BY_DEFAULT`, :func:`comorbid.model.resolve_descriptions`), the encoder appends to its features the match
scores ``s [B, M]`` of each note with each code's description
(:class:`comorbid.encoders.descriptions.DescriptionMatcher`). The head then scores code ``j`` as

    u_j = (1 - lambda_j) (w_j . x + b_j) + lambda_j (a s_j + c),   lambda_j = k / (k + n_j)

with ``n_j`` the code's training notes and ``k`` the ``description_strength``: a code seen in
no note (``n_j = 0``) is scored by its description alone; with the default ``k = 0.1`` one
seen once is scored 91 % by its own weights and a code seen in 10 notes 99 % (with ``k = 1``,
half and half for a code seen once: on CodiEsp that found more rare codes but cost precision
at the top of the ranking, docs/training.md). The two numbers ``a`` and ``c`` (one pair for
all codes: a zero-shot model that carries over to codes never seen) are trained with the rest,
by the same likelihood, on the codes seen at least once; codes without a training note add
nothing to it (their labels are all 0, which would only teach ``c`` that such codes never
occur). This is shrinkage of each code's classifier towards a model shared across codes, the
empirical-Bayes idea behind Rios & Kavuluru's few- and zero-shot ICD coding (EMNLP 2018).
"""

from __future__ import annotations

import torch
from torch import nn

from comorbid.heads.base import label_counts

#: Whether ``descriptions="auto"`` (the default) turns descriptions on where they apply.
BY_DEFAULT = False
#: ``k`` of lambda_j = k / (k + n_j): how many training notes weigh as much as the description.
DEFAULT_STRENGTH = 1.0


class DescriptionBlend(nn.Module):
    """``u [B, M], s [B, M] -> (1 - lambda) u + lambda (a s + c)`` (see the module docstring).

    Buffers: ``counts [M]`` (training notes per code, set by :meth:`prepare`). Parameters: the
    scalars ``scale`` (``a``) and ``offset`` (``c``).
    """

    def __init__(self, n_labels: int, strength: float = DEFAULT_STRENGTH):
        super().__init__()
        if not float(strength) > 0:
            raise ValueError(f"Expected `description_strength` > 0, got {strength!r}")
        self.strength = float(strength)
        self.register_buffer("counts", torch.zeros(n_labels))
        self.scale = nn.Parameter(torch.tensor(5.0))
        self.offset = nn.Parameter(torch.tensor(-5.0))

    def prepare(self, labels) -> None:
        """Training counts from the labels ``[N, M]``; ``c`` starts at the log-odds of the mean
        code frequency."""
        counts = torch.as_tensor(label_counts(labels), dtype=self.counts.dtype)
        with torch.no_grad():
            self.counts.copy_(counts)
            rate = (counts.mean() + 0.5) / (labels.shape[0] + 1.0)
            self.offset.fill_(float(torch.log(rate / (1 - rate))))

    def weights(self) -> torch.Tensor:
        """lambda ``[M]``."""
        return self.strength / (self.strength + self.counts)

    def forward(self, unary: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        zero_shot = self.scale * scores + self.offset
        if self.training:
            # codes without a training note: no gradient (their all-0 labels would teach the
            # shared zero-shot model that such a code never occurs)
            zero_shot = torch.where(self.counts > 0, zero_shot, zero_shot.detach())
        blend = self.weights()
        return (1 - blend) * unary + blend * zero_shot


def split_scores(h: torch.Tensor, n_scores: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``h [B, d + n_scores]`` -> the bag of words ``[B, d]`` (sparse when ``h`` is)
    and the last ``n_scores`` columns, the description match scores, dense ``[B, n_scores]``."""
    if h.dim() != 2 or h.shape[1] < n_scores:
        raise ValueError(f"Expected features [B, d + {n_scores}] with description scores, got {list(h.shape)}")
    width = h.shape[1] - n_scores
    if h.layout == torch.strided:
        return h[:, :width], h[:, width:]
    coo = h.to_sparse_coo().coalesce()
    indices, values = coo.indices(), coo.values()
    words = indices[1] < width
    features = torch.sparse_coo_tensor(indices[:, words], values[words], (h.shape[0], width), is_coalesced=True,
                                       check_invariants=False)
    scores = torch.zeros(h.shape[0], n_scores, dtype=values.dtype, device=values.device)
    scores[indices[0, ~words], indices[1, ~words] - width] = values[~words]
    return features, scores
