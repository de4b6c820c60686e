"""Exported models agree with fastmlp: the ONNX graph in onnxruntime, the safetensors
state_dict read back by the safetensors package and by a PyTorch Sequential, and the .pt file,
each on a test set, logits within float32 rounding of fastmlp's own (the sums inside a matmul
are ordered differently in each library, nothing else differs)."""
import json
import struct
import sys

import numpy as np
import pytest

from fastmlp.data.scaling import Standardizer
from fastmlp.engine.inference import logits
from fastmlp.engine.model import MLP
from fastmlp.errors import FastMLPError
from fastmlp.export import export, safetensors_bytes, state_dict
from fastmlp.settings import TrainConfig
from fastmlp.training import checkpoint
from fastmlp.training.loop import train
from tests.helpers import run_cli

# The largest logit's relative rounding: a few dozen float32 (or float64) ulps of it.
RELATIVE = {np.float32: 3e-6, np.float64: 1e-13}


def close(got, expected):
    expected = np.asarray(expected)
    bound = RELATIVE[expected.dtype.type] * max(1.0, np.abs(expected).max())
    difference = np.abs(np.asarray(got, np.float64) - expected).max()
    assert difference <= bound, (difference, bound)


@pytest.fixture(scope="module")
def mnist_model(tmp_path_factory, mnist):
    """A [64, 32] model trained one epoch on MNIST, saved; and the test set."""
    path = tmp_path_factory.mktemp("export") / "m.npz"
    result = train(TrainConfig(layers=(64, 32), epochs=1, batch_size=256, optimizer="adam",
                               lr=1e-3), mnist, save_path=path)
    return path, result.model, mnist.test.x


def standardized_model(dtype):
    """An MLP with a standardisation of features far from 0 and 1, and such inputs."""
    rng = np.random.default_rng(0)
    model = MLP([6, 12, 8, 4], dtype).initialize("he", rng)
    x = (rng.normal(size=(300, 6)) * [1, 10, 100, 0.1, 5, 2] + [0, 50, -200, 3, 1, 7])
    x = x.astype(dtype)
    scaler = Standardizer.fit(x)
    return model, scaler, x, logits(model, scaler.apply(x.copy()))


def onnx_logits(path, x):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got, probabilities = session.run(["logits", "probabilities"], {"input": x})
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    return got, session


def torch_logits(tensors, sizes, x):
    torch = pytest.importorskip("torch")
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1]).to(torch.float64 if x.dtype == np.float64
                                               else torch.float32)
    net.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in tensors.items()})
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def test_onnx_agrees_with_fastmlp_on_the_mnist_test_set(tmp_path, mnist_model):
    pytest.importorskip("onnx")
    path, model, x = mnist_model
    proc = run_cli("export", path, tmp_path / "m.onnx")
    assert proc.returncode == 0, proc.stderr
    got, session = onnx_logits(tmp_path / "m.onnx", x)
    close(got, logits(model, x))
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["classes"]) == list(range(10))
    ops = [node.op_type for node in __import__("onnx").load(str(tmp_path / "m.onnx")).graph.node]
    assert ops == ["Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax"]


def test_safetensors_and_pt_load_into_pytorch_on_the_mnist_test_set(tmp_path, mnist_model):
    path, model, x = mnist_model
    for suffix in ("safetensors", "pt"):
        proc = run_cli("export", path, tmp_path / f"m.{suffix}")
        assert proc.returncode == 0, proc.stderr
    expected = logits(model, x)
    safetensors = pytest.importorskip("safetensors.numpy")
    tensors = safetensors.load_file(str(tmp_path / "m.safetensors"))
    assert sorted(tensors) == ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"]
    assert tensors["0.weight"].shape == (64, 784)
    close(torch_logits(tensors, model.sizes, x), expected)
    torch = pytest.importorskip("torch")
    close(torch_logits(torch.load(tmp_path / "m.pt"), model.sizes, x), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_standardized_model_takes_raw_features_in_every_format(tmp_path, dtype):
    model, scaler, x, expected = standardized_model(dtype)
    classes = np.array(["a", "b", "c", "d"])
    for suffix in ("onnx", "safetensors", "pt"):
        export(model, classes, tmp_path / f"m.{suffix}", scaler)
    got, _ = onnx_logits(tmp_path / "m.onnx", x)
    close(got, expected)
    # The state_dict folds the standardisation into the first layer (in float64): a little
    # more rounding than the graph's own Sub and Div, still float32's.
    folded = torch_logits(state_dict(model, scaler), model.sizes, x)
    assert np.abs(folded - expected).max() <= 1e-4 * np.abs(expected).max()
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(torch_logits(torch.load(tmp_path / "m.pt"), model.sizes, x),
                                  folded)


def test_the_safetensors_file_is_the_format_written_by_hand():
    """8 bytes of header length (little-endian), the JSON header padded to 8 bytes, the tensors
    back to back in the header's byte ranges; metadata as strings."""
    model, scaler, _, _ = standardized_model(np.float32)
    data = safetensors_bytes(model, np.array([3, 1, 4, 5]), scaler)
    n = struct.unpack("<Q", data[:8])[0]
    assert n % 8 == 0
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__")
    assert json.loads(meta["classes"]) == [3, 1, 4, 5] and meta["format"] == "pt"
    assert all(isinstance(v, str) for v in meta.values())
    body = data[8 + n:]
    expected = state_dict(model, scaler)
    for name, entry in header.items():
        start, end = entry["data_offsets"]
        array = np.frombuffer(body[start:end], "<f4").reshape(entry["shape"])
        np.testing.assert_array_equal(array, expected[name])
    assert max(e["data_offsets"][1] for e in header.values()) == len(body)


def test_export_refuses_what_it_cannot_write(tmp_path, monkeypatch):
    model, scaler, _, _ = standardized_model(np.float32)
    with pytest.raises(FastMLPError, match="unknown export format .h5"):
        export(model, np.arange(4), tmp_path / "m.h5")
    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    with pytest.raises(FastMLPError, match="writing .pt needs PyTorch"):
        export(model, np.arange(4), tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


def test_the_export_command_refuses_in_one_line(tmp_path, mnist_model):
    path, _, _ = mnist_model
    proc = run_cli("export", path, tmp_path / "m.keras")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "unknown export format .keras" in proc.stderr and list(tmp_path.iterdir()) == []
    (tmp_path / "not-a-model.npz").write_bytes(b"junk")
    proc = run_cli("export", tmp_path / "not-a-model.npz", tmp_path / "m.onnx")
    assert proc.returncode == 2 and "not a readable .npz model" in proc.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_an_exported_model_of_a_saved_checkpoint_keeps_its_class_names(tmp_path):
    pytest.importorskip("onnx")
    model, _, x, expected = standardized_model(np.float32)
    checkpoint.save(tmp_path / "m.npz", model, TrainConfig(layers=(12, 8)), [],
                    {"name": "arrays", "sha256": {}, "classes": ["w", "x", "y", "z"]})
    assert run_cli("export", tmp_path / "m.npz", tmp_path / "m.onnx").returncode == 0
    got, session = onnx_logits(tmp_path / "m.onnx", x)
    assert json.loads(session.get_modelmeta().custom_metadata_map["classes"]) == list("wxyz")
    close(got, logits(model, x))
