"""An HTTP service that codes notes with a saved model: ``comorbid serve MODEL_DIR``.

FastAPI + uvicorn (the ``serve`` extra: ``pip install comorbid[serve]``); both are imported
only here, so the rest of the library works without them. See ``docs/serve.md``.

Endpoints: ``POST /v1/code`` (codes, probabilities, descriptions, top scores, evidence),
``GET /v1/model`` (codes and a model card), ``GET /healthz``; OpenAPI docs at ``/docs``.

Concurrent requests are coded together: :class:`Batcher` queues them and runs one
``predict_with_marginals`` over the notes of several requests (up to ``max_batch_notes``
notes, waiting at most ``max_wait_ms`` for more after the first one), in a thread, so the event
loop keeps answering. Every use of the model goes through one worker thread: batches and
explanations never run at the same time (occlusion reseeds torch's global generator).
"""

import asyncio
import json
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

import comorbid
from comorbid.decoders import DECODERS
from comorbid.decoders.base import Decoder
from comorbid.metrics.utility import UTILITIES
from comorbid.model import MultiLabelModel

CONFIG_ENVIRONMENT = "COMORBID_SERVE_CONFIG"  # how `--workers N` hands the settings to each worker


@dataclass(frozen=True)
class ServeLimits:
    """What one server accepts and how it batches.

    Attributes:
        max_body_bytes: request bodies larger than this get 413.
        max_notes_per_request: more notes in one request get 422.
        max_note_chars: a longer note gets 422.
        max_explain_notes: ``explain: true`` with more notes gets 422 (where the linear trace-back
            does not apply, occlusion runs the model once per word and phrase of a note).
        max_scores_top: ``scores_top`` above this gets 422.
        max_batch_notes: notes coded in one forward pass at most (a single larger request still
            goes in one pass).
        max_wait_ms: how long a batch waits for more requests after its first one.
        max_queue_requests: requests waiting for a batch at most; more get 503.
    """

    max_body_bytes: int = 1_000_000
    max_notes_per_request: int = 64
    max_note_chars: int = 20_000
    max_explain_notes: int = 8
    max_scores_top: int = 1000
    max_batch_notes: int = 64
    max_wait_ms: float = 5.0
    max_queue_requests: int = 256

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not value > 0:
                raise ValueError(f"Expected serve limit {name} > 0, got {value}")


# ---------------------------------------------------------------------------- batching
class QueueFull(Exception):
    """The batcher holds ``max_queue_requests`` requests already (HTTP 503)."""


@dataclass
class _Job:
    texts: list[str]
    decode: str
    future: asyncio.Future


@dataclass
class BatchResult:
    """One request's rows of a batch: label sets ``[n, M]`` (0/1) and marginals ``[n, M]``."""

    sets: np.ndarray
    marginals: np.ndarray


@dataclass
class BatchStats:
    batches: int = 0
    notes: int = 0
    largest_batch: int = 0


