"""`fastmlp sweep SPEC.toml`: a grid or seeded random search over any settings, each point run
once per seed (on a Dask cluster or in this process), ranked on a leaderboard."""
import sys
from pathlib import Path

from ..atomic import write_atomically
from . import add_command
from .options import add_quiet, add_setting, existing_file
from .runner import Executor, Outcome, add_execution_options, finish, prepare, run_grid


def add_parser(subparsers):
    parser = add_command(
        subparsers, "sweep",
        description="Run every point of a sweep (a grid, or seeded random draws, over any "
                    "training settings: see fastmlp/sweep.py for the file's keys) once per "
                    "seed (with a [halving] table, successive halving: only the best points "
                    "go on from each rung's checkpoint to the full epochs), rank the points by "
                    "the mean over seeds of a validation metric, and "
                    "print the leaderboard; write it as Markdown, CSV and JSON, with a plot of "
                    "the metric against each swept setting, into --out-dir. Every finished run "
                    "is recorded in OUT_DIR/runs at once, and the same command again resumes.")
    parser.add_argument("spec", type=existing_file, metavar="SPEC.toml",
                        help="the sweep file")
    add_setting(parser, "threads", default=None,
                help="BLAS and numba threads of each run", shown="1 on a cluster, every "
                "core with --workers 0")
    add_setting(parser, "data_dir", default=None)
    parser.add_argument("--out-dir", default="sweep", metavar="DIR",
                        help="where leaderboard.md, .csv, .json and sweep.png go (default: "
                             "sweep)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the points and the number of runs, run nothing")
    add_execution_options(parser)
    add_quiet(parser)
    return parser


def run(args):
    from .. import leaderboard, report
    from ..sweep import load_sweep
    from ..threads import default_threads

    sweep = load_sweep(args.spec)
    total = len(sweep.points) * sweep.seeds
    if args.dry_run:
        for point in sweep.points:
            print(f"{point.name}  {point.note}")
        print(f"{len(sweep.points)} points x {sweep.seeds} seeds = {total} runs")
        if sweep.halving is not None:
            print(f"successive halving: rungs at {', '.join(map(str, sweep.halving.rungs))} "
                  f"epochs, points per rung {', '.join(map(str, _per_rung(sweep)))}")
        return
    out_dir = Path(args.out_dir)
    reached = None
    if sweep.halving is None:
        store, outcome, runs, can_plot = run_grid(args, sweep.points, sweep.seeds, out_dir)
    else:
        store, outcome, runs, reached, total, can_plot = _run_halving(args, sweep, out_dir)
    rows = leaderboard.rank(sweep, runs, reached)
    command = " ".join(["fastmlp", "sweep", str(args.spec)]
                       + (["--threads", str(args.threads)] if args.threads else []))
    date = report.today()
    machine = report.machine(outcome.cluster["threads"] or default_threads(), outcome.cluster)
    text = leaderboard.markdown(sweep, rows, report.provenance_line(command, date, machine))
    context = {"command": command, "date": date, "machine": machine, "spec": sweep.path,
               "search": sweep.search, "metric": sweep.metric, "seeds": sweep.seeds,
               "records": str(store.directory),
               "missing_runs": report.missing_runs(sweep.points, sweep.seeds, runs)}
    write_atomically(out_dir / "leaderboard.md", text)
    write_atomically(out_dir / "leaderboard.csv", leaderboard.to_csv(rows))
    write_atomically(out_dir / "leaderboard.json", leaderboard.to_json(rows, context))
    if can_plot:
        write_atomically(out_dir / "sweep.png", leaderboard.plot(sweep, rows))
    sys.stdout.write(text)
    finish(outcome, total, store)


def _per_rung(sweep):
    counts = [len(sweep.points)]
    for _ in sweep.halving.rungs[1:]:
        counts.append(sweep.halving.keep(counts[-1]))
    return counts


def _run_halving(args, sweep, out_dir):
    """Run the sweep rung by rung on one Executor, promoting the best points after each:
    (store, Outcome of every rung, the Runs at each point's furthest rung, {point: its
    epochs}, the runs planned, whether to plot)."""
    from ..halving import furthest, promote, rung_jobs, with_checkpoints
    from ..sweep import METRICS

    store, plot = prepare(args, out_dir)
    halving, points = sweep.halving, sweep.points
    records, failed, resumed, total, complete = {}, [], 0, 0, True
    with Executor(args, store) as executor:
        for rung, epochs in enumerate(halving.rungs):
            jobs = rung_jobs(points, sweep.seeds, halving, rung)
            total += len(jobs)
            print(f"fastmlp: rung {rung + 1} of {len(halving.rungs)}: {len(points)} points "
                  f"to epoch {epochs}", file=sys.stderr)
            done = set() if args.fresh else set(store.finished([j.key for j in jobs]))
            outcome = executor.run(with_checkpoints(jobs, store, done))
            records.update(outcome.records)
            failed += outcome.failed
            resumed += outcome.resumed
            if not outcome.complete:
                complete = False
                break
            points = promote(points, sweep.seeds, jobs, outcome.records, sweep.metric,
                             METRICS[sweep.metric], halving)
            if not points:  # every point failed at this rung
                break
    outcome = Outcome(records, failed, complete, resumed, executor.cluster)
    runs, reached = furthest(sweep.points, sweep.seeds, halving, records)
    if not runs:
        finish(outcome, total, store)
    return store, outcome, runs, reached, total, plot
