"""Experiment grids: a TOML file of named experiments (any training setting, with the figures a
document reported), loaded and checked whole before the first run starts.

Every training setting is checked by the settings table (fastmlp/settings.py), with the same
one-line errors as the command-line flags; this module checks only what is a grid's own: names,
sources, notes and the reported figures.
"""
import dataclasses
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import FastMLPError
from ..settings import BY_NAME, CONFIG_SETTINGS, Invalid, TrainConfig

SHIPPED_GRID = "experiments.toml"  # package data beside this module
REPORTED_METRICS = ("val_acc", "test_acc", "train_acc")  # final-epoch figures a document may report
# The most runs one grid or sweep may hold (each is a job in memory and a record on disk), and
# the most values one swept axis may take: a billion is a typo, refused before it is listed.
MAX_RUNS = 100_000


@dataclass(frozen=True)
class Experiment:
    name: str
    config: TrainConfig  # seed 0; each run replaces the seed
    documented_epochs: int  # the grid's epochs, kept when --epochs overrides config.epochs
    source: str | None = None
    note: str | None = None
    reported: dict = dataclasses.field(default_factory=dict)

    @property
    def epochs_overridden(self):
        return self.config.epochs != self.documented_epochs


@dataclass(frozen=True)
class Grid:
    path: str
    seeds: int
    experiments: tuple


def _int_at_least(minimum):
    def check(value):
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise Invalid(f"must be an integer >= {minimum}, got {value!r}")
        return value
    return check


def _text(value):
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"must be a non-empty string, got {value!r}")
    return value


def _fraction(value):
    # Accuracies are fractions like the engine's; 75.3 for 75.3% would otherwise pass silently.
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or not 0 <= value <= 1):
        raise Invalid(f"must be a fraction in [0, 1] (0.753 for 75.3%), got {value!r}")
    return float(value)


def _list_of(check, what):
    def checked(value):
        if not isinstance(value, list) or not value:
            raise Invalid(f"must be a non-empty list of {what}, got {value!r}")
        try:
            return [check(v) for v in value]
        except Invalid:
            raise Invalid(f"must be a list of {what}, got {value!r}") from None
    return checked


# What a run may set, in [defaults] or in an experiment: every training setting of the table
# but the seed (a grid runs seeds 0..seeds-1), checked by the table's own constraints.
# A grid loads its data by name, so arrays in memory are no dataset here.
RUN_KEYS = {s.name: s.constraint.check for s in CONFIG_SETTINGS if s.name != "seed"}
RUN_KEYS["dataset"] = dataclasses.replace(BY_NAME["dataset"].constraint, extra=()).check
REQUIRED_KEYS = ("name", "layers", "init", "epochs")
TEXT_KEYS = {"name": _text, "source": _text, "note": _text}
REPORTED_KEYS = {**{m: _fraction for m in REPORTED_METRICS},
                 "epochs": _list_of(_int_at_least(1), "epoch numbers >= 1"),
                 **{f"{m}_at": _list_of(_fraction, "fractions in [0, 1]")
                    for m in REPORTED_METRICS}}


def _check_keys(table, checkers, where):
    unknown = sorted(set(table) - set(checkers))
    if unknown:
        raise FastMLPError(f"{where}: unknown key {unknown[0]!r}; known keys: "
                           f"{', '.join(checkers)}")
    checked = {}
    for key, value in table.items():
        try:
            checked[key] = checkers[key](value)
        except Invalid as e:
            raise FastMLPError(f"{where}: {key} {e}") from None
    return checked


def _check_reported(table, where):
    where = f"{where}: reported"
    if not isinstance(table, dict):
        raise FastMLPError(f"{where} must be a table ([experiment.reported]), got {table!r}")
    reported = _check_keys(table, REPORTED_KEYS, where)
    epochs = reported.get("epochs")
    if epochs is not None and any(b <= a for a, b in zip(epochs, epochs[1:])):
        raise FastMLPError(f"{where}: epochs must increase, got {epochs}")
    for metric in REPORTED_METRICS:
        series = reported.get(f"{metric}_at")
        if series is None:
            continue
        if epochs is None:
            raise FastMLPError(f"{where}: {metric}_at needs an epochs list beside it")
        if len(series) != len(epochs):
            raise FastMLPError(f"{where}: {metric}_at has {len(series)} values for "
                               f"{len(epochs)} epochs")
    return reported


