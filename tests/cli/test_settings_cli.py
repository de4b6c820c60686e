"""Every setting through the real command line: flags -> config -> flags is the identity, and a
run given a non-default value of every setting records it in its --out JSON and saved model,
keeps it across save -> load -> --resume, and evaluates on the very split it trained on.
Also the divergence rule on the real command line and on the runs it must never stop."""
import dataclasses
import json
import re
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastmlp.cli import build_parser
from fastmlp.cli.train import configure
from fastmlp.data.load import DATASETS, load_dataset_for
from fastmlp.grids.experiments import load_grid
from fastmlp.presets import PRESETS
from fastmlp.settings import CONFIG_SETTINGS, SETTINGS, TrainConfig, to_flags
from fastmlp.training import checkpoint
from fastmlp.training.loop import train
from tests.helpers import MNIST_DIR, error_line, run_cli
from tests.test_settings import configs

FASHION_DIR = DATASETS["fashion-mnist"].system_dirs[0]


def config_of(words):
    args = build_parser("train").parse_args(["train", *words])
    return configure(args)


@settings(max_examples=150, deadline=None)
@given(configs(dataset=st.sampled_from(sorted(DATASETS))))
def test_config_to_flags_to_config_is_the_identity(config):
    parsed, options, resume = config_of(to_flags(config))
    assert parsed == config and resume is None
    assert to_flags(parsed) == to_flags(config)


def test_flags_beat_the_preset_and_the_preset_beats_the_defaults():
    config, _, _ = config_of(["--preset", "fast", "--lr", "0.02", "--no-nesterov"])
    assert config == TrainConfig(**{**PRESETS["fast"], "lr": 0.02, "nesterov": False})


# A value other than the default for every setting of the table, all in one run: a small,
# fast network on Fashion-MNIST (Debian's package, which CI installs).
EVERY = dict(
    layers=(16, 8), init="glorot", epochs=3, batch_size=512, lr=0.05, optimizer="momentum",
    momentum=0.8, nesterov=True, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=1e-4,
    dropout=0.1, label_smoothing=0.1, augment_shift=1, augment_rotate=10.0, augment_scale=0.1,
    augment_shear=5.0, augment_elastic=10.0, augment_elastic_sigma=3.0,
    ema=0.5, schedule="step", warmup=0.5, lr_step_epochs=2, lr_gamma=0.5,
    patience=5, early_stop="val_loss", seed=3, dataset="fashion-mnist", val_fraction=0.1,
    dtype="float64", eval_every=2, standardize=True,
)
# The settings of data read from files, which a registered dataset cannot take: their round
# trips through the command line are in tests/cli/test_data_cli.py.
FILE_SETTINGS = ("data", "label_column", "image_size")
RUN = dict(threads=1, blas="openblas", data_dir=str(FASHION_DIR))


