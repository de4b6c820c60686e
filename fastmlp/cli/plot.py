"""`fastmlp plot`: the loss and accuracy curves of a run, from any file fastmlp writes a run's
history in (training/histories.py)."""
from ..atomic import write_atomically
from . import add_command
from .options import distinct_files, existing_file, output_path


def add_parser(subparsers):
    parser = add_command(subparsers, "plot")
    parser.add_argument("run", type=existing_file, metavar="RUN",
                        help="a run's history: written by fastmlp train --out (JSON or CSV) "
                             "or --save (a model), or a grid's record of one run")
    parser.add_argument("-o", "--output", type=output_path, required=True, metavar="FILE.png")
    return parser


def run(args):
    from ..plots import curves_png
    from ..training.histories import read_history

    distinct_files([("--output", args.output)], [("RUN.json", args.run)])
    history = read_history(args.run)
    write_atomically(args.output, curves_png(history, str(args.run)))
