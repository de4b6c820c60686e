"""The values a setting takes: each constraint checks a typed value (Python, TOML or JSON) and
normalises it or says what is wrong in a phrase, reads a command-line word and writes the value
back as command-line words. settings.py declares each setting with one of these."""
import math
import numbers
import os
from dataclasses import dataclass


class Invalid(ValueError):
    """What is wrong with one value, as a phrase: "must be >= 1, got 0". Whoever knows where the
    value came from (a flag, a grid entry, a keyword) puts the place in front."""


class Constraint:
    """The values a setting takes. `check` takes a typed value (Python, TOML or JSON) and returns
    it normalised or raises Invalid; `parse` reads one command-line word; `format` writes the
    value back as command-line words (parse(format(v)) == v)."""
    metavar = None
    nargs = None

    def check(self, value):
        raise NotImplementedError

    def parse(self, text):
        return self.check(text)

    def format(self, value):
        return [str(value)]


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _interval_text(low, high, closed):
    left = "[" if closed in ("both", "left") else "("
    right = "]" if closed in ("both", "right") else ")"
    return f"in {left}{low:g}, {high:g}{right}"


@dataclass(frozen=True)
class Integer(Constraint):
    low: int
    high: int | None = None
    optional: str | None = None  # what None means, when None is allowed ("every core")

    def check(self, value):
        if value is None and self.optional:
            return None
        if not _is_int(value):
            raise Invalid(f"must be an integer, got {value!r}")
        if value < self.low or (self.high is not None and value > self.high):
            bound = (f">= {self.low}" if self.high is None
                     else f"in [{self.low}, {self.high}]")
            raise Invalid(f"must be an integer {bound}, got {value}")
        return int(value)

    def parse(self, text):
        try:
            value = int(text)
        except ValueError:
            raise Invalid(f"expected an integer, got {text!r}") from None
        return self.check(value)


@dataclass(frozen=True)
class Real(Constraint):
    """A finite number in an interval; `closed` says which ends belong to it."""
    low: float
    high: float = math.inf
    closed: str = "both"  # both | left | right | neither

    def check(self, value):
        if not (_is_int(value) or isinstance(value, numbers.Real)) or isinstance(value, bool):
            raise Invalid(f"must be a number, got {value!r}")
        given, value = value, float(value)
        above = value > self.low or (value == self.low and self.closed in ("both", "left"))
        below = value < self.high or (value == self.high and self.closed in ("both", "right"))
        if not (math.isfinite(value) and above and below):
            bound = (f"> {self.low:g}" if self.closed in ("right", "neither") else
                     f">= {self.low:g}") if self.high == math.inf else \
                _interval_text(self.low, self.high, self.closed)
            raise Invalid(f"must be a finite number {bound}, got {given!r}")
        return value

    def parse(self, text):
        try:
            value = float(text)
        except ValueError:
            raise Invalid(f"expected a number, got {text!r}") from None
        return self.check(value)

    def format(self, value):
        return [repr(value)]  # the shortest text that reads back as the same float


@dataclass(frozen=True)
class Options(Constraint):
    """One of a registry's names. `choices` is the registry itself (a dict or tuple), read when
    checking, so a dataset registered later is known; `extra` names are accepted but not
    offered on the command line."""
    choices: object
    extra: tuple = ()

    def names(self):
        return tuple(self.choices)

    def check(self, value):
        if not isinstance(value, str) or (value not in self.choices and value not in self.extra):
            raise Invalid(f"must be one of {', '.join(self.names())}, got {value!r}")
        return value


@dataclass(frozen=True)
class Flag(Constraint):
    def check(self, value):
        if not isinstance(value, bool):
            raise Invalid(f"must be true or false, got {value!r}")
        return value

    def format(self, value):
        return []  # a boolean flag is --name or --no-name, without a value


@dataclass(frozen=True)
class Layers(Constraint):
    """Hidden layer sizes: one or more positive integers."""
    metavar = "N"
    nargs = "+"

    def check(self, value):
        if (isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or not value
                or not all(_is_int(h) and h >= 1 for h in value)):
            raise Invalid(f"must be one or more positive integers, got {_plain(value)!r}")
        return tuple(int(h) for h in value)

    def parse(self, text):
        return Integer(1).parse(text)  # argparse collects the words into a list

    def format(self, value):
        return [str(h) for h in value]


@dataclass(frozen=True)
class BatchSize(Constraint):
    """A number of samples per step, or "full" (None): the whole training split, one step per
    epoch. A batch larger than the training split is full batch."""
    metavar = "full|N"

    def check(self, value):
        if value is None or value == "full":
            return None
        if not _is_int(value) or value < 1:
            raise Invalid(f'must be "full" or an integer >= 1, got {value!r}')
        return int(value)

    def parse(self, text):
        return None if text == "full" else Integer(1).parse(text)

    def format(self, value):
        return ["full" if value is None else str(value)]


@dataclass(frozen=True)
class Text(Constraint):
    """A non-empty string, or None when `optional` says what None means."""
    optional: str | None = None

    def check(self, value):
        if value is None and self.optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise Invalid(f"must be a non-empty string, got {value!r}")
        return value


@dataclass(frozen=True)
class PathText(Text):
    """A path, kept as the text it was given as (a str or an os.PathLike)."""
    metavar = "PATH"

    def check(self, value):
        return super().check(os.fspath(value) if isinstance(value, os.PathLike) else value)


@dataclass(frozen=True)
class LabelColumn(Constraint):
    """A CSV column: a header name, or an index (0-based, negative from the end)."""
    metavar = "NAME|INDEX"
    optional: str | None = None

    def check(self, value):
        if value is None:
            return None
        if _is_int(value):
            return int(value)
        if isinstance(value, str) and value.strip():
            text = value.strip()
            return int(text) if text.lstrip("-").isdigit() else text
        raise Invalid(f"must be a column name or index, got {value!r}")


@dataclass(frozen=True)
class ImageSize(Constraint):
    """Pictures' size: N (square) or WxH, in pixels, each at most MAX_SIDE; [W, H] in a grid
    file."""
    metavar = "N|WxH"
    MAX_SIDE = 4096  # pixels: larger inputs are no MLP's, and a typo would fill the memory
    optional: str | None = None

    def check(self, value):
        if value is None:
            return None
        if _is_int(value):
            value = (value, value)
        if isinstance(value, str):
            parts = value.lower().split("x")
            if all(p.strip().isdigit() for p in parts) and len(parts) in (1, 2):
                value = tuple(int(p) for p in parts) * (3 - len(parts))
        if (isinstance(value, (list, tuple)) and len(value) == 2
                and all(_is_int(v) and 1 <= v <= self.MAX_SIDE for v in value)):
            return (int(value[0]), int(value[1]))
        raise Invalid(f"must be N or WxH with integers 1-{self.MAX_SIDE} (28, 32x24), got "
                      f"{value!r}")

    def format(self, value):
        return [f"{value[0]}x{value[1]}"]


def _plain(value):
    return list(value) if isinstance(value, tuple) else value
