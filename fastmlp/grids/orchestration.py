"""A grid or a sweep from start to end, as a library call: its runs (read back from the record
store, the others run where the Execution says), the successive-halving loop, and the reports
written into the output directory. `fastmlp experiments` and `fastmlp sweep` parse their flags
into these calls and print what they return.

    from fastmlp.grids import Execution, run_experiments, run_sweep
    report = run_sweep("spec.toml", out_dir="sweep", execution=Execution(workers=0))
    print(report.text)          # the leaderboard, as Markdown
    report.rows[0]              # the best point
"""
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_atomically
from ..errors import FastMLPError
from ..runtime.threads import default_threads
from . import leaderboard, report
from .executor import Execution, Executor, Observer, Outcome
from .experiments import check_runs, load_grid, select
from .halving import furthest, promote, rung_jobs, with_checkpoints
from .records import RecordStore
from .runs import plan_jobs, runs_from_records
from .sweep import RANK_METRICS, load_sweep


@dataclass
class GridReport:
    """What a grid or a sweep gave: the Markdown text, its rows (the summary or the
    leaderboard), the runs behind them, the files written and how the runs went."""
    text: str
    rows: list
    runs: list
    files: list
    outcome: Outcome
    total: int  # the runs the grid planned
    store: RecordStore

    def raise_for_problems(self):
        """TrainingInterrupted when Ctrl-C stopped the grid, FastMLPError when runs failed (the
        command line's exit statuses); nothing when every run finished."""
        self.outcome.raise_for_problems(self.total, self.store)


def run_experiments(grid=None, *, seeds=None, only=None, epochs=None, dtype=None,
                    out_dir="results", execution=Execution(), observer=None, update_page=None,
                    command=None):
    """Run every experiment of a grid file (default: the shipped one, the source documents'
    experiments) once per seed, and write experiments.md, .json and .png into out_dir (and,
    with update_page, the table between the experiments markers of that Markdown file).
    seeds, only, epochs and dtype narrow or override the grid; `command` is the command line
    the reports name as their origin (default: the `fastmlp experiments` that does the same)."""
    loaded = load_grid(grid)
    chosen = select(loaded, only, epochs=epochs, dtype=dtype)
    page = None if update_page is None else report.read_page(update_page)
    command = command or shlex.join(_experiments_words(grid, seeds, epochs, dtype,
                                                       execution.threads, only))
    if seeds is None:
        seeds = loaded.seeds
    elif not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise FastMLPError(f"seeds must be an integer >= 1, got {seeds!r}")
    check_runs("--seeds", len(chosen), seeds, "experiments")
    observer = observer or Observer()
    source = str(Path(loaded.path).resolve())
    store, plot = _prepare(execution, out_dir, observer, ("experiments.json", source))
    with Executor(execution, store, observer) as executor:
        outcome = executor.run(plan_jobs(chosen, seeds))
    runs = runs_from_records(chosen, seeds, outcome.records)
    total = seeds * len(chosen)
    if not runs:
        outcome.raise_for_problems(total, store)
    rows = report.summarize([e for e in chosen if any(r.experiment == e.name for r in runs)],
                            runs)
    date = report.today()
    machine = report.machine(outcome.cluster["threads"] or default_threads(), outcome.cluster)
    missing = report.missing_runs(chosen, seeds, runs)
    text = report.markdown(rows, report.provenance_line(command, date, machine), missing)
    context = {"command": command, "date": date, "machine": machine, "grid": loaded.path,
               "source": source,
               "seeds": list(range(seeds)), "epochs_override": epochs,
               "dtype_override": dtype, "records": str(store.directory),
               "missing_runs": missing}
    out_dir = Path(out_dir)
    outputs = [(out_dir / "experiments.md", lambda: text),
               (out_dir / "experiments.json", lambda: report.to_json(rows, runs, context))]
    if plot:
        from ..plots import experiments_png
        outputs.append((out_dir / "experiments.png", lambda: experiments_png(rows)))
    if page is not None:
        # Read again: the page may have been edited while the experiments ran.
        outputs.append((Path(update_page), lambda: report.replace_section(
            report.read_page(update_page), text, update_page)))
    files = _write(outputs)
    return GridReport(text, rows, runs, files, outcome, total, store)


