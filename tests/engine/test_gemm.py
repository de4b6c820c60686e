"""The GEMM libraries: MKL against OpenBLAS (float32, float64 and bfloat16 operands), the
choice by measurement and its cache, running without MKL, and MKL beside numba's OpenMP."""
import subprocess
import sys

import numpy as np
import pytest

from fastmlp.engine import bfloat16, gemm
from fastmlp.errors import FastMLPError
from fastmlp.runtime import blas
from fastmlp.runtime.jit import ready
from fastmlp.runtime.store import Choices
from tests import naive
from tests.helpers import error_line, run_cli

needs_mkl = pytest.mark.skipif(blas.mkl() is None, reason="MKL is not installed "
                               "(pip install 'fastmlp[mkl]'; the test extra installs it)")
LAYOUTS = ["nn", "tn", "nt", "tt"]


def operands(m, k, n, layout, dtype, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if layout[0] == "t" else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if layout[1] == "t" else (k, n)).astype(dtype)
    return (a.T if layout[0] == "t" else a), (b.T if layout[1] == "t" else b)


@needs_mkl
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mkl_agrees_with_openblas_within_rounding(layout, dtype):
    a, b = operands(130, 77, 45, layout, dtype)
    want = a.astype(np.float64) @ b.astype(np.float64)
    for name in blas.BACKENDS:
        out = np.empty((130, 45), dtype)
        gemm.Gemm(default=name)(a, b, out)
        tolerance = 1e-5 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(out, want, rtol=tolerance, atol=tolerance * 77)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_bfloat16_operands_on_every_backend_are_their_exact_products_summed(layout):
    ready(np.float32, bfloat16.GROUP)
    a, b = operands(64, 200, 33, layout, np.float32, seed=1)
    a16 = naive.to_bfloat16(a.T).T if layout[0] == "t" else naive.to_bfloat16(a)
    b16 = naive.to_bfloat16(b.T).T if layout[1] == "t" else naive.to_bfloat16(b)
    want = naive.from_bfloat16(a16).astype(np.float64) @ naive.from_bfloat16(b16)
    for name in blas.available():
        out = np.empty((64, 33), np.float32)
        gemm.Gemm(default=name)(a16, b16, out)
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-4)


def test_each_product_goes_where_it_was_chosen(monkeypatch):
    seen = []
    monkeypatch.setattr(blas, "mkl_gemm", lambda a, b, out: seen.append("mkl"))
    chosen = gemm.Gemm({(4, 3, 2, "nn"): "mkl"})
    a, b = operands(4, 3, 2, "nn", np.float32)
    chosen(a, b, np.empty((4, 2), np.float32))
    chosen(a.T.copy().T, b, np.empty((4, 2), np.float32))  # "tn": not chosen, the default
    assert seen == ["mkl"] and chosen.backends() == ["mkl", "openblas"]


@pytest.fixture
def two_backends(monkeypatch):
    """Both backends, whether MKL is installed or not (timings are stubbed)."""
    monkeypatch.setattr(blas, "available", lambda: ("openblas", "mkl"))
    monkeypatch.setattr(blas, "mkl_version", lambda: "stub")
    timed = []

    def time_backends(products, operand, backends):
        timed.extend(products)
        return {p: {"openblas": 2.0, "mkl": 1.0} if p[0] > 100 else
                {"openblas": 1.0, "mkl": 2.0} for p in products}
    monkeypatch.setattr(gemm, "time_backends", time_backends)
    return timed


def test_the_choice_is_timed_once_then_read_from_the_store(tmp_path, two_backends):
    store = Choices(tmp_path / "choices.json")
    products = [(128, 784, 128, "nn"), (48, 784, 128, "tn")]
    choice = gemm.choose(products, "float32", 2, store=store)
    assert choice.gemm.choices == {products[0]: "mkl", products[1]: "openblas"}
    assert choice.times[products[0]] == {"openblas": 2.0, "mkl": 1.0}
    assert two_backends == products
    # A mix: the run's own steps are to decide between it and each library alone.
    assert list(choice.candidates) == ["mix", "openblas", "mkl"] and choice.key
    again = gemm.choose(products, "float32", 2, store=Choices(tmp_path / "choices.json"))
    assert again.gemm.choices == choice.gemm.choices and two_backends == products  # untimed
    Choices(tmp_path / "choices.json").put({choice.key: "openblas"})  # the steps decided
    decided = gemm.choose(products, "float32", 2, store=Choices(tmp_path / "choices.json"))
    assert decided.gemm.backends() == ["openblas"] and not decided.candidates


