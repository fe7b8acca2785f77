"""The fit loop: mini-batches, Adam, early stopping on a validation split, a progress bar.

Under torchrun each process trains on its shard of every batch and the gradients are summed by
DistributedDataParallel (:mod:`comorbid.distributed`, which says what is guaranteed); in one
process the loop is unchanged.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from comorbid import distributed
from comorbid.constraints import at_least, check_all, greater_than, in_interval, one_of
from comorbid.data.splits import train_validation_split
from comorbid.devices import batch_to, resolve_device
from comorbid.encoders.base import Encoder
from comorbid.heads.bagging import BaggedHead, bootstrap_rows
from comorbid.heads.base import Head

OPTIMIZERS = ("auto", "lbfgs", "adam")
PENALTIES = ("l2", "l1")
BALANCES = ("none", "sqrt", "inverse")

#: What each TrainConfig field must be, checked when a TrainConfig is made (the one place:
#: the CLI, the estimator and MultiLabelModel.fit all build one).
TRAIN_RULES = {
    "optimizer": one_of(*OPTIMIZERS),
    "max_iterations": greater_than(0),
    "epochs": greater_than(0),
    "batch_size": greater_than(0),
    "learning_rate": greater_than(0),
    "weight_decay": at_least(0),
    "penalty": one_of(*PENALTIES),
    "l1_smoothing": greater_than(0),
    "balance": one_of(*BALANCES),
    "validation_fraction": in_interval(0, 1),
    "patience": at_least(0),
}


@dataclass
class TrainConfig:
    """How a model is trained.

    Attributes:
        optimizer: ``"lbfgs"`` (full batch, to convergence: best for a fixed featurisation such
            as TF-IDF, where the objective is smooth and small), ``"adam"`` (mini-batches with
            early stopping: for trainable encoders), or ``"auto"`` (L-BFGS when the encoder has
            no trainable parameters and L-BFGS's state fits :data:`LBFGS_MAX_BYTES`, Adam
            otherwise).
        max_iterations: L-BFGS iterations at most.
        epochs: passes over the training rows at most (Adam).
        batch_size: rows per step.
        learning_rate: Adam step size.
        weight_decay: coefficient of the penalty on the weights (not biases) added to the mean
            per-row loss (for ``"l2"``, 1 / (2 C N) in scikit-learn's C for N training rows; for
            ``"l1"``, 1 / (C N)).
        penalty: ``"l2"`` (sum of squared weights) or ``"l1"`` (sum of absolute weights, smoothed
            as ``sqrt(w^2 + eps^2) - eps`` with ``eps = l1_smoothing`` so that L-BFGS applies).
            L1 keeps few features per label: on binary word features of short notes, where a code
            hangs on a handful of words, it beats L2 (``docs/clinical_text.md``).
        balance: weight the training rows against label imbalance: ``"none"``, ``"sqrt"``
            or ``"inverse"`` (:func:`row_weights`: rows whose rarest label is rare count more).
        l1_smoothing: ``eps`` of the smoothed L1 penalty; weights much smaller than it cost
            about ``w^2 / (2 eps)``, i.e. they are pulled to (nearly) zero.
        validation_fraction: share of the training rows held out (iteratively stratified) to
            choose the epoch; 0 trains for ``epochs`` on everything.
        patience: epochs without a better validation loss before stopping.
        refit: after early stopping, train again on all rows for the chosen number of epochs.
        seed: seeds the split, initialisation and batch order.
        device: where the network trains: ``"cpu"``, ``"cuda"`` (``"cuda:N"``) or ``"auto"``
            (:func:`comorbid.devices.resolve_device`); features and labels move there one batch
            at a time (L-BFGS: its one full batch).
    """

    optimizer: str = "auto"
    max_iterations: int = 300
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 1e-2
    weight_decay: float = 1e-5
    penalty: str = "l2"
    l1_smoothing: float = 1e-3
    balance: str = "none"
    validation_fraction: float = 0.1
    patience: int = 10
    refit: bool = True
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        check_all(TRAIN_RULES, self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_progress(transient: bool = False) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        transient=transient,
    )



def row_weights(labels: np.ndarray, balance: str = "sqrt") -> np.ndarray | None:
    """Training-row weights ``[N]`` (mean 1) against label imbalance, or ``None`` for ``"none"``.

    A row weighs ``(N / n_r) ** p`` with ``n_r`` the number of training rows that have the
    row's rarest label (rows without labels: the number of such rows), ``p = 1/2`` for
    ``"sqrt"`` and ``1`` for ``"inverse"``. Weighting whole rows, not labels, keeps the joint
    likelihood a likelihood (of a reweighted sample), so it applies to every joint model; the
    square root is the milder choice, as in the "square-root frequency" sampling of
    long-tailed recognition (Mahajan et al., ECCV 2018).
    """
    TRAIN_RULES["balance"].check("balance", balance)
    if balance == "none":
        return None
    y = np.asarray(labels, dtype=bool)
    n = len(y)
    counts = y.sum(0).astype(np.float64)
    rarest = np.where(y, counts[None, :], np.inf).min(1) if y.shape[1] else np.full(n, np.inf)
    empty = ~y.any(1)
    rarest[empty] = empty.sum()
    weights = (n / rarest) ** (0.5 if balance == "sqrt" else 1.0)
    return weights / weights.mean()


def _label_dtype(features) -> torch.dtype:
    """Labels as floats like the features, or the default float when the features are token ids
    or a scipy sparse matrix (which the encoder turns into the default float type)."""
    if isinstance(features, torch.Tensor) and features.is_floating_point():
        return features.dtype
    return torch.get_default_dtype()


def _n_rows(features) -> int:
    return features.shape[0]


def _labels(labels: np.ndarray, rows, dtype: torch.dtype) -> torch.Tensor:
    """Rows ``rows`` of the 0/1 label matrix as floats: converted one batch at a time, so that
    training never holds an [N, M] float copy (1 GB at N = 50,000 and M = 5,000)."""
    return torch.as_tensor(np.asarray(labels[rows]), dtype=dtype)


#: ``optimizer="auto"`` uses full-batch L-BFGS (for encoders without trainable parameters) only
#: while its state fits in this many bytes: it keeps ``2 x history`` copies of the parameters
#: plus a few for the line search. Larger problems train by Adam on mini-batches.
LBFGS_MAX_BYTES = 2 << 30
LBFGS_HISTORY = 20


def _penalty(modules: list[torch.nn.Module], config: "TrainConfig") -> torch.Tensor:
    """The penalty on every parameter with more than one dimension (weights, not biases)."""
    total = torch.zeros((), device=next((p.device for m in modules for p in m.parameters()), None))
    eps = config.l1_smoothing
    for module in modules:
        for parameter in module.parameters():
            if parameter.dim() > 1:
                if config.penalty == "l1":
                    # Smoothed so that L-BFGS (which needs a gradient everywhere) applies; exact
                    # L1 needs a proximal or orthant-wise method that torch does not ship.
                    total = total + (torch.sqrt(parameter * parameter + eps * eps) - eps).sum()
                else:
                    total = total + parameter.pow(2).sum()
    return total


def _epoch(encoder, head, optimizer, features, labels, config, generator, rows_used, weights=None,
           objective=None) -> float:
    """One pass of mini-batch steps over ``rows_used`` (indices into ``features``/``labels``).

    ``objective``: :func:`comorbid.distributed.data_parallel` of the modules; each rank then
    computes the loss of its shard of every batch (its share of the batch's mean loss).
    """
    encoder.train()
    head.train()
    dtype = _label_dtype(features)
    device = resolve_device(config.device)
    order = rows_used[torch.randperm(len(rows_used), generator=generator).numpy()]
    objective = objective or distributed.data_parallel([])
    total = 0.0
    for start in range(0, len(order), config.batch_size):
        rows = order[start : start + config.batch_size]
        part = distributed.shard(rows)  # all of ``rows`` in one process
        share = distributed.shard_share(part, rows, weights)
        losses = []

        def compute():
            if len(part) == 0:  # fewer rows in this batch than ranks
                losses.append(0.0)
                return distributed.zero_loss([encoder, head])
            loss = head.nll(encoder(batch_to(features[part], device)), _labels(labels, part, dtype).to(device),
                            None if weights is None else weights[part])
            losses.append(loss.item() * share)
            value = loss * share if share != 1.0 else loss
            if config.weight_decay and distributed.is_main():  # the penalty once, on rank 0
                value = value + config.weight_decay * _penalty([encoder, head], config) * len(rows) / len(order)
            return value

        optimizer.zero_grad()
        objective(compute).backward()
        optimizer.step()
        total += losses[-1] * len(rows)
    return float(distributed.all_reduce_sum(torch.tensor(total, dtype=torch.float64))) / max(len(order), 1)


@torch.no_grad()
def evaluate_nll(encoder: Encoder, head: Head, features, labels, batch_size=512,
                 device: torch.device | None = None) -> float:
    """Mean NLL of rows ``[N]`` (``features`` a tensor or a scipy matrix, ``labels`` 0/1),
    computed on ``device`` (default the CPU)."""
    encoder.eval()
    head.eval()
    device = device or torch.device("cpu")
    total = 0.0
    n = _n_rows(features)
    mine = distributed.shard(np.arange(n))  # under torchrun: this rank's rows; the sum is all-reduced
    for start in range(0, len(mine), batch_size):
        rows = mine[start : start + batch_size]
        y = _labels(labels, rows, _label_dtype(features)).to(device)
        total += head.nll(encoder(batch_to(features[rows], device)), y).item() * len(rows)
    return float(distributed.all_reduce_sum(torch.tensor(total, dtype=torch.float64))) / max(n, 1)


def _parameter_count(*modules: torch.nn.Module) -> int:
    return sum(parameter.numel() for module in modules for parameter in module.parameters())


def train_head(
    encoder: Encoder,
    head: Head,
    features: torch.Tensor,
    labels: np.ndarray,
    label_names: list[str],
    config: TrainConfig,
    progress: Progress | None = None,
    description: str = "training",
) -> dict[str, Any]:
    """Prepare ``head`` on the training labels ``[N, M]`` (label order, initial biases) and train it
    with ``encoder`` on ``features [N, D]`` (:func:`fit`): the one training route of every head.

    A bag of heads (:class:`comorbid.heads.bagging.BaggedHead`, from ``ensemble=K`` or
    ``model="bagging"``) is trained member by member, member ``r`` on its own bootstrap sample of
    the rows with seed ``config.seed + r`` (Breiman, "Bagging predictors", Machine Learning 1996);
    the encoder is fixed then, so it must have no trainable parameters. Returns :func:`fit`'s
    history, or ``{"members": [history, ...]}`` for a bag.
    """
    if not isinstance(head, BaggedHead):
        head.prepare(labels, label_names)
        return fit(encoder, head, features, labels, config, progress, description)
    if any(parameter.requires_grad for parameter in encoder.parameters()):
        raise ValueError(
            f"An ensemble of {len(head.members)} needs an encoder without trainable parameters (clinical, tfidf, "
            f"sentence with hidden=0, mlp with hidden=[]); the {encoder.name} encoder has some"
        )
    histories = []
    for index, member in enumerate(head.members):
        rows = bootstrap_rows(len(labels), index, config.seed)
        member.prepare(labels[rows], label_names)
        member_config = replace(config, seed=config.seed + index)
        histories.append(fit(encoder, member, features[rows], labels[rows], member_config, progress,
                             f"{description} member {index + 1}/{len(head.members)}"))
    return {"members": histories}


#: Up to this many label cells (rows x labels) the validation split is iteratively stratified
#: (:func:`comorbid.data.splits.train_validation_split`, which keeps rare labels on both sides);
#: beyond, it is a random share of the rows (:func:`random_validation_split`): the stratification
#: walks the label matrix row by row, and at tens of thousands of rows a random 5% already
#: holds the labels that matter to the validation loss.
STRATIFY_MAX_CELLS = 4_000_000


def random_validation_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, validation)`` row indices, ``round(fraction n)`` (at least 1) random rows
    validating, drawn by ``seed``."""
    order = np.random.default_rng(seed).permutation(n)
    n_validation = min(n - 1, max(1, int(round(fraction * n))))
    return np.sort(order[n_validation:]).astype(np.int64), np.sort(order[:n_validation]).astype(np.int64)


def fit(
    encoder: Encoder,
    head: Head,
    features: torch.Tensor,
    labels: np.ndarray,
    config: TrainConfig,
    progress: Progress | None = None,
    description: str = "training",
) -> dict[str, Any]:
    """Train ``encoder`` and ``head`` in place on ``features [N, D]`` and ``labels [N, M]``.

    Returns a small history: the epochs run, the chosen epoch and the losses.
    """
    device = resolve_device(config.device)
    encoder.to(device)
    head.to(device)
    weights = row_weights(labels, config.balance)
    if weights is not None:
        weights = torch.as_tensor(weights, dtype=_label_dtype(features), device=device)
    trainable_encoder = any(True for _ in encoder.parameters())
    lbfgs_bytes = _parameter_count(encoder, head) * 4 * (2 * LBFGS_HISTORY + 6)
    if config.optimizer == "lbfgs" or (config.optimizer == "auto" and not trainable_encoder
                                       and lbfgs_bytes <= LBFGS_MAX_BYTES):
        return fit_lbfgs(encoder, head, features, labels, config, progress, description, weights)
    # Under torchrun each rank draws its own dropout masks (the weights come from rank 0).
    torch.manual_seed(config.seed + distributed.rank())
    generator = torch.Generator().manual_seed(config.seed)
    initial = (copy.deepcopy(encoder.state_dict()), copy.deepcopy(head.state_dict()))
    use_validation = config.validation_fraction > 0 and len(labels) >= 10
    if use_validation and labels.shape[0] * labels.shape[1] > STRATIFY_MAX_CELLS:
        train_rows, validation_rows = random_validation_split(len(labels), config.validation_fraction, config.seed)
    elif use_validation:
        train_rows, validation_rows = train_validation_split(labels, config.validation_fraction, seed=config.seed)
    else:
        train_rows, validation_rows = np.arange(len(labels)), np.arange(0)
    train_rows, validation_rows = np.asarray(train_rows), np.asarray(validation_rows)
    history: dict[str, Any] = {"train_loss": [], "validation_loss": []}
    task = None
    if progress is not None:
        task = progress.add_task(description, total=config.epochs, status="")

    objective = distributed.data_parallel([encoder, head])  # compute() itself in one process
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=config.learning_rate)
    best = (math.inf, 0, None)
    for epoch in range(1, config.epochs + 1):
        history["train_loss"].append(
            _epoch(encoder, head, optimizer, features, labels, config, generator, train_rows, weights, objective))
        status = f"loss {history['train_loss'][-1]:.4f}"
        if use_validation:
            loss = evaluate_nll(encoder, head, features[validation_rows], labels[validation_rows], device=device)
            history["validation_loss"].append(loss)
            status += f" val {loss:.4f}"
            if loss < best[0] - 1e-6:
                best = (loss, epoch, (copy.deepcopy(encoder.state_dict()), copy.deepcopy(head.state_dict())))
        if progress is not None:
            progress.update(task, advance=1, status=status)
        if use_validation and epoch - best[1] >= config.patience:
            break
    history["epochs_run"] = epoch
    history["best_epoch"] = best[1] if use_validation else epoch

    if use_validation and config.refit:
        # Train again from the same start on every row for the chosen number of epochs.
        encoder.load_state_dict(initial[0])
        head.load_state_dict(initial[1])
        optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=config.learning_rate)
        if progress is not None:
            progress.update(task, completed=0, total=history["best_epoch"], status="refit on all rows")
        for _ in range(history["best_epoch"]):
            _epoch(encoder, head, optimizer, features, labels, config, generator, np.arange(len(labels)), weights,
                   objective)
            if progress is not None:
                progress.update(task, advance=1)
    elif use_validation:
        encoder.load_state_dict(best[2][0])
        head.load_state_dict(best[2][1])
    if progress is not None:
        progress.remove_task(task)
    encoder.eval()
    head.eval()
    return history


