"""A sweep's leaderboard: its points ranked by the mean over seeds of the chosen metric
(validation by default; the test accuracy is shown, never ranked by), as Markdown, CSV and JSON,
and a plot of the metric against each swept setting."""
import csv
import io
import json

import numpy as np

from .report import spread
from .sweep import RANK_METRICS

SHOWN = ("val_acc", "test_acc", "val_loss", "train_acc")  # beside the ranking metric


def _final(run):
    return run.result.final


def rank(sweep, runs, reached=None):
    """One row per point, best first (points without a finished run last, unranked): its
    swept values, the metric's spread over seeds, and the other figures' means. With
    successive halving, `reached` gives each point's epochs (its furthest rung, as "epochs"):
    points that went further rank above those stopped earlier, whatever their scores (a
    score after fewer epochs is not comparable)."""
    higher = RANK_METRICS[sweep.metric]
    rows = []
    for point in sweep.points:
        own = [r for r in runs if r.experiment == point.name]
        values = {a.name: getattr(point.config, a.name) for a in sweep.axes}
        row = {"point": point.name, "settings": point.note,
               "values": {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()},
               "seeds": [r.seed for r in own], "metric": sweep.metric}
        if reached is not None:
            row["epochs"] = reached.get(point.name)
        if own:
            finals = [_final(r) for r in own]
            row["score"] = spread([getattr(f, sweep.metric) for f in finals])
            for m in SHOWN:
                measured = [getattr(f, m) for f in finals]
                row[m] = None if None in measured else float(np.mean(measured))
            row["wall_seconds_mean"] = float(np.mean([r.result.wall_seconds for r in own]))
        rows.append(row)
    done = sorted((r for r in rows if "score" in r),
                  key=lambda r: (-(r.get("epochs") or 0),
                                 -r["score"]["mean"] if higher else r["score"]["mean"]))
    for i, row in enumerate(done, 1):
        row["rank"] = i
    return done + [r for r in rows if "score" not in r]


def _pct(value, metric):
    if value is None:
        return "—"
    return f"{100 * value:.2f}" if metric.endswith("acc") else f"{value:.4f}"


def _score(row):
    s = row["score"]
    mean = _pct(s["mean"], row["metric"])
    return mean if s["n"] == 1 else f"{mean} ± {_pct(s['std'], row['metric'])}"


def markdown(sweep, rows, provenance_line):
    unit = " %" if sweep.metric.endswith("acc") else ""
    halving = sweep.halving
    out = [f"Sweep `{sweep.path}`: {len(sweep.points)} points ({sweep.search} search over "
           f"{', '.join(a.name for a in sweep.axes)}), seeds 0..{sweep.seeds - 1} each, ranked "
           f"by the mean {sweep.metric} of the last epoch (best first; the test accuracy is "
           "reported, never used to rank)."]
    if halving is not None:
        out[0] += (f" Successive halving: rungs at {', '.join(map(str, halving.rungs))} "
                   f"epochs, the best 1/{halving.eta} of the points going on at each; a point "
                   "stopped at a rung ranks below those that went further, by its figures at "
                   "that rung (the wall time is its last rung's).")
    epochs = " epochs |" if halving is not None else ""
    out += ["", f"| rank | point | settings | {sweep.metric}{unit} (mean ± std) |{epochs} "
                "validation % | test % | seeds | wall time / run |",
            "| --- " * (8 + (halving is not None)) + "|"]
    for r in rows:
        reached = "" if halving is None else f" {r['epochs'] or '—'} |"
        if "score" not in r:
            out.append(f"| — | {r['point']} | {r['settings']} | no finished run |{reached} — "
                       "| — | 0 | — |")
            continue
        out.append(f"| {r['rank']} | {r['point']} | {r['settings']} | {_score(r)} |{reached} "
                   f"{_pct(r['val_acc'], 'acc')} | {_pct(r['test_acc'], 'acc')} | "
                   f"{len(r['seeds'])} | {r['wall_seconds_mean']:.1f} s |")
    out += ["", provenance_line]
    return "\n".join(out) + "\n"


def to_csv(rows):
    buffer = io.StringIO()
    names = ["rank", "point", "settings", "metric", "mean", "std", "n", "epochs", *SHOWN,
             "wall_seconds_mean"]
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        score = r.get("score", {})
        writer.writerow({"rank": r.get("rank", ""), "point": r["point"],
                         "settings": r["settings"], "metric": r["metric"],
                         "mean": score.get("mean", ""), "std": score.get("std", ""),
                         "n": score.get("n", 0), "epochs": r.get("epochs") or "",
                         **{m: "" if r.get(m) is None else r[m] for m in SHOWN},
                         "wall_seconds_mean": r.get("wall_seconds_mean", "")})
    return buffer.getvalue()


def to_json(rows, context):
    return json.dumps({**context, "leaderboard": rows}, indent=1) + "\n"