@pytest.mark.parametrize("change", ["cpu", "library", "threads", "shape", "operand"])
def test_a_new_cpu_library_thread_count_or_shape_is_timed_afresh(tmp_path, two_backends,
                                                                monkeypatch, change):
    store = Choices(tmp_path / "choices.json")
    product, operand, threads = (128, 784, 128, "nn"), "float32", 2
    gemm.choose([product], operand, threads, store=store)
    if change == "cpu":
        monkeypatch.setattr(gemm, "cpu_model", lambda: "another CPU")
    elif change == "library":
        monkeypatch.setattr(blas, "mkl_version", lambda: "another MKL")
    elif change == "threads":
        threads = 1
    elif change == "shape":
        product = (256, 784, 128, "nn")
    else:
        operand = "bfloat16"
    gemm.choose([product], operand, threads, store=store)
    assert len(two_backends) == 2


def test_a_store_that_cannot_be_written_keeps_the_choice_in_the_process(tmp_path,
                                                                       two_backends):
    blocked = tmp_path / "file"
    blocked.write_text("")
    store = Choices(blocked / "choices.json")  # its directory is a file
    chosen = gemm.choose([(128, 784, 128, "nn")], "float32", 2, store=store).gemm
    assert chosen.backends() == ["mkl"]  # the faster library, kept for this process


def test_without_mkl_every_product_goes_to_openblas_untimed(monkeypatch):
    monkeypatch.setattr(blas, "available", lambda: ("openblas",))
    monkeypatch.setattr(gemm, "time_backends", lambda *a: pytest.fail("timed"))
    choice = gemm.choose([(128, 784, 128, "nn")], "float32", 2)
    assert choice.gemm.backends() == ["openblas"] and choice.times == {}
    monkeypatch.setattr(blas, "mkl", lambda: None)
    with pytest.raises(FastMLPError, match=r"--blas mkl needs Intel MKL.*fastmlp\[mkl\]"):
        gemm.choose([(128, 784, 128, "nn")], "float32", 2, option="mkl")


def test_blas_mkl_without_mkl_is_one_line_exit_2(tmp_path):
    code = ("import sys; from fastmlp.runtime import blas; blas._MKL.append(None); "
            "from fastmlp.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, "train", "--layers", "8", "--epochs", "1",
                           "--blas", "mkl", "--quiet"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 2
    error_line(proc, "--blas mkl needs Intel MKL, which is not installed")


def test_the_blas_flag_is_recorded_beside_the_threads(tmp_path):
    out = tmp_path / "run.json"
    proc = run_cli("train", "--layers", "8", "--epochs", "1", "--batch-size", "4096",
                   "--blas", "openblas", "--threads", "1", "--quiet", "--out", out)
    assert proc.returncode == 0, proc.stderr
    import json
    assert json.loads(out.read_text())["run"]["blas"] == "openblas"


COEXIST = """
import sys, numpy as np
order = sys.argv[1]
if order == "mkl-first":
    from fastmlp.runtime import blas; blas.mkl()
from fastmlp import TrainConfig, RunOptions, train
from fastmlp.runtime import blas
from fastmlp.runtime.threads import thread_limits
from threadpoolctl import threadpool_info
result = train(TrainConfig(layers=(16,), epochs=2, batch_size=256),
               options=RunOptions(threads=2, blas="mkl"))
mkl = [p for p in threadpool_info() if p["internal_api"] == "mkl"]
with thread_limits(1):
    inside = [p["num_threads"] for p in threadpool_info() if p["internal_api"] == "mkl"]
print(mkl[0]["threading_layer"], inside, float(result.model.params.sum()).hex())
"""


@needs_mkl
def test_mkl_shares_numbas_openmp_runtime_in_any_import_order(tmp_path):
    """MKL runs on GNU OpenMP, the runtime numba's kernels use (one pool, not two), obeys the
    thread limits, and a run gives the same bits whichever loaded first."""
    outputs = []
    for order in ("mkl-first", "fastmlp-first"):
        proc = subprocess.run([sys.executable, "-c", COEXIST, order], capture_output=True,
                              text=True, cwd=tmp_path, timeout=600)
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout.split())
    assert outputs[0] == outputs[1]
    layer, inside, _ = outputs[0][0], outputs[0][1], outputs[0][2]
    assert layer == "gnu" and inside == "[1]"
