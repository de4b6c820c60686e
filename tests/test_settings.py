"""The settings table: every setting is checked, configurations survive every round trip
(TrainConfig <-> TOML grid, saved model, resumed run), and the divergence rule.

The command-line round trips (flags -> config -> flags, --out, --save, --resume, evaluate) are in
tests/test_settings_cli.py.
"""
import dataclasses
import json
import math
import os
import signal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastmlp.data.load import DATASETS
from fastmlp.errors import FastMLPError, TrainingInterrupted
from fastmlp.grids.experiments import load_grid
from fastmlp.settings import (
    BY_NAME,
    CONFIG_SETTINGS,
    SETTINGS,
    BatchSize,
    Flag,
    ImageSize,
    Integer,
    LabelColumn,
    Layers,
    Options,
    PathText,
    Real,
    RunOptions,
    Text,
    TrainConfig,
)
from fastmlp.training import checkpoint
from fastmlp.training.loop import train
from fastmlp.training.stopping import DIVERGENCE_FACTOR, diverged
from tests.helpers import make_dataset

# ---------------------------------------------------------------------------- strategies


def values_of(setting):
    """Every valid value of a setting, drawn from its constraint (not from a list written
    again here)."""
    c = setting.constraint
    if isinstance(c, Layers):
        return st.lists(st.integers(1, 4096), min_size=1, max_size=4).map(tuple)
    if isinstance(c, BatchSize):
        return st.none() | st.integers(1, 2**31)
    if isinstance(c, Integer):
        return st.integers(c.low, c.high if c.high is not None else c.low + 10**6)
    if isinstance(c, Real):
        return st.floats(c.low, c.high if math.isfinite(c.high) else 1e6,
                         exclude_min=c.closed in ("right", "neither"),
                         exclude_max=c.closed in ("left", "neither") and math.isfinite(c.high),
                         allow_nan=False, allow_infinity=False)
    if isinstance(c, Options):
        return st.sampled_from(c.names())
    if isinstance(c, Flag):
        return st.booleans()
    if isinstance(c, (PathText, LabelColumn, ImageSize)):
        return st.none()  # data read from files: its round trips are in tests/data
    raise AssertionError(f"no strategy for {setting.name}'s {type(c).__name__}")


def _consistent(values):
    """Cross-setting rules (TrainConfig's own): Nesterov belongs to momentum, the warm-up is
    shorter than the run."""
    if values["optimizer"] != "momentum":
        values["nesterov"] = False
    if values["warmup"] >= values["epochs"]:
        values["warmup"] = values["epochs"] / 2
    return TrainConfig(**values)


def configs(**overrides):
    """Whole valid TrainConfigs; `overrides` replace some settings' strategies."""
    parts = {s.name: overrides.get(s.name, values_of(s)) for s in CONFIG_SETTINGS}
    return st.fixed_dictionaries(parts).map(_consistent)


# ---------------------------------------------------------------------------- the table


def test_the_table_declares_every_field_once():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    assert [f.name for f in dataclasses.fields(TrainConfig)] == [s.name for s in CONFIG_SETTINGS]
    assert [f.name for f in dataclasses.fields(RunOptions)] == ["threads", "blas", "data_dir"]
    for s in SETTINGS:
        assert s.help and s.flag == "--" + s.name.replace("_", "-")
        assert s.constraint.check(s.default) == s.default  # every default is valid


# One invalid value per setting, of each kind its constraint refuses.
BAD = {
    "layers": [(), (0,), (8, -1), (2.5,), "128", (True,)],
    "init": ["normal", 3], "epochs": [0, -1, 2.0, True], "batch_size": [0, -5, "half", 1.5],
    "lr": [0, -0.1, math.inf, math.nan, "0.1"], "optimizer": ["rmsprop"],
    "momentum": [1.0, -0.1, 2], "nesterov": [1, "yes"], "beta1": [1.0, -1e-9],
    "beta2": [1.0, 1.5], "eps": [0.0, -1.0], "weight_decay": [-1e-4, math.nan],
    "dropout": [1.0, -0.5], "label_smoothing": [1.0, -0.1, math.nan],
    "augment_shift": [-1, 1.5], "augment_rotate": [-1.0, 181.0, "5"],
    "augment_scale": [1.0, -0.1], "augment_shear": [61.0, math.nan],
    "augment_elastic": [-1.0, 101.0, math.inf], "augment_elastic_sigma": [0.0, 0.4, 10.5],
    "ema": [1.0, -0.5],
    "schedule": ["linear"],
    "warmup": [-1.0, math.inf], "lr_step_epochs": [-4, 1.5], "lr_gamma": [0.0, 1.0, -3.0],
    "patience": [-1], "early_stop": ["train_loss"], "seed": [-1, 2**63, 0.5],
    "dataset": ["cifar"], "val_fraction": [0.0, 1.0, 1.5], "dtype": ["float16", "int8"],
    "eval_every": [-1], "threads": [0, -2, 1.5], "data_dir": ["", "  ", 3],
    "data": ["", "  ", 3], "label_column": [1.5, "", True, ["label"]],
    "image_size": [0, "0x3", "axb", (1, 2, 3), -28, 2.5], "standardize": [1, "yes"],
    "blas": ["fast", "", 3, None],
}


