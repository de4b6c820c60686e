"""What a grid's runs gave, beside what the documents reported: statistics over seeds, a
verdict per reported figure, the Markdown summary and epoch-wise tables, where they came from,
JSON with every run's history, and the results section of a documentation page."""
import datetime
import json
import os
import platform
from pathlib import Path

import numpy as np

from ..errors import FastMLPError
from ..runtime.probe import cpu_model
from ..training.result import METRIC_WORDS
from .experiments import REPORTED_METRICS

EPOCH_METRICS = ("train_acc", "test_acc", "val_acc")  # the documents' order in epoch-wise tables


# The verdict rule. Seeds move a run's accuracy by some spread; a reported figure that lies
# within 3 of our standard deviations of our mean is explained by that spread alone. Three seeds
# can show a spread near zero by chance, so the tolerance never drops below half a point.
VERDICT_SIGMAS = 3.0
VERDICT_FLOOR = 0.005  # 0.5 percentage points, as a fraction
VERDICT_RULE = (
    "a reported figure is **consistent** when |our mean − reported| ≤ max(3 × our standard "
    "deviation over seeds, 0.5 percentage points); otherwise it **differs by** our mean minus "
    "the reported figure, in percentage points (pp). The standard deviation is the sample one "
    "(n − 1); with a single seed only the 0.5 pp floor applies.")

PAGE_START = "<!-- experiments:start -->"
PAGE_END = "<!-- experiments:end -->"


def spread(values):
    """mean, sample standard deviation (0 for one value), min and max of `values`."""
    values = np.asarray(values, dtype=np.float64)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(values.mean()), "std": std, "min": float(values.min()),
            "max": float(values.max()), "n": len(values)}


def verdict(values, reported):
    """Whether a reported figure is what the seed spread of `values` explains (VERDICT_RULE):
    "consistent", or "differs by +X.X pp" (our mean minus the reported figure)."""
    s = spread(values)
    difference = s["mean"] - reported
    if abs(difference) <= max(VERDICT_SIGMAS * s["std"], VERDICT_FLOOR):
        return "consistent"
    return f"differs by {100 * difference:+.1f} pp"


def summarize(experiments, runs):
    """One JSON-ready row per experiment: measured spreads, reported figures, verdicts and the
    epoch-wise comparison where the document gives one."""
    rows = []
    for e in experiments:
        own = [r for r in runs if r.experiment == e.name]
        results = [r.result for r in own]
        finals = [res.final for res in results]
        # A dataset without a test split (a CSV file) has no test accuracy to spread.
        measured = {m: spread([getattr(f, m) for f in finals])
                    if None not in [getattr(f, m) for f in finals] else None
                    for m in REPORTED_METRICS}
        verdicts = {}
        for m in REPORTED_METRICS:
            if m in e.reported:
                verdicts[m] = ("not measured (no test split)" if measured[m] is None else
                               verdict([getattr(f, m) for f in finals], e.reported[m])
                               if not e.epochs_overridden else
                               f"not compared ({e.config.epochs} of {e.documented_epochs} "
                               f"epochs)")
        rows.append({
            "name": e.name, "layers": list(e.config.layers), "init": e.config.init,
            "epochs": e.config.epochs, "documented_epochs": e.documented_epochs,
            "lr": e.config.lr, "batch_size": e.config.batch_size, "dtype": e.config.dtype,
            "source": e.source, "note": e.note, "reported": e.reported,
            "seeds": [r.seed for r in own],
            "n_train": results[0].n_train, "n_val": own[0].n_val, "n_test": own[0].n_test,
            "measured": measured,
            "wall_seconds_mean": float(np.mean([res.wall_seconds for res in results])),
            "verdicts": verdicts,
            "epoch_table": _epoch_table(e, results),
            "curves": _curves(results),
        })
    return rows


def _epoch_table(experiment, results):
    """Rows (epoch, ours per metric, reported per metric) at the epochs a document lists."""
    epochs = experiment.reported.get("epochs")
    if not epochs:
        return []
    metrics = [m for m in EPOCH_METRICS if f"{m}_at" in experiment.reported]
    table = []
    for i, epoch in enumerate(epochs):
        row = {"epoch": epoch}
        for m in metrics:
            values = [getattr(res.history[epoch - 1], m) for res in results
                      if epoch <= len(res.history)]
            complete = len(values) == len(results) and None not in values
            row[m] = spread(values) if complete else None  # not run that long, or not measured
            row[f"reported_{m}"] = experiment.reported[f"{m}_at"][i]
        table.append(row)
    return table


