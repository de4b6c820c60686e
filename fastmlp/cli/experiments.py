"""`fastmlp experiments`: every experiment of a grid once per seed (on a Dask cluster or in this
process), summarised beside the figures the documents reported, written as Markdown, JSON and
PNG from the run records."""
from . import add_command
from .options import add_quiet, add_setting, at_least
from .runner import add_execution_options, execution, progress

RESULTS_PAGE = "docs/results.md"


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
    parser.add_argument("--update-docs", nargs="?", const=RESULTS_PAGE, default=None,
                        metavar="PAGE.md", help="also replace the results section between "
                        f"the experiments markers of PAGE.md (default: {RESULTS_PAGE})")
    add_execution_options(parser)
    add_quiet(parser)
    return parser


def run(args):
    from ..grids.orchestration import run_experiments

    where = execution(args)  # the flags checked before the grid file is read
    report = run_experiments(args.grid, seeds=args.seeds, only=args.only, epochs=args.epochs,
                             dtype=args.dtype, out_dir=args.out_dir, execution=where,
                             observer=progress(args.quiet), update_page=args.update_docs)
    print(report.text, end="")
    report.raise_for_problems()
