"""More seeds for a `fastmlp bench --to-accuracy` JSON, so that a race too long for one slot of
a shared machine can be measured in parts:

    python -m fastmlp bench --to-accuracy 0.99 --metric test --preset best --seeds 3 \\
        --json docs/race-best.json
    python dev/presets/race_seeds.py docs/race-best.json 3 4      # adds fastmlp seeds 3 and 4
    python dev/presets/race_seeds.py docs/race-best.json --plot docs/race-best.png   # redraws

Each seed runs as the bench runs it (fastmlp.bench.race.run_seed: a whole process, the same
recipe, threads and charging); the runs are appended to the file's, the summary is recomputed
over all of them, the table printed, and the file rewritten atomically.
"""
import json
import sys
from pathlib import Path

from fastmlp.atomic import write_atomically
from fastmlp.bench.race import SeedRun, run_seed, summarize, table, to_json
from fastmlp.runtime.threads import usable_threads
from fastmlp.settings import TrainConfig


def main(path, *seeds):
    plot = None
    if "--plot" in seeds:
        at = seeds.index("--plot")
        plot, seeds = Path(seeds[at + 1]), seeds[:at] + seeds[at + 2:]
    path = Path(path)
    saved = json.loads(path.read_text())
    config = TrainConfig(**{k: tuple(v) if k == "layers" else v
                            for k, v in saved["config"].items()})
    runs = [SeedRun(**r) for r in saved["runs"]]
    have = {r.seed for r in runs if r.contestant == "fastmlp"}
    threads = usable_threads(None)
    for seed in map(int, seeds):
        if seed in have:
            raise SystemExit(f"{path} already has fastmlp seed {seed}")
        run = run_seed("fastmlp", config, seed, threads)
        print(f"fastmlp seed {seed}: {run.error or f'{len(run.epochs)} epochs'}",
              file=sys.stderr)
        runs.append(run)
    rows = summarize(runs, saved["target"], saved["metric"])
    print(table(rows, config, saved["target"], saved["metric"]))
    write_atomically(path, to_json(runs, rows, config, saved["target"], saved["metric"]))
    if plot is not None:  # the plot `fastmlp bench --to-accuracy --plot` draws
        from fastmlp.plots import race_png

        title = (f"time to {saved['target']:.1%} {saved['metric']} accuracy "
                 f"({threads} threads)")
        write_atomically(plot, race_png(runs, saved["target"], saved["metric"], title))


if __name__ == "__main__":
    main(*sys.argv[1:])
