"""CAML: a text CNN with label-wise attention, for longer notes.

Mullenbach, Wiegreffe, Duke, Sun & Eisenstein, "Explainable Prediction of Medical Codes from
Clinical Text", NAACL 2018. For a note of ``L`` words:

    X = embeddings of the words                 [L, d_e]   (trained from scratch, no download)
    H = tanh(conv1d(X))                         [L, d_c]   (d_c filters of width k, 'same' padding)
    alpha_l = softmax_n(H u_l)                  [L]        (one attention vector u_l per label)
    v_l = sum_n alpha_l[n] H[n]                 [d_c]      -> features h = [v_1..v_M]  [M, d_c]

The output layer of the paper, ``y_l = sigmoid(beta_l . v_l + b_l)``, is the unary part of the
head on these per-label features (:func:`comorbid.heads.base.label_logits`), so the independent
head is CAML exactly and the chain head adds label-on-label weights on top.

The attention ``alpha_l`` says where in the note label ``l`` looked: :meth:`CAMLEncoder.attention`
gives it with the character span of each window, for ``comorbid.explain``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch import nn

from comorbid.encoders.base import Encoder
from comorbid.text import annotate, word_spans

PAD, UNKNOWN = 0, 1


class CAMLEncoder(Encoder):
    """Word embeddings -> convolution -> per-label attention: features ``[B, M, filters]``.

    Tokens are the lower-cased words of :func:`comorbid.text.word_spans` (optionally marked
    ``neg_``/``unc_`` inside NegEx negation/uncertainty scopes, :func:`comorbid.text.annotate`),
    so every position maps back to a character span of the note.

    Args:
        embedding_dim: ``d_e``.
        filters: ``d_c``, the number of convolution filters (the feature size per label).
        kernel_size: ``k``, words per convolution window.
        dropout: dropout on the word embeddings (the paper's 0.2).
        min_count: training occurrences a word needs to get its own embedding (others share
            the unknown word's).
        max_vocab: vocabulary cap (most frequent words).
        max_length: words kept per note (the rest is cut; the paper used 2500 on MIMIC-III).
        negation: mark words in negation/uncertainty scopes.
    """

    name = "caml"
    reads_text = True
    per_label = True
    # Mini-batch Adam with a short patience: a few minutes for 5 folds of CMC 2007 on one core.
    train_defaults = {"optimizer": "adam", "learning_rate": 3e-3, "epochs": 40, "patience": 4, "batch_size": 16}

    def __init__(self, embedding_dim: int = 64, filters: int = 64, kernel_size: int = 5, dropout: float = 0.2,
                 min_count: int = 2, max_vocab: int = 20000, max_length: int = 2500, negation: bool = True):
        for option, value in (("embedding_dim", embedding_dim), ("filters", filters), ("kernel_size", kernel_size),
                              ("max_vocab", max_vocab), ("max_length", max_length)):
            if value < 1:
                raise ValueError(f"Expected {option} >= 1, got {value}")
        super().__init__(embedding_dim=embedding_dim, filters=filters, kernel_size=kernel_size, dropout=dropout,
                         min_count=min_count, max_vocab=max_vocab, max_length=max_length, negation=negation)
        self.vocabulary: list[str] = []
        self.index: dict[str, int] = {}
        self.n_labels = 0

    # ------------------------------------------------------------------ preprocessing
    def tokens(self, text: str) -> list[tuple[str, int, int]]:
        """``(token, start, end)`` of the words of ``text`` (``text[start:end]`` is the word)."""
        if self.options["negation"]:
            prefixes = {"negated": "neg_", "uncertain": "unc_", "affirmed": ""}
            found = [(prefixes[t.status] + t.text.lower(), t.start, t.end) for t in annotate(text)]
        else:
            found = [(text[s:e].lower(), s, e) for s, e in word_spans(text)]
        return found[: self.options["max_length"]]

    def fit(self, inputs: list[str], labels: Any = None) -> "CAMLEncoder":
        self.check_inputs(inputs)
        if labels is None:
            raise ValueError("The caml encoder needs the training labels [N, M] to fit (one attention per label)")
        counts = Counter(token for text in inputs for token, _, _ in self.tokens(text))
        frequent = [w for w, c in counts.items() if c >= self.options["min_count"]]
        frequent.sort(key=lambda w: (-counts[w], w))
        self._build(["<pad>", "<unk>", *frequent[: self.options["max_vocab"]]], int(labels.shape[1]))
        return self

    def _build(self, vocabulary: list[str], n_labels: int) -> None:
        o = self.options
        self.vocabulary = vocabulary
        self.index = {word: i for i, word in enumerate(vocabulary)}
        self.n_labels = n_labels
        self.embedding = nn.Embedding(len(vocabulary), o["embedding_dim"], padding_idx=PAD)
        self.embedding_dropout = nn.Dropout(o["dropout"])
        self.conv = nn.Conv1d(o["embedding_dim"], o["filters"], o["kernel_size"], padding="same")
        nn.init.xavier_uniform_(self.conv.weight)
        self.attention_vectors = nn.Parameter(torch.empty(n_labels, o["filters"]))  # u_l, [M, d_c]
        nn.init.xavier_uniform_(self.attention_vectors)
        self.output_dim = o["filters"]

    def featurize(self, inputs: list[str]) -> torch.Tensor:
        """Word ids ``[N, L]`` (``L`` the longest note, at least 1; 0 pads)."""
        self.check_inputs(inputs)
        if not self.vocabulary:
            raise RuntimeError("CAMLEncoder.featurize called before fit")
        rows = [[self.index.get(token, UNKNOWN) for token, _, _ in self.tokens(text)] for text in inputs]
        ids = torch.full((len(rows), max([1, *map(len, rows)])), PAD, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
        return ids

    # ------------------------------------------------------------------ network
    def _attend(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(H [B, L, d_c], alpha [B, L, M])`` for ids ``[B, L]`` trimmed to the longest row."""
        length = max(int((ids != PAD).sum(1).max()) if ids.numel() else 1, 1)
        ids = ids[:, :length]
        x = self.embedding_dropout(self.embedding(ids))  # [B, L, d_e]
        hidden = torch.tanh(self.conv(x.transpose(1, 2))).transpose(1, 2)  # [B, L, d_c]
        scores = hidden @ self.attention_vectors.T  # [B, L, M]
        # Pads get no attention; a note with no word attends uniformly (finite, not NaN).
        scores = scores.masked_fill((ids == PAD)[..., None], torch.finfo(scores.dtype).min)
        return hidden, torch.softmax(scores, dim=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Per-label features ``[B, M, d_c]`` of word ids ``[B, L]``."""
        hidden, alpha = self._attend(features)
        return torch.einsum("blm,bld->bmd", alpha, hidden)

    @torch.no_grad()
    def attention(self, texts: list[str]) -> list[tuple[torch.Tensor, list[tuple[int, int]]]]:
        """For each text: ``alpha [M, n]`` over its ``n`` word positions and the character span
        of the convolution window centred on each position (what that position's feature saw)."""
        was_training = self.training
        self.eval()
        out = []
        half_left, half_right = (self.options["kernel_size"] - 1) // 2, self.options["kernel_size"] // 2
        for text in texts:
            tokens = self.tokens(text)
            _, alpha = self._attend(self.featurize([text]))
            n = len(tokens)
            windows = [(tokens[max(0, p - half_left)][1], tokens[min(n - 1, p + half_right)][2]) for p in range(n)]
            out.append((alpha[0, :n].T.clone(), windows))
        self.train(was_training)
        return out

    # ------------------------------------------------------------------ persistence
    def fitted_state(self) -> dict[str, Any]:
        return {"output_dim": self.output_dim, "vocabulary": self.vocabulary, "n_labels": self.n_labels}

    def load_fitted_state(self, state: dict[str, Any]) -> None:
        self._build(list(state["vocabulary"]), int(state["n_labels"]))
