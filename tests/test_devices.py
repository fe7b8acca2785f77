"""--device cpu|cuda|auto: resolution, batches moved to the device, models saved with CPU tensors.

The CUDA test runs only where torch sees a GPU; everything else runs on the CPU."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from comorbid.cli import main
from comorbid.devices import batch_to, module_device, resolve_device
from comorbid.model import MultiLabelModel
from test_scale_fit import text_dataset

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch")


def test_auto_is_the_cpu_without_a_gpu_and_cuda_fails_clearly(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="cpu, cuda, cuda:N or auto"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="cpu, cuda, cuda:N or auto"):
        resolve_device("meta")


def test_auto_is_cuda_when_torch_sees_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_a_batch_on_the_cpu_is_left_as_it_is():
    x = sp.random(3, 5, density=0.5, format="csr")
    cpu = torch.device("cpu")
    assert batch_to(x, cpu) is x
    texts = ["a", "b"]
    assert batch_to(texts, cpu) is texts


def test_training_on_auto_here_equals_training_on_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = text_dataset()
    cpu = MultiLabelModel("chain", train={"max_iterations": 20}).fit(data)
    auto = MultiLabelModel("chain", train={"max_iterations": 20, "device": "auto"}).fit(data)
    np.testing.assert_array_equal(auto.marginals(data.inputs), cpu.marginals(data.inputs))
    assert module_device(auto.head_) == torch.device("cpu")


def test_cli_refuses_cuda_without_a_gpu_before_any_work(tiny_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main(["train", str(tiny_csv), "--out", str(tmp_path / "m"), "--device", "cuda", "--decode", "none"])
    assert code == 2
    assert "no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_cli_trains_and_predicts_on_auto(tiny_csv, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model_dir, out = tmp_path / "m", tmp_path / "p.csv"
    assert main(["train", str(tiny_csv), "--out", str(model_dir), "--device", "auto", "--decode", "none",
                 "--model", "independent"]) == 0
    assert main(["predict", str(model_dir), str(tiny_csv), "--out", str(out), "--device", "auto"]) == 0
    assert out.read_text().startswith("id,labels\n")


@needs_cuda
@pytest.mark.parametrize("model_name", ["independent", "chain"])
def test_training_and_prediction_on_cuda_match_the_cpu_and_save_for_the_cpu(model_name, tmp_path):
    data = text_dataset()
    cpu = MultiLabelModel(model_name, train={"max_iterations": 30}).fit(data)
    gpu = MultiLabelModel(model_name, train={"max_iterations": 30, "device": "cuda"}).fit(data)
    assert module_device(gpu.head_).type == "cuda"
    np.testing.assert_allclose(gpu.marginals(data.inputs), cpu.marginals(data.inputs), atol=2e-2)
    gpu.predict(data, ["hamming", "instance-f1"])
    gpu.save(tmp_path / "m")
    loaded = MultiLabelModel.load(tmp_path / "m")
    assert module_device(loaded.head_) == torch.device("cpu")
    np.testing.assert_allclose(loaded.marginals(data.inputs), gpu.marginals(data.inputs), atol=1e-4)
    # Adam on mini-batches too
    adam = MultiLabelModel(model_name, train={"optimizer": "adam", "epochs": 2, "device": "cuda"}).fit(data)
    assert adam.marginals(data.inputs).shape == (len(data), data.n_labels)