def resolve_data(values, grid_path):
    """`values` with a relative `data` path taken relative to the grid file's folder (where its
    author wrote it from), whatever the directory the command runs in."""
    if values.get("data") is not None:
        values = {**values, "data": str((Path(grid_path).parent / values["data"]).resolve())}
    return values


def _experiment(table, defaults, index, where_file):
    label = table.get("name") if isinstance(table, dict) else None
    where = (f"{where_file}: experiment {label!r}" if isinstance(label, str)
             else f"{where_file}: experiment #{index + 1}")
    if not isinstance(table, dict):
        raise FastMLPError(f"{where} must be a table ([[experiment]]), got {table!r}")
    table = dict(table)
    reported = _check_reported(table.pop("reported", {}), where)
    fields = {**defaults, **_check_keys(table, {**TEXT_KEYS, **RUN_KEYS}, where)}
    missing = [k for k in REQUIRED_KEYS if k not in fields]
    if missing:
        raise FastMLPError(f"{where}: missing required key {missing[0]!r}")
    run = resolve_data({k: v for k, v in fields.items() if k in RUN_KEYS}, where_file)
    try:
        config = TrainConfig(**run)
    except FastMLPError as e:
        raise FastMLPError(f"{where}: {e}") from None
    return Experiment(fields["name"], config, config.epochs, fields.get("source"),
                      fields.get("note"), reported)


def shipped_grid_path():
    return Path(str(resources.files("fastmlp") / SHIPPED_GRID))


def check_runs(where, points, seeds, what="points"):
    """Refuse `points` x `seeds` runs beyond MAX_RUNS, counted before any is listed."""
    if points * seeds > MAX_RUNS:
        raise FastMLPError(f"{where}: {points:,} {what} x {seeds:,} seeds = "
                           f"{points * seeds:,} runs; at most {MAX_RUNS:,} in one grid: "
                           f"fewer seeds or a smaller space")


def load_grid(path=None):
    """Read and check a grid file (the shipped one by default); every problem is a one-line
    FastMLPError that names the file and the experiment."""
    path = shipped_grid_path() if path is None else Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FastMLPError(f"grid file {path} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FastMLPError(f"cannot read grid file {path}: {getattr(e, 'strerror', None) or e}"
                           ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise FastMLPError(f"{path}: not valid TOML: {' '.join(str(e).split())}") from None
    top = _check_keys({k: v for k, v in data.items() if k != "defaults" and k != "experiment"},
                      {"seeds": _int_at_least(1)}, str(path))
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise FastMLPError(f"{path}: defaults must be a table ([defaults]), got {defaults!r}")
    defaults = _check_keys(defaults, RUN_KEYS, f"{path}: [defaults]")
    tables = data.get("experiment")
    if not isinstance(tables, list) or not tables:
        raise FastMLPError(f"{path}: no experiments; add [[experiment]] tables")
    experiments = [_experiment(t, defaults, i, path) for i, t in enumerate(tables)]
    names = [e.name for e in experiments]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise FastMLPError(f"{path}: experiment {twice[0]!r} is defined more than once")
    seeds = top.get("seeds", 3)
    check_runs(f"{path}: seeds", len(experiments), seeds, "experiments")
    return Grid(str(path), seeds, tuple(experiments))


def select(grid, only=None, epochs=None, dtype=None):
    """The grid's experiments, narrowed to the names in `only` and with the command line's
    overrides applied (epochs, dtype); every changed config is checked again here, before any
    run starts (a warm-up longer than an overridden --epochs, say)."""
    known = [e.name for e in grid.experiments]
    unknown = [n for n in (only or ()) if n not in known]
    if unknown:
        raise FastMLPError(f"unknown experiment {unknown[0]!r} in --only; {grid.path} has: "
                           f"{', '.join(known)}")
    changes = {k: v for k, v in (("epochs", epochs), ("dtype", dtype)) if v is not None}
    chosen = []
    for e in grid.experiments:
        if only and e.name not in only:
            continue
        try:
            config = dataclasses.replace(e.config, **changes)
        except FastMLPError as error:
            raise FastMLPError(f"{grid.path}: experiment {e.name!r}: {error}") from None
        chosen.append(dataclasses.replace(e, config=config))
    return chosen
