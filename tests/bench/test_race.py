"""Time to accuracy (`fastmlp bench --to-accuracy`): what is charged, the summary, the command,
and the PyTorch contestant's augmentation and weight average against the engine's numpy
twins."""
import json
import subprocess
import sys

import numpy as np
import pytest

from fastmlp import TrainConfig
from fastmlp.bench.race import SeedRun, differences, summarize, table
from fastmlp.engine.bfloat16 import NONE_2D
from tests import naive
from tests.helpers import error_line, run_cli


def _run(seed, accs, times, contestant="fastmlp"):
    return SeedRun(contestant, seed, [
        {"epoch": k, "val": a, "test": a, "time": {"val": t, "test": t + 0.1}}
        for k, (a, t) in enumerate(zip(accs, times), 1)])


def test_the_target_is_reached_at_the_first_epoch_at_or_above_it():
    run = _run(0, [0.90, 0.98, 0.97, 0.99], [1.0, 2.0, 3.0, 4.0])
    assert run.time_to(0.98, "val") == (2.0, 2)
    assert run.time_to(0.98, "test") == (2.1, 2)
    assert run.time_to(0.995, "val") is None


def test_the_median_counts_seeds_that_missed_as_never():
    runs = [_run(0, [0.97, 0.99], [1, 2]), _run(1, [0.99, 0.99], [1, 2]),
            _run(2, [0.90, 0.95], [1, 2])]
    row, = summarize(runs, 0.98, "val")
    assert (row["reached"], row["seeds"], row["median_seconds"]) == (2, 3, 2)
    assert (row["final_min"], row["final_max"]) == (0.95, 0.99)
    assert row["final_mean"] == pytest.approx((0.99 + 0.99 + 0.95) / 3)
    runs.append(_run(3, [0.90, 0.95], [1, 2]))  # 2 of 4 missed: the median is "never"
    row, = summarize(runs, 0.98, "val")
    assert row["median_seconds"] is None
    assert "not reached" in table([row], TrainConfig(), 0.98, "val")


def test_a_failed_contestant_is_a_row_that_says_why():
    runs = [_run(0, [0.99], [1.0]), SeedRun("torch", 0, error="torch: torch is not installed")]
    rows = summarize(runs, 0.98, "test")
    assert rows[1] == {"contestant": "torch", "error": "torch: torch is not installed"}
    assert "| torch | - |" in table(rows, TrainConfig(), 0.98, "test")


def test_the_table_says_what_the_peers_leave_out_of_the_recipe():
    config = TrainConfig(augment_shift=1, augment_rotate=10.0, augment_elastic=34.0, ema=0.99)
    assert differences("fastmlp", config) == ""
    assert differences("torch", config) == ""
    assert differences("torch-compile", config) == "compile time counted; evaluates in eager mode"
    assert differences("torch-bf16", config) == "torch.autocast to bfloat16"
    assert differences("sklearn", config).endswith(
        "; no shift augmentation, affine augmentation, elastic distortions, weight average (EMA)")
    smoothed = TrainConfig(label_smoothing=0.1)
    assert differences("torch", smoothed) == "" and "label smoothing" in differences("sklearn",
                                                                                      smoothed)
    mixed = TrainConfig(dtype="mixed_bfloat16")
    assert differences("torch", mixed).startswith("float32 matmuls")
    assert differences("torch-compile", mixed).endswith("compare torch-bf16)")
    assert differences("torch-bf16", mixed) == "torch.autocast to bfloat16"


