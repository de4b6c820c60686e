"""fastmlp: a fast, vectorised CPU engine that trains multilayer perceptrons on MNIST-style
images, in numpy (BLAS matmuls) and numba (fused kernels).

The data flow, one module each: data -> model -> workspace -> forward/backward -> update,
driven by train. Names are imported on first use, so `import fastmlp.data` or the command
line's argument checks do not pay for importing numba and loading the kernels.
"""
# First, before anything imports numpy: OpenBLAS reads its idle-thread setting when it loads.
from . import blas_idle  # noqa: F401, I001

import importlib  # noqa: E402
from importlib import metadata  # noqa: E402

try:  # the version is declared once, in pyproject.toml; an install records it as metadata
    __version__ = metadata.version("fastmlp")
except metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

_EXPORTS = {
    "MLP": "model", "DataError": "errors", "FastMLPError": "errors", "Dataset": "data",
    "Split": "data", "load_dataset": "data", "TrainConfig": "settings", "RunOptions": "settings",
    "SETTINGS": "settings", "EpochStats": "result", "TrainResult": "result", "train": "trainer",
    "MLPClassifier": "classifier",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fastmlp' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
