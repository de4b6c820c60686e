"""Grids of runs: experiment and sweep files, their runs on Dask or in this process, resumable
records, successive halving, and the reports. The entry points, for Python as for the command
line, are run_experiments and run_sweep (orchestration.py)."""
import importlib

_EXPORTS = {"run_experiments": "orchestration", "run_sweep": "orchestration",
            "GridReport": "orchestration", "Execution": "executor", "Observer": "executor"}
__all__ = list(_EXPORTS)


def __getattr__(name):
    # Imported on first use: the command line reads a grid file without importing Dask.
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fastmlp.grids' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
