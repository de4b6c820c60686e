"""Hostile grid and sweep files, seeds and records: a billion runs refused before any is listed
(under --dry-run too), every field of a sweep file checked in one line naming the file, and a
damaged record run again like a missing one."""
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastmlp.cli import main
from fastmlp.errors import FastMLPError
from fastmlp.grids.records import RecordStore
from fastmlp.grids.sweep import load_sweep
from tests.helpers import raises_one_line

VALID = {"seeds": 2, "metric": "val_acc", "search": "grid",
         "fixed": {"layers": [8], "epochs": 2, "batch_size": 100},
         "space": {"lr": [0.01, 0.1], "init": ["he", "uniform"]}}


def toml(value, table=""):
    """The TOML of a dict of the kinds of values a spec holds (tables one level deep)."""
    def literal(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {literal(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(literal(x) for x in v) + "]"
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, float) and not math.isfinite(v):
            return {math.inf: "inf", -math.inf: "-inf"}.get(v, "nan")
        return json.dumps(v)
    plain = [f"{json.dumps(k)} = {literal(v)}" for k, v in value.items()
             if not isinstance(v, dict)]
    tables = [f"[{k}]\n" + "\n".join(f"{json.dumps(a)} = {literal(b)}" for a, b in v.items())
              for k, v in value.items() if isinstance(v, dict)]
    return "\n".join(plain + tables) + "\n"


def spec(tmp_path, text):
    path = tmp_path / "sweep.toml"
    path.write_text(text if isinstance(text, str) else toml(text))
    return path


@pytest.mark.parametrize("change, words", [
    ({"seeds": 10**9}, ["seeds", "1,000,000,000 seeds", "at most 100,000"]),
    ({"space": {"lr": {"range": [0.001, 1e9, 0.001]}}}, ["[space] lr", "more than 100,000"]),
    ({"space": {"lr": {"range": [-1e308, 1e308, 1e-300]}}}, ["[space] lr", "more than"]),
    ({"space": {"lr": {"log_range": [0.001, 1.0, 10**9]}}}, ["[space] lr", "more than"]),
    ({"space": {"lr": {"range": [0.001, 1.0, 0.001]},
                "momentum": {"range": [0.0, 0.999, 0.001]}}}, ["[space]", "2,000,000 runs"]),
    ({"search": "random", "trials": 10**9, "space": {"lr": {"uniform": [0.001, 1.0]}}},
     ["trials", "at most 100,000"]),
])
def test_a_sweep_of_a_billion_runs_is_refused_before_it_is_listed(tmp_path, capsys, change,
                                                                   words):
    path = spec(tmp_path, {**VALID, **change})
    raises_one_line(lambda: load_sweep(path), str(path), *words)
    assert main(["sweep", path, "--dry-run"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_experiments_with_a_billion_seeds_is_refused_before_anything_is_written(tmp_path,
                                                                                 capsys):
    out = tmp_path / "out"
    assert main(["experiments", "--seeds", 10**9, "--out-dir", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seeds" in err[0] and "at most 100,000" in err[0]
    assert not out.exists()


def test_a_grid_file_of_a_billion_seeds_is_refused(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text('seeds = 1000000000\n[[experiment]]\nname = "a"\nlayers = [8]\n'
                    'init = "he"\nepochs = 1\n')
    assert main(["experiments", grid, "--out-dir", tmp_path / "out"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(grid) in err[0] and "seeds" in err[0], err


# A valid spec with one field replaced, removed or added: loaded, or refused in one line.
junk = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=True), st.text(max_size=6),
                 st.booleans(), st.lists(st.integers(-3, 10**6), max_size=3),
                 st.dictionaries(st.sampled_from(["range", "log_range", "uniform", "x"]),
                                 st.lists(st.floats(-1e6, 1e12), max_size=4), max_size=2))
fields = st.sampled_from(["seeds", "metric", "search", "trials", "random_seed", "other",
                          "fixed.layers", "fixed.epochs", "fixed.lr", "fixed.batch_size",
                          "fixed.dropout", "fixed.augment_shift", "space.lr", "space.init",
                          "space.epochs", "space.momentum", "space.nonsense"])


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(fields, st.one_of(st.none(), junk)), min_size=1, max_size=3))
def test_a_mutated_sweep_file_is_loaded_or_refused_in_one_line(tmp_path, edits):
    value = json.loads(json.dumps(VALID))
    for field, new in edits:
        *table, key = field.split(".")
        where = value[table[0]] if table else value
        if new is None:
            where.pop(key, None)
        else:
            where[key] = new
    path = spec(tmp_path, value)
    try:
        sweep = load_sweep(path)
    except FastMLPError as e:
        assert "\n" not in str(e) and str(path) in str(e)
        return
    assert 1 <= len(sweep.points) * sweep.seeds <= 100_000


OK = {"format": 2, "key": "k", "status": "ok", "versions": {}, "n_val": 10, "n_test": 10,
      "result": {"history": [{"epoch": 1, "lr": 0.1, "train_loss": 1.0, "train_acc": 0.5,
                              "val_loss": 1.0, "val_acc": 0.5, "test_acc": None,
                              "seconds": 0.1, "samples_per_s": 10.0}],
                 "summary": {"best_epoch": 1, "wall_seconds": 0.2}, "dataset": {"n_train": 9}}}


@pytest.mark.parametrize("damage", [
    lambda r: r.pop("result"),
    lambda r: r["result"].pop("history"),
    lambda r: r["result"]["history"][0].pop("val_acc"),
    lambda r: r["result"]["history"][0].update(val_acc="high"),
    lambda r: r["result"]["history"][0].update(extra=1),
    lambda r: r["result"]["summary"].update(best_epoch=0),
    lambda r: r["result"]["summary"].update(best_epoch=7),
    lambda r: r["result"].update(dataset=None),
    lambda r: r.update(n_val="10"),
])
def test_a_damaged_record_is_run_again_as_a_missing_one(tmp_path, monkeypatch, damage):
    monkeypatch.setattr("fastmlp.grids.records.fastmlp_version", lambda: None)
    store = RecordStore(tmp_path)
    store.create()
    record = json.loads(json.dumps(OK))
    store.path("k").write_text(json.dumps(record))
    assert list(store.finished(["k"])) == ["k"]  # the undamaged record is read back
    damage(record)
    store.path("k").write_text(json.dumps(record))
    assert store.finished(["k"]) == {} and "damaged" in store.stale["k"]
    for text in ("", "{", json.dumps(OK)[:40], "[]", "\x00garbage"):
        store.path("k").write_text(text)
        assert store.finished(["k"]) == {}
