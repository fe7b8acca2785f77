"""Why a code was suggested: its probability and the words/phrases of the note that drove it.

Three methods, all citing character spans of the ORIGINAL note (``note[start:end] == text``):

* ``"linear"`` (a bag-of-words encoder without hidden layer, ``tfidf`` or ``clinical``, under a
  head whose codes have linear logits ``u_j = W_j . x + b_j``: ``independent``, ``chain``,
  ``ising``): a word's weight is its share of ``W_j . x``, the code's log-odds from the note's
  features: each present feature (word, section-tagged word, bigram, character n-gram) is
  traced back to the words that made it (:mod:`comorbid.encoders.spans`) and its term
  ``W[j, f] x_f`` shared among them; a phrase's weight is the sum of its words'. For the
  independent model this is exactly how much of the code's logit the word carries (deleting a
  word that nothing else repeats lowers the logit by that much); for the chain it is the code's
  own evidence, the label-on-label terms left out. The cost is one featurisation of the batch
  and a sparse product per note: about what decoding costs. Weights are in log-odds (nats).
* ``"occlusion"`` (any model; Zeiler & Fergus, "Visualizing and Understanding Convolutional
  Networks", ECCV 2014, applied to text as by Li, Monroe & Jurafsky, "Understanding Neural
  Networks through Representation Erasure", 2016): each word, and each phrase (a clause cut at
  sentence punctuation and commas), is deleted from the note in turn; the drop of the code's
  marginal probability ``p(y_j = 1 | note) - p(y_j = 1 | note without the span)`` is that
  span's weight. It sees the model only through ``marginals(texts)``, so it works the same
  whatever the encoder's text pipeline (negation, sections, embeddings). Cost: one forward pass
  per word and phrase of each note (about 28 for a CMC 2007 report: with Monte Carlo marginals,
  28 times the cost of predicting).
* ``"attention"`` (CAML only; Mullenbach et al., NAACL 2018): the code's label-wise attention
  over the note's positions; each cited span is the convolution window at a top position, and
  its weight the attention it got.

``"auto"`` (the default) is ``"linear"`` where it applies, else ``"occlusion"``.

Every suggested code whose note has at least one word cites at least one span (its best one,
even when weak); further spans need ``weight >= min_weight``. A code can be suggested with no
textual evidence (an empty note): its evidence list is then empty.

Output (one dict per note, what ``comorbid predict --explain FILE.jsonl`` writes per line)::

    {"id": "97636670", "text": "<the note>", "labels": ["786.2"],
     "codes": [{"code": "786.2", "description": "Cough", "probability": 0.93,
                "evidence": [{"start": 0, "end": 5, "text": "Cough", "weight": 0.41, "kind": "word"}]}]}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from comorbid.text import split_sentences, word_spans

METHODS = ("auto", "linear", "occlusion", "attention")
#: The weight a span needs, beyond the first one cited, per method: occlusion's Monte Carlo
#: marginals are noisy at about 0.01; a log-odds share of 0.1 moves the odds by 10%.
MIN_WEIGHT = {"linear": 0.1, "occlusion": 0.01, "attention": 0.01}
#: Notes predicted and explained together by :func:`explain`.
BATCH_NOTES = 256


@dataclass
class Evidence:
    """A span of the note: ``note[start:end] == text``; ``weight`` as the method defines it;
    ``kind`` ``"word"``, ``"phrase"`` (occlusion) or ``"attention"`` (a CAML window)."""

    start: int
    end: int
    text: str
    weight: float
    kind: str


@dataclass
class CodeExplanation:
    code: str
    description: str | None
    probability: float
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class NoteExplanation:
    id: str
    text: str
    codes: list[CodeExplanation]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "labels": [c.code for c in self.codes],
                "codes": [asdict(c) for c in self.codes]}


def label_descriptions(label_names: Sequence[str]) -> dict[str, str | None]:
    """ICD descriptions of the labels when they are ICD codes (``None`` for others)."""
    from comorbid import icd

    try:
        system = icd.detect_system(list(label_names))
    except ValueError:
        return {name: None for name in label_names}
    out: dict[str, str | None] = {}
    for name in label_names:
        try:
            out[name] = icd.describe(name, system)
        except ValueError:
            out[name] = None
    return out


def occlusion_units(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, kind)`` of the words and phrases of ``text`` that occlusion deletes.

    Words: :func:`comorbid.text.word_spans` (without the "?" cue). Phrases: clauses of
    :func:`comorbid.text.split_sentences`, cut again at commas, trimmed of trailing punctuation,
    kept when they hold two words or more (a one-word phrase is that word).
    """
    words = [(s, e) for s, e in word_spans(text) if text[s:e] != "?"]
    units = [(s, e, "word") for s, e in words]
    seen = set()
    for start, end in split_sentences(text):
        piece_start = start
        for cut in [*(i for i in range(start, end) if text[i] == ","), end]:
            inside = [(s, e) for s, e in words if piece_start <= s and e <= cut]
            if len(inside) >= 2 and (inside[0][0], inside[-1][1]) not in seen:
                seen.add((inside[0][0], inside[-1][1]))
                units.append((inside[0][0], inside[-1][1], "phrase"))
            piece_start = cut + 1
    return units


