"""Runs per minute of a small grid against the number of Dask workers (an embedded cluster of N
single-threaded worker processes on loopback, as `fastmlp experiments --workers N --threads 1`
makes it), beside the same grid in one process at 1 and at every core's threads. Each mode runs
in a fresh process, timed in phases so that the fixed costs are reported apart from the runs:

- start: the interpreter, the imports and the exit (what every command pays);
- cluster: starting the embedded cluster (scheduler, nannies, worker processes) and stopping it;
- grid: from the first run submitted to the last record back, the workers' own start-up (their
  imports, kernel cache loads, each run's split) included. Runs per minute are counted over this
  phase (the cluster's throughput) and over the whole command.

    python dev/dask_scaling.py --grid mini --seeds 6 --workers 1 2 3 --repeats 2 \
        --out docs/dask-scaling-mini

Workers above the machine's cores cannot scale (they take turns on the cores): measured anyway,
to show it. Writes PATH.json and PATH.png and prints the Markdown table (docs/performance.md,
"Runs per minute against workers").
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

# Two experiments, `seeds` seeds each: full-batch gradient descent (the documents' protocol:
# large GEMMs, which scale with threads) or minibatches of 128 (small steps, which do not).
# The default 6 seeds make 12 runs: an equal share for 1, 2 and 3 workers.
GRIDS = {name: f"""\
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


def child(grid_path, seeds, workers, threads):
    """One mode in this (fresh) process: prints its phases as JSON."""
    begun = time.perf_counter()
    from fastmlp.grids import cluster
    from fastmlp.grids.experiments import load_grid
    from fastmlp.grids.runs import plan_jobs, run_in_process
    from fastmlp.settings import RunOptions

    grid = load_grid(grid_path)
    jobs = plan_jobs(grid.experiments, seeds)
    options = RunOptions(threads=threads)
    records = []

    def keep(job, record):
        assert record["status"] == "ok", record.get("error")
        records.append(record)

    imported = time.perf_counter()
    if workers == 0:
        run_in_process(jobs, options, on_record=keep)
        connected = imported
        ran = closed = time.perf_counter()
    else:
        with cluster.connect(workers, threads) as client:
            connected = time.perf_counter()
            cluster.run_on_cluster(client, jobs, options, on_record=keep)
            ran = time.perf_counter()
        closed = time.perf_counter()
    busy = {}
    for r in records:
        busy[r.get("worker")] = busy.get(r.get("worker"), 0) + r["wall_seconds"]
    print(json.dumps({"imports": imported - begun, "cluster_start": connected - imported,
                      "grid": ran - connected, "cluster_stop": closed - ran,
                      "runs": len(records),
                      "fit": sum(r["result"]["summary"]["wall_seconds"] for r in records),
                      "tasks": sum(r["wall_seconds"] for r in records),
                      "busy": sorted(busy.values(), reverse=True)}))


def timed(grid_path, seeds, workers, threads):
    command = [sys.executable, __file__, "--child", str(grid_path), str(seeds), str(workers),
               str(threads)]
    start = time.perf_counter()
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    total = time.perf_counter() - start
    phases = json.loads(done.stdout.splitlines()[-1])
    cluster = phases["cluster_start"] + phases["cluster_stop"]
    return {**phases, "total": total, "start": total - cluster - phases["grid"],
            "cluster": cluster}


