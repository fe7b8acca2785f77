"""The common base of every joint label model: a distribution over label sets y in {0,1}^M.

A model is a distribution; a prediction is a decision taken from it (see ``comorbid.decoders``).
Every subclass provides ``log_prob``, ``sample``, ``marginals``, ``mode`` and
``count_marginals`` and says, in :attr:`JointLabelDistribution.exact`, which of them are exact
for this instance (a chain's marginals are exact by enumeration for few labels and Monte Carlo
beyond, for example).
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import torch
from torch.distributions import Distribution, constraints

from comorbid.distributions.noise import DEFAULT_SEED, NOISE_BLOCK, Noise, categorical

#: Enumerating 2^M label sets beyond this many labels is refused (2^20 sets x batch).
MAX_ENUMERATE_LABELS = 20
#: ``sample_nonempty`` by rejection redraws at most this many times; slots still empty then get
#: the most probable non-empty set (only when p(0) is very close to 1).
MAX_REJECTION_ROUNDS = 100
#: Methods a distribution may provide exactly; ``exact`` is a subset of these.
METHODS = frozenset({"log_prob", "sample", "marginals", "mode", "count_marginals"})
#: Bytes the working tensors of one chunk of Monte Carlo samples may take (samples x rows x labels).
MC_CHUNK_BYTES = 256 * 2**20


class ShortlistCounts(NamedTuple):
    """What GFM needs on a shortlist of labels (see :meth:`JointLabelDistribution.shortlist_count_marginals`).

    Attributes:
        counts: ``[B, L, S+1]``, P(y_j = 1, |y| = s) for the shortlisted labels j, where
            ``|y|`` counts every label, shortlisted or not; column 0 is zero.
        sizes: ``[B, S+1]``, P(|y| = s).
        size_tail: ``[B]``, P(|y| > S): the mass the truncation at S leaves out.
    """

    counts: torch.Tensor
    sizes: torch.Tensor
    size_tail: torch.Tensor


def all_label_sets(n_labels: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Every label set of ``n_labels`` labels, ``[2^M, M]``, row ``i`` the binary digits of ``i``
    (label 0 is the least significant bit)."""
    if n_labels > MAX_ENUMERATE_LABELS:
        raise ValueError(
            f"Refusing to enumerate 2^{n_labels} label sets (at most {MAX_ENUMERATE_LABELS} labels)"
        )
    index = torch.arange(2**n_labels, device=device)
    bits = torch.arange(n_labels, device=device)
    return ((index[:, None] >> bits[None, :]) & 1).to(dtype)


class _Permutation(constraints.Constraint):
    """Each row ``[..., n]`` a permutation of ``0..n-1`` (a chain's label order)."""

    event_dim = 1
    description = "a permutation of 0..M-1"

    def check(self, value: torch.Tensor) -> torch.Tensor:
        n = value.shape[-1]
        return (value.sort(-1).values == torch.arange(n, device=value.device)).all(-1)

    def explain(self, value: torch.Tensor) -> str:
        return f"{value.tolist()}"


#: ``arg_constraints`` value of a label order ``[M]`` (or ``[R, M]``, one order per row).
permutation = _Permutation()

#: Words for torch's constraints in error messages (our own constraints carry ``description``).
_DESCRIPTIONS = {constraints.real: "real numbers (not NaN)", constraints.boolean: "0/1"}


def _describe(constraint: constraints.Constraint) -> str:
    return getattr(constraint, "description", None) or _DESCRIPTIONS.get(constraint, repr(constraint))


def _first_invalid(constraint: constraints.Constraint, value: torch.Tensor, valid: torch.Tensor) -> str:
    """What to show of an argument that fails ``constraint``: the constraint's own explanation,
    else the first failing element and its index."""
    if hasattr(constraint, "explain"):
        return constraint.explain(value)
    where = (~valid).nonzero()[0].tolist()
    if valid.dim() == value.dim():
        return f"{value[tuple(where)].item()} at {where}"
    return f"invalid values at {where}"


