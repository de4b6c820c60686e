"""Where each matmul of a step goes: the GEMM library (runtime/blas.py) chosen for its shape by
timing the candidates on this machine, at the run's threads, once per machine and shape (the
choice is kept in the user cache, runtime/store.py).

Operands are float32 or float64, or bfloat16 bit patterns (uint16) summed in float32 (mixed
precision). A BLAS without bfloat16 matmuls (OpenBLAS here) gets the operands widened to
float32, which is exact: the same products, summed in float32, only slower.
"""
import hashlib
import platform
from dataclasses import dataclass, field

import numpy as np
from numpy import matmul

from ..runtime import blas
from ..runtime.jit import ready
from ..runtime.probe import cpu_model
from ..runtime.store import Choices
from ..runtime.threads import thread_limits
from ..runtime.timing import best_seconds
from . import bfloat16
from .bfloat16 import widened

CHOICE_REPEATS = 5
# A library other than OpenBLAS (numpy's own, always there) is chosen only when it is this much
# faster: the machines are shared, and a timing that flips between runs should not flip a
# choice that changes the run's last bits.
CHOICE_MARGIN = 0.95
PROBE_DIM = 4096  # every dimension of a probe matmul is capped at this
PROBE_VOLUME = 2**30  # and its multiply-adds at this: ~20 ms at 100 GFLOPS


def layout(a, b):
    """"nn", "tn", "nt" or "tt": which operands are transposed views of C-contiguous arrays."""
    return ("n" if a.flags.c_contiguous else "t") + ("n" if b.flags.c_contiguous else "t")


class Gemm:
    """out = a @ b, each product on the backend chosen for it: choices {(m, k, n, layout):
    backend name}, `default` for any other. With no choices every call is numpy's matmul, as
    the engine always made it."""

    def __init__(self, choices=None, default="openblas"):
        self.choices = dict(choices or {})
        self.default = default
        self._scratch = {}  # (slot, shape) -> float32 buffer of widened bfloat16 operands

    def backend_for(self, product):
        """The backend of a product (m, k, n, layout)."""
        return self.choices.get(tuple(product), self.default)

    def __call__(self, a, b, out):
        name = self.default
        if self.choices:
            name = self.choices.get((a.shape[0], a.shape[1], b.shape[1], layout(a, b)), name)
        if name == "mkl":
            return blas.mkl_gemm(a, b, out)
        if a.dtype == np.uint16:
            return matmul(self._wide(a, 0), self._wide(b, 1), out=out)
        return matmul(a, b, out=out)

    def _wide(self, x, slot):
        """x (bfloat16 bits, C-contiguous or its transpose) widened into a reused buffer."""
        base = x if x.flags.c_contiguous else x.T
        buffer = self._scratch.get((slot, base.shape))
        if buffer is None:
            ready(np.float32, bfloat16.GROUP)  # the widening kernel, once per buffer
            buffer = self._scratch[slot, base.shape] = np.empty(base.shape, np.float32)
        widened(base, buffer)
        return buffer if base is x else buffer.T

    def backends(self):
        """The backends this Gemm sends products to."""
        return sorted({self.default, *self.choices.values()})

    def __repr__(self):
        return f"Gemm({', '.join(self.backends())})"


OPENBLAS = Gemm()


def probe_shape(m, k, n):
    """(m, k, n) with every dimension capped at PROBE_DIM, then the largest halved until the
    product has at most PROBE_VOLUME multiply-adds: what a product is timed on."""
    dims = [min(d, PROBE_DIM) for d in (m, k, n)]
    while dims[0] * dims[1] * dims[2] > PROBE_VOLUME:
        largest = dims.index(max(dims))
        dims[largest] = (dims[largest] + 1) // 2
    return dims


def probe(product, operand, rng):
    """(a, b, out) of a product's probe shape and layout, of the operand type ("float32",
    "float64" or "bfloat16"), and the factor that scales a time on them to the product."""
    m, k, n, layout_ = product
    pm, pk, pn = probe_shape(m, k, n)
    a, b = _operands(pm, pk, pn, layout_, operand, rng)
    out = np.empty((pm, pn), np.float64 if operand == "float64" else np.float32)
    return a, b, out, m * k * n / (pm * pk * pn)


def roofline_call(operand, backend, n=2048):
    """A function running one n x n matmul of `operand`s on `backend`: the roofline a run's
    speed is quoted against (2 n^3 FLOPs a call)."""
    a, b, out, _ = probe((n, n, n, "nn"), operand, np.random.default_rng(0))
    call = Gemm(default=backend)
    return lambda: call(a, b, out)


