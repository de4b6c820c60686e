"""The command-line reference, docs/cli.md, rendered from the parsers the commands really use:
`python -m fastmlp.cli.reference > docs/cli.md` writes the page again, and
tests/cli/test_reference.py fails while the page and the parsers disagree.

Each command's --help is formatted at a fixed width (COLUMNS, which argparse reads), so the page
does not depend on the terminal it was made in. Building a parser imports the command's module
but nothing it runs: numpy and the settings table, never numba.
"""
import io
import os
import sys
from contextlib import contextmanager, redirect_stdout

from ..errors import EXIT_FAILURE
from . import COMMANDS, EXIT_INTERRUPTED, EXIT_TERMINATED, build_parser
from .options import EXIT_BAD_INPUT

WIDTH = 100
REGENERATE = "python -m fastmlp.cli.reference > docs/cli.md"
# argparse reads COLUMNS for its width; Python 3.14's colours are off whatever the terminal says.
FIXED_ENVIRONMENT = {"COLUMNS": str(WIDTH), "PYTHON_COLORS": "0", "NO_COLOR": "1"}


@contextmanager
def fixed_environment():
    saved = {name: os.environ.get(name) for name in FIXED_ENVIRONMENT}
    os.environ.update(FIXED_ENVIRONMENT)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def help_text(command=None):
    """What `fastmlp [COMMAND] --help` prints, at the fixed width."""
    words = [command, "--help"] if command else ["--help"]
    out = io.StringIO()
    with fixed_environment(), redirect_stdout(out):
        try:
            build_parser(command).parse_args(words)
        except SystemExit:  # --help prints, then exits
            pass
    return out.getvalue().rstrip("\n")


def exit_statuses():
    return "\n".join([
        "| status | when |",
        "| --- | --- |",
        "| 0 | the command did what it was asked; also `--help`, `--version`, and a reader that "
        "went away (`fastmlp predict ... \\| head`) |",
        f"| {EXIT_FAILURE} | a failure while running, told in one line on stderr (`fastmlp: error: "
        "...`): a run that diverged, data that fails its checksum (a registered dataset's files, "
        "or files other than those a model was trained on), a run that needs more memory than is "
        "available or than `--max-memory` (also when a `--dry-run` finds it would be refused), "
        "runs of a grid or sweep that failed (the others are kept), an output that could not be "
        "written, a download that failed. Python's own status for an uncaught exception is 1 too: "
        "a traceback instead of one line is a bug in fastmlp, please report it |",
        f"| {EXIT_BAD_INPUT} | a usage error, told in one line on stderr: a bad flag or value "
        "(abbreviations are refused: `--batch` is not `--batch-size`), settings that contradict "
        "each other, a bad file named on the command line (a model, a grid, a `--data` file: "
        "missing, unreadable, non-numeric cells, ragged rows, NaN, no samples, labels outside the "
        "training classes), a dataset that cannot be found |",
        f"| {EXIT_INTERRUPTED} | Ctrl-C (SIGINT): `train` stops after the current step and writes "
        "a resumable checkpoint; `experiments` and `sweep` let the running runs finish, start no "
        "other and keep every finished run; a second Ctrl-C stops at once |",
        f"| {EXIT_TERMINATED} | SIGTERM: `train` stops as for Ctrl-C (checkpoint written); other "
        "commands stop at once, keeping what they wrote (every output is written atomically) |",
    ])


def render():
    """docs/cli.md: the exit statuses, then `fastmlp --help` and every command's --help."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    parts = [
        "# Command-line reference",
        "",
        f"Generated from the parsers by `{REGENERATE}` (argparse of Python {version}, "
        f"{WIDTH} columns); do not edit by hand. The user guide ([user-guide.md](user-guide.md)) "
        "explains the commands with examples.",
        "",
        "## Exit statuses",
        "",
        exit_statuses(),
    ]
    for command in (None, *COMMANDS):
        title = "fastmlp" if command is None else f"fastmlp {command}"
        parts += ["", f"## {title}", "", "```text", help_text(command), "```"]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