def _curves(results):
    """Validation (and, where measured every epoch by every run, test) accuracy by epoch:
    mean, min and max over seeds; what the figure draws."""
    val = np.array([[e.val_acc for e in res.history] for res in results])  # (seeds, epochs)
    curves = {"val_acc": {"mean": val.mean(0).tolist(), "min": val.min(0).tolist(),
                          "max": val.max(0).tolist()}}
    tests = [[e.test_acc for e in res.history] for res in results]
    if all(t is not None for row in tests for t in row):
        test = np.array(tests, dtype=np.float64)
        curves["test_acc"] = {"mean": test.mean(0).tolist(), "min": test.min(0).tolist(),
                              "max": test.max(0).tolist()}
    return curves


# ---------------------------------------------------------------------------- Markdown


def _pct(value):
    return f"{100 * value:.2f}"


def _mean_std(s):
    if s is None:
        return "—"
    # One seed has no spread to show: "± 0.00" would claim a precision nobody measured.
    return _pct(s["mean"]) if s["n"] == 1 else f"{_pct(s['mean'])} ± {_pct(s['std'])}"


def _reported_text(reported):
    figures = [f"{_pct(reported[m])}% {METRIC_WORDS[m]}" for m in REPORTED_METRICS
               if m in reported]
    return ", ".join(figures) or "—"


def _verdict_text(verdicts):
    if not verdicts:
        return "—"
    if len(set(verdicts.values())) == 1:  # one figure, or the same word for all ("not compared")
        return next(iter(verdicts.values()))
    return "; ".join(f"{METRIC_WORDS[m]} {v}" for m, v in verdicts.items())


def _distinct(rows, key, show=str):
    values = []
    for r in rows:
        if r[key] not in values:
            values.append(r[key])
    return " / ".join(show(v) for v in values)


def _escape(text):
    return text.replace("|", "\\|")


def _batch_words(batch_size):
    return "full-batch gradient descent" if batch_size is None else f"minibatches of {batch_size}"


def _count(n):
    return f"{n:,}"


def _protocol(rows):
    """One sentence on what every run shared (values that vary are listed with a slash)."""
    seeds = rows[0]["seeds"]
    runs = f"{len(seeds)} run{'s' if len(seeds) > 1 else ''} per experiment"
    return (f"Ours: mean ± standard deviation over seeds {', '.join(map(str, seeds))} ({runs}), "
            f"figures of the last epoch; {_distinct(rows, 'batch_size', _batch_words)}, "
            f"lr {_distinct(rows, 'lr', lambda v: f'{v:g}')}, {_distinct(rows, 'dtype')}, "
            f"{_distinct(rows, 'n_train', _count)} training / {_distinct(rows, 'n_val', _count)} "
            f"validation / {_distinct(rows, 'n_test', _count)} test samples.")


def missing_runs(experiments, seeds, runs):
    """"NAME seed S" of every run of the grid that has no result (interrupted, or failed)."""
    have = {(r.experiment, r.seed) for r in runs}
    return [f"{e.name} seed {s}" for e in experiments for s in range(seeds)
            if (e.name, s) not in have]


