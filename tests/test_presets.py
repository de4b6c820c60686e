"""What `fastmlp train --help` says a preset gives is what its race measured."""
import json

import pytest

from fastmlp.presets import MEASURED, PRESETS

from .conftest import ROOT


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_help_quotes_the_race_of_the_preset(name):
    race = json.loads((ROOT / "docs" / f"race-{name}.json").read_text())
    assert {k: v for k, v in race["config"].items() if k in PRESETS[name]} == {
        k: list(v) if isinstance(v, tuple) else v for k, v in PRESETS[name].items()}
    row = next(r for r in race["summary"] if r["contestant"] == "fastmlp")
    assert row["seeds"] >= 3
    quoted = (f"{100 * row['final_mean']:.2f}% test at the end (mean of {row['seeds']} seeds, "
              f"{100 * row['final_min']:.2f}-{100 * row['final_max']:.2f}%), "
              f"{row['whole_run_seconds']:.1f} s median whole run")
    assert MEASURED[name] == quoted


def test_every_preset_says_what_it_gives():
    assert set(MEASURED) == set(PRESETS)


def test_the_preset_searches_in_dev_are_sweep_or_grid_files_that_still_load():
    """`fastmlp sweep dev/presets/NAME.toml` (or `fastmlp experiments` for a file of
    [[experiment]] entries) reruns a search (the older specs, with a [search] table, are
    dev/presets/search.py's)."""
    import tomllib

    from fastmlp.grids.experiments import load_grid
    from fastmlp.grids.sweep import load_sweep

    specs = {p: tomllib.loads(p.read_text())
             for p in sorted((ROOT / "dev" / "presets").glob("*.toml"))}
    sweeps = [p for p, spec in specs.items() if "search" not in spec and "experiment" not in spec]
    grids = [p for p, spec in specs.items() if "experiment" in spec]
    assert sweeps and grids
    for path in sweeps:
        assert load_sweep(path).points
    for path in grids:
        assert load_grid(path)
