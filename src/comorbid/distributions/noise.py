"""Seeded uniform noise for sampling: every random draw of a distribution comes from here.

Why. Predictions must be a pure function of the model, the data and the flags: the same row
gets the same answer whatever batch it is in and whatever rows precede it, and prediction never
touches the global ``torch`` generator. Monte Carlo estimates therefore use *common random
numbers* (Glasserman, 2004, "Monte Carlo Methods in Financial Engineering", Springer, Section
4.2): sample ``s`` of every row is driven by the same uniforms ``U[s, :]``, e.g.
``y_t = 1[U[s, t] < p_t]`` or an inverse-CDF draw of a category. Each row's estimate is still
unbiased (its draws are independent across ``s``); rows are merely correlated with each other,
which no per-row estimate sees.

How. The uniforms of sample ``s`` for one purpose (``tag``) are a fixed function of
``(seed, stream, tag, s)``: samples are grouped in blocks of :data:`NOISE_BLOCK`, and each block
comes from its own ``torch.Generator`` seeded by a hash of ``(seed, stream, tag, block)``. Any
range of samples can thus be generated on its own (chunked Monte Carlo gives the same draws as
one big run) and nothing depends on the order of calls.

``rows=1`` gives common noise ``[n, 1, width]`` that broadcasts over the batch (what
predictions use); ``rows=B`` gives independent noise per row (what the public ``sample()`` uses,
so that draws for different rows are independent, as a data generator expects).
"""

from __future__ import annotations

import functools
import hashlib

import torch

#: Samples per noise block: the unit of generation (and of Monte Carlo accumulation).
NOISE_BLOCK = 16
#: Seed of every distribution unless one is given (models pass their training seed).
DEFAULT_SEED = 0


def _block_seed(seed: int, stream: str, tag: str, block: int) -> int:
    key = f"{seed}/{stream}/{tag}/{block}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") & (2**63 - 1)


def _generate_block(seed: int, stream: str, tag: str, block: int, rows: int, width: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(_block_seed(seed, stream, tag, block))
    return torch.rand(NOISE_BLOCK, rows, width, generator=generator, dtype=torch.float64)


#: Blocks of at most this many values are memoised (64 KiB each, 1,024 blocks: 64 MiB at most).
CACHED_BLOCK_VALUES = 8192 // NOISE_BLOCK
#: A block is a pure function of its arguments, and predictions draw the same blocks of common
#: noise for every batch (2,000 Monte Carlo samples are 125 blocks): a server coding one note at
#: a time would otherwise spend a tenth of its model time regenerating them. Callers get copies.
_cached_block = functools.lru_cache(maxsize=1024)(_generate_block)


def _block(seed: int, stream: str, tag: str, block: int, rows: int, width: int) -> torch.Tensor:
    if rows * width <= CACHED_BLOCK_VALUES:
        return _cached_block(seed, stream, tag, block, rows, width)
    return _generate_block(seed, stream, tag, block, rows, width)


class Noise:
    """Uniform noise for samples ``start .. start + count - 1`` of one stream.

    Args:
        seed: the distribution's seed.
        stream: what the draws are for (``"sample"``, ``"mc"``, ``"mbr-0"``, ...).
        start: index of the first sample.
        count: number of samples.
        rows: 1 (common to all rows of the batch) or the batch size (independent rows).
    """

    def __init__(self, seed: int, stream: str, start: int, count: int, rows: int = 1, device=None):
        if count < 0 or start < 0:
            raise ValueError(f"Expected start >= 0 and count >= 0, got {start} and {count}")
        self.seed, self.stream, self.start, self.count, self.rows = int(seed), stream, start, count, rows
        self.device = device

    @property
    def n(self) -> int:
        return self.count

    def uniform(self, tag: str, width: int) -> torch.Tensor:
        """float64 uniforms in [0, 1), ``[count, rows, width]``, a fixed function of each sample's index."""
        parts = []
        first, last = self.start // NOISE_BLOCK, (self.start + self.count - 1) // NOISE_BLOCK
        for block in range(first, last + 1) if self.count else ():
            values = _block(self.seed, self.stream, tag, block, self.rows, width)
            lo = max(self.start - block * NOISE_BLOCK, 0)
            hi = min(self.start + self.count - block * NOISE_BLOCK, NOISE_BLOCK)
            parts.append(values[lo:hi])
        # torch.cat copies even one part: a caller may write into the result, never into a cached block
        out = torch.cat(parts) if parts else torch.zeros(0, self.rows, width, dtype=torch.float64)
        return out.to(self.device) if self.device is not None else out

    def child(self, tag: str) -> "Noise":
        """Independent noise for the same samples (a sub-stream)."""
        return Noise(self.seed, f"{self.stream}/{tag}", self.start, self.count, self.rows, self.device)

    def part(self, offset: int, count: int) -> "Noise":
        """Samples ``offset .. offset + count - 1`` of this range (the same draws)."""
        return Noise(self.seed, self.stream, self.start + offset, count, self.rows, self.device)


class SelectedNoise(Noise):
    """The samples ``indices`` (positions within ``noise``'s range) of ``noise``: the same
    uniforms for each of them, so that a draw that is a function of its own sample's noise
    (a chain's ancestral draw) is the same whether drawn alone or with the others."""

    def __init__(self, noise: Noise, indices: torch.Tensor):
        super().__init__(noise.seed, noise.stream, noise.start, len(indices), noise.rows, noise.device)
        self.base, self.indices = noise, indices

    def uniform(self, tag: str, width: int) -> torch.Tensor:
        return self.base.uniform(tag, width)[self.indices.to(self.base.device or "cpu")]

    def child(self, tag: str) -> "SelectedNoise":
        return SelectedNoise(self.base.child(tag), self.indices)

    def part(self, offset: int, count: int) -> "SelectedNoise":
        return SelectedNoise(self.base, self.indices[offset : offset + count])


def categorical(probs: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draws of categories: ``probs [B, K]`` (rows need not be normalised),
    ``uniform [n, R, 1]`` with ``R`` 1 or B -> indices ``[n, B]``. A category of probability 0
    is never drawn."""
    cdf = probs.double().cumsum(-1)  # [B, K]
    total = cdf[:, -1:]
    n, b = uniform.shape[0], probs.shape[0]
    targets = (uniform[..., 0].expand(n, b) * total.T).T.contiguous()  # [B, n]
    index = torch.searchsorted(cdf.contiguous(), targets, right=True).clamp_max(probs.shape[-1] - 1)
    return index.T