def markdown(rows, provenance_line, missing=()):
    """The summary table, the verdict rule, notes, epoch-wise tables and where they came from;
    `missing` names the runs of the grid that have no result."""
    out = [
        _protocol(rows),
        "",
        "| experiment | hidden layers | init | epochs | reported | validation % | test % | "
        "train % | wall time / run | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        epochs = (str(r["epochs"]) if r["epochs"] == r["documented_epochs"] else
                  f"{r['epochs']} (documented: {r['documented_epochs']})")
        m = r["measured"]
        out.append(
            f"| {_escape(r['name'])}{'*' if r['note'] else ''} | {r['layers']} | {r['init']} | "
            f"{epochs} | "
            f"{_reported_text(r['reported'])} | {_mean_std(m['val_acc'])} | "
            f"{_mean_std(m['test_acc'])} | {_pct(m['train_acc']['mean'])} | "
            f"{r['wall_seconds_mean']:.1f} s | {_verdict_text(r['verdicts'])} |")
    out += ["", f"Verdict: {VERDICT_RULE} Training accuracy is the last epoch's, measured before "
            "that epoch's update. Wall time is one run's training and evaluation, data loading "
            "excluded."]
    if any(r["epochs"] != r["documented_epochs"] for r in rows):
        out += ["", "**The epochs were overridden (`--epochs`)**: these runs are shorter or "
                "longer than the documents', so they are not compared with the reported "
                "figures."]
    notes = [f"- \\* {r['name']}: {r['note']}" for r in rows if r["note"]]
    if notes:
        out += ["", *notes]
    if missing:
        out += ["", f"**Incomplete: {len(missing)} run{'s' if len(missing) > 1 else ''} of "
                f"the grid {'have' if len(missing) > 1 else 'has'} no result** (interrupted or "
                f"failed; the same command runs them): {', '.join(missing)}."]
    for r in rows:
        if r["epoch_table"]:
            out += ["", *_epoch_markdown(r)]
    out += ["", provenance_line]
    return "\n".join(out) + "\n"


def _epoch_markdown(row):
    metrics = [m for m in EPOCH_METRICS if m in row["epoch_table"][0]]
    header = ["epoch"]
    for m in metrics:
        header += [f"{METRIC_WORDS[m]} % (ours)", f"{METRIC_WORDS[m]} % (reported)"]
    lines = [f"**{row['name']}, accuracy by epoch** (ours: mean ± std over "
             f"{len(row['seeds'])} seeds; train accuracy is measured before the epoch's update)",
             "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for e in row["epoch_table"]:
        cells = [str(e["epoch"])]
        for m in metrics:
            cells += [_mean_std(e[m]), _pct(e[f"reported_{m}"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# ---------------------------------------------------------------------------- provenance


def machine(threads, cluster=None):
    """This machine; with `cluster` ({"workers", "threads", "scheduler"} of a Dask cluster's
    runs), that too (the CPU is this machine's: an external cluster's workers may differ)."""
    import numba
    found = {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": threads,
             "python": platform.python_version(), "numpy": np.__version__,
             "numba": numba.__version__}
    if cluster is not None and cluster.get("workers"):
        found["dask"] = cluster
    return found


def provenance_line(command, date, m):
    dask = m.get("dask")
    if dask is None:
        used = f"{m['threads']} threads used"
    else:
        where = (f"the Dask cluster at {dask['scheduler']}" if dask["scheduler"]
                 else "an embedded Dask cluster")
        used = (f"{where} of {dask['workers']} workers, {m['threads']} "
                f"thread{'s' if m['threads'] > 1 else ''} per run")
    return (f"Produced by `{command}` on {date}: {m['cpu']}, {m['cores']} cores "
            f"({used}), Python {m['python']}, numpy {m['numpy']}, numba {m['numba']}.")


def today():
    return datetime.date.today().isoformat()


# ---------------------------------------------------------------------------- JSON and PNG


def to_json(rows, runs, context):
    """Everything: the context (command, grid, machine), the summary rows and every run's full
    history (TrainResult.to_dict())."""
    report = {**context, "verdict_rule": VERDICT_RULE, "experiments": rows,
              "runs": [{"experiment": r.experiment, "seed": r.seed, **r.result.to_dict()}
                       for r in runs]}
    return json.dumps(report, indent=1) + "\n"


# ---------------------------------------------------------------------------- a page's section


def page_section(text, source="the page"):
    """(start, end): where the generated block goes in `text`; refuses a page without exactly
    one pair of markers in order, so that nothing else in it is ever overwritten."""
    starts, ends = text.count(PAGE_START), text.count(PAGE_END)
    if starts != 1 or ends != 1 or text.index(PAGE_START) > text.index(PAGE_END):
        raise FastMLPError(f"{source} needs exactly one {PAGE_START} followed by one "
                           f"{PAGE_END} line to put the results between")
    return text.index(PAGE_START) + len(PAGE_START), text.index(PAGE_END)


def replace_section(text, block, source="the page"):
    """`text` with everything between the markers replaced by `block`."""
    start, end = page_section(text, source)
    return text[:start] + "\n" + block.strip("\n") + "\n" + text[end:]


def read_page(path):
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise FastMLPError(f"cannot read {path}: {e.strerror or e}") from None
    page_section(text, str(path))
    return text
