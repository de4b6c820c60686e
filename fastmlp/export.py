"""Models other tools load: an ONNX graph (Gemm, Relu, Softmax; onnxruntime and most inference
servers run it), a PyTorch state_dict as safetensors (written here by hand: the format is a
JSON header and the raw tensors, so no dependency is needed) or as a `.pt` file (with PyTorch
installed). The native format stays fastmlp's .npz, which export reads.

Layout: the state_dict is that of torch.nn.Sequential(Linear, ReLU, ..., Linear), keys
"0.weight" (out, in), "0.bias", "2.weight", ...; the ONNX graph takes "input" (batch, features)
and gives "logits" and "probabilities". A model trained with standardised features takes raw
features in both: the ONNX graph subtracts the mean and divides by the scale first, exactly as
fastmlp does; the state_dict folds them into the first layer (W / scale, b - (mean / scale) W,
computed in float64), since a Sequential of Linear and ReLU has no place for them.
"""
import io
import json
import struct
from pathlib import Path

import numpy as np

from .atomic import write_atomically
from .data.classes import to_json
from .errors import FastMLPError
from .runtime.versions import fastmlp_version

FORMATS = {".onnx": "ONNX", ".safetensors": "safetensors", ".pt": "PyTorch"}
ONNX_OPSET = 17
ONNX_IR_VERSION = 8  # what opset 17 needs; older readers refuse newer IR versions
_SAFETENSORS_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64"}


def _layers(model):
    return list(zip(model.weights, model.biases))


def state_dict(model, scaler=None):
    """{key: array} of the PyTorch state_dict of Sequential(Linear, ReLU, ..., Linear): weights
    as (out, in), C-contiguous; the standardisation, if any, folded into the first layer."""
    tensors = {}
    for i, (w, b) in enumerate(_layers(model)):
        if i == 0 and scaler is not None:
            w64 = w.astype(np.float64) / scaler.scale[:, None]
            b = (b.astype(np.float64) - (scaler.mean / scaler.scale) @ w.astype(np.float64))
            w = w64
        tensors[f"{2 * i}.weight"] = np.ascontiguousarray(w.T, dtype=model.dtype)
        tensors[f"{2 * i}.bias"] = np.ascontiguousarray(b, dtype=model.dtype)
    return tensors


def _metadata(model, classes):
    return {"format": "pt", "producer": f"fastmlp {fastmlp_version()}",
            "sizes": json.dumps(list(model.sizes)), "classes": json.dumps(to_json(classes)),
            "layers": "Sequential(" + ", ".join(
                ["Linear", "ReLU"] * (model.n_layers - 1) + ["Linear"]) + ")"}


def safetensors_bytes(model, classes, scaler=None):
    """The safetensors file of the state_dict: an 8-byte little-endian header length, the JSON
    header (dtype, shape and byte range of each tensor, and string metadata), then the bytes."""
    tensors = state_dict(model, scaler)
    header, offset = {"__metadata__": _metadata(model, classes)}, 0
    for name, array in tensors.items():
        header[name] = {"dtype": _SAFETENSORS_DTYPES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the tensors start 8-byte aligned
    body = b"".join(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
                    for a in tensors.values())
    return struct.pack("<Q", len(text)) + text + body


def torch_bytes(model, classes, scaler=None):
    """The state_dict saved by torch.save (needs PyTorch)."""
    try:
        import torch
    except ImportError:
        raise FastMLPError("writing .pt needs PyTorch (pip install torch); .safetensors holds "
                           "the same state_dict without it") from None
    buffer = io.BytesIO()
    state = {name: torch.from_numpy(array.copy())
             for name, array in state_dict(model, scaler).items()}
    torch.save(state, buffer)
    return buffer.getvalue()


def onnx_bytes(model, classes, scaler=None):
    """The ONNX graph of the model (needs the onnx package: pip install 'fastmlp[export]')."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise FastMLPError("writing ONNX needs the onnx package: pip install "
                           "'fastmlp[export]'") from None
    elem = TensorProto.FLOAT if model.dtype == np.float32 else TensorProto.DOUBLE
    inits, nodes, current = [], [], "input"
    if scaler is not None:
        inits += [numpy_helper.from_array(scaler.mean.astype(model.dtype), "scaler_mean"),
                  numpy_helper.from_array(scaler.scale.astype(model.dtype), "scaler_scale")]
        nodes += [helper.make_node("Sub", ["input", "scaler_mean"], ["centred"]),
                  helper.make_node("Div", ["centred", "scaler_scale"], ["standardized"])]
        current = "standardized"
    last = model.n_layers - 1
    for i, (w, b) in enumerate(_layers(model)):
        inits += [numpy_helper.from_array(np.ascontiguousarray(w), f"W{i}"),
                  numpy_helper.from_array(np.ascontiguousarray(b), f"b{i}")]
        out = "logits" if i == last else f"z{i}"
        nodes.append(helper.make_node("Gemm", [current, f"W{i}", f"b{i}"], [out]))
        if i < last:
            nodes.append(helper.make_node("Relu", [out], [f"h{i}"]))
            current = f"h{i}"
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1))
    graph = helper.make_graph(
        nodes, "fastmlp", [helper.make_tensor_value_info("input", elem, ["batch",
                                                                         model.sizes[0]])],
        [helper.make_tensor_value_info("logits", elem, ["batch", model.sizes[-1]]),
         helper.make_tensor_value_info("probabilities", elem, ["batch", model.sizes[-1]])],
        inits)
    onnx_model = helper.make_model(graph, producer_name="fastmlp",
                                   producer_version=fastmlp_version(),
                                   opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    onnx_model.ir_version = ONNX_IR_VERSION
    helper.set_model_props(onnx_model, {"classes": json.dumps(to_json(classes)),
                                        "standardized": str(scaler is not None)})
    onnx.checker.check_model(onnx_model)
    return onnx_model.SerializeToString()


WRITERS = {".onnx": onnx_bytes, ".safetensors": safetensors_bytes, ".pt": torch_bytes}


def export(model, classes, path, scaler=None):
    """Write the model to `path` in the format its suffix names (FORMATS), atomically."""
    suffix = Path(path).suffix.lower()
    if suffix not in WRITERS:
        raise FastMLPError(f"{path}: unknown export format {suffix or '(no suffix)'}; use "
                           f"{', '.join(FORMATS)}")
    write_atomically(path, WRITERS[suffix](model, classes, scaler))
