"""The versions a result depends on (fastmlp, Python, numpy, numba), written into every `--out`
JSON, grid record and saved model, so that results of different versions are never silently
mixed: a grid runs a record of another fastmlp version again, and a checkpoint of another
version is not resumed."""
import platform


def fastmlp_version():
    from .. import __version__

    return __version__


def versions(distributed=False):
    """{package: version}; with `distributed`, Dask distributed's too (a grid's records), which is
    left out elsewhere: importing it is slow."""
    import numba
    import numpy

    found = {"fastmlp": fastmlp_version(), "python": platform.python_version(),
             "numpy": numpy.__version__, "numba": numba.__version__}
    if distributed:
        try:
            import distributed as dask_distributed
            found["distributed"] = dask_distributed.__version__
        except ImportError:  # a worker needs it, an in-process run does not
            pass
    return found
