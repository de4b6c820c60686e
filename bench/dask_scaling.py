"""Runs per minute of a small grid against the number of Dask workers, through the real command
line (`fastmlp experiments GRID --workers N --threads 1 --fresh`: an embedded cluster of N
single-threaded worker processes on loopback, start-up and shutdown included), beside the same
grid in one process at 1 and at every core's threads. Writes JSON and a PNG.

    flock /tmp/fastmlp-cpu.lock python bench/dask_scaling.py --grid full --workers 1 2 3 \
        --repeats 2 --out docs/dask-scaling-full

Workers above the machine's cores cannot scale (they take turns on the cores): measured anyway,
to show it.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Eight runs of a few seconds each at one thread: two experiments, four seeds; full-batch
# gradient descent (the documents' protocol: large GEMMs, which scale with threads) or
# minibatches of 128 (small steps, which do not).
GRIDS = {name: f"""\
seeds = 4
[defaults]
epochs = {epochs}
init = "he"
batch_size = {batch}
[[experiment]]
name = "deep"
layers = [128, 64, 32]
[[experiment]]
name = "wide"
layers = [128]
""" for name, epochs, batch in (("full", 6, '"full"'), ("mini", 3, 128))}


def timed(args, out_dir):
    command = [sys.executable, "-m", "fastmlp", "experiments", *args, "--fresh", "--quiet",
               "--out-dir", str(out_dir)]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=GRIDS, default="full")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="docs/dask-scaling", help="PATH: writes PATH.json and "
                        "PATH.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        grid = Path(tmp) / "grid.toml"
        grid.write_text(GRIDS[args.grid])
        runs = GRIDS[args.grid].count("[[experiment]]") * 4
        modes = [(f"{w} workers x 1 thread", w, [str(grid), "--workers", str(w), "--threads",
                                                 "1"]) for w in args.workers]
        modes += [("in-process, 1 thread", 0, [str(grid), "--workers", "0", "--threads", "1"]),
                  (f"in-process, {os.cpu_count()} threads", 0,
                   [str(grid), "--workers", "0", "--threads", str(os.cpu_count())])]
        seconds = {label: [] for label, _, _ in modes}
        for _ in range(args.repeats):  # in turns, so that a drifting machine spreads evenly
            for label, _, command in modes:
                seconds[label].append(timed(command, Path(tmp) / "out"))
                print(f"{label}: {seconds[label][-1]:.1f} s", file=sys.stderr)
    # The best of the repeats counts: the host is shared, and other guests' load only ever
    # slows a command down (the same command took 26 s and 43 s in one session).
    rows = [{"mode": label, "workers": w, "runs": runs, "seconds": seconds[label],
             "best_seconds": min(seconds[label]),
             "median_seconds": statistics.median(seconds[label]),
             "runs_per_minute": 60 * runs / min(seconds[label])}
            for label, w, _ in modes]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"grid": GRIDS[args.grid], "name": args.grid, "cores": os.cpu_count(),
              "repeats": args.repeats, "rows": rows,
              "command": " ".join(["python", "bench/dask_scaling.py", "--grid", args.grid,
                                   "--workers",
                                   *map(str, args.workers), "--repeats", str(args.repeats)])}
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out.with_suffix(".png"))
    for r in rows:
        print(f"| {r['mode']} | {r['best_seconds']:.1f} s | {r['median_seconds']:.1f} s | "
              f"{r['runs_per_minute']:.1f} |")


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cluster = [r for r in result["rows"] if r["workers"]]
    workers = [r["workers"] for r in cluster]
    rate = [r["runs_per_minute"] for r in cluster]
    one = next((r["runs_per_minute"] for r in cluster if r["workers"] == 1), None)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(workers, rate, "o-", label="embedded Dask cluster, 1 thread per run")
    if one is not None:
        ax.plot(workers, [one * min(w, result["cores"]) for w in workers], ":", color="0.5",
                label=f"linear up to the {result['cores']} cores")
    for r, style in zip([r for r in result["rows"] if not r["workers"]], ("--", "-.")):
        ax.axhline(r["runs_per_minute"], linestyle=style, color="C1", label=r["mode"])
    ax.axvline(result["cores"] + 0.5, color="C3", alpha=0.4)
    ax.text(result["cores"] + 0.55, min(rate), "more workers\nthan cores", color="C3",
            fontsize=8)
    ax.set_xticks(workers)
    ax.set_xlabel("worker processes")
    ax.set_ylabel("runs per minute (best of the repeats)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    batch = "full batch" if result["name"] == "full" else "batch 128"
    ax.set_title(f"{result['rows'][0]['runs']} runs of a small grid ({batch}), "
                 f"{result['cores']}-core machine", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
