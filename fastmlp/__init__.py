"""fastmlp: a fast, vectorised CPU engine that trains multilayer perceptrons on MNIST-style
images, in numpy (BLAS matmuls) and numba (fused kernels).

The data flow, one module each: data -> model -> workspace -> forward/backward -> update,
driven by train. Names are imported on first use, so `import fastmlp.data.load` or the command
line's argument checks do not pay for importing numba and loading the kernels.
"""
# First, before anything imports numpy: OpenBLAS reads its idle-thread setting when it loads.
from .runtime import blas_idle  # noqa: F401, I001

import importlib  # noqa: E402

_EXPORTS = {
    "MLP": "engine.model", "DataError": "errors", "FastMLPError": "errors",
    "Dataset": "data.load", "Split": "data.load", "load_dataset": "data.load",
    "TrainConfig": "settings", "RunOptions": "settings", "SETTINGS": "settings",
    "EpochStats": "training.result", "TrainResult": "training.result",
    "train": "training.loop", "MLPClassifier": "classifier",
}
__all__ = [*_EXPORTS, "__version__"]


def _version():
    """The version, declared once in pyproject.toml (an install records it as metadata). Read
    on first use: importing importlib.metadata would slow every run's start-up
    (docs/performance.md, "Start-up and exit")."""
    from importlib import metadata

    try:
        return metadata.version("fastmlp")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def __getattr__(name):
    if name == "__version__":
        globals()["__version__"] = _version()
        return globals()["__version__"]
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fastmlp' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
