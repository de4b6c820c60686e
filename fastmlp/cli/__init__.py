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
from ..runtime import signals
from .options import Parser

# As a shell reports a process that the signal ended: 128 + its number.
EXIT_INTERRUPTED = signals.status(signal.SIGINT)
EXIT_TERMINATED = signals.status(signal.SIGTERM)

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
    """The entry point of `fastmlp` scripts installed before pyproject.toml named
    fastmlp/__main__.py's, which handles signals from an earlier moment."""
    signals.run_command(lambda: main(handle_signals=False))


def main(argv=None, handle_signals=True):
    """Run the command line `argv` (default: sys.argv[1:]) and return its exit status; every
    FastMLPError, SIGINT and SIGTERM becomes one line on stderr. handle_signals: install the
    handler of SIGINT and SIGTERM for the call (console() has installed it already); only the
    main thread can (a test may call main from another)."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    handle = handle_signals and threading.current_thread() is threading.main_thread()
    previous = signals.handle() if handle else {}
    try:
        args = build_parser(_command_named(argv)).parse_args(argv)
        command_module(args.command).run(args)
    except TrainingInterrupted as e:
        print(f"fastmlp: {e}", file=sys.stderr)
        return e.exit_status
    except FastMLPError as e:
        print(f"fastmlp: error: {e}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        return signals.report()
    except signals.Terminated:
        return signals.report(signal.SIGTERM)
    except BrokenPipeError:  # the reader went away (`fastmlp predict ... | head`): not an error
        sys.stderr.close()
        return 0
    except Exception:
        if signals.received() is None:
            raise  # a bug: its traceback
        # What a library made of the signal's exception (numba, Dask): the signal is the news.
        return signals.report()
    finally:
        if handle:
            signals.restore(previous)
    return 0
