"""Data-parallel training across processes: torch DistributedDataParallel under ``torchrun``.

``torchrun --nproc-per-node N -m comorbid train ...`` starts N processes ("ranks"); each reads
the data, fits the encoder's preprocessing (deterministic: the same vocabulary on every rank)
and trains on its shard of every batch, and DistributedDataParallel (Li et al., "PyTorch
Distributed: Experiences on Accelerating Data Parallel Training", VLDB 2020) reduces the
gradients. Only rank 0 writes the model. See ``docs/distributed.md``.

What this module guarantees, and how (``comorbid.training`` uses it):

- **The same batches as one process.** Every rank draws the same batch order from the same
  seed and takes every W-th row of each batch (:func:`shard`: rank r of W takes rows r, r+W,
  ...), so the union of the ranks' shards is exactly the one-process batch. This is
  :class:`torch.utils.data.DistributedSampler`'s interleaving, applied per batch and without its
  padding (it repeats rows to even out the shards, which would weigh those rows twice).
- **The same gradient as one process.** A rank's objective is its shard's mean loss times the
  shard's share of the batch (:func:`shard_share`: rows, or row weights when rows are weighted),
  and the gradient is *summed* over ranks (a DDP communication hook, :func:`_sum_hook`, instead
  of DDP's default mean), so the reduced gradient is the gradient of the batch's mean loss. The
  penalty on the weights is added on rank 0 only. Parameters therefore agree across ranks and
  with one process up to the order of floating-point additions (tests/test_distributed.py:
  2 ranks vs 1 process, L-BFGS and Adam).
- **The same decisions on every rank.** Values that steer the optimiser (L-BFGS's objective and
  line search, Adam's validation loss for early stopping) are all-reduced
  (:func:`all_reduce_sum`), so every rank takes the same step and stops at the same epoch.

Nothing here holds state: the process group is torch's (``torch.distributed``), set up by
:func:`process_group` from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT``).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist

#: Environment variables torchrun (and ``torch.multiprocessing`` launchers) set for each rank.
LAUNCH_ENVIRONMENT = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def launched() -> bool:
    """Whether this process was started by a distributed launcher (torchrun sets every variable
    of :data:`LAUNCH_ENVIRONMENT`)."""
    return all(name in os.environ for name in LAUNCH_ENVIRONMENT)


def default_backend(device: str | torch.device = "cpu") -> str:
    """``"nccl"`` for CUDA tensors (NVIDIA's collective library), ``"gloo"`` for CPU tensors."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def active() -> bool:
    """Whether a process group of more than one rank is set up (training then shards)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """The number of ranks (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """Whether this is rank 0, the one that prints and writes the model."""
    return rank() == 0


@contextmanager
def process_group(backend: str | None = None) -> Iterator[None]:
    """Join the process group described by the launcher's environment for the duration of the block.

    Args:
        backend: ``"gloo"`` or ``"nccl"``; default :func:`default_backend` of the CPU (training
            runs on the CPU until a device option says otherwise).

    Raises:
        RuntimeError: the environment has no launcher's variables (not started by torchrun).
    """
    if not launched():
        missing = [name for name in LAUNCH_ENVIRONMENT if name not in os.environ]
        raise RuntimeError(
            f"Distributed training needs a launcher: run `torchrun --nproc-per-node N -m comorbid train ...` "
            f"(missing {', '.join(missing)})")
    if dist.is_initialized():  # the caller set one up already: use it, leave it to them
        yield
        return
    dist.init_process_group(backend or default_backend())
    try:
        yield
    finally:
        dist.destroy_process_group()


def shard(rows: np.ndarray, of_rank: int | None = None, of_world: int | None = None) -> np.ndarray:
    """A rank's part of ``rows``: every W-th row starting at its rank (all of them on one rank).

    The ranks' parts are disjoint and together are ``rows``; they differ in length by one at most.
    ``of_rank`` / ``of_world`` default to this process's rank and world size.
    """
    r = rank() if of_rank is None else of_rank
    w = world_size() if of_world is None else of_world
    return rows if w == 1 else rows[r::w]


def shard_share(part: np.ndarray, rows: np.ndarray, weights: torch.Tensor | None) -> float:
    """The share of ``rows`` (a batch) that ``part`` (this rank's shard of it) carries: its rows
    over the batch's, or its row weights' sum over the batch's when rows are weighted (a head's
    NLL is the weighted mean ``sum(w l) / sum(w)``)."""
    if weights is None:
        return len(part) / max(len(rows), 1)
    total = float(weights[rows].sum())
    return float(weights[part].sum()) / total if total > 0 else 0.0


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum of ``value`` over the ranks (a new tensor; ``value`` itself without a group)."""
    if not active():
        return value
    total = value.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


def barrier() -> None:
    """Wait until every rank gets here (nothing without a group)."""
    if active():
        dist.barrier()


class _Objective(torch.nn.Module):
    """The trained modules, so that DDP finds their parameters; ``forward(compute)`` returns
    ``compute()``, the loss computed from them (DDP hooks the backward of what forward returns)."""

    def __init__(self, modules: Sequence[torch.nn.Module]):
        super().__init__()
        self.parts = torch.nn.ModuleList(modules)

    def forward(self, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        return compute()


def _sum_hook(state, bucket):
    """DDP communication hook: the *sum* of the ranks' gradients (DDP's default is the mean).
    Each rank's loss is already scaled by its share of the batch (:func:`shard_share`)."""
    future = dist.all_reduce(bucket.buffer(), op=dist.ReduceOp.SUM, async_op=True).get_future()
    return future.then(lambda done: done.value()[0])


def data_parallel(modules: Sequence[torch.nn.Module]) -> Callable[[Callable[[], torch.Tensor]], torch.Tensor]:
    """A function ``objective(compute) -> loss``: ``compute()`` run so that the backward of its
    result sums the gradient over the ranks (DistributedDataParallel with :func:`_sum_hook`).

    Without a process group, or when no parameter is trainable, it is ``compute()`` itself. Building
    it broadcasts rank 0's parameters and buffers to every rank (DDP does at construction), so
    the ranks start from the same weights. Parameters a step leaves unused keep ``grad None``.
    """
    trainable = [p for module in modules for p in module.parameters() if p.requires_grad]
    if not active() or not trainable:
        return lambda compute: compute()
    from torch.nn.parallel import DistributedDataParallel

    wrapped = DistributedDataParallel(_Objective(modules), find_unused_parameters=True)
    wrapped.register_comm_hook(None, _sum_hook)
    return wrapped


def zero_loss(modules: Sequence[torch.nn.Module]) -> torch.Tensor:
    """``0``, connected to every trainable parameter: the loss of a rank whose shard of a batch is
    empty (a last batch with fewer rows than ranks), which must still take part in the reduction."""
    parameters = [p for module in modules for p in module.parameters() if p.requires_grad]
    return sum((p.sum() * 0.0 for p in parameters), torch.zeros(()))


__all__ = ("launched", "default_backend", "active", "rank", "world_size", "is_main", "process_group", "shard",
           "shard_share", "all_reduce_sum", "barrier", "data_parallel", "zero_loss", "LAUNCH_ENVIRONMENT")