class Batcher:
    """Collects requests from an asyncio queue and codes them in one call of ``predict``.

    Args:
        predict: ``(texts [N], decoder specs) -> ({spec: sets [N, M]}, marginals [N, M])``,
            run in ``executor`` (e.g. ``model.predict_with_marginals``).
        executor: where ``predict`` runs (one thread: calls never overlap).
        max_batch_notes: notes per call at most; a request is never split.
        max_wait_ms: after the first request of a batch, how long to wait for more.
        max_queue_requests: :meth:`submit` raises :class:`QueueFull` beyond this.
    """

    def __init__(self, predict: Callable, executor: ThreadPoolExecutor, max_batch_notes: int, max_wait_ms: float,
                 max_queue_requests: int):
        self.predict = predict
        self.executor = executor
        self.max_batch_notes = max_batch_notes
        self.max_wait = max_wait_ms / 1000.0
        self.queue: asyncio.Queue[Optional[_Job]] = asyncio.Queue(maxsize=max_queue_requests)
        self.stats = BatchStats()
        self._held: Optional[_Job] = None  # a job that did not fit the last batch: first of the next
        self._task: Optional[asyncio.Task] = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, texts: list[str], decode: str) -> BatchResult:
        """Queue ``texts`` for decoder ``decode``; their rows once their batch has run."""
        if self._closing:
            raise QueueFull("the server is shutting down")
        future = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait(_Job(texts, decode, future))
        except asyncio.QueueFull:
            raise QueueFull(f"{self.queue.maxsize} requests are waiting already") from None
        return await future

    async def close(self) -> None:
        """Refuse new requests, code every queued one, then stop (the lifespan's shutdown)."""
        self._closing = True
        if self._task is None:
            return
        await self.queue.put(None)  # after every queued job
        await self._task

    async def _next(self, timeout: Optional[float]) -> Optional[_Job]:
        if self._held is not None:
            job, self._held = self._held, None
            return job
        if timeout is None:
            return await self.queue.get()
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next(None)
            if first is None:
                return
            batch, notes, stop = [first], len(first.texts), False
            deadline = loop.time() + self.max_wait
            while notes < self.max_batch_notes:
                try:
                    job = await self._next(max(0.0, deadline - loop.time()))
                except asyncio.TimeoutError:
                    break
                if job is None:
                    stop = True
                    break
                if notes + len(job.texts) > self.max_batch_notes:
                    self._held = job
                    break
                batch.append(job)
                notes += len(job.texts)
            await self._code(batch, notes)
            if stop:
                while self._held is not None:
                    held, self._held = self._held, None
                    await self._code([held], len(held.texts))
                return

    async def _code(self, batch: list[_Job], notes: int) -> None:
        texts = [text for job in batch for text in job.texts]
        decoders = list(dict.fromkeys(job.decode for job in batch))
        try:
            sets, marginals = await asyncio.get_running_loop().run_in_executor(
                self.executor, self.predict, texts, decoders)
        except Exception as error:  # every request of the batch fails, the server goes on
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        self.stats.batches += 1
        self.stats.notes += notes
        self.stats.largest_batch = max(self.stats.largest_batch, notes)
        start = 0
        for job in batch:
            rows = slice(start, start + len(job.texts))
            start = rows.stop
            if not job.future.done():  # a client that went away cancelled its future
                job.future.set_result(BatchResult(sets[job.decode][rows], marginals[rows]))


# ---------------------------------------------------------------------------- the model's side
def history_summary(history: dict[str, Any]) -> dict[str, Any]:
    """The training history without its per-epoch lists: scalars as they are, a list as its
    length and last value (``train_loss: [..]`` -> ``train_loss_last``, ``train_loss_epochs``)."""
    summary: dict[str, Any] = {}
    for key, value in history.items():
        if isinstance(value, (list, tuple)):
            summary[f"{key}_epochs"] = len(value)
            if value and isinstance(value[-1], (int, float)):
                summary[f"{key}_last"] = value[-1]
        elif value is None or isinstance(value, (str, int, float, bool)):
            summary[key] = value
    return summary


def model_card(model: MultiLabelModel, model_dir: str) -> dict[str, Any]:
    """What ``GET /v1/model`` says about the model besides its codes."""
    return {
        "model_dir": str(model_dir),
        "model": model.model,
        "encoder": model.encoder_.name,
        "labels": len(model.label_names_),
        "nonempty": bool(model.head_.nonempty),
        "ensemble": model.ensemble,
        "temperature": float(model.head_.temperature),
        "fitted_decoders": sorted(model.decoder_states_),
        "decoders": sorted(DECODERS),
        "history": history_summary(model.history_),
        "comorbid_version": comorbid.__version__,
    }


def check_decoder_spec(spec: str) -> None:
    """Refuse what a client must not ask for: ``mbr=FILE`` would make the server read a file
    of the client's choosing."""
    name, _, argument = spec.partition("=")
    if name.strip() == "mbr" and argument.strip() and argument.strip() not in ("icd-tree", *UTILITIES):
        raise ValueError(f"Expected the mbr cost to be icd-tree or one of {', '.join(sorted(UTILITIES))} "
                         f"(cost files are not read over HTTP), got {argument.strip()!r}")


