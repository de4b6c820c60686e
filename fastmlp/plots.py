"""PNG figures (matplotlib, an optional extra): training curves, a confusion matrix, throughput
against threads, time to accuracy, a grid's accuracy by epoch and a sweep's metric per setting.
Each function returns the PNG's bytes; callers write them atomically."""
import io
import math

import numpy as np

from .errors import FastMLPError
from .training.result import METRIC_WORDS


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise FastMLPError("plotting needs matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _png(fig, plt, dpi=120):
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def throughput_png(rows):
    """fastmlp bench rows: samples/s against thread count, one line per configuration."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    configs = {}
    for r in rows:
        configs.setdefault(r.configuration, []).append(r)
    for name, group in configs.items():
        ax.plot([r.threads for r in group], [r.samples_per_s for r in group], "o-", label=name)
    ax.set_xlabel("threads")
    ax.set_ylabel("training samples/s")
    ax.set_xticks(sorted({r.threads for r in rows}))
    ax.set_title("fastmlp training throughput")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig, plt)


def curves_png(history, title):
    """A run's history (fastmlp train --out): loss, and train/validation/test accuracy."""
    plt = _pyplot()
    epochs = [e["epoch"] for e in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(epochs, [e["train_loss"] for e in history], label="train loss")
    if all("val_loss" in e for e in history):
        loss_ax.plot(epochs, [e["val_loss"] for e in history], label="validation loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("cross-entropy")
    loss_ax.set_yscale("log")
    acc_ax.plot(epochs, [100 * e["train_acc"] for e in history], label="train")
    acc_ax.plot(epochs, [100 * e["val_acc"] for e in history], label="validation")
    tested = [e for e in history if e.get("test_acc") is not None]
    if tested:
        acc_ax.plot([e["epoch"] for e in tested], [100 * e["test_acc"] for e in tested], "o",
                    label="test")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("accuracy (%)")
    from matplotlib.ticker import MaxNLocator
    for ax in (loss_ax, acc_ax):
        # Epochs are whole numbers (min_n_ticks=1: a one-epoch run gets its one tick too).
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return _png(fig, plt)


def confusion_png(counts, title, classes=None):
    """A confusion matrix (rows: true class, columns: predicted), counts written in cells, the
    axes labelled with the classes (0..K-1 when not given).

    The diagonal (correct) and the errors each get their own colour scale, with a colour bar
    each: on one scale the errors, a few dozen beside a thousand, would all look blank."""
    plt = _pyplot()
    counts = np.asarray(counts)
    k = len(counts)
    diagonal = np.eye(k, dtype=bool)
    from matplotlib.ticker import MaxNLocator
    from mpl_toolkits.axes_grid1 import make_axes_locatable
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    divider = make_axes_locatable(ax)
    for cells, cmap, label, pad in ((~diagonal, "Reds", "errors (off the diagonal)", 0.15),
                                    (diagonal, "Blues", "correct (diagonal)", 0.75)):
        top = max(1, counts[cells].max(initial=0))
        image = ax.imshow(np.ma.masked_where(~cells, counts), cmap=cmap, vmin=0, vmax=top)
        bar = fig.colorbar(image, cax=divider.append_axes("right", size="4%", pad=pad),
                           label=label)
        bar.locator = MaxNLocator(integer=True, steps=[1, 2, 5, 10])  # counts
        bar.update_ticks()
        for i, j in zip(*np.nonzero(cells)):
            value = counts[i, j]
            # White on the darker half of the scale, black on the lighter; zeros in grey.
            color = "white" if value > top / 2 else ("black" if value else "0.6")
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7, color=color)
    names = [str(c) for c in (range(k) if classes is None else np.asarray(classes).tolist())]
    ax.set_xticks(range(k), names, rotation=90 if max(map(len, names)) > 2 else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _png(fig, plt)


def race_png(runs, target, metric, title):
    """`fastmlp bench --to-accuracy` runs: accuracy against whole-process time (median over
    seeds of each epoch's charged time and accuracy), one line per contestant."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    contestants = dict.fromkeys(r.contestant for r in runs if not r.error)
    for name in contestants:
        group = [r.epochs for r in runs if r.contestant == name and not r.error]
        depth = min(len(g) for g in group)
        times = [np.median([g[k]["time"][metric] for g in group]) for k in range(depth)]
        accs = [100 * np.median([g[k][metric] for g in group]) for k in range(depth)]
        ax.plot(times, accs, "o-", markersize=3, label=name)
    ax.axhline(100 * target, color="0.5", linestyle="--", linewidth=1,
               label=f"target {100 * target:g}%")
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter, ScalarFormatter
    ax.xaxis.set_major_formatter(ScalarFormatter())  # seconds as 10, 100, not 10^1
    # Minor ticks labelled 2, 3, 5 (one decade: every one), fewer as the decades add up, so
    # that a race of seconds against minutes stays readable.
    left, right = ax.get_xlim()
    decades = np.log10(right / left)
    shown = set(range(2, 10)) if decades < 1 else {2, 3, 5} if decades < 2 else {2, 5}
    ax.xaxis.set_minor_formatter(FuncFormatter(
        lambda x, _: f"{x:g}" if round(x / 10 ** np.floor(np.log10(x))) in shown else ""))
    ax.set_xlabel("whole-process time (s, log scale): start-up, data, training, evaluation")
    ax.set_ylabel(f"{metric} accuracy (%)")
    low = min((100 * r.epochs[0][metric] for r in runs if r.epochs), default=90)
    ax.set_ylim(max(low - 0.5, 100 * target - 3), 100)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _png(fig, plt)


def experiments_png(rows):
    """PNG bytes: validation accuracy against epoch, one panel per experiment, the mean over
    seeds with a min-max band, and the reported figures marked (needs matplotlib)."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()

    cols = min(2, len(rows))
    nrows = math.ceil(len(rows) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(6 * cols, 4 * nrows), squeeze=False)
    for ax, r in zip(axes.flat, rows):
        for metric, color in (("val_acc", "C0"), ("test_acc", "C1")):
            curve = r["curves"].get(metric)
            if curve is None or (metric == "test_acc" and "test_acc_at" not in r["reported"]):
                continue  # the test curve is drawn only where a document reports one
            x = np.arange(1, len(curve["mean"]) + 1)
            ax.plot(x, 100 * np.array(curve["mean"]), color=color,
                    label=f"ours, {METRIC_WORDS[metric]}: mean, min–max band")
            ax.fill_between(x, 100 * np.array(curve["min"]), 100 * np.array(curve["max"]),
                            color=color, alpha=0.25, linewidth=0)
        for metric, style in (("val_acc", "--"), ("test_acc", ":")):
            if metric in r["reported"]:
                value = 100 * r["reported"][metric]
                ax.axhline(value, color="C3", linestyle=style,
                           label=f"reported {METRIC_WORDS[metric]} {value:.2f}%")
        if "test_acc_at" in r["reported"]:
            ax.plot(r["reported"]["epochs"], 100 * np.array(r["reported"]["test_acc_at"]), "x",
                    color="C3", label="reported test by epoch")
        ax.set_title(f"{r['name']}: {r['layers']}, {r['init']}, {r['epochs']} epochs",
                     fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("accuracy %")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    for ax in list(axes.flat)[len(rows):]:
        ax.set_visible(False)
    fig.suptitle(f"fastmlp: accuracy by epoch over {len(rows[0]['seeds'])} seeds, beside the "
                 "reported figures (red)")
    return _png(fig, plt, dpi=110)


def sweep_png(sweep, rows):
    """PNG bytes: the metric's mean over seeds (with its standard deviation) against each
    swept setting, one panel per setting; numbers on a numeric axis (logarithmic for log
    ranges and draws), other values side by side (needs matplotlib)."""
    plt = _pyplot()

    ranked = [r for r in rows if "score" in r]
    fig, axes = plt.subplots(1, len(sweep.axes), figsize=(4.5 * len(sweep.axes), 3.8),
                             squeeze=False)
    scale = 100 if sweep.metric.endswith("acc") else 1
    y = np.array([scale * r["score"]["mean"] for r in ranked])
    err = np.array([scale * r["score"]["std"] for r in ranked])
    # With successive halving, one colour per rung: scores after fewer epochs stand apart.
    rungs = sorted({r.get("epochs") or 0 for r in ranked})
    for ax, axis in zip(axes.flat, sweep.axes):
        values = [r["values"][axis.name] for r in ranked]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if numeric:
            x = np.array(values, dtype=float)
        else:
            labels = list(dict.fromkeys(map(str, values)))
            x = np.array([labels.index(str(v)) for v in values], dtype=float)
            ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        for i, rung in enumerate(rungs):
            at = np.array([(r.get("epochs") or 0) == rung for r in ranked])
            ax.errorbar(x[at], y[at], yerr=err[at], fmt="o", color=f"C{i}", ecolor="0.6",
                        capsize=3, label=f"{rung} epochs" if rung else None)
        if len(rungs) > 1:
            ax.legend(fontsize=7)
        if numeric and axis.log:
            ax.set_xscale("log")
        ax.set_xlabel(axis.name)
        ax.set_ylabel(f"{sweep.metric}{' %' if scale == 100 else ''}")
        ax.grid(alpha=0.3)
    fig.suptitle(f"fastmlp sweep: {sweep.metric} (mean ± std over seeds) per point")
    return _png(fig, plt, dpi=100)
