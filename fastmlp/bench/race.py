"""Time to accuracy (`fastmlp bench --to-accuracy`): how long a whole process takes, start-up,
data, training and the final evaluation, until a recipe first reaches a target accuracy, for
fastmlp and, with peers, for the same recipe in PyTorch (eager and torch.compile) and
scikit-learn's MLPClassifier. Every (contestant, seed) runs in a process of its own
(racers.py) and reports each epoch; the accuracy checked after every epoch is not
charged: the time at epoch k is the process's elapsed time at the end of epoch k's training,
less the evaluations of the epochs before it, plus the one evaluation of the metric at epoch k
(the final evaluation a run stopping there would make).
"""
import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

PEER_NAMES = ("torch", "torch-compile", "torch-bf16", "sklearn")


@dataclass
class SeedRun:
    contestant: str
    seed: int
    epochs: list = field(default_factory=list)  # {"epoch", "time", "val", "test"} per epoch
    error: str | None = None

    def time_to(self, target, metric):
        """(charged seconds, epoch) when `metric` first reached `target`, else None."""
        for e in self.epochs:
            if e[metric] >= target:
                return e["time"][metric], e["epoch"]
        return None


def differences(contestant, config):
    """What of the recipe a contestant does not do as fastmlp does, in words ("" if nothing)."""
    # The PyTorch contestants do the whole recipe (racers.py); scikit-learn's MLPClassifier
    # has its own optimizer and none of the rest.
    if contestant == "sklearn":
        ignored = [name for name, value in (("schedule", config.schedule != "constant"),
                                            ("warm-up", config.warmup),
                                            ("shift augmentation", config.augment_shift),
                                            ("dropout", config.dropout),
                                            ("label smoothing", config.label_smoothing),
                                            ("affine augmentation", config.augment_rotate
                                             or config.augment_scale or config.augment_shear),
                                            ("elastic distortions", config.augment_elastic),
                                            ("weight average (EMA)", config.ema))
                   if value]
        text = "its default Adam (lr 1e-3, L2 1e-4, Glorot init)"
        return text + (f"; no {', '.join(ignored)}" if ignored else "")
    notes = {"torch-compile": ["compile time counted; evaluates in eager mode"],
             "torch-bf16": ["torch.autocast to bfloat16"]}.get(contestant, [])
    if config.dtype == "mixed_bfloat16" and contestant in ("torch", "torch-compile"):
        notes.append("float32 matmuls (fastmlp's are bfloat16: compare torch-bf16)")
    return "; ".join(notes)


def run_seed(contestant, config, seed, threads, python=sys.executable):
    """One whole process of `contestant` training `config` with `seed`: a SeedRun."""
    from dataclasses import replace

    recipe = json.dumps(asdict(replace(config, seed=seed)))
    command = [python, "-m", "fastmlp.bench.racers", contestant, recipe, "--threads", str(threads)]
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    out, err = process.communicate()
    run, checked = SeedRun(contestant, seed), 0.0
    for line in out.splitlines():
        record = json.loads(line)
        if "error" in record:
            run.error = record["error"]
            break
        spent = record["t"] - started - checked
        run.epochs.append({"epoch": record["epoch"], "val": record["val"],
                           "test": record["test"],
                           "time": {m: spent + record[m + "_s"] for m in ("val", "test")}})
        checked += record["val_s"] + record["test_s"]
    if process.returncode and run.error is None:
        last = err.strip().splitlines()[-1:] or [f"exit status {process.returncode}"]
        run.error = f"{contestant} failed: {last[0]}"
    return run


def race(config, seeds, threads, log=None):
    """SeedRuns of every contestant over its seeds 0..seeds[contestant]-1, the contestants
    taking turns by seed so that a drift in the machine's speed hits them alike."""
    runs = []
    for seed in range(max(seeds.values())):
        for contestant in (c for c, n in seeds.items() if seed < n):
            run = run_seed(contestant, config, seed, threads)
            if log is not None:
                done = f"{len(run.epochs)} epochs" if run.error is None else run.error
                log(f"{contestant} seed {seed}: {done}")
            runs.append(run)
    return runs


def summarize(runs, target, metric):
    """One row per contestant: seeds, reached, median time and epochs to the target (None when
    fewer than half the seeds reached it), the accuracy the run ends with (mean, min, max over
    its seeds: what a user of the recipe gets), whole run."""
    rows = []
    for contestant in dict.fromkeys(r.contestant for r in runs):
        group = [r for r in runs if r.contestant == contestant]
        if any(r.error for r in group):
            rows.append({"contestant": contestant, "error": next(r.error for r in group
                                                                 if r.error)})
            continue
        hits = [r.time_to(target, metric) for r in group]
        times = sorted(h[0] if h else float("inf") for h in hits)
        epochs = sorted(h[1] if h else float("inf") for h in hits)
        final = [r.epochs[-1][metric] for r in group]
        median_time = statistics.median(times)
        rows.append({
            "contestant": contestant, "seeds": len(group),
            "reached": sum(h is not None for h in hits),
            "median_seconds": None if median_time == float("inf") else median_time,
            "median_epochs": None if median_time == float("inf") else
            statistics.median(epochs),
            "final_mean": statistics.fmean(final), "final_min": min(final),
            "final_max": max(final),
            "whole_run_seconds": statistics.median(r.epochs[-1]["time"][metric]
                                                   for r in group),
            "epochs": len(group[0].epochs)})
    return rows


def table(rows, config, target, metric):
    from ..settings import to_flags

    head = (f"time to {target:.2%} {metric} accuracy: whole process (start-up, data, training, "
            f"final evaluation), median over seeds; recipe: {' '.join(to_flags(config))}")
    lines = [head, "",
             f"| contestant | reached | median time to {target:.2%} {metric} | epochs | "
             f"{metric} % at the end (mean, min-max) | whole run | differences |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        name = r["contestant"]
        if "error" in r:
            lines.append(f"| {name} | - | - | - | - | - | {r['error']} |")
            continue
        reached = f"{r['reached']}/{r['seeds']}"
        seconds = "not reached" if r["median_seconds"] is None else f"{r['median_seconds']:.2f} s"
        epochs = "-" if r["median_epochs"] is None else f"{r['median_epochs']:g}"
        final = (f"{100 * r['final_mean']:.2f} ({100 * r['final_min']:.2f}-"
                 f"{100 * r['final_max']:.2f})")
        lines.append(f"| {name} | {reached} | {seconds} | {epochs} | {final} | "
                     f"{r['whole_run_seconds']:.1f} s ({r['epochs']} epochs) | "
                     f"{differences(name, config) or '-'} |")
    return "\n".join(lines)


def to_json(runs, rows, config, target, metric):
    return json.dumps({"target": target, "metric": metric, "config": asdict(config),
                       "summary": rows, "runs": [asdict(r) for r in runs]}, indent=1) + "\n"