def top_scores(marginals: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """``[B, min(top, M)]`` column indices of each row's highest marginals (ties: lower column
    first) and those marginals, clipped to [0, 1] and rounded to 6 decimals."""
    values = np.clip(marginals.astype(np.float64), 0.0, 1.0)
    columns = np.broadcast_to(np.arange(values.shape[1]), values.shape)
    order = np.lexsort((columns, -values), axis=1)[:, :top]
    return order, np.round(np.take_along_axis(values, order, axis=1), 6)


# ---------------------------------------------------------------------------- the app
def create_app(model_dir: str | os.PathLike, limits: ServeLimits | None = None,
               model: MultiLabelModel | None = None):
    """The FastAPI app serving the model saved in ``model_dir`` (loaded here, once).

    Args:
        model_dir: a directory written by ``comorbid train`` / :meth:`MultiLabelModel.save`.
        limits: request limits and batching (:class:`ServeLimits`; default: its defaults).
        model: an already loaded model (then ``model_dir`` only names it in the card).

    Raises:
        ValueError: ``model_dir`` holds no readable model, or the model does not read texts.
    """
    from fastapi import FastAPI, HTTPException

    from comorbid.explain import label_descriptions

    limits = limits or ServeLimits()
    model = model if model is not None else MultiLabelModel.load(model_dir)
    if not model.encoder_.reads_text:
        raise ValueError(f"{model_dir}: the model reads feature matrices, not notes; serve codes notes")
    schemas = _schemas(limits)
    descriptions = label_descriptions(model.label_names_)
    card = model_card(model, str(model_dir))
    codes = [{"code": name, "description": descriptions[name]} for name in model.label_names_]
    decoders: dict[str, Decoder] = {}  # spec -> decoder bound to the model (thresholds loaded)

    def decoder_for(spec: str) -> Decoder:
        if spec not in decoders:
            check_decoder_spec(spec)
            decoder = model.decoder(spec)  # ValueError: unknown, bad argument, no thresholds
            if len(decoders) < 64:  # clients choose specs ("top-k=K"): keep the cache small
                decoders[spec] = decoder
            return decoder
        return decoders[spec]

    def predict(texts: list[str], specs: list[str]):
        chosen = {spec: decoders.get(spec) or model.decoder(spec) for spec in specs}
        sets, marginals = model.predict_with_marginals(texts, list(chosen.values()))
        # keyed by the spec each request wrote, not the decoder's own ("mbr" is "mbr=icd-tree")
        return {spec: sets[decoder.spec] for spec, decoder in chosen.items()}, marginals

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="comorbid-model")
    state: dict[str, Batcher] = {}

    @asynccontextmanager
    async def lifespan(app):
        batcher = Batcher(predict, executor, limits.max_batch_notes, limits.max_wait_ms, limits.max_queue_requests)
        batcher.start()
        state["batcher"] = batcher
        try:
            yield
        finally:
            await batcher.close()  # uvicorn has already let in-flight requests finish
            executor.shutdown(wait=True)

    app = FastAPI(title="comorbid", version=comorbid.__version__, lifespan=lifespan,
                  description="Suggests ICD codes for clinical notes (docs/serve.md).")
    app.add_middleware(_BodyLimit, max_bytes=limits.max_body_bytes)

    @app.get("/healthz", response_model=schemas.Health)
    async def healthz():
        batcher = state.get("batcher")
        stats = batcher.stats if batcher is not None else BatchStats()
        return {"status": "ok", "queued_requests": batcher.queue.qsize() if batcher else 0,
                "batches": stats.batches, "notes": stats.notes, "largest_batch": stats.largest_batch}

    @app.get("/v1/model", response_model=schemas.ModelInfo)
    async def model_info():
        return {"codes": codes, "card": card}

    @app.post("/v1/code", response_model=schemas.CodeResponse,
              responses={413: {"description": "Body too large"}, 503: {"description": "Queue full"}})
    async def code(request: schemas.CodeRequest):
        texts = [note.text for note in request.notes]
        _check_request(request, limits)
        try:
            decoder_for(request.decode)
        except ValueError as error:
            raise HTTPException(422, f"decode: {error}") from None
        try:
            result = await state["batcher"].submit(texts, request.decode)
        except QueueFull as error:
            raise HTTPException(503, f"busy: {error}; retry later", headers={"Retry-After": "1"}) from None
        evidence: list[dict[str, list[dict]]] = [{} for _ in texts]
        if request.explain:
            evidence = await asyncio.get_running_loop().run_in_executor(
                executor, _evidence, model, texts, request.decode, request.top_words)
        top = min(request.scores_top, len(model.label_names_))
        order, values = top_scores(result.marginals, top)
        notes = []
        for i, note in enumerate(request.notes):
            suggested = []
            for j in np.flatnonzero(result.sets[i]):
                name = model.label_names_[j]
                item = {"code": name, "description": descriptions[name],
                        "probability": round(float(np.clip(result.marginals[i, j], 0.0, 1.0)), 6)}
                if request.explain:
                    item["evidence"] = evidence[i].get(name, [])
                suggested.append(item)
            scores = [{"code": model.label_names_[j], "description": descriptions[model.label_names_[j]],
                       "probability": float(p)} for j, p in zip(order[i], values[i])]
            notes.append({"id": str(i) if note.id is None else str(note.id), "codes": suggested, "scores": scores})
        return {"decode": request.decode, "notes": notes}

    return app