def main_backend(gemm):
    """The library most of a Gemm's products go to (its roofline's)."""
    names = [gemm.default, *gemm.choices.values()]
    return max(dict.fromkeys(names), key=names.count)


def _operands(m, k, n, layout_, operand, rng):
    """Random operands of a product's shape and layout, of the operand type."""
    def array(rows, cols, transposed):
        x = rng.random((cols, rows) if transposed else (rows, cols), np.float32)
        if operand == "bfloat16":
            x = (x.view(np.uint32) >> 16).astype(np.uint16)
        elif operand == "float64":
            x = x.astype(np.float64)
        return x.T if transposed else x
    return array(m, k, layout_[0] == "t"), array(k, n, layout_[1] == "t")


def time_backends(products, operand, backends, repeats=CHOICE_REPEATS):
    """{product: {backend: seconds}}: each product (m, k, n, layout) timed at its probe shape
    (engine.cost.probe_shape) on every backend, the backends in turns (best of `repeats`)."""
    rng = np.random.default_rng(0)
    found = {}
    for product in dict.fromkeys(products):
        a, b, out, _ = probe(product, operand, rng)
        gemms = [Gemm(default=name) for name in backends]
        seconds = best_seconds([lambda g=g: g(a, b, out) for g in gemms], repeats)
        found[product] = dict(zip(backends, seconds))
    return found


def _machine():
    """The part of every key that is the machine's: the CPU and the libraries loaded (asked
    once per choice: asking threadpoolctl takes milliseconds)."""
    libraries = [f"numpy {np.__version__}", f"mkl {blas.mkl_version()}",
                 *blas.openblas_versions()]
    return "|".join([cpu_model(), platform.machine(), *libraries])


def _key(product, operand, threads, machine):
    """The store's key of a product's choice: everything that decides it."""
    text = "|".join([machine, f"threads {threads}", operand,
                     "x".join(map(str, product[:3])), product[3]])
    return "gemm:" + hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass
class Choice:
    """What choose() found: the Gemm to use, the timings behind it ({product: {backend:
    seconds}}), and, while the run's own steps have yet to decide whether a mix of libraries
    pays (switching libraries wakes the other's threads, which a product timed alone does not
    show), the candidate Gemms by name and the key their decision is kept under."""
    gemm: Gemm
    times: dict = field(default_factory=dict)
    candidates: dict = field(default_factory=dict)
    key: str | None = None


def choose(products, operand, threads, option="auto", store=None):
    """Where the matmuls of these products go. option "openblas" or "mkl" sends every product
    there; "auto" times the available backends on each product the store does not know yet, at
    the thread limits in force, and sends each to the faster (OpenBLAS unless another is
    CHOICE_MARGIN faster). When that makes a mix of libraries, the Choice also names the
    candidates (the mix, each library alone) for the run's steps to decide between
    (training/calibrate.py), unless a run of the same products decided before."""
    if option != "auto":
        blas.require(option)
        return Choice(Gemm(default=option))
    backends = blas.available()
    if len(backends) == 1:
        return Choice(Gemm(default=backends[0]))
    store = store or Choices()
    products = list(dict.fromkeys(products))
    machine = _machine()
    keys = {p: _key(p, operand, threads, machine) for p in products}
    known = {p: store.get(key) for p, key in keys.items()}
    if any(entry is None for entry in known.values()):
        with store.locked(), thread_limits(threads):  # a run measuring beside this one first
            known = {p: store.get(key) for p, key in keys.items()}
            todo = [p for p, entry in known.items() if entry is None]
            if todo:
                measured = time_backends(todo, operand, backends)
                store.put({keys[p]: measured[p] for p in todo})
                known.update(measured)
    mix = {p: faster(times) for p, times in known.items()}
    if len(set(mix.values())) == 1:
        return Choice(Gemm(default=next(iter(mix.values()))), known)
    candidates = {"mix": Gemm(mix), **{b: Gemm(default=b) for b in backends}}
    key = "gemm-steps:" + hashlib.sha256("|".join(keys.values()).encode()).hexdigest()
    decided = store.get(key)
    if decided in candidates:
        return Choice(candidates[decided], known)
    return Choice(candidates["mix"], known, candidates, key)


def faster(times):
    """The key of {library or "mix": seconds} to choose: "openblas" unless another beats it
    by the margin."""
    best = min(times, key=times.get)
    return best if times[best] < CHOICE_MARGIN * times.get("openblas", float("inf")) \
        else "openblas"