def test_every_setting_has_bad_values_to_try():
    assert set(BAD) == {s.name for s in SETTINGS}


@pytest.mark.parametrize("name, value", [(n, v) for n, vs in BAD.items() for v in vs])
def test_every_setting_is_checked(name, value):
    where = TrainConfig if BY_NAME[name].scope == "config" else RunOptions
    with pytest.raises(FastMLPError, match=f"^{name} "):
        where(**{name: value})


@pytest.mark.parametrize("values, words", [
    (dict(warmup=5.0, epochs=5), "warmup must be shorter than the run"),
    (dict(nesterov=True, optimizer="adam"), "nesterov needs optimizer momentum"),
])
def test_settings_that_depend_on_each_other(values, words):
    with pytest.raises(FastMLPError, match=words):
        TrainConfig(**values)


def test_values_are_normalised():
    config = TrainConfig(layers=[np.int64(8), 4], lr=1, batch_size="full", momentum=0)
    assert config.layers == (8, 4) and config.batch_size is None
    assert isinstance(config.lr, float) and isinstance(config.momentum, float)
    assert TrainConfig(**dataclasses.asdict(config)) == config


# ---------------------------------------------------------------------------- TOML grids


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return '"full"'  # the only setting whose None is written in a grid: batch_size
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return repr(value)


def experiment_toml(config, name="drawn"):
    lines = ["[[experiment]]", f'name = "{name}"']
    lines += [f"{s.name} = {toml_value(getattr(config, s.name))}"
              for s in CONFIG_SETTINGS if s.name != "seed"
              and (getattr(config, s.name) is not None or s.name == "batch_size")]
    return "\n".join(lines) + "\n"


def grid_text(*experiments):
    return "seeds = 1\n\n" + "\n".join(experiments)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(seed=st.just(0)))
def test_config_to_toml_grid_to_config_is_the_identity(tmp_path_factory, config):
    path = tmp_path_factory.mktemp("grid") / "grid.toml"
    path.write_text(grid_text(experiment_toml(config)))
    assert load_grid(path).experiments[0].config == config


def test_every_grid_entry_is_checked_before_any_run(tmp_path):
    good = experiment_toml(TrainConfig(layers=(8,), epochs=2), "early")
    bad = experiment_toml(TrainConfig(layers=(8,), epochs=2), "late").replace(
        "lr_gamma = 0.1", "lr_gamma = -3")
    path = tmp_path / "grid.toml"
    path.write_text(grid_text(good, bad))
    with pytest.raises(FastMLPError) as error:
        load_grid(path)
    assert str(error.value) == (f"{path}: experiment 'late': lr_gamma must be a finite number "
                                "in (0, 1), got -3")


# ---------------------------------------------------------------------------- saved models


@settings(max_examples=40, deadline=None)
@given(configs(layers=st.lists(st.integers(1, 8), min_size=1, max_size=4).map(tuple)))
def test_config_survives_a_saved_model(tmp_path_factory, config):
    from fastmlp.data.scaling import Standardizer
    from fastmlp.engine.model import MLP
    from fastmlp.precisions import parameter_dtype
    path = tmp_path_factory.mktemp("model") / "m.npz"
    # The model and standardisation the settings describe: the loader checks they agree.
    model = MLP([4, *config.layers, 10], parameter_dtype(config.dtype))
    scaler = Standardizer(np.zeros(4), np.ones(4)) if config.standardize else None
    checkpoint.save(path, model, config, [], {"name": config.dataset, "sha256": {}},
                    scaler=scaler)
    assert checkpoint.load(path).config == config


