"""A small search for the presets, ranked on validation accuracy only (test accuracy is never
read: the contestant reports it, this script drops it).

    python dev/presets/search.py dev/presets/fast.toml      # writes dev/presets/fast-leaderboard.md

The spec (TOML): [search] seeds, threads, objective and its bound; [base] the TrainConfig
settings every candidate shares; [grid] setting -> list of values, every combination a
candidate; and/or [[candidate]] tables, one candidate each. Each (candidate, seed) is a whole
process, timed as `fastmlp bench --to-accuracy` times it (fastmlp.bench.race): start-up,
data, training and one final evaluation.

Objectives:
- "fastest-to-val": among the candidates whose every seed ends at validation accuracy >=
  `val_threshold`, the shortest median whole-run time wins; the others follow by validation.
- "first-to-val": among the candidates whose every seed reaches validation accuracy >=
  `val_threshold` after some epoch, the shortest median time to the first such epoch wins (the
  time `fastmlp bench --to-accuracy X --metric val` charges: start-up, data, training to that
  epoch, one validation evaluation); the others follow by final validation.
- "best-val-within": among the candidates whose median whole-run time is <= `seconds`, the
  highest median final validation accuracy wins.

It predates `fastmlp sweep`, which can take the specs over: [base] and [grid] are
settings-table names. What the searches found is in docs/performance.md ("The presets'
searches").
"""
import itertools
import statistics
import sys
import tomllib
from pathlib import Path

from fastmlp.atomic import write_atomically
from fastmlp.bench.race import run_seed
from fastmlp.settings import TrainConfig, to_flags


def candidates(spec):
    """Every combination of [grid] (if any), then every [[candidate]] table, over [base]."""
    grid = spec.get("grid", {})
    if grid:
        for values in itertools.product(*grid.values()):
            yield TrainConfig(**{**spec["base"], **dict(zip(grid, values))})
    for candidate in spec.get("candidate", []):
        yield TrainConfig(**{**spec["base"], **candidate})


def score(config, search):
    runs = [run_seed("fastmlp", config, seed, search["threads"]) for seed in search["seeds"]]
    failed = next((r.error for r in runs if r.error), None)
    if failed:
        raise SystemExit(f"{' '.join(to_flags(config))}: {failed}")
    vals = [r.epochs[-1]["val"] for r in runs]
    row = {"flags": " ".join(to_flags(config)), "val_median": statistics.median(vals),
           "val_min": min(vals), "seconds": statistics.median(r.epochs[-1]["time"]["val"]
                                                            for r in runs)}
    if search["objective"] == "first-to-val":
        hits = [r.time_to(search["val_threshold"], "val") for r in runs]
        row["reached"] = all(hits)
        row["reach_seconds"] = statistics.median(h[0] if h else float("inf") for h in hits)
        row["reach_epochs"] = [h[1] if h else None for h in hits]
    return row


def rank(rows, search):
    if search["objective"] == "first-to-val":
        return sorted(rows, key=lambda r: (not r["reached"], r["reach_seconds"]
                                           if r["reached"] else -r["val_median"]))
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
        rows.append(score(config, search))
        print(f"{rows[-1]['val_median']:.4f} {rows[-1]['seconds']:6.2f} s "
              f"{rows[-1].get('reach_epochs', '')} {rows[-1]['flags']}",
              file=sys.stderr, flush=True)
    bound = {"fastest-to-val": f"every seed >= {search.get('val_threshold', 0):.2%} "
                               "validation at the end, then fastest",
             "first-to-val": f"every seed reaching {search.get('val_threshold', 0):.2%} "
                             "validation after some epoch, then the fastest to get there",
             "best-val-within": f"median whole run <= {search.get('seconds')} s, then "
                                "highest validation"}[search["objective"]]
    first = search["objective"] == "first-to-val"
    lines = [f"# Leaderboard: {spec_path.name}", "",
             f"Made by `python dev/presets/search.py {spec_path}`; seeds {search['seeds']}, "
             f"{search['threads']} threads; ranked by validation accuracy only ({bound}). "
             "Times are whole processes (start-up, data, training, one final evaluation), "
             "median over seeds, without the process's exit.", "",
             "| rank | validation % at the end (median, min) | whole run, s | "
             + ("time to the threshold, s (epochs per seed) | " if first else "") + "recipe |",
             "| --- | --- | --- | " + ("--- | " if first else "") + "--- |"]
    for i, r in enumerate(rank(rows, search), 1):
        reach = (f"{r['reach_seconds']:.2f} ({', '.join(str(e or '-') for e in r['reach_epochs'])})"
                 f" | " if first else "")
        lines.append(f"| {i} | {100 * r['val_median']:.2f}, {100 * r['val_min']:.2f} | "
                     f"{r['seconds']:.2f} | {reach}`{r['flags']}` |")
    out = spec_path.with_name(spec_path.stem + "-leaderboard.md")
    write_atomically(out, "\n".join(lines) + "\n")
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