def test_every_setting_has_a_non_default_value_in_the_round_trip():
    assert set(EVERY) | set(RUN) | set(FILE_SETTINGS) == {s.name for s in SETTINGS}
    assert all(EVERY[s.name] != s.default for s in CONFIG_SETTINGS
               if s.name not in FILE_SETTINGS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same configuration run whole (3 epochs), and run for 2 epochs, then resumed from its
    saved file to 3 in a second process."""
    if not FASHION_DIR.is_dir():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    d = tmp_path_factory.mktemp("every")
    options = ["--threads", "1", "--blas", RUN["blas"], "--data-dir", RUN["data_dir"],
               "--quiet"]
    whole = run_cli("train", *to_flags(TrainConfig(**EVERY)), *options,
                    "--out", d / "whole.json", "--save", d / "whole.npz")
    first = run_cli("train", *to_flags(TrainConfig(**{**EVERY, "epochs": 2})), *options,
                    "--save", d / "part.npz", "--checkpoint-every", "1")
    resumed = run_cli("train", "--resume", d / "part.npz", "--epochs", "3", "--threads", "1",
                      "--data-dir", RUN["data_dir"], "--quiet", "--out", d / "resumed.json",
                      "--save", d / "resumed.npz")
    for proc in (whole, first, resumed):
        assert proc.returncode == 0, proc.stderr
    return d, whole, resumed


@pytest.mark.parametrize("name", list(EVERY))
def test_a_setting_given_on_the_command_line_is_recorded_and_survives_resume(runs, name):
    d = runs[0]
    expected = TrainConfig(**EVERY)
    value = getattr(expected, name)
    as_json = list(value) if isinstance(value, tuple) else value
    for run in ("whole", "resumed"):
        assert json.loads((d / f"{run}.json").read_text())["config"][name] == as_json
        assert getattr(checkpoint.load(d / f"{run}.npz").config, name) == value


@pytest.mark.parametrize("name", list(RUN))
def test_run_options_are_recorded_as_such(runs, name):
    record = json.loads((runs[0] / "whole.json").read_text())
    assert record["run"][name] == RUN[name] and name not in record["config"]


def test_the_resumed_run_equals_the_uninterrupted_one(runs):
    d, _, resumed = runs
    whole, again = checkpoint.load(d / "whole.npz"), checkpoint.load(d / "resumed.npz")
    np.testing.assert_array_equal(again.model.params, whole.model.params)
    assert again.config == whole.config == TrainConfig(**EVERY)
    strip = ("seconds", "samples_per_s")
    assert ([{k: v for k, v in e.items() if k not in strip} for e in again.history]
            == [{k: v for k, v in e.items() if k not in strip} for e in whole.history])
    assert "(2 before the resume)" in resumed.stdout
    assert "since the resume: 1 epochs" in resumed.stdout


def test_the_saved_model_records_its_exact_split(runs):
    record = checkpoint.load(runs[0] / "whole.npz").dataset
    assert (record["name"], record["seed"], record["val_fraction"]) == ("fashion-mnist", 3, 0.1)
    assert (record["n_train"], record["n_val"], record["n_test"]) == (54000, 6000, 10000)
    assert set(record["sha256"]) == set(DATASETS["fashion-mnist"].sha256)


@pytest.mark.parametrize("split, images", [("val", 6000), ("train", 54000), ("test", 10000)])
def test_evaluate_uses_the_split_the_model_trained_on(runs, split, images):
    d = runs[0]
    proc = run_cli("evaluate", d / "whole.npz", "--split", split, "--data-dir",
                   RUN["data_dir"])
    assert proc.returncode == 0, proc.stderr
    accuracy, count = re.search(r"accuracy ([\d.]+)% on (\d+) samples", proc.stdout).groups()
    assert int(count) == images
    if split == "val":  # the same images the run validated on: the same accuracy
        final = json.loads((d / "whole.json").read_text())["summary"]["val_acc"]
        assert float(accuracy) == pytest.approx(100 * final, abs=0.005)


def test_the_issue_example_a_copied_data_dir_and_another_val_fraction(tmp_path):
    """From the issue: --val-fraction 0.1 --data-dir vf; the record, evaluate --split val and
    --resume all see the run that happened."""
    vf = tmp_path / "vf"
    shutil.copytree(MNIST_DIR, vf)
    common = ["--layers", "10", "--val-fraction", "0.1", "--batch-size", "128", "--quiet"]
    proc = run_cli("train", *common, "--epochs", "1", "--data-dir", vf,
                   "--out", tmp_path / "vf.json", "--save", tmp_path / "vf.npz")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "vf.json").read_text())
    assert record["config"]["val_fraction"] == 0.1 and record["run"]["data_dir"] == str(vf)
    proc = run_cli("evaluate", tmp_path / "vf.npz", "--split", "val")
    assert proc.returncode == 0 and "on 6000 samples" in proc.stdout, proc.stderr
    proc = run_cli("train", *common, "--epochs", "3", "--save", tmp_path / "c.npz",
                   "--checkpoint-every", "1")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("train", "--resume", tmp_path / "c.npz", "--epochs", "4", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert checkpoint.load(tmp_path / "c.npz").dataset["n_val"] == 6000


def test_resume_refuses_a_setting_that_would_make_another_run(tmp_path):
    proc = run_cli("train", "--layers", "8", "--epochs", "1", "--batch-size", "4096", "--quiet",
                   "--save", tmp_path / "c.npz")
    assert proc.returncode == 0, proc.stderr
    error_line(run_cli("train", "--resume", tmp_path / "c.npz", "--val-fraction", "0.1",
                       "--lr", "0.5"), "--resume", "drop --lr, --val-fraction")


# ---------------------------------------------------------------------------- divergence


def test_a_huge_learning_rate_stops_within_three_epochs():
    """The issue's case: lr 1e6 at full batch kept a finite loss of 2e22 for 3 epochs."""
    proc = run_cli("train", "--layers", "128", "--epochs", "3", "--batch-size", "full",
                   "--lr", "1e6", "--quiet")
    line = error_line(proc, "training diverged at epoch", status=1)
    assert int(re.search(r"epoch (\d+)", line).group(1)) <= 3


def _runs_that_must_never_diverge():
    grid = {f"documents' {e.name}": e.config for e in load_grid().experiments}
    presets = {f"preset {name}": TrainConfig(**values) for name, values in PRESETS.items()}
    readme = {  # the README's training examples that the two lists above do not cover
        "readme --batch-size 128": TrainConfig(layers=(128,), batch_size=128, epochs=10),
        "readme adam": TrainConfig(layers=(128, 64, 32), optimizer="adam", lr=1e-3,
                                   batch_size=128, epochs=10),
        "readme fashion-mnist": TrainConfig(dataset="fashion-mnist", layers=(256,),
                                            batch_size=64, epochs=20),
        "readme float64": TrainConfig(layers=(512, 256), dtype="float64"),
    }
    return {**grid, **presets, **readme}


@pytest.mark.parametrize("name, config", list(_runs_that_must_never_diverge().items()))
def test_the_divergence_rule_never_stops_a_run_we_document(name, config):
    """Their first three epochs, where a loss climbs if it climbs at all (the full runs, surveyed
    in the README, peak at their first epoch's loss: a tenth of the limit)."""
    if config.dataset == "fashion-mnist" and not FASHION_DIR.is_dir():
        pytest.skip("Fashion-MNIST is not installed")
    short = dataclasses.replace(config, epochs=3)
    result = train(short, load_dataset_for(short))  # raises FastMLPError if it diverged
    assert len(result.history) == 3
