"""Sweep specifications: a TOML file naming the settings every point shares ([fixed]), the swept
ones ([space]: lists, inclusive ranges, log-spaced ranges, uniform and log-uniform draws), the
search (the full grid, or seeded random draws), the seeds per point and the metric to rank by.
Loaded and checked whole, every point's configuration built, before the first run starts.

    seeds = 2                      # seeds 0..1 per point
    metric = "val_acc"             # val_acc (default) | val_loss | train_acc | train_loss
    search = "grid"                # grid (default) | random
    trials = 20                    # random: how many points
    random_seed = 0                # random: the draws
    [fixed]
    layers = [128]
    epochs = 10
    [space]
    lr = { log_range = [0.001, 1.0, 4] }    # 0.001, 0.01, 0.1, 1.0
    init = ["he", "uniform"]
    dropout = { uniform = [0.0, 0.5] }      # random search only
    [halving]                      # optional: successive halving (see halving.py)
    min_epochs = 1
    eta = 3
"""
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FastMLPError
from ..settings import BY_NAME, Integer, TrainConfig
from .experiments import MAX_RUNS, RUN_KEYS, Experiment, check_runs, resolve_data
from .halving import load_halving

# name -> whether a higher value is better. Never the test accuracy: validation chooses.
RANK_METRICS = {"val_acc": True, "val_loss": False, "train_acc": True, "train_loss": False}
SEARCHES = ("grid", "random")
DISCRETE = ("range", "log_range")  # what a grid search can enumerate, beside lists
DRAWN = ("uniform", "log_uniform")  # what only a random search can
TOP_KEYS = ("seeds", "metric", "search", "trials", "random_seed", "fixed", "space", "halving")


@dataclass(frozen=True)
class Axis:
    name: str  # a setting of the table
    kind: str  # "list", or one of DISCRETE + DRAWN
    values: tuple  # the list; (low, high[, step or count]) otherwise

    @property
    def log(self):
        return self.kind in ("log_range", "log_uniform")

    @property
    def count(self):
        """How many values the axis enumerates (None for a drawn one), without listing them."""
        if self.kind == "list":
            return len(self.values)
        if self.kind in DRAWN:
            return None
        low, high, n = self.values
        if self.kind == "range":  # low, low + step, ... up to high, inclusive
            steps = (high - low) / n
            return int(math.floor(steps + 1e-9)) + 1 if steps < MAX_RUNS else MAX_RUNS + 1
        return int(n)

    def enumerate(self):
        if self.kind == "list":
            return list(self.values)
        low, high, n = self.values
        if self.kind == "range":
            return [self._typed(low + i * n) for i in range(self.count)]
        return [self._typed(v) for v in np.geomspace(low, high, int(n)).tolist()]

    def draw(self, rng):
        if self.kind == "list":
            return self.values[rng.integers(len(self.values))]
        if self.kind in DISCRETE:
            values = self.enumerate()
            return values[rng.integers(len(values))]
        low, high = self.values
        if self.kind == "uniform":
            return self._typed(rng.uniform(low, high))
        return self._typed(math.exp(rng.uniform(math.log(low), math.log(high))))

    def _typed(self, value):
        # An integer setting (epochs, augment_shift) gets integers; floats are rounded to 12
        # significant digits, so 0.1 + 2 * 0.1 is 0.3 in the leaderboard and in the key.
        if isinstance(BY_NAME[self.name].constraint, Integer):
            return int(round(value))
        return float(f"{value:.12g}")


@dataclass(frozen=True)
class Sweep:
    path: str
    seeds: int
    metric: str
    search: str
    axes: tuple  # Axis per swept setting, in the file's order
    points: tuple  # Experiment per point: name "p001"..., note "lr=0.1, init=he"
    halving: object = None  # a halving.Halving, or None: every point runs all its epochs


def _fail(path, message):
    raise FastMLPError(f"{path}: {message}")


def _positive_int(path, key, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        _fail(path, f"{key} must be an integer >= 1, got {value!r}")
    return value


def _axis(path, name, value, search):
    where = f"[space] {name}"
    if name not in RUN_KEYS:
        _fail(path, f"{where}: unknown setting; known: {', '.join(RUN_KEYS)}")
    if isinstance(value, list):
        if not value:
            _fail(path, f"{where}: an empty list")
        return Axis(name, "list", tuple(tuple(v) if isinstance(v, list) else v for v in value))
    if not isinstance(value, dict) or len(value) != 1:
        _fail(path, f"{where} must be a list or one of {{ range = [low, high, step] }}, "
                    f"{{ log_range = [low, high, count] }}, {{ uniform = [low, high] }}, "
                    f"{{ log_uniform = [low, high] }}; got {value!r}")
    (kind, bounds), = value.items()
    if kind not in DISCRETE + DRAWN:
        _fail(path, f"{where}: unknown kind {kind!r}; use {', '.join(DISCRETE + DRAWN)}")
    if kind in DRAWN and search != "random":
        _fail(path, f"{where}: {kind} draws values, so it needs search = \"random\"")
    size = 3 if kind in DISCRETE else 2
    if (not isinstance(bounds, list) or len(bounds) != size
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool)
                       and math.isfinite(b) for b in bounds)):
        _fail(path, f"{where}: {kind} takes a list of {size} numbers, got {bounds!r}")
    low, high = bounds[:2]
    if not low < high:
        _fail(path, f"{where}: {kind} needs low < high, got {low!r} and {high!r}")
    if kind.startswith("log") and low <= 0:
        _fail(path, f"{where}: {kind} needs low > 0, got {low!r}")
    if kind in DISCRETE and not bounds[2] > 0:
        _fail(path, f"{where}: {kind}'s third number must be > 0, got {bounds[2]!r}")
    if kind == "log_range" and (not isinstance(bounds[2], int) or bounds[2] < 2):
        _fail(path, f"{where}: log_range's count must be an integer >= 2, got {bounds[2]!r}")
    axis = Axis(name, kind, tuple(bounds))
    if (axis.count or 0) > MAX_RUNS:
        _fail(path, f"{where}: {kind} of more than {MAX_RUNS:,} values; make it coarser")
    return axis