@pytest.mark.usefixtures("kernels_ready")  # the kernel is called directly, without a Workspace
def test_torch_label_smoothing_is_the_kernels():
    """The racer's nn.CrossEntropyLoss(label_smoothing=EPS) is the loss and gradient the
    engine's kernel trains on (float64)."""
    torch = pytest.importorskip("torch")
    from fastmlp.engine import kernels
    rng = np.random.default_rng(3)
    logits = 3 * rng.normal(size=(37, 10))
    y = rng.integers(0, 10, 37).astype(np.int32)
    dlogits, db = np.empty_like(logits), np.empty(10)
    loss, _ = kernels.softmax_xent_backward(dlogits, NONE_2D, db, np.zeros((1, 10)), np.zeros(1),
                                            np.zeros(1, np.int64), logits, y, 0.1)
    t = torch.tensor(logits, requires_grad=True)
    want = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(t, torch.from_numpy(y).long())
    want.backward()
    assert loss == pytest.approx(want.item(), rel=1e-12)
    np.testing.assert_allclose(dlogits, t.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_torch_shifts_the_way_the_gather_kernel_does():
    torch = pytest.importorskip("torch")
    from fastmlp.bench.racers import _shifter
    x = torch.rand(16, 28 * 28)
    shifted = _shifter(2, 28)(x, torch.Generator().manual_seed(5))
    d = torch.randint(-2, 3, (16, 2), generator=torch.Generator().manual_seed(5)).numpy()
    for i, (dy, dx) in enumerate(d):
        expected = naive.translate(x[i].numpy().reshape(28, 28), dy, dx).ravel()
        np.testing.assert_array_equal(shifted[i].numpy(), expected)


# What the PyTorch racer gives _warp (test_torch_augmenter_...) and the reference it must match.
AFFINE = dict(rotate=20.0, scale=0.2, shear=15.0, shift=3.0)


def test_torch_warps_the_way_the_affine_and_elastic_gathers_do():
    """Given the same draws, the racer's F.affine_grid + field + F.grid_sample is the engine's
    numpy twin of gather_affine (no field) and gather_elastic (float64)."""
    torch = pytest.importorskip("torch")
    from fastmlp.bench.racers import _warp
    side, n, key, field_key, alpha = 28, 6, 11, 12, 8.0
    x = np.random.default_rng(0).random((n, side * side))
    w = 2 * naive.uniform(key, np.arange(5 * n)).reshape(n, 5) - 1
    bank = naive.elastic_bank(5, 4, side, 4.0)
    fields = np.stack([np.stack(naive.elastic_variant(bank, field_key, i), -1)
                       for i in range(n)])
    for a, field in ((0.0, None), (alpha, torch.from_numpy(alpha * fields))):
        want, _ = naive.affine_gather(x, np.zeros(n, np.int32), np.arange(n), side, **AFFINE,
                                      key=key, alpha=a, bank=bank, field_key=field_key)
        got = _warp(torch.from_numpy(x), side, torch.from_numpy(w), *AFFINE.values(), field)
        np.testing.assert_allclose(got.numpy(), want, atol=1e-12)


@pytest.mark.parametrize("sigma", [0.5, 4.0, 10.0])  # 10: the Gaussian is wider than the image
def test_torch_smooths_the_field_the_way_the_engine_does(sigma):
    torch = pytest.importorskip("torch")
    from fastmlp.bench.racers import _smoothed
    side, area = 28, 28 * 28
    noise = np.stack([2 * naive.uniform(7, 2 * area * i + np.arange(2 * area)) - 1
                      for i in range(3)]).reshape(3, 2, side, side)
    got = _smoothed(torch.from_numpy(noise), sigma).numpy()
    for i in range(3):
        np.testing.assert_allclose(got[i], naive.elastic_field(7, i, side, sigma), atol=1e-14)


def test_torch_augmenter_draws_the_recipes_distortions():
    """The racer's random layer hands _warp the recipe's settings, draws in [-1, 1) and the
    elastic fields of a bank drawn at the first batch, scaled by alpha."""
    torch = pytest.importorskip("torch")
    from fastmlp.bench.racers import _augmenter, _smoothed, _variants, _warp
    from fastmlp.engine.elastic import BANK_FIELDS
    config = TrainConfig(augment_rotate=20.0, augment_scale=0.2, augment_shear=15.0,
                         augment_shift=3, augment_elastic=8.0, augment_elastic_sigma=3.0)
    x = torch.rand(5, 28 * 28, dtype=torch.float64)
    got = _augmenter(config, 28)(x, torch.Generator().manual_seed(3))
    generator = torch.Generator().manual_seed(3)
    noise = 2 * torch.rand(BANK_FIELDS, 2, 28, 28, generator=generator, dtype=x.dtype) - 1
    w = 2 * torch.rand(5, 5, generator=generator, dtype=x.dtype) - 1
    pick = torch.randint(0, 8 * BANK_FIELDS, (5,), generator=generator)
    field = 8.0 * _variants(_smoothed(noise, 3.0), pick).permute(0, 2, 3, 1)
    np.testing.assert_array_equal(got.numpy(), _warp(x, 28, w, *AFFINE.values(), field).numpy())
    assert _augmenter(TrainConfig(augment_shift=2), 28) is not None
    assert _augmenter(TrainConfig(), 28) is None


def test_torch_takes_the_variants_of_the_bank_the_engine_takes():
    """_variants picks, swaps and negates a bank's field pairs as elastic.gather_elastic does
    (its twin naive.elastic_variant), for every variant of a bank of three pairs."""
    torch = pytest.importorskip("torch")
    from fastmlp.bench.racers import _variants
    bank = np.random.default_rng(0).standard_normal((3, 5, 10)).astype(np.float32)
    pairs = torch.from_numpy(bank).view(3, 5, 2, 5).permute(0, 2, 1, 3)  # (B, 2, side, side)
    picks = set()
    for i in range(400):
        pick = int(naive.uniform(7, [i])[0] * 8 * 3)
        got = _variants(pairs, torch.tensor([pick]))[0].numpy()
        dx, dy = naive.elastic_variant(bank, 7, i)
        np.testing.assert_array_equal(got[0], dx)
        np.testing.assert_array_equal(got[1], dy)
        picks.add(pick)
    assert picks == set(range(24))


def test_torch_averages_the_weights_the_way_the_engine_does():
    """AveragedModel as the racer sets it up follows kernels.ema_update's rule, warm-up
    included (decay 0.22: the warm-up's (1 + k) / (10 + k) rules steps 1-2, the decay after)."""
    torch = pytest.importorskip("torch")
    from fastmlp.bench.racers import _averaged
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
                                torch.nn.Linear(4, 2)).double()
    flat = lambda m: torch.cat([p.detach().flatten() for p in m.parameters()]).numpy()  # noqa: E731
    averaged, ema = _averaged(model, 0.22), flat(model)
    for step in range(1, 5):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        averaged.update_parameters(model)
        ema = naive.ema_update(ema, flat(model), 0.22, step)
        np.testing.assert_allclose(flat(averaged.module), ema, rtol=1e-14)