def fit_lbfgs(encoder, head, features, labels, config: TrainConfig, progress=None, description="training",
              weights: torch.Tensor | None = None):
    """Full-batch L-BFGS with a strong-Wolfe line search on mean NLL + weight_decay * ||W||^2.

    Under torchrun each rank evaluates its shard of the rows; the gradient is summed by DDP and
    the objective all-reduced, so that every rank's line search sees the one-process values.
    """
    torch.manual_seed(config.seed)
    if distributed.active():
        every = np.arange(_n_rows(features))
        part = distributed.shard(every)
        share = distributed.shard_share(part, every, weights)
        features, labels = features[part], labels[part]
        weights = None if weights is None else weights[part]
    device = resolve_device(config.device)
    y = torch.as_tensor(labels, dtype=_label_dtype(features), device=device)
    features = batch_to(features, device)
    encoder.train()
    head.train()
    parameters = [*encoder.parameters(), *head.parameters()]
    optimizer = torch.optim.LBFGS(
        parameters, lr=1.0, max_iter=config.max_iterations, history_size=20,
        tolerance_grad=1e-6, tolerance_change=1e-9, line_search_fn="strong_wolfe",
    )
    task = progress.add_task(description, total=config.max_iterations, status="") if progress is not None else None
    losses: list[float] = []
    data_parallel = distributed.data_parallel([encoder, head])

    def closure():
        optimizer.zero_grad()
        if not distributed.active():
            loss = head.nll(encoder(features), y, weights)
            objective = loss + config.weight_decay * _penalty([encoder, head], config)
            objective.backward()
            losses.append(loss.item())
        else:
            loss, objective = _sharded_objective(data_parallel, encoder, head, features, y, weights, share, config)
            losses.append(loss)
        if progress is not None:
            progress.update(task, completed=min(len(losses), config.max_iterations), status=f"loss {losses[-1]:.4f}")
        return objective

    optimizer.step(closure)
    if progress is not None:
        progress.remove_task(task)
    encoder.eval()
    head.eval()
    return {"optimizer": "lbfgs", "evaluations": len(losses), "train_loss": losses[-1] if losses else None}


def _sharded_objective(data_parallel, encoder, head, features, y, weights, share, config):
    """This rank's part of the full-batch objective, backpropagated (DDP sums the gradients),
    and the all-reduced values ``(mean NLL, objective)`` of the whole batch, the same on every rank."""
    def compute():
        if len(y) == 0:
            return distributed.zero_loss([encoder, head]), torch.zeros(())
        loss = head.nll(encoder(features), y, weights) * share
        value = loss + config.weight_decay * _penalty([encoder, head], config) if distributed.is_main() else loss
        return value, loss.detach()

    value, loss = data_parallel(compute)
    value.backward()
    totals = distributed.all_reduce_sum(torch.stack([loss.to(torch.float64), value.detach().to(torch.float64)]))
    return float(totals[0]), totals[1].to(value.dtype)