def _check_request(request, limits: ServeLimits) -> None:
    """422 with one message for a request beyond the limits (pydantic checked the types)."""
    from fastapi import HTTPException

    n = len(request.notes)
    if n == 0:
        raise HTTPException(422, "notes: expected at least one note")
    if n > limits.max_notes_per_request:
        raise HTTPException(422, f"notes: expected at most {limits.max_notes_per_request} notes per request, got {n}")
    for i, note in enumerate(request.notes):
        if len(note.text) > limits.max_note_chars:
            raise HTTPException(422, f"notes[{i}].text: expected at most {limits.max_note_chars} characters, "
                                     f"got {len(note.text)}")
    if request.explain and n > limits.max_explain_notes:
        raise HTTPException(422, f"explain: expected at most {limits.max_explain_notes} notes per request "
                                 f"with explain, got {n}")
    if request.scores_top > limits.max_scores_top:
        raise HTTPException(422, f"scores_top: expected at most {limits.max_scores_top}, got {request.scores_top}")


def _evidence(model, texts: list[str], decode: str, top_words: int) -> list[dict[str, list[dict]]]:
    """Per note, code -> its evidence spans (``comorbid.explain``: ``"auto"``, i.e. the linear
    trace-back where the model allows it, else occlusion)."""
    from comorbid.explain import explain

    notes = explain(model, texts, decode=decode, method="auto", top_words=top_words)
    return [{c.code: [asdict(e) for e in c.evidence] for c in note.codes} for note in notes]


