"""`comorbid serve`: the real uvicorn server on 127.0.0.1, talked to over HTTP with httpx."""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import uvicorn  # noqa: E402

from comorbid.data import synthetic_coding_set  # noqa: E402
from comorbid.model import MultiLabelModel  # noqa: E402
from comorbid.serve import Batcher, QueueFull, ServeLimits, create_app, top_scores  # noqa: E402

LIMITS = ServeLimits(max_body_bytes=20_000, max_notes_per_request=4, max_note_chars=2_000, max_explain_notes=2,
                     max_scores_top=50)
NOTE = "CLINICAL HISTORY: Fever and cough.\nIMPRESSION: Right lower lobe pneumonia."


@pytest.fixture(scope="module")
def dataset():
    return synthetic_coding_set(n=80)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, dataset):
    directory = tmp_path_factory.mktemp("serve") / "model"
    MultiLabelModel("independent").fit(dataset).save(directory)
    return directory


@pytest.fixture(scope="module")
def model(model_dir):
    return MultiLabelModel.load(model_dir)


@contextlib.contextmanager
def running(app):
    """The app under uvicorn in a thread, on 127.0.0.1 and a free port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture(scope="module")
def base_url(model_dir):
    with running(create_app(model_dir, LIMITS)) as url:
        yield url


@pytest.fixture
def client(base_url):
    with httpx.Client(base_url=base_url, timeout=30) as http:
        yield http


def test_codes_a_note_with_probabilities_descriptions_and_sorted_scores(client, model):
    response = client.post("/v1/code", json={"notes": [{"id": 7, "text": NOTE}], "decode": "instance-f1",
                                             "scores_top": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decode"] == "instance-f1"
    (note,) = body["notes"]
    assert note["id"] == "7"
    sets, marginals = model.predict_with_marginals([NOTE], ["instance-f1"])
    expected = [model.label_names_[j] for j in np.flatnonzero(sets["instance-f1"][0])]
    assert [c["code"] for c in note["codes"]] == expected and expected
    for code in note["codes"]:
        j = model.label_names_.index(code["code"])
        assert code["probability"] == pytest.approx(marginals[0, j], abs=1e-6)
        assert "evidence" not in code or code["evidence"] is None
    assert {c["code"]: c["description"] for c in note["codes"]}.get("486") in (None, "Pneumonia, organism NOS")
    probabilities = [s["probability"] for s in note["scores"]]
    assert len(probabilities) == 5
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    assert all(s["description"] for s in note["scores"])  # the synthetic labels are ICD-9-CM codes


def test_scores_top_beyond_the_labels_gives_every_label_and_zero_gives_none(client, model):
    many = client.post("/v1/code", json={"notes": [{"text": NOTE}], "scores_top": 50}).json()
    none = client.post("/v1/code", json={"notes": [{"text": NOTE}], "scores_top": 0}).json()
    assert sorted(s["code"] for s in many["notes"][0]["scores"]) == sorted(model.label_names_)
    assert none["notes"][0]["scores"] == []
    assert many["notes"][0]["id"] == "0"


def test_explain_cites_spans_of_the_note(client):
    response = client.post("/v1/code", json={"notes": [{"id": "a", "text": NOTE}], "explain": True, "top_words": 2})
    assert response.status_code == 200, response.text
    codes = response.json()["notes"][0]["codes"]
    assert codes and all(code["evidence"] for code in codes)
    for code in codes:
        for span in code["evidence"]:
            assert NOTE[span["start"]:span["end"]] == span["text"]
        assert sum(span["kind"] == "word" for span in code["evidence"]) <= 2


def test_explain_uses_the_linear_trace_back_where_the_model_allows_it(client, model):
    from dataclasses import asdict

    from comorbid.explain import explain, linear_applies

    assert linear_applies(model)  # independent head on the bag-of-words encoder
    response = client.post("/v1/code", json={"notes": [{"id": "a", "text": NOTE}], "explain": True, "top_words": 2})
    served = {code["code"]: code["evidence"] for code in response.json()["notes"][0]["codes"]}
    local = explain(model, [NOTE], decode="instance-f1", method="linear", top_words=2)[0]
    assert served == {c.code: [asdict(e) for e in c.evidence] for c in local.codes}


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(model_dir, model, dataset):
    notes = list(dataset.inputs[:12])
    expected = model.predict(notes, ["hamming"])["hamming"]
    app = create_app(model_dir, ServeLimits(max_wait_ms=300, max_batch_notes=64), model=model)

    async def send_all(url):
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            before = (await http.get("/healthz")).json()
            responses = await asyncio.gather(*(
                http.post("/v1/code", json={"notes": [{"id": f"n{i}", "text": text}], "decode": "hamming"})
                for i, text in enumerate(notes)))
            after = (await http.get("/healthz")).json()
        return before, responses, after

    with running(app) as url:
        before, responses, after = asyncio.run(send_all(url))
    for i, response in enumerate(responses):
        assert response.status_code == 200, response.text
        (note,) = response.json()["notes"]
        assert note["id"] == f"n{i}"
        assert [c["code"] for c in note["codes"]] == [model.label_names_[j] for j in np.flatnonzero(expected[i])]
    assert after["notes"] - before["notes"] == len(notes)
    assert after["batches"] - before["batches"] < len(notes)  # some requests shared a forward pass
    assert after["largest_batch"] > 1


def test_requests_with_different_decoders_share_a_batch(model_dir, model):
    specs = ["hamming", "mbr", "mbr=jaccard", "top-k=2", "instance-f1=3", "subset"]
    app = create_app(model_dir, ServeLimits(max_wait_ms=300), model=model)

    async def send_all(url):
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            return await asyncio.gather(*(http.post("/v1/code", json={"notes": [{"text": NOTE}], "decode": spec})
                                          for spec in specs))

    with running(app) as url:
        responses = asyncio.run(send_all(url))
    for spec, response in zip(specs, responses):
        assert response.status_code == 200, (spec, response.text)
        expected = model.predict([NOTE], [spec])
        (sets,) = expected.values()
        assert [c["code"] for c in response.json()["notes"][0]["codes"]] == \
            [model.label_names_[j] for j in np.flatnonzero(sets[0])], spec


@pytest.mark.parametrize("payload, message", [
    ({"notes": [{"text": "x"}] * 5}, "at most 4 notes"),
    ({"notes": []}, "at least one note"),
    ({"notes": [{"text": "x" * 2_001}]}, "notes[0].text: expected at most 2000 characters"),
    ({"notes": [{"text": "x"}] * 3, "explain": True}, "at most 2 notes per request with explain"),
    ({"notes": [{"text": "x"}], "decode": "no-such"}, "Unknown decoder 'no-such'"),
    ({"notes": [{"text": "x"}], "decode": "macro-f1"}, "needs thresholds tuned on held-out data"),
    ({"notes": [{"text": "x"}], "decode": "mbr=/etc/hosts"}, "cost files are not read over HTTP"),
    ({"notes": [{"text": "x"}], "decode": "top-k=two"}, "whole number K"),
    ({"notes": [{"text": "x"}], "decode": "top-k=0"}, "k >= 1"),
    ({"notes": [{"text": "x"}], "scores_top": 51}, "scores_top: expected at most 50"),
    ({"notes": [{"text": "x"}], "scores_top": -1}, "greater than or equal to 0"),
    ({"notes": [{"text": 5}]}, "valid string"),
    ({"notes": [{"txt": "x"}]}, "Field required"),
    ({"notes": [{"text": "x"}], "decoder": "hamming"}, "Extra inputs are not permitted"),
    ({"notes": "x"}, "valid list"),
])
def test_bad_requests_get_422_with_a_message(client, payload, message):
    response = client.post("/v1/code", json=payload)
    assert response.status_code == 422
    assert message in str(response.json()["detail"])


def test_too_large_bodies_get_413_declared_or_chunked(client):
    big = b'{"notes": [{"text": "' + b"x" * 30_000 + b'"}]}'
    assert client.post("/v1/code", content=big, headers={"content-type": "application/json"}).status_code == 413

    def chunks():  # no Content-Length: the server counts while reading
        for start in range(0, len(big), 4096):
            yield big[start:start + 4096]

    response = client.post("/v1/code", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "20000 bytes" in response.json()["detail"]
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("body", [b"{", b'{"notes": [1, 2', b"\xff\xfe\x00garbage", b"", b"null", b"[]"])
def test_malformed_json_gets_422_and_the_server_keeps_answering(client, body):
    response = client.post("/v1/code", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.post("/v1/code", json={"notes": [{"text": NOTE}]}).status_code == 200


def test_model_endpoint_lists_codes_and_a_model_card(client, model):
    body = client.get("/v1/model").json()
    assert [c["code"] for c in body["codes"]] == model.label_names_
    assert all(c["description"] for c in body["codes"])
    card = body["card"]
    assert card["model"] == "independent" and card["encoder"] == "clinical"
    assert card["labels"] == len(model.label_names_)
    assert card["fitted_decoders"] == [] and "instance-f1" in card["decoders"]
    assert card["comorbid_version"] == __import__("comorbid").__version__
    assert card["history"] and all(not isinstance(v, (list, dict)) for v in card["history"].values())


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/v1/code", "/v1/model", "/healthz"} <= set(schema["paths"])


def test_top_scores_orders_by_probability_then_column():
    order, values = top_scores(np.array([[0.2, 0.9, 0.2, 1.0000001]]), 3)
    assert order.tolist() == [[3, 1, 0]]
    assert values.tolist() == [[1.0, 0.9, 0.2]]


def test_batcher_refuses_beyond_its_queue_and_drains_on_close():
    release = threading.Event()
    calls = []

    def predict(texts, decoders):
        release.wait(10)
        calls.append(list(texts))
        rows = np.array([[len(t)] for t in texts])
        return {d: rows for d in decoders}, rows.astype(float)

    async def scenario():
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as executor:
            batcher = Batcher(predict, executor, max_batch_notes=8, max_wait_ms=1, max_queue_requests=1)
            batcher.start()
            first = asyncio.ensure_future(batcher.submit(["a"], "hamming"))
            await asyncio.sleep(0.1)  # the worker took it and waits in predict: the queue is empty
            second = asyncio.ensure_future(batcher.submit(["bb", "ccc"], "hamming"))
            await asyncio.sleep(0.05)
            with pytest.raises(QueueFull):
                await batcher.submit(["d"], "hamming")
            release.set()
            closing = asyncio.ensure_future(batcher.close())
            results = await asyncio.gather(first, second)
            await closing
            with pytest.raises(QueueFull, match="shutting down"):
                await batcher.submit(["e"], "hamming")
        return results

    first, second = asyncio.run(scenario())
    assert first.sets.tolist() == [[1]] and second.sets.tolist() == [[2], [3]]
    assert calls == [["a"], ["bb", "ccc"]]


def test_library_does_not_import_fastapi():
    code = ("import sys, comorbid.cli, comorbid.model, comorbid.explain; "
            "loaded = [m for m in ('fastapi', 'uvicorn', 'starlette', 'httpx') if m in sys.modules]; "
            "assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.slow
def test_cli_serves_and_stops_cleanly_on_sigterm(model_dir):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "comorbid", "serve", str(model_dir), "--host", "127.0.0.1",
                                "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.stdout.read()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the server did not answer in 90 s"
            time.sleep(0.2)
        response = httpx.post(f"{url}/v1/code", json={"notes": [{"text": NOTE}]}, timeout=30)
        assert response.status_code == 200 and response.json()["notes"][0]["codes"]
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        # uvicorn (>= 0.29) re-raises the signal once shut down: the exit status says SIGTERM
        assert process.returncode in (0, -signal.SIGTERM), output
        assert "Application shutdown complete" in output
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