def test_torch_racer_trains_affine_elastic_and_ema(tmp_path, capsys, monkeypatch):
    """One epoch of the whole recipe in PyTorch on 300 random images prints its epoch line,
    having augmented every batch, averaged after every step and evaluated the average."""
    torch = pytest.importorskip("torch")
    from fastmlp.bench import racers
    calls, made = {"augmented": 0, "averaged": 0}, []

    def counted(name, function):
        def call(*args):
            calls[name] += 1
            return function(*args)
        return call

    augmenter, averaged = racers._augmenter, racers._averaged
    monkeypatch.setattr(racers, "_augmenter",
                        lambda *args: counted("augmented", augmenter(*args)))

    def spied_average(*args):
        made.append(averaged(*args))
        made[0].forward = counted("averaged", made[0].forward)
        return made[0]
    monkeypatch.setattr(racers, "_averaged", spied_average)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "small.npz", x_train=rng.integers(0, 256, (300, 28, 28), np.uint8),
             y_train=rng.integers(0, 10, 300), x_test=rng.integers(0, 256, (50, 28, 28),
                                                                    np.uint8),
             y_test=rng.integers(0, 10, 50))
    config = TrainConfig(data=str(tmp_path / "small.npz"), layers=(16,), epochs=1,
                         batch_size=64, augment_shift=2, augment_rotate=10.0,
                         augment_scale=0.1, augment_shear=10.0, augment_elastic=34.0, ema=0.99)
    threads = torch.get_num_threads()
    try:
        racers.race_torch(config, 1)
    finally:
        torch.set_num_threads(threads)
    line, = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["epoch"] == 1 and 0 <= record["val"] <= 1 and 0 <= record["test"] <= 1
    steps = made[0].n_averaged.item() - 1  # its first update copies the initial weights
    assert calls == {"augmented": steps, "averaged": 2} and steps >= 4


def test_bench_to_accuracy_runs_whole_processes_and_writes_json(tmp_path):
    out = tmp_path / "race.json"
    proc = run_cli("bench", "--to-accuracy", "0.5", "--metric", "val", "--seeds", "2",
                   "--threads", "1", "--json", out, "--recipe", "--layers", "8", "--epochs",
                   "2", "--batch-size", "256")
    assert proc.returncode == 0, proc.stderr
    assert "time to 50.00% val accuracy" in proc.stdout
    assert "| fastmlp | 2/2 |" in proc.stdout
    record = json.loads(out.read_text())
    assert record["metric"] == "val" and record["config"]["layers"] == [8]
    for run in record["runs"]:
        times = [e["time"]["val"] for e in run["epochs"]]
        assert len(times) == 2 and 0 < times[0] < times[1]
        assert all(0 <= e["val"] <= 1 and 0 <= e["test"] <= 1 for e in run["epochs"])
    # Seeds differ (the split, the initialisation): the runs are not copies of each other.
    assert record["runs"][0]["epochs"] != record["runs"][1]["epochs"]


@pytest.mark.parametrize("args, words", [
    (["--to-accuracy", "1.5"], ["--to-accuracy", "(0, 1]"]),
    (["--to-accuracy", "0.9", "--layers", "8"], ["--recipe"]),
    (["--preset", "fast"], ["--to-accuracy"]),
    (["--to-accuracy", "0.9", "--recipe", "--lr", "-1"], ["--lr"]),
])
def test_bench_to_accuracy_refuses_bad_input_in_one_line(args, words):
    error_line(run_cli("bench", *args), *words)


def test_a_contestant_that_is_not_installed_says_so():
    code = ("import sys, builtins, runpy\n"
            "real = builtins.__import__\n"
            "def no_sklearn(name, *a, **k):\n"
            "    if name.startswith('sklearn'): raise ImportError(name='sklearn')\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = no_sklearn\n"
            "sys.argv = ['racers', 'sklearn', '{}', '--threads', '1']\n"
            "runpy.run_module('fastmlp.bench.racers', run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert json.loads(proc.stdout) == {"error": "sklearn: sklearn is not installed"}
