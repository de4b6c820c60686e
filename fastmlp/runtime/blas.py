"""The GEMM libraries a matmul can go to: numpy's OpenBLAS (always there) and Intel MKL (the pip
`mkl` package, `pip install 'fastmlp[mkl]'`), called through ctypes. Each takes C = A @ B for
float32, float64, and bfloat16 operands with float32 sums, A and B C-contiguous or transposed
views of C-contiguous arrays, as the engine's matmuls are.

MKL runs on the GNU OpenMP threading layer: the same libgomp numba's kernels use, so one
OpenMP runtime serves both (two runtimes would each keep a pool on the same cores), its idle
workers sleep as jit.py asks, and threadpoolctl sets its threads with OpenBLAS's.
"""
import ctypes
import os
import sys
import threading

import numpy as np

from ..errors import FastMLPError

BACKENDS = ("openblas", "mkl")
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_GNU_THREADING = 3  # MKL_THREADING_GNU
_LOCK = threading.Lock()
_MKL = []  # the loaded library, once looked for (None: not installed)


def _mkl_paths():
    """Where the pip package puts libmkl_rt: the environment's lib/ (and the user base's)."""
    names = ("libmkl_rt.so.3", "libmkl_rt.so.2", "libmkl_rt.so")
    roots = [sys.prefix, getattr(sys, "base_prefix", sys.prefix)]
    try:
        import site
        roots.append(site.getuserbase())
    except (ImportError, AttributeError):
        pass
    return [os.path.join(root, "lib", name) for root in roots for name in names]


def _load_mkl():
    """libmkl_rt with its GNU threading layer set, or None when it cannot be loaded."""
    os.environ.setdefault("MKL_THREADING_LAYER", "GNU")  # in case the library reads it first
    for path in _mkl_paths():
        if not os.path.exists(path):
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        # Before any other MKL call (threadpoolctl's included), or the layer is fixed.
        lib.MKL_Set_Threading_Layer(_GNU_THREADING)
        args = [ctypes.c_int] * 6
        for name, scalar in (("cblas_sgemm", ctypes.c_float), ("cblas_dgemm", ctypes.c_double),
                             ("cblas_gemm_bf16bf16f32", ctypes.c_float)):
            fn = getattr(lib, name)
            fn.argtypes = [*args, scalar, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                           ctypes.c_int, scalar, ctypes.c_void_p, ctypes.c_int]
            fn.restype = None
        return lib
    return None


def mkl():
    """The loaded MKL library, or None when the `mkl` package is not installed."""
    with _LOCK:
        if not _MKL:
            _MKL.append(_load_mkl())
        return _MKL[0]


def available():
    """The backends this process can use, in BACKENDS order."""
    return tuple(b for b in BACKENDS if b == "openblas" or mkl() is not None)


def require(name):
    """Check that backend `name` can be used here; one FastMLPError line when it cannot."""
    if name not in BACKENDS:
        raise FastMLPError(f"unknown BLAS {name!r}; known: {', '.join(BACKENDS)}")
    if name == "mkl" and mkl() is None:
        raise FastMLPError("--blas mkl needs Intel MKL, which is not installed: "
                           "pip install 'fastmlp[mkl]'")


def mkl_version():
    """MKL's version string, or None."""
    lib = mkl()
    if lib is None:
        return None
    buffer = ctypes.create_string_buffer(256)
    lib.MKL_Get_Version_String(buffer, len(buffer))
    return buffer.value.decode(errors="replace")


def _operand(a):
    """(transpose flag, leading dimension) of a 2-D operand that is C-contiguous or the
    transpose of a C-contiguous array."""
    if a.flags.c_contiguous:
        return _NO_TRANS, max(1, a.shape[1])
    if a.T.flags.c_contiguous:
        return _TRANS, max(1, a.shape[0])
    raise ValueError("a GEMM operand must be C-contiguous or a transposed C-contiguous array")


def mkl_gemm(a, b, out):
    """out = a @ b with MKL: float32 or float64 operands into an array of their type, or
    bfloat16 operands (uint16 bit patterns) into float32."""
    m, k = a.shape
    n = b.shape[1]
    ta, lda = _operand(a)
    tb, ldb = _operand(b)
    if a.dtype == np.uint16:
        gemm = mkl().cblas_gemm_bf16bf16f32
    elif a.dtype == np.float32:
        gemm = mkl().cblas_sgemm
    else:
        gemm = mkl().cblas_dgemm
    gemm(_ROW_MAJOR, ta, tb, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb, 0.0,
         out.ctypes.data, max(1, n))
    return out


def openblas_versions():
    """The OpenBLAS libraries loaded in this process, as "openblas VERSION" (threadpoolctl)."""
    from threadpoolctl import threadpool_info
    return sorted(f"openblas {lib.get('version')}" for lib in threadpool_info()
                  if lib.get("internal_api") == "openblas")