def match_shapes(owner: str, shapes: dict[str, str], arguments: dict, sizes: dict[str, int] | None = None) -> dict[str, int]:
    """Check ``arguments`` (name -> tensor or None) against declared ``shapes`` (name -> e.g.
    ``"[M, K] or [B, M, K]"``: named dimensions, alternatives separated by ``or``) and return the
    sizes bound to the names. Arguments are matched in the order of ``shapes``; a name is bound
    by ``sizes`` or by the first argument that has it, and later ones must agree. None is
    skipped (an optional argument).

    Raises:
        ValueError: ``Expected `interactions` of ChainBernoulli of shape [3, 3] or [2, 3, 3],
            got (3, 2)`` (names already bound are shown as numbers).
    """
    bound = dict(sizes or {})
    for name, spec in shapes.items():
        value = arguments.get(name)
        if value is None:
            continue
        shape = tuple(value.shape)
        alternatives = [[d.strip() for d in alt.strip()[1:-1].split(",") if d.strip()] for alt in spec.split(" or ")]
        for dims in alternatives:
            trial = dict(bound)
            if len(dims) == len(shape) and all(trial.setdefault(d, n) == n for d, n in zip(dims, shape)):
                bound = trial
                break
        else:
            expected = " or ".join("[" + ", ".join(str(bound.get(d, d)) for d in dims) + "]" for dims in alternatives)
            raise ValueError(f"Expected `{name}` of {owner} of shape {expected}, got {shape}")
    return bound