def _select(candidates: list[Evidence], top_words: int, top_phrases: int, min_weight: float) -> list[Evidence]:
    """The best spans of each kind (always the single best one), by weight."""
    ranked = sorted(candidates, key=lambda e: (-e.weight, e.start, e.end))
    chosen: list[Evidence] = []
    quota = {"word": top_words, "phrase": top_phrases, "attention": top_words}
    for item in ranked:
        if chosen and item.weight < min_weight:
            break
        overlaps = item.kind == "attention" and any(c.start < item.end and item.start < c.end for c in chosen)
        if quota.get(item.kind, 0) > 0 and not overlaps:  # attention windows overlap: keep apart
            chosen.append(item)
            quota[item.kind] -= 1
    return chosen


def _marginals(model, texts: list[str]) -> np.ndarray:
    # Seeded: Monte Carlo marginals (chains of many labels) give the same numbers on every run.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return model.marginals(texts)


def linear_applies(model) -> bool:
    """Whether the ``"linear"`` method explains ``model``: a bag-of-words encoder without hidden
    layer (features ``x [B, d]``) under a head with a ``linear`` layer giving each code's logit."""
    encoder, head = model.encoder_, model.head_
    linear = getattr(head, "linear", None)
    return (getattr(head, "linear_logits", False) and getattr(encoder, "vectorizers", None) is not None and getattr(encoder, "hidden_layer", 1) is None
            and not encoder.per_label and isinstance(linear, torch.nn.Linear)
            and linear.out_features == len(model.label_names_) and linear.in_features == encoder.output_dim)


def resolve_method(model, method: str) -> str:
    """``method`` checked against ``model``; ``"auto"``: ``"linear"`` where it applies, else ``"occlusion"``."""
    if method not in METHODS:
        raise ValueError(f"Expected method one of {', '.join(METHODS)}, got {method!r}")
    if not model.encoder_.reads_text:
        raise ValueError("Explanations need a model trained on texts")
    if method == "auto":
        return "linear" if linear_applies(model) else "occlusion"
    if method == "attention" and not hasattr(model.encoder_, "attention"):
        raise ValueError(f"method='attention' needs the caml encoder; this model's is {model.encoder_.name!r} "
                         "(use method='occlusion')")
    if method == "linear" and not linear_applies(model):
        raise ValueError(f"method='linear' needs a bag-of-words encoder without hidden layer (tfidf, clinical) "
                         f"under a head with linear code logits (independent, chain, ising); this model is "
                         f"{model.model} / {model.encoder_.name} (use method='occlusion')")
    return method


def explain(
    model,
    texts: Sequence[str],
    ids: Sequence[str] | None = None,
    decode: str = "hamming",
    method: str = "auto",
    top_words: int = 3,
    top_phrases: int = 1,
    min_weight: float | None = None,
    notes_per_batch: int = 16,
    progress=None,
) -> list[NoteExplanation]:
    """The suggested codes of each note with their marginal probability and evidence spans.

    Args:
        model: a trained :class:`comorbid.model.MultiLabelModel` on texts.
        texts: the notes ``[N]``.
        ids: their ids (default ``"0"``, ``"1"``, ...).
        decode: the decoder whose label set is explained.
        method: ``"auto"`` (default), ``"linear"``, ``"occlusion"`` (any model) or ``"attention"`` (CAML).
        top_words: words (or attention windows) cited per code at most.
        top_phrases: phrases cited per code at most (linear, occlusion).
        min_weight: weight a span needs beyond the first one cited (default :data:`MIN_WEIGHT`
            of the method).
        notes_per_batch: occlusion: notes whose occluded copies go through the model together.
        progress: a rich ``Progress`` to show the notes explained on (optional).

    Returns:
        One :class:`NoteExplanation` per note, codes in label order.
    """
    texts = list(texts)
    if any(not isinstance(t, str) for t in texts):
        raise ValueError("Explanations cite spans of texts: expected a list of str inputs")
    method = resolve_method(model, method)
    ids = [str(i) for i in range(len(texts))] if ids is None else [str(i) for i in ids]
    if len(ids) != len(texts):
        raise ValueError(f"Expected {len(texts)} ids (one per text), got {len(ids)}")
    task = progress.add_task("explaining", total=len(texts), status="") if progress is not None else None
    out: list[NoteExplanation] = []
    for first in range(0, len(texts), BATCH_NOTES):
        chunk = texts[first : first + BATCH_NOTES]
        # one distribution per batch gives the decoder's sets and the probabilities shown
        predicted, marginals = model.predict_with_marginals(chunk, [decode])
        out += explain_batch(model, chunk, ids[first : first + BATCH_NOTES], predicted[decode], marginals, method,
                             top_words, top_phrases, min_weight, notes_per_batch)
        if task is not None:
            progress.advance(task, len(chunk))
    return out