def run_sweep(spec, *, out_dir="sweep", execution=Execution(), observer=None, command=None):
    """Run every point of a sweep file (grid or random search, with successive halving when it
    has a [halving] table) once per seed, rank the points by the mean over seeds of its
    validation metric, and write leaderboard.md, .csv, .json and sweep.png into out_dir."""
    sweep = load_sweep(spec) if isinstance(spec, (str, Path)) else spec
    command = command or shlex.join(["fastmlp", "sweep", str(sweep.path)] + (
        ["--threads", str(execution.threads)] if execution.threads else []))
    observer = observer or Observer()
    source = str(Path(sweep.path).resolve())
    store, plot = _prepare(execution, out_dir, observer, ("leaderboard.json", source))
    with Executor(execution, store, observer) as executor:
        if sweep.halving is None:
            outcome = executor.run(plan_jobs(sweep.points, sweep.seeds))
            runs, reached = runs_from_records(sweep.points, sweep.seeds, outcome.records), None
            total = len(sweep.points) * sweep.seeds
        else:
            outcome, total = _halve(sweep, executor, store, observer)
            runs, reached = furthest(sweep.points, sweep.seeds, sweep.halving, outcome.records)
    if not runs:
        outcome.raise_for_problems(total, store)
    rows = leaderboard.rank(sweep, runs, reached)
    date = report.today()
    machine = report.machine(outcome.cluster["threads"] or default_threads(), outcome.cluster)
    text = leaderboard.markdown(sweep, rows, report.provenance_line(command, date, machine))
    context = {"command": command, "date": date, "machine": machine, "spec": sweep.path,
               "source": source,
               "search": sweep.search, "metric": sweep.metric, "seeds": sweep.seeds,
               "records": str(store.directory),
               "missing_runs": report.missing_runs(sweep.points, sweep.seeds, runs)}
    out_dir = Path(out_dir)
    outputs = [(out_dir / "leaderboard.md", lambda: text),
               (out_dir / "leaderboard.csv", lambda: leaderboard.to_csv(rows)),
               (out_dir / "leaderboard.json", lambda: leaderboard.to_json(rows, context))]
    if plot:
        from ..plots import sweep_png
        outputs.append((out_dir / "sweep.png", lambda: sweep_png(sweep, rows)))
    return GridReport(text, rows, runs, _write(outputs), outcome, total, store)


def points_per_rung(sweep):
    """How many points each rung of a halving sweep trains."""
    counts = [len(sweep.points)]
    for _ in sweep.halving.rungs[1:]:
        counts.append(sweep.halving.keep(counts[-1]))
    return counts


def _halve(sweep, executor, store, observer):
    """The sweep rung by rung on one executor, the best points going on after each: (the
    Outcome of every rung, the runs planned)."""
    halving, points = sweep.halving, sweep.points
    records, failed, resumed, total, complete = {}, [], 0, 0, True
    for rung, epochs in enumerate(halving.rungs):
        jobs = rung_jobs(points, sweep.seeds, halving, rung)
        total += len(jobs)
        observer.note(f"rung {rung + 1} of {len(halving.rungs)}: {len(points)} points to "
                      f"epoch {epochs}")
        done = set() if executor.execution.fresh else set(store.finished([j.key for j in jobs]))
        outcome = executor.run(with_checkpoints(jobs, store, done, observer.note))
        records.update(outcome.records)
        failed += outcome.failed
        resumed += outcome.resumed
        if not outcome.complete:
            complete = False
            break
        points = promote(points, sweep.seeds, jobs, outcome.records, sweep.metric,
                         RANK_METRICS[sweep.metric], halving)
        if not points:  # every point failed at this rung
            break
    return Outcome(records, failed, complete, resumed, executor.cluster), total


def _prepare(execution, out_dir, observer, owner):
    """Check what can be checked before any run and create `out_dir`: (its RecordStore,
    whether a PNG can be drawn). `owner` is (report file, the absolute path of this grid or
    sweep file): a directory holding another file's report is refused, as writing there would
    replace that report (two grids left at the default --out-dir)."""
    if execution.scheduler_file is not None and not Path(execution.scheduler_file).is_file():
        raise FastMLPError(f"scheduler file {execution.scheduler_file} not found")
    out_dir = Path(out_dir)
    _check_owner(out_dir, *owner)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FastMLPError(f"cannot create {out_dir}: {e.strerror or e}") from None
    try:
        import matplotlib  # noqa: F401  (an optional extra: without it, no PNG)
        plot = True
    except ImportError:
        observer.note("note: matplotlib is not installed, so no PNG will be written "
                      "(pip install matplotlib)")
        plot = False
    return RecordStore(out_dir), plot


def _check_owner(out_dir, name, source):
    """Refuse `out_dir` when its report `name` was written for a file other than `source` (a
    report that cannot be read, or of a fastmlp that did not record its source, is replaced)."""
    try:
        other = json.loads((out_dir / name).read_text()).get("source")
    except (OSError, ValueError, AttributeError, UnicodeDecodeError):
        return
    if isinstance(other, str) and other != source:
        raise FastMLPError(f"{out_dir / name} is the report of {other}, not of {source}; "
                           f"pass another --out-dir (or delete {out_dir / name})")


def _write(outputs):
    """Write each (path, render) atomically; the paths written."""
    for path, render in outputs:
        write_atomically(path, render())
    return [path for path, _ in outputs]


def _experiments_words(grid, seeds, epochs, dtype, threads, only):
    """The `fastmlp experiments` command line that gives these numbers (outputs left out)."""
    words = ["fastmlp", "experiments"]
    if grid is not None:
        words.append(str(grid))
    for name, value in (("seeds", seeds), ("epochs", epochs), ("dtype", dtype),
                        ("threads", threads)):
        if value is not None:
            words += ["--" + name, str(value)]
    if only:
        words += ["--only", *only]
    return words