class _BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes`` (by Content-Length, or counted while
    reading a chunked body), before the app parses any of it.

    The rest of a too-large body is read and dropped (up to ``drain_bytes``) before answering:
    a client still sending would otherwise see its connection reset instead of the 413.
    """

    def __init__(self, app, max_bytes: int, drain_bytes: int = 64 << 20):
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        chunks, size, too_large = [], 0, length is not None and (not length.isdigit() or int(length) > self.max_bytes)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            too_large = too_large or size > self.max_bytes
            if not too_large:
                chunks.append(body)
            if not message.get("more_body", False) or size > self.drain_bytes:
                break
        if too_large:
            return await self._too_large(send)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: wait for the disconnect

        return await self.app(scope, replay, send)

    async def _too_large(self, send) -> None:
        body = json.dumps({"detail": f"request body over {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


@dataclass
class _Schemas:
    CodeRequest: Any
    CodeResponse: Any
    ModelInfo: Any
    Health: Any


def _schemas(limits: ServeLimits) -> _Schemas:
    """The pydantic models of requests and responses (built here: pydantic comes with fastapi)."""
    from pydantic import BaseModel, ConfigDict, Field

    class Note(BaseModel):
        model_config = ConfigDict(extra="forbid")
        id: Optional[Union[str, int]] = Field(None, description="Echoed back as a string (default: the position).")
        text: str = Field(..., description=f"The note, at most {limits.max_note_chars} characters.")

    class CodeRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        notes: list[Note] = Field(..., description=f"1 to {limits.max_notes_per_request} notes.")
        decode: str = Field("instance-f1", description="One decoder spec (docs/decoders.md); macro-f1 and "
                            "micro-f1 only if the model was trained with them.")
        scores_top: int = Field(20, ge=0, description="Codes per note ranked by probability (0: none).")
        explain: bool = Field(False, description=f"Cite evidence spans (linear trace-back for a bag-of-words linear model, else occlusion; at most "
                              f"{limits.max_explain_notes} notes).")
        top_words: int = Field(3, ge=1, le=20, description="explain: words cited per code at most.")

    class EvidenceSpan(BaseModel):
        start: int
        end: int
        text: str
        weight: float
        kind: str

    class SuggestedCode(BaseModel):
        code: str
        description: Optional[str]
        probability: float
        evidence: Optional[list[EvidenceSpan]] = None

    class Score(BaseModel):
        code: str
        description: Optional[str]
        probability: float

    class NoteResult(BaseModel):
        id: str
        codes: list[SuggestedCode] = Field(..., description="The decoder's codes, in label order.")
        scores: list[Score] = Field(..., description="The scores_top codes by probability, highest first.")

    class CodeResponse(BaseModel):
        decode: str
        notes: list[NoteResult]

    class CodeInfo(BaseModel):
        code: str
        description: Optional[str]

    class ModelInfo(BaseModel):
        codes: list[CodeInfo]
        card: dict[str, Any]

    class Health(BaseModel):
        status: str
        queued_requests: int
        batches: int
        notes: int
        largest_batch: int

    return _Schemas(CodeRequest, CodeResponse, ModelInfo, Health)


# ---------------------------------------------------------------------------- running it
def app_from_environment():
    """The app factory of each uvicorn worker under ``--workers N`` (settings in an env variable)."""
    settings = json.loads(os.environ[CONFIG_ENVIRONMENT])
    _set_threads(settings["threads"])
    return create_app(settings["model_dir"], ServeLimits(**settings["limits"]))


def _set_threads(threads: int) -> None:
    # torch's intra-op pool (default: one thread per core) spins while it waits: for the small
    # batches of a server that cost 33 ms of CPU per single-note forward pass against 2 ms with
    # one thread, measured on the shared 2-core machine (docs/serve.md). Scale with --workers.
    import torch

    torch.set_num_threads(threads)


def serve(model_dir: str, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          limits: ServeLimits | None = None, threads: int = 1, log_level: str = "info") -> None:
    """Run the server until SIGINT/SIGTERM (uvicorn lets in-flight requests finish first).

    ``workers`` processes each load the model and use ``threads`` torch threads.
    """
    import uvicorn

    limits = limits or ServeLimits()
    if workers < 1:
        raise ValueError(f"Expected --workers >= 1, got {workers}")
    if threads < 1:
        raise ValueError(f"Expected --threads >= 1, got {threads}")
    if workers == 1:
        _set_threads(threads)
        uvicorn.run(create_app(model_dir, limits), host=host, port=port, log_level=log_level)
        return
    MultiLabelModel.load(model_dir)  # fail here, once, rather than in every worker
    os.environ[CONFIG_ENVIRONMENT] = json.dumps({"model_dir": str(model_dir), "limits": asdict(limits),
                                                 "threads": threads})
    uvicorn.run("comorbid.serve:app_from_environment", factory=True, host=host, port=port, workers=workers,
                log_level=log_level)


__all__: Sequence[str] = ("ServeLimits", "Batcher", "QueueFull", "create_app", "serve", "model_card",
                          "history_summary", "top_scores")