def explain_batch(model, texts: list[str], ids: Sequence[str], predicted: np.ndarray, marginals: np.ndarray,
                  method: str = "auto", top_words: int = 3, top_phrases: int = 1, min_weight: float | None = None,
                  notes_per_batch: int = 16) -> list[NoteExplanation]:
    """:func:`explain` of notes already predicted: ``predicted [B, M]`` the decoder's label sets
    and ``marginals [B, M]`` from the same pass (what ``comorbid predict`` streams)."""
    method = resolve_method(model, method)
    min_weight = MIN_WEIGHT[method] if min_weight is None else min_weight
    descriptions = label_descriptions(model.label_names_)
    evidence: list[dict[int, list[Evidence]]] = []
    if method == "linear":
        evidence = _linear(model, texts, marginals, predicted, notes_per_batch)
    else:
        for first in range(0, len(texts), notes_per_batch):
            rows = slice(first, first + notes_per_batch)
            if method == "occlusion":
                evidence += _occlusion(model, texts[rows], marginals[rows], predicted[rows])
            else:
                evidence += _attention(model, texts[rows], predicted[rows])
    out = []
    for i, found in enumerate(evidence):
        codes = [
            CodeExplanation(
                code=model.label_names_[j],
                description=descriptions[model.label_names_[j]],
                probability=round(float(marginals[i, j]), 6),
                evidence=_select(found.get(j, []), top_words, top_phrases, min_weight),
            )
            for j in np.flatnonzero(predicted[i])
        ]
        out.append(NoteExplanation(str(ids[i]), texts[i], codes))
    return out


def _linear(model, texts, marginals, predicted, notes_per_batch) -> list[dict[int, list[Evidence]]]:
    """For each note, each suggested label -> every token and phrase with its log-odds share
    (notes whose features cannot be traced to words fall back to occlusion)."""
    from comorbid.encoders.spans import token_feature_shares

    features = model.encoder_.featurize(texts)
    weight = model.head_.linear.weight.detach().cpu().numpy() / float(getattr(model.head_, "temperature", 1.0))
    found: list[dict[int, list[Evidence]]] = [{} for _ in texts]
    untraced = []
    for n, text in enumerate(texts):
        labels = np.flatnonzero(predicted[n])
        if not len(labels):
            continue
        row = features[n]
        traced = token_feature_shares(model.encoder_, text, row)
        if traced is None:
            untraced.append(n)
            continue
        spans, shares = traced
        if not spans:
            continue
        per_token = np.asarray(shares.multiply(row).tocsr() @ weight[labels].T)  # [T, |labels|]
        units = [(s, e, "word") for s, e in spans]
        phrases = [(s, e) for s, e, kind in occlusion_units(text) if kind == "phrase"]
        starts, ends = np.array([s for s, _ in spans]), np.array([e for _, e in spans])
        inside = [np.flatnonzero((starts >= s) & (ends <= e)) for s, e in phrases]
        values = [per_token[k] for k in range(len(spans))] + [per_token[rows].sum(0) for rows in inside]
        units += [(s, e, "phrase") for s, e in phrases]
        for column, j in enumerate(labels):
            found[n][j] = [Evidence(s, e, text[s:e], round(float(value[column]), 6), kind)
                           for (s, e, kind), value in zip(units, values)]
    for first in range(0, len(untraced), notes_per_batch):
        rows = untraced[first : first + notes_per_batch]
        for n, part in zip(rows, _occlusion(model, [texts[n] for n in rows], marginals[rows], predicted[rows])):
            found[n] = part
    return found


def _occlusion(model, texts, marginals, predicted) -> list[dict[int, list[Evidence]]]:
    """For each note, each suggested label -> every unit with its drop in probability."""
    variants: list[str] = []
    owners: list[tuple[int, int, int, str]] = []  # (note, start, end, kind) of each variant
    for n, text in enumerate(texts):
        if not predicted[n].any():
            continue
        for start, end, kind in occlusion_units(text):
            # A space, not nothing, in place of the span: the words around it stay apart.
            variants.append(text[:start] + " " + text[end:])
            owners.append((n, start, end, kind))
    found: list[dict[int, list[Evidence]]] = [{} for _ in texts]
    if not variants:
        return found
    occluded = _marginals(model, variants)
    for (n, start, end, kind), row in zip(owners, occluded):
        for j in np.flatnonzero(predicted[n]):
            weight = round(float(marginals[n, j] - row[j]), 6)
            found[n].setdefault(j, []).append(Evidence(start, end, texts[n][start:end], weight, kind))
    return found


def _attention(model, texts, predicted) -> list[dict[int, list[Evidence]]]:
    found: list[dict[int, list[Evidence]]] = []
    for text, labels, (alpha, windows) in zip(texts, predicted, model.encoder_.attention(texts)):
        per_label: dict[int, list[Evidence]] = {}
        for j in np.flatnonzero(labels):
            spans: dict[tuple[int, int], float] = {}
            for position, (start, end) in enumerate(windows):
                spans[(start, end)] = spans.get((start, end), 0.0) + float(alpha[j, position])
            per_label[j] = [Evidence(s, e, text[s:e], round(w, 6), "attention") for (s, e), w in spans.items()]
        found.append(per_label)
    return found
