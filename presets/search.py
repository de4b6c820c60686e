"""A small search for the presets, ranked on validation accuracy only (test accuracy is never
read: the contestant reports it, this script drops it).

    python presets/search.py presets/fast.toml      # writes presets/fast-leaderboard.md

The spec (TOML): [search] seeds, threads, objective and its bound; [base] the TrainConfig
settings every candidate shares; [grid] setting -> list of values, every combination a
candidate; and/or [[candidate]] tables, one candidate each. Each (candidate, seed) is a whole
process, timed as `fastmlp bench --to-accuracy` times it (fastmlp/race.py): start-up, data,
training and one final evaluation.

Objectives:
- "fastest-to-val": among the candidates whose every seed ends at validation accuracy >=
  `val_threshold`, the shortest median whole-run time wins; the others follow by validation.
- "best-val-within": among the candidates whose median whole-run time is <= `seconds`, the
  highest median final validation accuracy wins.

This is the stand-in for `fastmlp sweep` (issue 12), which is not on this branch: the spec's
[base] and [grid] are settings-table names, so the sweep can take the spec over.
"""
import itertools
import statistics
import sys
import tomllib
from pathlib import Path

from fastmlp.atomic import write_atomically
from fastmlp.race import run_seed
from fastmlp.settings import TrainConfig, to_flags


def candidates(spec):
    """Every combination of [grid] (if any), then every [[candidate]] table, over [base]."""
    grid = spec.get("grid", {})
    if grid:
        for values in itertools.product(*grid.values()):
            yield TrainConfig(**{**spec["base"], **dict(zip(grid, values))})
    for candidate in spec.get("candidate", []):
        yield TrainConfig(**{**spec["base"], **candidate})


def score(config, seeds, threads):
    runs = [run_seed("fastmlp", config, seed, threads) for seed in seeds]
    failed = next((r.error for r in runs if r.error), None)
    if failed:
        raise SystemExit(f"{' '.join(to_flags(config))}: {failed}")
    vals = [r.epochs[-1]["val"] for r in runs]
    return {"flags": " ".join(to_flags(config)), "val_median": statistics.median(vals),
            "val_min": min(vals), "seconds": statistics.median(r.epochs[-1]["time"]["val"]
                                                             for r in runs)}


def rank(rows, search):
    if search["objective"] == "fastest-to-val":
        bound = search["val_threshold"]
        return sorted(rows, key=lambda r: (r["val_min"] < bound, r["seconds"]
                                           if r["val_min"] >= bound else -r["val_median"]))
    return sorted(rows, key=lambda r: (r["seconds"] > search["seconds"], -r["val_median"]))


def main(spec_path):
    spec_path = Path(spec_path)
    spec = tomllib.loads(spec_path.read_text())
    search = spec["search"]
    rows = []
    for config in candidates(spec):
        rows.append(score(config, search["seeds"], search["threads"]))
        print(f"{rows[-1]['val_median']:.4f} {rows[-1]['seconds']:6.2f} s  {rows[-1]['flags']}",
              file=sys.stderr, flush=True)
    bound = (f"every seed >= {search['val_threshold']:.2%} validation, then fastest"
             if search["objective"] == "fastest-to-val"
             else f"median whole run <= {search['seconds']} s, then highest validation")
    lines = [f"# Leaderboard: {spec_path.name}", "",
             f"Made by `python presets/search.py {spec_path}`; seeds {search['seeds']}, "
             f"{search['threads']} threads; ranked by validation accuracy only ({bound}). "
             "Times are whole processes (start-up, data, training, one final evaluation), "
             "median over seeds.", "",
             "| rank | validation % (median, min) | whole run, s | recipe |",
             "| --- | --- | --- | --- |"]
    for i, r in enumerate(rank(rows, search), 1):
        lines.append(f"| {i} | {100 * r['val_median']:.2f}, {100 * r['val_min']:.2f} | "
                     f"{r['seconds']:.2f} | `{r['flags']}` |")
    out = spec_path.with_name(spec_path.stem + "-leaderboard.md")
    write_atomically(out, "\n".join(lines) + "\n")
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
