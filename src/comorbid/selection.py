"""``model="auto"`` for feature matrices: choose the model on an inner split of the training rows.

A linear model on standardised features is a poor default for an arbitrary numeric table, and no
single non-linear model wins on every table, so for numeric (and one-hot nominal) data the model
is chosen by measurement: each candidate of a small fixed list (:data:`CANDIDATES`) is trained on
80 % of the *training* rows (a stratified split, :func:`comorbid.data.train_validation_split`)
and scored on the other 20 %; the best is trained again on all the training rows. No test row is
ever seen: under ``comorbid cv`` the selection runs inside each training fold.

The score is the subset accuracy of each candidate's mode (the ``subset`` decoder: the most
probable label set), the quantity a joint model over label sets is for; ties go to the earlier,
cheaper candidate. The time budget (:data:`TIME_BUDGET_S`) bounds the selection: candidates are
tried in order, and once the budget is spent no further candidate starts (the first always runs),
so the selection takes at most the budget plus one candidate, then one training on all the rows.

Texts keep their default unchanged (the ``chain`` model on the ``clinical`` encoder, or the
encoder named): nothing is chosen for them.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from comorbid.data import MultiLabelDataset, train_validation_split
from comorbid.evaluation import evaluate_predictions
from comorbid.model import MultiLabelModel
from comorbid.spec import ModelSpec

#: Seconds of candidate training after which no further candidate starts.
TIME_BUDGET_S = 300.0
#: Share of the training rows held out to score the candidates.
VALIDATION_FRACTION = 0.2
#: The model a text dataset gets for ``model="auto"`` (the CLI's default before ``auto`` existed).
TEXT_MODEL = "chain"


@dataclass(frozen=True)
class Candidate:
    """One model :class:`AutoModel` may choose: a head on an encoder with its training settings."""

    name: str
    model: str
    encoder: str
    encoder_options: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)


_MLP = {"hidden": [512], "dropout": 0.5}
_MLP_TRAIN = {"learning_rate": 1e-3, "weight_decay": 1e-4}

#: The candidates for feature matrices, cheapest first (measured in benchmarks/results/inner_split
#: and benchmarks/results/scene.md / emotions.md, where the same settings are configurations).
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("chain linear", "chain", "mlp", {"hidden": []}, {"weight_decay": 1e-2}),
    Candidate("mixture mlp512", "mixture", "mlp", _MLP, _MLP_TRAIN),
    Candidate("powerset mlp512", "powerset", "mlp", _MLP, _MLP_TRAIN),
    Candidate("mixture rff+mlp512", "mixture", "rff", {"n_components": 2000, **_MLP}, _MLP_TRAIN),
    Candidate("powerset trees", "powerset", "trees", {}, {"weight_decay": 1e-2}),
)


def candidates_for(encoder: str, candidates: Sequence[Candidate] | None = None) -> list[Candidate]:
    """The ``candidates`` (default :data:`CANDIDATES`) on ``encoder`` (``"auto"``: all of them)."""
    candidates = CANDIDATES if candidates is None else candidates
    chosen = [c for c in candidates if encoder in ("auto", c.encoder)]
    if not chosen:
        raise ValueError(f"model='auto' has no candidate on the {encoder} encoder; its candidates use "
                         f"{', '.join(sorted({c.encoder for c in candidates}))} (or name a model)")
    return chosen


class AutoModel:
    """Chooses the model for ``spec`` (whose ``model`` is ``"auto"``) and trains it.

    ``fit`` returns the chosen :class:`MultiLabelModel`, trained on all the rows it was given,
    with ``auto_selection_`` set (what was tried, the scores, the choice; saved in config.json);
    a text dataset gets :data:`TEXT_MODEL` as before, with no selection.

    Args:
        spec: the user's settings; ``model="auto"`` (the placeholder model of the spec is
            ignored), the encoder ``"auto"`` or one of the candidates' encoders; its ``train``
            fields go on top of each candidate's, its encoder options on top of the candidate's
            when the encoder is named.
        candidates: what may be chosen (``None``: :data:`CANDIDATES`).
        budget_s: :data:`TIME_BUDGET_S`.
        validation_fraction: :data:`VALIDATION_FRACTION`.
    """

    def __init__(self, spec: ModelSpec, candidates: Sequence[Candidate] | None = None,
                 budget_s: float = TIME_BUDGET_S, validation_fraction: float = VALIDATION_FRACTION):
        self.spec = spec
        self.candidates = None if candidates is None else tuple(candidates)
        self.budget_s = budget_s
        self.validation_fraction = validation_fraction

    def _spec_of(self, candidate: Candidate) -> ModelSpec:
        user_train = dict(self.spec.train or {})
        encoder_options = dict(candidate.encoder_options)
        if self.spec.encoder != "auto":
            encoder_options.update(self.spec.encoder_options or {})
        return dataclasses.replace(self.spec, model=candidate.model, encoder=candidate.encoder,
                                   encoder_options=encoder_options, train={**candidate.train, **user_train})

    def fit(self, dataset: MultiLabelDataset, progress=None, description: str = "training",
            decoders: Sequence[Any] = ()) -> MultiLabelModel:
        if dataset.is_text:
            spec = dataclasses.replace(self.spec, model=TEXT_MODEL)
            model = MultiLabelModel.from_spec(spec).fit(dataset, progress=progress, description=description,
                                                       decoders=decoders)
            model.auto_selection_ = {"chosen": TEXT_MODEL, "reason": "texts: the default model, nothing chosen"}
            return model
        if self.spec.head_options:
            raise ValueError("model='auto' chooses among models with their own options: name a model to set "
                             f"head options ({', '.join(sorted(self.spec.head_options))})")
        candidates = candidates_for(self.spec.encoder, self.candidates)
        seed = self.spec.train_config("auto").seed
        inner_rows, validation_rows = train_validation_split(dataset.labels, self.validation_fraction, seed=seed)
        inner, validation = dataset.subset(inner_rows), dataset.subset(validation_rows)
        tried: list[dict[str, Any]] = []
        started = time.perf_counter()
        for candidate in candidates:
            elapsed = time.perf_counter() - started
            if tried and elapsed >= self.budget_s:
                tried.append({"name": candidate.name, "skipped": f"time budget ({self.budget_s:.0f} s) spent"})
                continue
            start = time.perf_counter()
            model = MultiLabelModel.from_spec(self._spec_of(candidate)).fit(
                inner, progress=progress, description=f"{description} auto: {candidate.name}")
            predictions = model.predict(validation, ["subset"])["subset"]
            score = evaluate_predictions(validation.labels, {"subset": predictions})["subset"]["subset_accuracy"]
            tried.append({"name": candidate.name, "subset_accuracy": float(score),
                          "seconds": round(time.perf_counter() - start, 3)})
        scored = [entry for entry in tried if "subset_accuracy" in entry]
        best = max(scored, key=lambda entry: (entry["subset_accuracy"], -scored.index(entry)))
        chosen = next(c for c in candidates if c.name == best["name"])
        spec = self._spec_of(chosen)
        model = MultiLabelModel.from_spec(spec).fit(dataset, progress=progress, description=description,
                                                   decoders=decoders)
        model.auto_selection_ = {
            "chosen": chosen.name, "model": chosen.model, "encoder": chosen.encoder,
            "encoder_options": dict(spec.encoder_options or {}), "train": dict(spec.train or {}),
            "score": "subset accuracy of the subset decoder on the validation rows",
            "training_rows": len(inner), "validation_rows": len(validation),
            "validation_fraction": self.validation_fraction, "seed": seed, "budget_s": self.budget_s,
            "selection_s": round(time.perf_counter() - started, 3), "candidates": tried,
        }
        return model


def describe(selection: Mapping[str, Any]) -> str:
    """One line saying what ``model="auto"`` chose and why."""
    if "candidates" not in selection:
        return f"auto: {selection['chosen']} ({selection.get('reason', '')})"
    scores = ", ".join(f"{c['name']} {c['subset_accuracy']:.3f}" if "subset_accuracy" in c
                       else f"{c['name']} skipped" for c in selection["candidates"])
    return (f"auto: chose {selection['chosen']} (subset accuracy on {selection['validation_rows']} held-out "
            f"training rows: {scores})")