def _count_points(path, axes, search, trials, seeds):
    """Refuse a sweep of more than MAX_RUNS runs before its points are listed: the product of
    the axes' lengths (a grid), or the trials (a random search), times the seeds."""
    if search == "random":
        return check_runs(f"{path}: trials", trials, seeds)
    check_runs(f"{path}: [space]", math.prod(axis.count for axis in axes), seeds)


def _text(value):
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def point_note(values):
    """"lr=0.1, init=he": a point's swept values, in the leaderboard and the records."""
    return ", ".join(f"{k}={_text(v)}" for k, v in values.items())


def _points(path, fixed, axes, search, trials, random_seed):
    if search == "grid":
        combos = [{}]
        for axis in axes:
            combos = [{**c, axis.name: v} for c in combos for v in axis.enumerate()]
    else:
        rng = np.random.default_rng(random_seed)
        combos = [{a.name: a.draw(rng) for a in axes} for _ in range(trials)]
    points, seen = [], set()
    for values in combos:
        note = point_note(values)
        if note in seen:  # a random search can draw a list's value twice
            continue
        seen.add(note)
        try:
            config = TrainConfig(**resolve_data({**fixed, **values}, path))
        except FastMLPError as e:
            _fail(path, f"point {note}: {e}")
        name = f"p{len(points) + 1:03d}"
        points.append(Experiment(name, config, config.epochs, note=note, reported={}))
    return tuple(points)


def load_sweep(path):
    """Read and check a sweep file; every problem is one FastMLPError line naming the file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise FastMLPError(f"sweep file {path} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FastMLPError(f"cannot read sweep file {path}: {getattr(e, 'strerror', None) or e}"
                           ) from None
    except tomllib.TOMLDecodeError as e:
        raise FastMLPError(f"{path}: not valid TOML: {' '.join(str(e).split())}") from None
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        _fail(path, f"unknown key {unknown[0]!r}; known keys: {', '.join(TOP_KEYS)}")
    seeds = _positive_int(path, "seeds", data.get("seeds", 1))
    metric = data.get("metric", "val_acc")
    if not isinstance(metric, str) or metric not in RANK_METRICS:
        hint = " (the test set reports, it never chooses)" if "test" in str(metric) else ""
        _fail(path, f"metric must be one of {', '.join(RANK_METRICS)}{hint}, got {metric!r}")
    search = data.get("search", "grid")
    if not isinstance(search, str) or search not in SEARCHES:
        _fail(path, f"search must be one of {', '.join(SEARCHES)}, got {search!r}")
    if search == "grid" and ("trials" in data or "random_seed" in data):
        _fail(path, "trials and random_seed go with search = \"random\"")
    trials = _positive_int(path, "trials", data.get("trials", 10))
    random_seed = data.get("random_seed", 0)
    if not isinstance(random_seed, int) or isinstance(random_seed, bool) or random_seed < 0:
        _fail(path, f"random_seed must be an integer >= 0, got {random_seed!r}")
    fixed, space = data.get("fixed", {}), data.get("space")
    if not isinstance(fixed, dict):
        _fail(path, f"fixed must be a table ([fixed]), got {fixed!r}")
    if not isinstance(space, dict) or not space:
        _fail(path, "no [space] table: name at least one setting to sweep")
    for key, value in fixed.items():
        if key not in RUN_KEYS:
            _fail(path, f"[fixed] {key}: unknown setting; known: {', '.join(RUN_KEYS)}")
        try:
            fixed[key] = RUN_KEYS[key](value)
        except ValueError as e:
            _fail(path, f"[fixed] {key} {e}")
    both = sorted(set(fixed) & set(space))
    if both:
        _fail(path, f"{both[0]} is both [fixed] and swept in [space]")
    axes = tuple(_axis(path, k, v, search) for k, v in space.items())
    _count_points(path, axes, search, trials, seeds)
    points = _points(path, fixed, axes, search, trials, random_seed)
    halving = None if "halving" not in data else \
        load_halving(path, data["halving"], points, space)
    return Sweep(str(path), seeds, metric, search, axes, points, halving)
