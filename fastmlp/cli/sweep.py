"""`fastmlp sweep SPEC.toml`: a grid or seeded random search over any settings, each point run
once per seed (on a Dask cluster or in this process), ranked on a leaderboard."""
import sys

from . import add_command
from .options import add_quiet, add_setting, existing_file
from .runner import add_execution_options, execution, progress


def add_parser(subparsers):
    parser = add_command(
        subparsers, "sweep",
        description="Run every point of a sweep (a grid, or seeded random draws, over any "
                    "training settings: see the user guide for the file's keys) once per "
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
    from ..grids.orchestration import points_per_rung, run_sweep
    from ..grids.sweep import load_sweep

    where = execution(args)  # the flags checked before the file is read
    sweep = load_sweep(args.spec)
    if args.dry_run:
        for point in sweep.points:
            print(f"{point.name}  {point.note}")
        print(f"{len(sweep.points)} points x {sweep.seeds} seeds = "
              f"{len(sweep.points) * sweep.seeds} runs")
        if sweep.halving is not None:
            print(f"successive halving: rungs at {', '.join(map(str, sweep.halving.rungs))} "
                  f"epochs, points per rung {', '.join(map(str, points_per_rung(sweep)))}")
        return
    report = run_sweep(sweep, out_dir=args.out_dir, execution=where,
                       observer=progress(args.quiet))
    sys.stdout.write(report.text)
    report.raise_for_problems()
