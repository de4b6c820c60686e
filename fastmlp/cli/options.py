"""What the commands share: the parser that reports errors in one line, the argument types of
paths, and every training setting's flag, derived from the settings table (fastmlp/settings.py)
so that its type, range, choices and help are written once, there.

This module imports neither numpy nor the settings table at import time: the top-level parser
uses `Parser`, and `fastmlp --help` should not pay for what only a command needs.
"""
import argparse
import os
from pathlib import Path

from ..errors import EXIT_USAGE, FastMLPError

EXIT_BAD_INPUT = EXIT_USAGE


class Parser(argparse.ArgumentParser):
    """argparse's parser, with no abbreviated options (`--batch 128` for `--batch-size` would
    break scripts when a flag starting the same is added) and one-line errors."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        # argparse prints the usage block too; one line that names the problem is enough.
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def existing_file(text):
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: a directory, not a file")
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if not path.is_file():  # a FIFO or a device: reading it could block or never end
        raise argparse.ArgumentTypeError(f"{text}: not a regular file")
    return path


def existing_path(text):
    """A file or a folder that exists (a dataset may be either)."""
    if not Path(text).exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or folder")
    return Path(text)


def output_path(text):
    """Refuse an output the run could not write before the run starts, not after it."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory")
    if path.exists() and not path.is_file():
        # Outputs are renamed into place: over a device or a pipe that would replace it.
        raise argparse.ArgumentTypeError(f"{text} exists and is not a regular file")
    parent = path.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"directory {parent} is not writable")
    return path


def distinct_files(outputs, inputs=()):
    """Refuse, in one line, an output that names the same file as another output or as an
    input, by any spelling (relative or absolute, ./x, through a symlink, a hard link): one
    would silently replace the other. outputs and inputs are (flag, path or None) pairs."""
    seen = [(flag, "input", _identities(path)) for flag, path in inputs if path is not None]
    for flag, path in outputs:
        if path is None:
            continue
        ids = _identities(path)
        for other, role, other_ids in seen:
            if ids & other_ids:
                if role == "input":
                    raise FastMLPError(f"{flag} {path} is the {other} file: writing it would "
                                       f"replace what the command reads; write elsewhere")
                raise FastMLPError(f"{other} and {flag} both name {path}: one would replace "
                                   f"the other; give each its own file")
        seen.append((flag, "output", ids))


def _identities(path):
    """What names a file whatever the spelling: its resolved path, and its device and inode
    when it exists (a hard link has another path)."""
    path = Path(path)
    ids = {("path", str(path.resolve()))}
    try:
        stat = path.stat()
        ids.add(("inode", stat.st_dev, stat.st_ino))
    except OSError:
        pass
    return ids


def free_name(path):
    """`path`, or the first of path-2, path-3, ... (before the suffix) that names no file: a
    default output name two runs in one directory would otherwise share."""
    path = Path(path)
    candidate, n = path, 1
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def memory_size(text):
    """argparse's `type` for a size in bytes: 4GiB, 500MB, 1.5G, 1000000."""
    from ..units import parse_size
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_quiet(parser):
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


_TABLE = object()  # default_text's "the table's default"


def default_text(name, value=_TABLE):
    """How `value` (default: the table's default of setting `name`) reads in a help text, or
    None when the value says nothing (None for a setting that has no meaning for None)."""
    from ..settings import BY_NAME, Invalid

    setting = BY_NAME[name]
    constraint = setting.constraint
    value = setting.default if value is _TABLE else value
    if isinstance(value, list):  # a multi-valued override: each value as the flag takes it
        return " ".join(word for v in value for word in constraint.format(v))
    if value is None:
        if getattr(constraint, "optional", None):
            return constraint.optional  # "every core", "the usual lookup"
        try:
            value = constraint.check(None)  # a batch size of None is "full"
        except Invalid:
            return None
    if isinstance(value, bool):  # a boolean flag is given without a value
        return "on" if value else "off"
    return " ".join(constraint.format(value))


def word_type(constraint):
    """argparse's `type` for one command-line word of a setting: its constraint parses it, and
    the Invalid message becomes argparse's ("argument --lr: must be ...")."""
    from ..settings import Invalid

    def parse(text):
        try:
            return constraint.parse(text)
        except Invalid as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def at_least(low):
    """argparse's `type` for an integer >= low that is not a setting (--checkpoint-every,
    --repeats, --seeds): the settings' own integer parsing and messages."""
    from ..settings import Integer

    return word_type(Integer(low))


def add_setting(parser, name, *, positional=False, shown=None, **overrides):
    """Add setting `name` of the table to `parser`, as `setting.flag` (or as a positional
    argument): its type, choices, nargs and metavar come from the constraint, a boolean is
    --name/--no-name, and the help is the table's followed by "(default: ...)".

    overrides: any add_argument keyword (a command's own default, help, nargs, action, a
    narrower choices); `shown` replaces the default's text in the help ("" leaves it out).
    """
    from ..settings import BY_NAME, Flag, Options

    setting = BY_NAME[name]
    constraint = setting.constraint
    if isinstance(constraint, Flag):
        kwargs = {"action": argparse.BooleanOptionalAction}
    elif isinstance(constraint, Options):
        # Parsing a word of these is checking it is a name, which `choices` does, offering
        # only the names the command line takes (not `extra`) in the help and in the error.
        kwargs = {"choices": constraint.names()}
    else:
        kwargs = {"type": word_type(constraint)}
        if constraint.nargs is not None:
            kwargs["nargs"] = constraint.nargs
        if constraint.metavar is not None:
            kwargs["metavar"] = constraint.metavar
    kwargs.update(overrides)
    text = kwargs.get("help", setting.help)
    if shown is None and "default:" not in text:
        shown = default_text(name, kwargs.get("default", _TABLE))
    # argparse %-formats help texts: a literal % must be doubled.
    kwargs["help"] = (text + (f" (default: {shown})" if shown else "")).replace("%", "%%")
    if positional:
        return parser.add_argument(name, **kwargs)
    return parser.add_argument(setting.flag, **kwargs)
