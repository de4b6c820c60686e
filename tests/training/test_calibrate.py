"""A mix of GEMM libraries is decided by the run's own steps: the fastest candidate is kept (by
the margin), the decision is stored, and the trainer trains exactly as it would have with that
library from the start."""
import numpy as np
import pytest

from fastmlp.engine import gemm
from fastmlp.runtime import blas
from fastmlp.runtime.store import Choices
from fastmlp.settings import RunOptions, TrainConfig
from fastmlp.training import calibrate
from fastmlp.training.plan import plan_for
from fastmlp.training.trainer import make_trainer
from tests.helpers import data32

CONFIG = TrainConfig(layers=(16,), batch_size=64, epochs=1, optimizer="adam", lr=1e-3, ema=0.9)


def mixed_plan(monkeypatch, tmp_path, data):
    """A plan whose products are split between two libraries (both OpenBLAS underneath: the
    stubs only name them), with the store in tmp_path."""
    monkeypatch.setattr(blas, "available", lambda: ("openblas", "mkl"))
    monkeypatch.setattr(blas, "mkl_version", lambda: "stub")
    monkeypatch.setattr(gemm, "time_backends", lambda products, operand, backends: {
        p: {"openblas": 1e-5, "mkl": 0.5e-5 if i == 0 else 2e-5} for i, p in enumerate(products)})
    store = Choices(tmp_path / "choices.json")
    monkeypatch.setattr(gemm, "Choices", lambda: store)
    monkeypatch.setattr(calibrate, "Choices", lambda: store)
    # Both names run on OpenBLAS here: what is tested is the choosing, not MKL.
    monkeypatch.setattr(blas, "mkl_gemm", lambda a, b, out: np.matmul(a, b, out=out))
    return plan_for(CONFIG, data, options=RunOptions(threads=1)), store


def test_the_steps_decide_and_the_decision_is_kept(monkeypatch, tmp_path):
    data = data32(n_features=20)
    plan, store = mixed_plan(monkeypatch, tmp_path, data)
    assert list(plan.gemm_candidates) == ["mix", "openblas", "mkl"]
    monkeypatch.setattr(calibrate, "best_seconds", lambda calls, rounds: [
        call() or seconds for call, seconds in zip(calls, [3.0, 2.0, 1.0])])
    trainer = make_trainer(CONFIG, data, plan=plan)
    assert trainer.gemm is plan.gemm_candidates["mkl"]  # the fastest over the steps
    assert store.get(plan.gemm_key) == "mkl"
    again, _ = mixed_plan(monkeypatch, tmp_path, data)
    assert again.gemm.backends() == ["mkl"] and not again.gemm_candidates


def test_a_library_must_beat_openblas_by_the_margin(monkeypatch, tmp_path):
    data = data32(n_features=20)
    plan, store = mixed_plan(monkeypatch, tmp_path, data)
    monkeypatch.setattr(calibrate, "best_seconds", lambda calls, rounds: [
        call() or seconds for call, seconds in zip(calls, [1.0, 1.0, 0.98])])
    assert make_trainer(CONFIG, data, plan=plan).gemm is plan.gemm_candidates["openblas"]


def test_deciding_leaves_the_trainer_as_it_was(monkeypatch, tmp_path):
    """The steps timed are undone: the run trains as one that never timed anything."""
    data = data32(n_features=20)
    plan, _ = mixed_plan(monkeypatch, tmp_path, data)
    decided = make_trainer(CONFIG, data, plan=plan)
    straight = make_trainer(CONFIG, data, plan=plan_for(CONFIG, data, options=RunOptions(
        threads=1, blas="openblas")))
    assert decided.optimizer.steps == 0
    np.testing.assert_array_equal(decided.model.params, straight.model.params)
    np.testing.assert_array_equal(decided.averaged.params, straight.averaged.params)
    for name, values in decided.optimizer.state.items():
        np.testing.assert_array_equal(values, straight.optimizer.state[name])
    decided.epoch()
    straight.epoch()
    np.testing.assert_array_equal(decided.model.params, straight.model.params)


def test_long_steps_keep_the_mix_untimed(monkeypatch, tmp_path):
    """A step over MAX_STEP_SECONDS (a large full batch) is not timed: its large matmuls
    dominate, and the mix stands."""
    data = data32(n_features=20)
    plan, store = mixed_plan(monkeypatch, tmp_path, data)
    plan.gemm_times = {p: {"openblas": 1.0, "mkl": 0.9} for p in plan.gemm_times}
    monkeypatch.setattr(calibrate, "best_seconds", lambda *a: pytest.fail("timed"))
    assert make_trainer(CONFIG, data, plan=plan).gemm is plan.gemm_candidates["mix"]
    assert store.get(plan.gemm_key) == "mix"