def measure(args):
    with tempfile.TemporaryDirectory() as tmp:
        grid = Path(tmp) / "grid.toml"
        grid.write_text(GRIDS[args.grid])
        cores = os.cpu_count()
        modes = [(f"{w} worker{'s' if w > 1 else ''} x 1 thread", w, 1) for w in args.workers]
        modes += [("in this process, 1 thread", 0, 1),
                  (f"in this process, {cores} threads", 0, cores)]
        seen = {label: [] for label, _, _ in modes}
        for _ in range(args.repeats):  # in turns, so that a drifting machine spreads evenly
            for label, workers, threads in modes:
                seen[label].append(timed(grid, args.seeds, workers, threads))
                last = seen[label][-1]
                print(f"{label}: {last['total']:.1f} s, grid {last['grid']:.1f} s",
                      file=sys.stderr)
    runs = 2 * args.seeds
    # The best repeat counts (by its grid phase): the host is shared, and other guests' load
    # only ever slows a command down.
    rows = []
    for label, workers, threads in modes:
        best = min(seen[label], key=lambda m: m["grid"])
        rows.append({"mode": label, "workers": workers, "threads": threads, "runs": runs,
                     "repeats": seen[label], "best": best,
                     "grid_runs_per_minute": 60 * runs / best["grid"],
                     "total_runs_per_minute": 60 * runs / best["total"],
                     "median_grid_seconds": statistics.median(m["grid"] for m in seen[label])})
    return {"grid": GRIDS[args.grid], "name": args.grid, "seeds": args.seeds, "cores": cores,
            "repeats": args.repeats, "rows": rows,
            "command": " ".join(["python", "dev/dask_scaling.py", "--grid", args.grid,
                                 "--seeds", str(args.seeds), "--workers",
                                 *map(str, args.workers), "--repeats", str(args.repeats)])}


def seconds(row, phase):
    return ", ".join(f"{m[phase]:.1f}" for m in row["repeats"]) + " s"


def table(result):
    """The Markdown table: per mode, the best repeat's phases and runs per minute, the
    speed-up over one worker, and the runs' own training time summed (fit: a run that trains
    slower beside another shows there)."""
    one = next((r for r in result["rows"] if r["workers"] == 1), None)
    lines = ["| mode | whole command (each repeat) | start | cluster start + stop | grid "
             "(each repeat) | the runs' training, summed | runs / minute, grid | vs 1 worker "
             "| runs / minute, whole |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in result["rows"]:
        b = r["best"]
        ratio = (f"{r['grid_runs_per_minute'] / one['grid_runs_per_minute']:.2f}x"
                 if one and r["workers"] else "")
        lines.append(
            f"| {r['mode']} | {seconds(r, 'total')} | {b['start']:.1f} s | "
            f"{b['cluster']:.1f} s | {seconds(r, 'grid')} | {seconds(r, 'fit')} | "
            f"{r['grid_runs_per_minute']:.1f} | {ratio} | {r['total_runs_per_minute']:.1f} |")
    return "\n".join(lines)


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cluster = [r for r in result["rows"] if r["workers"]]
    workers = [r["workers"] for r in cluster]
    grid_rate = [r["grid_runs_per_minute"] for r in cluster]
    one = next((r["grid_runs_per_minute"] for r in cluster if r["workers"] == 1), None)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(workers, grid_rate, "o-", label="embedded Dask cluster: the grid phase")
    ax.plot(workers, [r["total_runs_per_minute"] for r in cluster], "s--", color="C0",
            alpha=0.6, label="the same, whole command (start-up included)")
    if one is not None:
        ax.plot(workers, [one * min(w, result["cores"]) for w in workers], ":", color="0.5",
                label=f"linear up to the {result['cores']} cores")
    for r, style in zip([r for r in result["rows"] if not r["workers"]], ("--", "-.")):
        ax.axhline(r["grid_runs_per_minute"], linestyle=style, color="C1",
                   label=f"{r['mode']} (its grid phase)")
    if max(workers) > result["cores"]:
        ax.axvline(result["cores"] + 0.5, color="C3", alpha=0.4)
        ax.text(result["cores"] + 0.55, 1, "more workers\nthan cores", color="C3", fontsize=8)
    ax.set_xticks(workers)
    ax.set_xlabel("worker processes (1 thread each)")
    ax.set_ylabel("runs per minute (best of the repeats)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    batch = "full batch" if result["name"] == "full" else "batch 128"
    ax.set_title(f"{result['rows'][0]['runs']} runs of a small grid ({batch}), "
                 f"{result['cores']}-core machine", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        grid, seeds, workers, threads = sys.argv[2:]
        return child(grid, int(seeds), int(workers), int(threads))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=GRIDS, default="mini")
    parser.add_argument("--seeds", type=int, default=6, help="seeds per experiment (default 6)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="docs/dask-scaling", help="PATH: writes PATH.json and "
                        "PATH.png")
    args = parser.parse_args()
    result = measure(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out.with_suffix(".png"))
    print(table(result))


if __name__ == "__main__":
    main()
