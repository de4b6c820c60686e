"""`fastmlp plot`: the loss and accuracy curves of a run written by fastmlp train --out."""
import json

from ..atomic import write_atomically
from ..errors import FastMLPError
from . import add_command
from .options import existing_file, output_path


def add_parser(subparsers):
    parser = add_command(subparsers, "plot")
    parser.add_argument("run", type=existing_file, metavar="RUN.json",
                        help="written by fastmlp train --out")
    parser.add_argument("-o", "--output", type=output_path, required=True, metavar="FILE.png")
    return parser


def run(args):
    from ..plots import curves_png

    try:
        history = json.loads(args.run.read_text())["history"]
    except (ValueError, KeyError, TypeError):
        raise FastMLPError(f"{args.run}: not a run written by fastmlp train --out") from None
    write_atomically(args.output, curves_png(history, str(args.run)))
