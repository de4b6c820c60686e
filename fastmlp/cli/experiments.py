"""`fastmlp experiments`: every experiment of a grid once per seed, summarised beside the
figures the documents reported, written as Markdown, JSON and PNG."""
import shlex
import sys
from pathlib import Path

from ..atomic import write_atomically
from ..errors import FastMLPError
from . import add_command
from .options import add_quiet, add_setting, at_least
from .progress import epoch_bar, percent

# The overrides that change the numbers, in the order the reproducing command gives them.
OVERRIDES = ("seeds", "epochs", "dtype", "threads")


def add_parser(subparsers):
    parser = add_command(
        subparsers, "experiments",
        description="Run every experiment of a grid (default: the source documents' four) once "
                    "per seed, then print a Markdown table of the measured accuracies beside "
                    "the reported ones, and write it, the full histories (JSON) and a plot "
                    "(PNG) into --out-dir.")
    parser.add_argument("grid", nargs="?", default=None, metavar="GRID",
                        help="a grid TOML file (default: the shipped experiments.toml)")
    parser.add_argument("--seeds", type=at_least(1), default=None, metavar="N",
                        help="seeds 0..N-1 per experiment (default: the grid's, 3)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME",
                        help="run only these experiments")
    add_setting(parser, "threads", default=None)
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


def _can_plot():
    try:
        import matplotlib  # noqa: F401  (an optional extra: without it, no PNG)
    except ImportError:
        print("fastmlp: note: matplotlib is not installed, so no PNG will be written "
              "(pip install matplotlib)", file=sys.stderr)
        return False
    return True


def run(args):
    from .. import report
    from ..grid import load_grid, select
    from ..runs import run_all
    from ..settings import RunOptions
    from ..threads import default_threads

    # Everything that can be refused is refused before the first run, not an hour later.
    grid = load_grid(args.grid)
    chosen = select(grid, args.only, epochs=args.epochs, dtype=args.dtype)
    options = RunOptions(threads=args.threads, data_dir=args.data_dir)
    seeds = args.seeds or grid.seeds
    readme = None if args.update_readme is None else report.read_readme(args.update_readme)
    out_dir = Path(args.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FastMLPError(f"cannot create {out_dir}: {e.strerror or e}") from None
    can_plot = _can_plot()

    with epoch_bar(seeds * sum(e.config.epochs for e in chosen), args.quiet) as bar:
        def on_run(experiment, seed):
            bar.set_description(f"{experiment.name} seed {seed}", refresh=False)

        def on_epoch(stats):
            bar.set_postfix(val=percent(stats.val_acc), refresh=False)
            bar.update()

        runs = run_all(chosen, seeds, options=options, on_run=on_run, on_epoch=on_epoch)

    rows = report.summarize(chosen, runs)
    command, date = reproducing_command(args), report.today()
    machine = report.machine(args.threads or default_threads())
    text = report.markdown(rows, report.provenance_line(command, date, machine))
    context = {"command": command, "date": date, "machine": machine, "grid": grid.path,
               "seeds": list(range(seeds)), "epochs_override": args.epochs,
               "dtype_override": args.dtype}
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
