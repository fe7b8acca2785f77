"""Where tensors live: ``"cpu"``, ``"cuda"`` (or ``"cuda:1"``) or ``"auto"``, and moving a batch there.

Training and prediction run the encoder's network and the head on one torch device; features
are computed on the CPU (a vocabulary, scipy sparse matrices) and moved there one batch at a
time, a scipy CSR batch becoming a torch sparse CSR tensor on the device. Saved models hold
CPU tensors, so a model trained on a GPU loads on a machine without one.
"""

from __future__ import annotations

from typing import Any

import scipy.sparse as sp
import torch

#: The device names the CLI offers (``--device``); ``cuda:N`` is accepted too.
DEVICES = ("cpu", "cuda", "auto")


def resolve_device(spec: str | torch.device | None) -> torch.device:
    """The torch device of ``spec``: ``None`` or ``"cpu"`` the CPU, ``"auto"`` the first CUDA GPU
    when torch sees one (else the CPU), ``"cuda"``/``"cuda:N"`` that GPU.

    Raises:
        ValueError: an unknown name, or a CUDA device when torch sees no GPU.

    Example:
        >>> resolve_device("cpu"), resolve_device(None)
        (device(type='cpu'), device(type='cpu'))
    """
    if spec is None:
        return torch.device("cpu")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        raise ValueError(f"Expected a device cpu, cuda, cuda:N or auto, got {spec!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"Expected a device cpu, cuda, cuda:N or auto, got {spec!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"Device {spec!r} asked for, but torch sees no CUDA GPU here "
                             "(torch.cuda.is_available() is False); use cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"Device {spec!r} asked for, but torch sees {torch.cuda.device_count()} GPU(s)")
    return device


def batch_to(features: Any, device: torch.device) -> Any:
    """A batch of features on ``device``: a tensor moved, a scipy sparse matrix as a torch sparse
    CSR tensor (:func:`comorbid.encoders.base.to_torch`), anything else (texts) as it is. On the
    CPU the batch is returned unchanged, so CPU training is exactly what it was."""
    if device.type == "cpu":
        return features
    if sp.issparse(features):
        from comorbid.encoders.base import to_torch

        return to_torch(features).to(device)
    if isinstance(features, torch.Tensor):
        return features.to(device)
    return features


def module_device(*modules: torch.nn.Module) -> torch.device:
    """The device of the first parameter or buffer of ``modules`` (the CPU when they have none)."""
    for module in modules:
        for tensor in (*module.parameters(), *module.buffers()):
            return tensor.device
    return torch.device("cpu")