# ---------------------------------------------------------------------------- resume


def small(**extra):
    """Configurations that train in milliseconds on the 5 x 5 synthetic images."""
    return configs(layers=st.lists(st.integers(1, 12), min_size=1, max_size=3).map(tuple),
                   epochs=st.integers(2, 5), batch_size=st.none() | st.integers(16, 400),
                   lr=st.floats(1e-3, 0.3), augment_shift=st.integers(0, 2),
                   augment_rotate=st.sampled_from([0.0, 15.0]), ema=st.sampled_from([0.0, 0.9]),
                   patience=st.integers(0, 3), eval_every=st.integers(0, 3),
                   lr_step_epochs=st.integers(0, 3), dataset=st.just("arrays"),
                   standardize=st.just(False),  # the arrays given are not standardised
                   dtype=st.sampled_from(["float32", "float64"]), **extra)


def _without_times(history):
    return [dataclasses.replace(e, seconds=0, samples_per_s=0) for e in history]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=small(), stop_after=st.integers(1, 4))
def test_a_resumed_run_ends_bit_identical_to_the_uninterrupted_one(tmp_path_factory, config,
                                                                   stop_after):
    """SIGINT after epoch `stop_after` (mid-epoch for minibatches: the stop comes at the next
    step) writes a checkpoint; resuming it ends where the uninterrupted run ends."""
    data = make_dataset(n_features=25, dtype=np.dtype(config.dtype).type)
    try:
        whole = train(config, data)
    except FastMLPError as e:  # a drawn config may diverge; then the resumed one must too
        with pytest.raises(FastMLPError, match="diverged"):
            raise e
        return
    ckpt = tmp_path_factory.mktemp("resume") / "ckpt.npz"

    def interrupt(stats):
        if stats.epoch == stop_after:
            os.kill(os.getpid(), signal.SIGINT)

    try:
        first = train(config, data, interrupt, interrupt_path=ckpt)
    except TrainingInterrupted:
        resumed = train(None, data, resume=checkpoint.load(ckpt))
    else:  # the run ended (early stopping, or the signal came after the last epoch)
        resumed = first
    np.testing.assert_array_equal(resumed.model.params, whole.model.params)
    assert _without_times(resumed.history) == _without_times(whole.history)
    assert resumed.config == whole.config


# ---------------------------------------------------------------------------- divergence


def test_divergence_rule():
    ln10 = math.log(10)
    assert not diverged(DIVERGENCE_FACTOR * ln10 * 0.99, 1.0, 10)
    assert diverged(DIVERGENCE_FACTOR * ln10 * 1.01, 1.0, 10)
    assert not diverged(DIVERGENCE_FACTOR * 50 * 0.99, 50.0, 10)  # a large start is allowed
    assert diverged(math.inf, 1.0, 10) and diverged(math.nan, 1.0, 10)


@pytest.mark.parametrize("batch_size, epoch", [(None, 2), (32, 1)])
def test_a_loss_that_explodes_but_stays_finite_stops_the_run(batch_size, epoch):
    """At full batch the first epoch is the initial model's loss, the second explodes; with
    minibatches the first epoch's mean explodes already (so the limit must not be measured
    against it)."""
    config = TrainConfig(layers=(16,), epochs=3, lr=1e6, batch_size=batch_size,
                         dtype="float64")
    with pytest.raises(FastMLPError, match=rf"training diverged at epoch {epoch} \(loss is"):
        train(config, make_dataset())


def test_the_checkpoint_keeps_the_initial_loss_a_resumed_run_is_measured_against(tmp_path):
    from fastmlp.engine.inference import evaluate
    from fastmlp.engine.workspace import Workspace
    from fastmlp.training.trainer import make_trainer

    config, data = TrainConfig(layers=(16,), epochs=2, lr=0.1, dtype="float64"), make_dataset()
    train(config, data, save_path=tmp_path / "c.npz")
    untrained = make_trainer(config, data).model  # the same seed: the run's initial weights
    ws = Workspace(untrained, len(data.val), gather=False)
    initial = evaluate(untrained, ws, data.val.x, data.val.y)[1]
    assert checkpoint.load(tmp_path / "c.npz").state["initial_loss"] == initial


def test_datasets_known_to_the_table_are_the_registry():
    assert set(BY_NAME["dataset"].constraint.names()) == set(DATASETS)
    assert isinstance(BY_NAME["data_dir"].constraint, Text)