class JointLabelDistribution(Distribution):
    """A batch of distributions over label sets, ``batch_shape=(B,)``, ``event_shape=(M,)``.

    Values are float tensors of 0.0/1.0 (so they can be fed back into networks); ``log_prob``
    accepts bool, integer or float 0/1 tensors of shape ``[..., B, M]``.

    Subclasses implement ``log_prob`` and ``sample`` and override the other methods where they
    can do better than the defaults here, which enumerate all 2^M sets (exact, small M) and
    otherwise estimate from samples.

    Arguments are checked as in ``torch.distributions``, in one place: each subclass declares
    ``arg_shapes`` (checked always, by :meth:`_check_shapes`: they fix ``B`` and ``M``) and
    ``arg_constraints`` (their values, checked at construction when ``validate_args``);
    ``log_prob`` checks its value against ``support`` (0/1 label sets with ``M`` labels) when
    ``validate_args``. ``validate_args=None`` (default) follows torch's global default
    (``Distribution.set_default_validate_args``; on unless Python runs with ``-O``); pass
    ``False`` to skip the value checks on a hot path.
    """

    #: Each tensor argument's values (:mod:`torch.distributions.constraints`), checked by
    #: :meth:`_validate_parameters` when ``validate_args``.
    arg_constraints: dict[str, constraints.Constraint] = {}
    #: Each tensor argument's shape in named dimensions, alternatives separated by ``or``
    #: (``"[M, M] or [B, M, M]"``): ``B`` rows, ``M`` labels, other letters sizes the arguments
    #: must agree on. Checked always (see :func:`match_shapes`).
    arg_shapes: ClassVar[dict[str, str]] = {}
    #: Seeds every random draw (see :mod:`comorbid.distributions.noise`); set with :meth:`with_seed`.
    seed: int = DEFAULT_SEED
    support = constraints.independent(constraints.boolean, 1)
    has_enumerate_support = True
    #: True where ``sample_with``'s draw of sample s is a function of sample s's noise alone
    #: (so a subset of the samples can be drawn on its own, see ``noise.SelectedNoise``).
    draws_per_sample: ClassVar[bool] = False
    #: Samples drawn by the Monte Carlo fallbacks of ``marginals`` and ``count_marginals``.
    n_mc_samples: int = 2000
    #: Up to this many labels the default ``marginals``/``count_marginals``/``mode`` enumerate
    #: all 2^M sets (exact); beyond, they estimate from samples.
    enumerate_max_labels: int = 16

    def __init__(self, batch_size: int, n_labels: int, validate_args: bool | None = None):
        # torch's own argument loop is skipped (it prints whole tensors); ours names the first
        # invalid element.
        super().__init__(torch.Size([batch_size]), torch.Size([n_labels]), validate_args=False)
        self._validate_args = Distribution._validate_args if validate_args is None else bool(validate_args)
        if self._validate_args:
            self._validate_parameters()

    # ------------------------------------------------------------------ argument checks
    def _check_shapes(self, sizes: dict[str, int] | None = None, **arguments) -> dict[str, int]:
        """The sizes of the named dimensions of ``arguments`` (declared in ``arg_shapes``),
        with a clear error for a wrong shape; call it first in ``__init__``."""
        return match_shapes(type(self).__name__, self.arg_shapes, arguments, sizes)

    def _validate_parameters(self) -> None:
        """Check every argument in ``arg_constraints`` (set as an attribute of the same name)."""
        for name, constraint in self.arg_constraints.items():
            value = getattr(self, name, None)
            if value is None or constraints.is_dependent(constraint):
                continue
            valid = constraint.check(value)
            if not bool(valid.all()):
                raise ValueError(
                    f"Expected `{name}` of {type(self).__name__} to be {_describe(constraint)}, "
                    f"got {_first_invalid(constraint, value, valid)}"
                )

    def _validate_sample(self, value: torch.Tensor) -> None:
        """Check that ``value`` holds label sets ``[..., B, M]`` of 0/1 (``support``)."""
        if value.shape[-1:] != self.event_shape:
            raise ValueError(
                f"Expected label sets with {self.n_labels} labels in the last dimension, "
                f"got shape {tuple(value.shape)}"
            )
        try:
            torch.broadcast_shapes(value.shape[:-1], self.batch_shape)
        except RuntimeError:
            raise ValueError(
                f"Expected label sets [..., {self.batch_size}, {self.n_labels}] (one per row of the batch), "
                f"got shape {tuple(value.shape)}"
            ) from None
        if value.dtype != torch.bool:
            valid = self.support.check(value)
            if not bool(valid.all()):
                where = ((value != 0) & (value != 1)).nonzero()[0].tolist()
                raise ValueError(f"Expected label sets of 0/1, got {value[tuple(where)].item()} at {where}")

    def _as_label_sets(self, value: torch.Tensor) -> torch.Tensor:
        """``value`` as a float tensor ``[..., B, M]`` (checked when ``validate_args``): what
        every ``log_prob`` starts with."""
        value = torch.as_tensor(value)
        if self._validate_args:
            self._validate_sample(value)
        return value.to(torch.get_default_dtype() if not value.is_floating_point() else value.dtype)

    # ------------------------------------------------------------------ what subclasses give
    @property
    def n_labels(self) -> int:
        return self.event_shape[0]

    @property
    def batch_size(self) -> int:
        return self.batch_shape[0]

    @property
    def exact(self) -> frozenset[str]:
        """Names of the methods that are exact for this instance (a subset of ``METHODS``)."""
        if self.n_labels <= self.enumerate_max_labels:
            return METHODS
        return frozenset({"log_prob", "sample"})

    def with_seed(self, seed: int) -> "JointLabelDistribution":
        """Seed every random draw of this distribution (and its parts) with ``seed``; drops
        Monte Carlo results computed with the old seed. Returns ``self``."""
        self.seed = int(seed)
        self.__dict__.pop("_mc_results", None)
        self.__dict__.pop("_draws", None)
        return self

    @property
    def excludes_empty(self) -> bool:
        """Whether the empty set has probability 0 by construction (conditioned on y != 0):
        decoders then return non-empty sets (see :meth:`comorbid.decoders.base.Decoder.decode`)."""
        return False

    def tempered(self, temperature: float) -> "JointLabelDistribution":
        """The same model with every logit / log-potential divided by ``temperature``
        (temperature scaling, Guo, Pleiss, Sun & Weinberger, ICML 2017): above 1 flatter, below
        1 sharper, 1 unchanged. Subclasses implement it; the base refuses."""
        raise NotImplementedError(f"{type(self).__name__} does not support temperature scaling")

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def conditional_log_probs(self, value: torch.Tensor) -> torch.Tensor:
        """log p(y_j | y_-j, x) of every label given all the others, ``[..., B, M] -> [..., B, M]``.

        Here from ``log_prob`` of ``value`` and of its M one-label flips,
        ``log p(y) - log(p(y) + p(y with j flipped))`` (exact, M + 1 ``log_prob`` calls);
        subclasses with cheap full conditionals (the Ising model's local fields) override it.
        """
        value = self._as_label_sets(value)
        flips = torch.eye(self.n_labels, dtype=value.dtype, device=value.device)
        flipped = (value.unsqueeze(-2) - flips).abs()  # [..., B, M (flipped label), M]
        log_p = self.log_prob(value)  # [..., B]
        log_flipped = self.log_prob(flipped.movedim(-2, 0)).movedim(0, -1)  # [..., B, M]
        return log_p[..., None] - torch.logaddexp(log_p[..., None], log_flipped)

    def flip_log_probs(self, value: torch.Tensor) -> torch.Tensor | None:
        """log p of every single-label flip of ``value [B, M]``, ``[B, M]`` (entry j: label j
        flipped), where a subclass has it in O(B M K) (a sparse chain); None here: callers
        (mode searches at many labels) then score the flips with ``log_prob``."""
        return None

    def pseudo_log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Besag's pseudo-log-likelihood sum_j log p(y_j | y_-j, x) (Besag, 1975, The
        Statistician 24), ``[..., B, M] -> [..., B]``: a training objective that needs no
        normaliser where :meth:`conditional_log_probs` is cheap."""
        return self.conditional_log_probs(value).sum(-1)

    def sample(self, sample_shape: torch.Size | tuple = ()) -> torch.Tensor:
        """Draws ``[*sample_shape, B, M]``, independent across samples and rows, from this
        distribution's own seeded noise (successive calls continue the stream; the global
        generator is not used). Subclasses implement :meth:`sample_with`."""
        return self._sample_stream("sample", sample_shape, self.sample_with)

    def sample_with(self, noise: Noise) -> torch.Tensor:
        """``noise.n`` draws ``[n, B, M]`` driven by ``noise`` (common or per-row uniforms, see
        :mod:`comorbid.distributions.noise`): a pure function of the noise. Subclasses
        implement it; a subclass that only implements ``sample`` gets it run under a global
        generator seeded from the noise and restored afterwards."""
        if type(self).sample is JointLabelDistribution.sample:  # pragma: no cover - abstract
            raise NotImplementedError(f"{type(self).__name__} implements neither sample nor sample_with")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(noise.uniform("fallback", 1)[0, 0, 0] * 2**62) if noise.n else 0)
            return self.sample((noise.n,))

    def _sample_stream(self, stream: str, sample_shape, draw) -> torch.Tensor:
        shape = torch.Size(sample_shape)
        n = max(shape.numel(), 1)
        draws = self.__dict__.setdefault("_draws", {})
        start = draws.get(stream, 0)
        draws[stream] = start + n
        with torch.no_grad():
            samples = draw(Noise(self.seed, stream, start, n, rows=self.batch_size))
        return samples.reshape(*shape, *self.batch_shape, *self.event_shape)

    def common_noise(self, stream: str, count: int, start: int = 0) -> Noise:
        """Noise shared by every row of the batch for samples ``start ..`` of ``stream``."""
        return Noise(self.seed, stream, start, count, rows=1)

    # ------------------------------------------------------------------ derived quantities
    @property
    def mean(self) -> torch.Tensor:
        return self.marginals()

    def marginals(self) -> torch.Tensor:
        """P(y_j = 1 | x), ``[B, M]``."""
        if self.n_labels <= self.enumerate_max_labels:
            return self._enumerated_marginals()
        return self._monte_carlo_marginals()

    def log_marginals(self) -> torch.Tensor:
        """log P(y_j = 1 | x), ``[B, M]`` (subclasses that have it without underflow override)."""
        return self.marginals().log()

    def mode(self, beam_size: int | None = None) -> torch.Tensor:
        """The most probable label set, ``[B, M]`` (``beam_size`` is for searching models)."""
        if self.n_labels > self.enumerate_max_labels:
            raise NotImplementedError(f"{type(self).__name__} has no mode search for {self.n_labels} labels")
        return self._enumerated_mode()

    def log_prob_nonempty(self) -> torch.Tensor:
        """log P(y != 0), ``[B]``: ``log(1 - p(0))`` here; subclasses whose p(0) can round to 1
        (sharp models) compute it without that cancellation."""
        empty = torch.zeros(self.batch_size, self.n_labels)
        log_empty = self.log_prob(empty).clamp_max(-torch.finfo(torch.get_default_dtype()).tiny)
        return log1mexp(log_empty)

    @property
    def exact_nonempty_mode(self) -> bool:
        """Whether :meth:`nonempty_mode` is exact for this instance."""
        return self.n_labels <= self.enumerate_max_labels

    def nonempty_mode(self, beam_size: int | None = None) -> torch.Tensor:
        """The most probable label set with at least one label, ``[B, M]``.

        By enumeration for small M; beyond, the best of the mode, every single-label set and
        256 samples per row (approximate; subclasses that can search do better).
        """
        if self.n_labels <= self.enumerate_max_labels:
            sets, probs = self._enumerate()
            probs = probs.clone()
            probs[:, 0] = -1.0  # row 0 of all_label_sets is the empty set
            return sets[probs.argmax(-1)]
        b, m = self.batch_size, self.n_labels
        dtype = torch.get_default_dtype()
        candidates = torch.cat([
            self.mode(beam_size).to(dtype)[None],
            torch.eye(m, dtype=dtype)[:, None, :].expand(m, b, m),
            self.sample_with(self.common_noise("nonempty-mode", 256)).to(dtype),
        ])  # fmt: skip  # [K, B, M]
        with torch.no_grad():
            scores = self.log_prob(candidates)  # [K, B]
        scores = torch.where(candidates.sum(-1) == 0, torch.full_like(scores, -torch.inf), scores)
        return candidates.gather(0, scores.argmax(0)[None, :, None].expand(1, b, m))[0]

    def sample_nonempty(self, sample_shape: torch.Size | tuple = ()) -> torch.Tensor:
        """Samples conditioned on at least one label, ``[*sample_shape, B, M]`` (see
        :meth:`sample_nonempty_with`)."""
        return self._sample_stream("sample-nonempty", sample_shape, self.sample_nonempty_with)

    def sample_nonempty_with(self, noise: Noise) -> torch.Tensor:
        """``noise.n`` draws given y != 0, ``[n, B, M]``, a pure function of ``noise``.

        By rejection: empty draws are redrawn (round ``r`` uses the sub-stream ``round-r``), at
        most :data:`MAX_REJECTION_ROUNDS` times; draws still empty then get
        :meth:`nonempty_mode` (biased, and only when p(0) is very close to 1). Subclasses with
        a chain structure sample exactly instead.
        """
        with torch.no_grad():
            samples = self.sample_with(noise)
            for round_ in range(MAX_REJECTION_ROUNDS):
                empty = samples.sum(-1) == 0
                if not empty.any():
                    return samples
                samples = torch.where(empty[..., None], self.sample_with(noise.child(f"round-{round_}")), samples)
            empty = samples.sum(-1) == 0
            return torch.where(empty[..., None], self.nonempty_mode().to(samples.dtype), samples)

    def count_marginals(self) -> torch.Tensor:
        """``[B, M, M+1]``: entry ``[b, j, s]`` is P(y_j = 1 and |y| = s); column 0 is zero.

        This is what the general F-measure maximiser (GFM) needs.
        """
        if self.n_labels <= self.enumerate_max_labels:
            return self._enumerated_count_marginals()
        return self._monte_carlo_count_marginals()

    def shortlist_count_marginals(self, shortlist: torch.Tensor, max_size: int) -> ShortlistCounts:
        """:meth:`count_marginals` for a few labels per row and sizes up to ``max_size``.

        Args:
            shortlist: ``[B, L]`` distinct label indices per row.
            max_size: the largest size S kept (P(|y| > S) is returned as ``size_tail``).

        Memory ``O(B (M + L S))``, never ``[B, M, M]``. Exact where ``count_marginals`` is
        (``"count_marginals" in exact``): here by enumeration for small M, otherwise from the
        same Monte Carlo draws as ``count_marginals`` (sizes count every sampled label);
        subclasses with exact count marginals override it.
        """
        if self.n_labels <= self.enumerate_max_labels:
            return self._gather_shortlist_counts(self.count_marginals(), self.size_distribution(), shortlist, max_size)
        return self._monte_carlo_shortlist_counts(shortlist, max_size)

    @staticmethod
    def _gather_shortlist_counts(count_marginals, size_distribution, shortlist, max_size) -> ShortlistCounts:
        """Shortlist counts from full ``[B, M, M+1]`` count marginals (small M only)."""
        m1 = count_marginals.shape[-1]
        counts = count_marginals.gather(1, shortlist[..., None].expand(-1, -1, m1))[..., : max_size + 1]
        pad = max_size + 1 - counts.shape[-1]
        counts = torch.nn.functional.pad(counts, (0, max(pad, 0)))
        sizes = torch.nn.functional.pad(size_distribution[:, : max_size + 1], (0, max(pad, 0)))
        return ShortlistCounts(counts, sizes, size_distribution[:, max_size + 1 :].sum(-1))

    def _monte_carlo_shortlist_counts(self, shortlist: torch.Tensor, max_size: int,
                                      nonempty: bool = False) -> ShortlistCounts:
        """Shortlist counts from the ``n_mc_samples`` draws of :meth:`_mc_sample_chunks`:
        each draw adds to ``[row, j, |y|]`` for its shortlisted labels j that are on, ``|y|``
        counting all its labels (sizes above S go to ``size_tail``). Cached per shortlist."""
        b, width = self.batch_size, max_size + 2  # the last column collects sizes > S
        key = ("shortlist_counts", nonempty, max_size, tuple(shortlist.shape), hash(shortlist.cpu().numpy().tobytes()))

        def compute():
            length = shortlist.shape[1]
            counts = torch.zeros(b * length * width, dtype=torch.float64)
            sizes = torch.zeros(b * width, dtype=torch.float64)
            rows = torch.arange(b)
            for samples in self._mc_sample_chunks(nonempty):
                samples = samples.cpu()
                size = samples.sum(-1).round().long().clamp_max(max_size + 1)  # [c, B]
                on = samples.gather(-1, shortlist.cpu().expand(samples.shape[0], -1, -1)).double()  # [c, B, L]
                cell = (rows[:, None] * length + torch.arange(length)) * width  # [B, L]
                counts.index_add_(0, (cell + size[..., None]).reshape(-1), on.reshape(-1))
                sizes.index_add_(0, (rows * width + size).reshape(-1), torch.ones(size.numel(), dtype=torch.float64))
            dtype, device = torch.get_default_dtype(), shortlist.device
            counts = (counts / self.n_mc_samples).reshape(b, length, width).to(dtype).to(device)
            sizes = (sizes / self.n_mc_samples).reshape(b, width).to(dtype).to(device)
            return ShortlistCounts(counts[..., :-1], sizes[:, :-1], sizes[:, -1])

        return self._mc_cached(key, compute)

    # ------------------------------------------------------------------ Monte Carlo (large M)
    def _mc_chunk(self, factor: int = 1) -> int:
        """Samples per chunk so that ``factor`` tensors ``[chunk, B, M]`` of floats stay within
        :data:`MC_CHUNK_BYTES`; a multiple of the noise block (so accumulation is chunk-free)."""
        per_sample = max(1, factor * self.batch_size * self.n_labels * 8)
        return max(1, MC_CHUNK_BYTES // per_sample // NOISE_BLOCK) * NOISE_BLOCK

    def _mc_cached(self, key: tuple, compute):
        """Monte Carlo results kept per instance: every call (and every decoder) sees the same."""
        results = self.__dict__.setdefault("_mc_results", {})
        if key not in results:
            with torch.no_grad():
                results[key] = compute()
        return results[key]

    def _mc_sample_chunks(self, nonempty: bool = False):
        """The ``n_mc_samples`` Monte Carlo draws (common noise, stream ``"mc"``) in chunks
        ``[c, B, M]`` of bounded memory."""
        draw = self.sample_nonempty_with if nonempty else self.sample_with
        noise = self.common_noise("mc-nonempty" if nonempty else "mc", self.n_mc_samples)
        chunk = self._mc_chunk(4)  # the draws, their noise and the count index
        for start in range(0, noise.n, chunk):
            yield draw(noise.part(start, min(chunk, noise.n - start)))

    def _monte_carlo_marginals(self, nonempty: bool = False) -> torch.Tensor:
        """Marginals ``[B, M]`` from ``n_mc_samples`` draws (of p given y != 0 if ``nonempty``):
        exact counts, so the chunking cannot change the result."""
        def compute():
            counts = None
            for samples in self._mc_sample_chunks(nonempty):
                part = samples.double().sum(0)
                counts = part if counts is None else counts + part
            return (counts / self.n_mc_samples).to(torch.get_default_dtype())
        return self._mc_cached(("marginals", nonempty), compute)

    def _monte_carlo_count_marginals(self, nonempty: bool = False) -> torch.Tensor:
        """Count marginals ``[B, M, M+1]`` from the same draws as :meth:`_monte_carlo_marginals`."""
        def compute():
            counts = None
            for samples in self._mc_sample_chunks(nonempty):
                part = count_marginals_of_draws(samples)
                counts = part if counts is None else counts + part
            return (counts / self.n_mc_samples).to(torch.get_default_dtype())
        return self._mc_cached(("count_marginals", nonempty), compute)

    def size_distribution(self) -> torch.Tensor:
        """P(|y| = s) for s = 0..M, ``[B, M+1]``, derived from ``count_marginals``.

        Uses sum_j P(y_j=1, |y|=s) = s * P(|y|=s) for s >= 1; P(|y|=0) is what is left.
        """
        per_size = self.count_marginals().sum(1)  # [B, M+1]
        sizes = torch.arange(self.n_labels + 1, dtype=per_size.dtype, device=per_size.device)
        nonempty = per_size[:, 1:] / sizes[1:]
        empty = (1.0 - nonempty.sum(-1, keepdim=True)).clamp_min(0.0)
        return torch.cat([empty, nonempty], dim=-1)

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        sets = all_label_sets(self.n_labels, dtype=torch.get_default_dtype())  # [2^M, M]
        sets = sets[:, None, :]
        if expand:
            sets = sets.expand(-1, self.batch_size, -1)
        return sets

    def entropy(self) -> torch.Tensor:
        sets, probs = self._enumerate()
        return -(probs * probs.clamp_min(1e-300).log()).sum(-1)

    # ------------------------------------------------------------------ enumeration (small M)
    #: Tensor elements one enumeration chunk may hold (sets x rows x labels): bounds memory.
    enumeration_budget: int = 2**22

    def _enumerate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All label sets ``[2^M, M]`` and their probabilities ``[B, 2^M]`` (small M only)."""
        parts = list(self._log_prob_chunks())
        sets = torch.cat([p[0] for p in parts])
        probs = torch.cat([p[1] for p in parts], dim=1).exp()
        return sets.to(probs.dtype), probs

    def _enumeration_log_probs(self, sets: torch.Tensor) -> torch.Tensor:
        """log p(sets) for every row, ``[C, M] -> [B, C]``; subclasses may do it cheaper."""
        return self.log_prob(sets[:, None, :].expand(-1, self.batch_size, -1)).T

    def _log_prob_chunks(self):
        """Yield ``(sets [C, M], log_probs [B, C])`` over all 2^M sets, in chunks small enough
        that a chunk holds about ``enumeration_budget`` elements (memory stays bounded)."""
        m = self.n_labels
        sets = all_label_sets(m, dtype=torch.get_default_dtype())
        chunk = max(1, self.enumeration_budget // max(1, self.batch_size * max(m, 1)))
        with torch.no_grad():
            for start in range(0, len(sets), chunk):
                part = sets[start : start + chunk]
                log_probs = self._enumeration_log_probs(part)
                yield part.to(log_probs.dtype), log_probs

    def _enumerated_marginals(self) -> torch.Tensor:
        total = None
        for sets, log_probs in self._log_prob_chunks():
            part = log_probs.exp() @ sets
            total = part if total is None else total + part
        return total

    def _enumerated_count_marginals(self) -> torch.Tensor:
        total = None
        for sets, log_probs in self._log_prob_chunks():
            part = count_marginals_from_sets(sets, log_probs.exp())
            total = part if total is None else total + part
        return total

    def _enumerated_mode(self) -> torch.Tensor:
        best_score, best_set = None, None
        for sets, log_probs in self._log_prob_chunks():
            score, index = log_probs.max(-1)
            candidate = sets[index]
            if best_score is None:
                best_score, best_set = score, candidate
            else:
                better = score > best_score
                best_score = torch.where(better, score, best_score)
                best_set = torch.where(better[:, None], candidate, best_set)
        return best_set

    def _enumerated_sample(self, noise: Noise) -> torch.Tensor:
        """``noise.n`` exact draws per row by enumeration (inverse CDF), ``[n, B, M]`` (small M only)."""
        sets, probs = self._enumerate()
        return sets[categorical(probs, noise.uniform("set", 1))]

    def _search_mode(self, candidates: torch.Tensor, score=None, max_rounds: int | None = None) -> torch.Tensor:
        """Best of ``candidates [B, C, M]`` under ``score`` (default ``log_prob``), then
        steepest-ascent hill climbing over single-label flips until no flip helps.

        Approximate (a local optimum), used where exhaustive search is too costly. Each round
        scores the M neighbours of every row's current set and moves to the best one if it
        is better; at most ``max_rounds`` rounds (default ``2 M``).
        """
        score = score or self.log_prob
        b, c, m = candidates.shape
        with torch.no_grad():
            values = score(candidates.transpose(0, 1))  # [C, B]
            best = values.argmax(0)
            current = candidates[torch.arange(b), best]
            current_score = values.max(0).values
            flips = torch.eye(m, dtype=current.dtype, device=current.device)
            for _ in range(max_rounds if max_rounds is not None else 2 * m):
                neighbours = (current[None] - flips[:, None, :]).abs()  # [M, B, M]
                neighbour_scores = score(neighbours)  # [M, B]
                top, which = neighbour_scores.max(0)
                better = top > current_score + 1e-12 * current_score.abs().clamp_min(1.0)
                if not better.any():
                    break
                current = torch.where(better[:, None], neighbours[which, torch.arange(b)], current)
                current_score = torch.where(better, top, current_score)
        return current


def count_marginals_of_draws(samples: torch.Tensor) -> torch.Tensor:
    """Unnormalised count marginals ``[B, M, M+1]`` of Monte Carlo draws ``[S, B, M]`` (each
    draw weighing 1: :func:`count_marginals_from_sets`)."""
    ones = torch.ones(samples.shape[:2], dtype=torch.float64)
    return count_marginals_from_sets(samples.double().transpose(0, 1), ones.T)


def count_marginals_from_sets(sets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """P(y_j=1, |y|=s) from weighted label sets.

    Args:
        sets: ``[K, M]`` shared label sets, or ``[B, K, M]`` per row.
        weights: ``[B, K]`` probabilities of those sets (rows sum to 1).

    Returns:
        ``[B, M, M+1]``.
    """
    m = sets.shape[-1]
    if sets.dim() == 3:
        # Per-row sets: scatter each (row, set, label) weight into its (row, label, size) cell,
        # O(B K M) instead of the O(B K M^2) of a dense product with one-hot sizes.
        b, k, _ = sets.shape
        sets = sets.to(weights.dtype)
        sizes = sets.sum(-1).round().long()  # [B, K]
        cell = torch.arange(b, device=sets.device)[:, None, None] * m + torch.arange(m, device=sets.device)
        index = cell * (m + 1) + sizes[:, :, None]  # [B, K, M]
        values = weights[:, :, None] * sets
        flat = weights.new_zeros(b * m * (m + 1)).index_add(0, index.reshape(-1), values.reshape(-1))
        return flat.reshape(b, m, m + 1)
    if sets.dim() == 2:
        # Shared sets: one matrix product per set size, O(B K M) instead of O(B K M^2).
        sets = sets.to(weights.dtype)
        sizes = sets.sum(-1).round().long()
        out = weights.new_zeros(weights.shape[0], m, m + 1)
        for s in sizes.unique().tolist():
            if s > 0:
                keep = sizes == s
                out[:, :, s] = weights[:, keep] @ sets[keep]
        return out
    raise ValueError(f"Expected `sets` of shape [K, M] or [B, K, M], got {tuple(sets.shape)}")


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x <= 0, accurate near 0 and for very negative x (Maechler 2012)."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def count_marginals_from_samples(samples: torch.Tensor) -> torch.Tensor:
    """Monte Carlo P(y_j=1, |y|=s) from equally weighted draws ``[n, B, M] -> [B, M, M+1]``."""
    weights = torch.full(samples.shape[:2], 1.0 / samples.shape[0], dtype=samples.dtype, device=samples.device)
    return count_marginals_from_sets(samples.transpose(0, 1), weights.transpose(0, 1))


def first_on_log_probs(logits: torch.Tensor) -> torch.Tensor:
    """log P(the first label on is t, in this order) of independent labels ``[..., M]``:
    ``sum_{s<t} log sigmoid(-l_s) + log sigmoid(l_t)``. Their log-sum-exp is log P(y != 0),
    accurate even where 1 - prod_t sigmoid(-l_t) rounds to 0."""
    log_off = torch.nn.functional.logsigmoid(-logits)
    return torch.cumsum(log_off, -1) - log_off + torch.nn.functional.logsigmoid(logits)


def first_on_distribution(logits: torch.Tensor) -> torch.distributions.Categorical:
    """Which of independent labels ``[B, M]`` (in this order) is the first one on, given that one
    is: P(t) proportional to prod_{s<t} sigmoid(-l_s) * sigmoid(l_t)."""
    return torch.distributions.Categorical(logits=first_on_log_probs(logits))
