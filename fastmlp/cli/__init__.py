"""The `fastmlp` command line, laid out as pip's commands: this module holds the table of
commands, the exit statuses and the one place where an exception becomes an exit status and a
one-line message; each command is a module of this package with `add_parser(subparsers)` and
`run(args)`.

A command's module is imported only when that command is named, so `fastmlp --help` lists the
commands from the table alone, and a command's --help or a mistyped flag never waits for numba.
Every problem a user can fix ends in one line on stderr, never a traceback, and an exit status
that says which kind it was (errors.py): 2 for a usage error, 1 for a failure while running,
130 for Ctrl-C and 143 for SIGTERM.
"""
import argparse
import importlib
import signal
import sys
import threading

from ..errors import FastMLPError, TrainingInterrupted
from ..runtime.exit import exit_now
from .options import Parser

# As a shell reports a process that the signal ended: 128 + its number.
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM

# name -> (module of this package, one-line summary), in the order `fastmlp --help` lists them.
COMMANDS = {
    "train": ("train", "train an MLP and report its accuracy"),
    "evaluate": ("evaluate",
                 "accuracy, per-class precision/recall and confusion matrix of a model"),
    "predict": ("predict", "classify digit images (PNG/JPEG, any size) or an IDX file"),
    "plot": ("plot", "draw loss and accuracy curves of a run"),
    "bench": ("bench", "measure training throughput per configuration and thread count"),
    "experiments": ("experiments", "run the source documents' experiments over several seeds"),
    "sweep": ("sweep", "grid or random search over any settings, ranked by validation"),
    "download": ("download",
                 "fetch a dataset's four IDX files (checksummed) into the user cache"),
    "export": ("export", "write a model as ONNX, safetensors or a PyTorch state_dict"),
}


def command_module(name):
    return importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")


def add_command(subparsers, name, **kwargs):
    """The subparser of command `name`, with its summary from the table (for add_parser)."""
    return subparsers.add_parser(name, help=COMMANDS[name][1], **kwargs)


class _Version(argparse.Action):
    """--version, reading the version only when asked: importing importlib.metadata is
    start-up every other command would pay (docs/performance.md, "Start-up and exit")."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from .. import __version__

        print(f"fastmlp {__version__}")
        parser.exit()


def build_parser(command=None):
    """The `fastmlp` parser. Only `command` (a name of COMMANDS, or None) gets its arguments,
    which imports its module; the others are listed by name and summary."""
    parser = Parser(prog="fastmlp", description="Train multilayer perceptrons on MNIST-style "
                    "images, or on any dataset of numbers or pictures, fast, on the CPU.")
    parser.add_argument("--version", action=_Version)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                       parser_class=Parser)
    for name in COMMANDS:
        if name == command:
            command_module(name).add_parser(subparsers)
        else:
            add_command(subparsers, name)
    return parser


def _command_named(argv):
    # The top-level parser takes no option with a value, so the first word that is not an
    # option is the command, if it is one.
    word = next((w for w in argv if not w.startswith("-")), None)
    return word if word in COMMANDS else None


def console():
    """The `fastmlp` console script (and `python -m fastmlp`): main(), then exit_now."""
    exit_now(main())


class Terminated(BaseException):
    """SIGTERM outside training (whose loop stops at a step boundary instead): unwinds the
    command like Ctrl-C does, closing what it opened, and exits with status 143."""


def _terminate(signum, frame):
    raise Terminated


def main(argv=None):
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = build_parser(_command_named(argv)).parse_args(argv)
    # Only the main thread can take signals (a test may call main from another).
    handle = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if handle else None
    try:
        command_module(args.command).run(args)
    except TrainingInterrupted as e:
        print(f"fastmlp: {e}", file=sys.stderr)
        return e.exit_status
    except FastMLPError as e:
        print(f"fastmlp: error: {e}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        print("fastmlp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("fastmlp: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except BrokenPipeError:  # the reader went away (`fastmlp predict ... | head`): not an error
        sys.stderr.close()
        return 0
    finally:
        if handle:
            signal.signal(signal.SIGTERM, previous)
    return 0
