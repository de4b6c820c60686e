"""`fastmlp experiments`: every experiment of a grid once per seed (on a Dask cluster or in this
process), summarised beside the figures the documents reported, written as Markdown, JSON and
PNG from the run records."""
import shlex
from pathlib import Path

from ..atomic import write_atomically
from . import add_command
from .options import add_quiet, add_setting, at_least
from .runner import add_execution_options, finish, run_grid

# The overrides that change the numbers, in the order the reproducing command gives them.
OVERRIDES = ("seeds", "epochs", "dtype", "threads")


def add_parser(subparsers):
    parser = add_command(
        subparsers, "experiments",
        description="Run every experiment of a grid (default: the source documents' four) once "
                    "per seed, then print a Markdown table of the measured accuracies beside "
                    "the reported ones, and write it, the full histories (JSON) and a plot "
                    "(PNG) into --out-dir. Runs execute on an embedded Dask cluster (one "
                    "single-threaded worker per core), an existing one (--scheduler), or in "
                    "this process (--workers 0); each finished run is recorded in "
                    "OUT_DIR/runs at once, and the same command again resumes.")
    parser.add_argument("grid", nargs="?", default=None, metavar="GRID",
                        help="a grid TOML file (default: the shipped experiments.toml)")
    parser.add_argument("--seeds", type=at_least(1), default=None, metavar="N",
                        help="seeds 0..N-1 per experiment (default: the grid's, 3)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME",
                        help="run only these experiments")
    add_setting(parser, "threads", default=None,
                help="BLAS and numba threads of each run", shown="1 on a cluster, every "
                "core with --workers 0")
    add_setting(parser, "data_dir", default=None)
    add_setting(parser, "dtype", default=None, help="override every experiment's dtype",
                shown="each experiment's own")
    add_setting(parser, "epochs", default=None,
                help="override every experiment's epochs, for a quick look (the table then "
                     "compares nothing with the documents)", shown="each experiment's own")
    parser.add_argument("--out-dir", default="results", metavar="DIR",
                        help="where experiments.md, .json and .png go (default: results)")
    parser.add_argument("--update-readme", nargs="?", const="README.md", default=None,
                        metavar="PATH", help="replace the results section between the "
                        "experiments markers of PATH (default: README.md)")
    add_execution_options(parser)
    add_quiet(parser)
    return parser


def reproducing_command(args):
    """The command line that reproduces the numbers (output options left out)."""
    words = ["fastmlp", "experiments"]
    if args.grid is not None:
        words.append(args.grid)
    for name in OVERRIDES:
        value = getattr(args, name)
        if value is not None:
            words += ["--" + name, str(value)]
    if args.only:
        words += ["--only", *args.only]
    return shlex.join(words)


def run(args):
    from .. import report
    from ..grid import load_grid, select
    from ..threads import default_threads

    # Everything that can be refused is refused before the first run, not an hour later.
    grid = load_grid(args.grid)
    chosen = select(grid, args.only, epochs=args.epochs, dtype=args.dtype)
    seeds = args.seeds or grid.seeds
    readme = None if args.update_readme is None else report.read_readme(args.update_readme)
    out_dir = Path(args.out_dir)
    store, outcome, runs, can_plot = run_grid(args, chosen, seeds, out_dir)
    reported = [e for e in chosen if any(r.experiment == e.name for r in runs)]
    rows = report.summarize(reported, runs)
    command, date = reproducing_command(args), report.today()
    threads = outcome.cluster["threads"]
    machine = report.machine(threads or default_threads(), outcome.cluster)
    missing = report.missing_runs(chosen, seeds, runs)
    text = report.markdown(rows, report.provenance_line(command, date, machine), missing)
    context = {"command": command, "date": date, "machine": machine, "grid": grid.path,
               "seeds": list(range(seeds)), "epochs_override": args.epochs,
               "dtype_override": args.dtype, "records": str(store.directory),
               "missing_runs": missing}
    write_atomically(out_dir / "experiments.md", text)
    write_atomically(out_dir / "experiments.json", report.to_json(rows, runs, context))
    if can_plot:
        write_atomically(out_dir / "experiments.png", report.plot(rows))
    if readme is not None:
        # Read again: the README may have been edited while the experiments ran.
        readme = report.read_readme(args.update_readme)
        write_atomically(args.update_readme,
                         report.replace_section(readme, text, args.update_readme))
    print(text, end="")
    finish(outcome, seeds * len(chosen), store)
