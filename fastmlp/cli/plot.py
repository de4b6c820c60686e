"""`fastmlp plot`: the loss and accuracy curves of a run written by fastmlp train --out."""
import json

from ..atomic import write_atomically
from ..errors import FastMLPError
from . import add_command
from .options import distinct_files, existing_file, output_path


def add_parser(subparsers):
    parser = add_command(subparsers, "plot")
    parser.add_argument("run", type=existing_file, metavar="RUN.json",
                        help="written by fastmlp train --out")
    parser.add_argument("-o", "--output", type=output_path, required=True, metavar="FILE.png")
    return parser


def run(args):
    from ..plots import curves_png
    from ..training.result import RUN_FORMAT, RUN_SCHEMA

    distinct_files([("--output", args.output)], [("RUN.json", args.run)])
    try:
        run = json.loads(args.run.read_text())
        history = run["history"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise FastMLPError(f"{args.run}: not a run written by fastmlp train --out") from None
    # Files of fastmlp before the schema was recorded have none: schema 1 is theirs too.
    if run.get("format", RUN_FORMAT) != RUN_FORMAT or run.get("schema", 1) > RUN_SCHEMA:
        raise FastMLPError(f"{args.run}: a {run.get('format')} of schema {run.get('schema')}, "
                           f"newer than this fastmlp reads ({RUN_SCHEMA}); upgrade fastmlp")
    write_atomically(args.output, curves_png(history, str(args.run)))
