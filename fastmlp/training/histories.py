"""The histories `fastmlp plot` draws, from every file fastmlp writes one in: a train --out
JSON or CSV, a saved model, a grid's record of one run, an experiments report holding one run.
Each is checked as the model loader checks a history (modelfile.check_history), and its
values must be finite to be drawn; anything else is one line naming the file."""
import csv
import json
import math
from dataclasses import fields

from ..errors import FastMLPError
from .modelfile import NPY_MAGIC, Bad, check_history
from .result import RUN_FORMAT, RUN_SCHEMA, EpochStats

INTEGERS = {"epoch"}
MAX_BYTES = 256 * 2**20  # a run's history is kilobytes; a million epochs fit below this


def read_history(path):
    """The per-epoch history (a list of dicts, EpochStats fields) in the file at `path`."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise Bad(f"{path.stat().st_size:,} bytes, too large for a run's history")
        with open(path, "rb") as f:
            head = f.read(6)
        if head[:2] == b"PK" or head == NPY_MAGIC:  # an archive or an array: a model file?
            from .checkpoint import load
            return _drawable(load(path).history)
        if path.suffix.lower() == ".csv":
            history = _from_csv(path)
        else:
            history = _from_json(path)
        check_history(history)
        return _drawable(history)
    except Bad as e:
        raise FastMLPError(f"{path}: {e}") from None
    except csv.Error as e:
        raise FastMLPError(f"{path}: not a train --out CSV ({e})") from None
    except UnicodeDecodeError:
        raise FastMLPError(f"{path}: not a text file (plot takes a train --out JSON or CSV, "
                           "or a saved model)") from None
    except OSError as e:
        raise FastMLPError(f"{path}: cannot read it ({e.strerror or e})") from None


def _drawable(history):
    if not history:
        raise Bad("no epochs to plot (the run's history is empty)")
    for entry in history:
        for name, value in entry.items():
            if value is not None and not math.isfinite(value):
                raise Bad(f"history entry {entry['epoch']}: {name} is {value}, which cannot "
                          "be drawn")
    return history


def _from_json(path):
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError):
        raise Bad("not JSON (plot takes a train --out JSON or CSV, or a saved model)") \
            from None
    if isinstance(data, dict) and isinstance(data.get("result"), dict):
        data = data["result"]  # a grid's record of one run
    if isinstance(data, dict) and isinstance(data.get("runs"), list):
        if len(data["runs"]) != 1:  # an experiments report
            raise Bad(f"a report of {len(data['runs'])} runs; plot one run: its record (the "
                      "grid's records directory) or a train --out file")
        data = data["runs"][0]
    if not isinstance(data, dict) or "history" not in data:
        what = "a sweep leaderboard" if isinstance(data, dict) and "leaderboard" in data \
            else "not a run written by fastmlp"
        raise Bad(f"{what}: no per-epoch history (plot takes a train --out JSON or CSV, or "
                  "a saved model)")
    # Files of fastmlp before the schema was recorded have none: schema 1 is theirs too.
    schema = data.get("schema", 1)
    if data.get("format", RUN_FORMAT) != RUN_FORMAT or not isinstance(schema, int) or \
            schema > RUN_SCHEMA:
        raise Bad(f"a {data.get('format')!r} of schema {schema!r}, not a run this fastmlp "
                  f"reads ({RUN_FORMAT} {RUN_SCHEMA}); upgrade fastmlp")
    return data["history"]


def _from_csv(path):
    names = [f.name for f in fields(EpochStats)]
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != names:
            raise Bad(f"not a train --out CSV (its header must be {','.join(names)})")
        return [{name: _cell(row[name], name, i) for name in names}
                for i, row in enumerate(reader, 1)]


def _cell(text, name, row):
    if text is None:
        raise Bad(f"row {row} has too few columns")
    if text == "" and name == "test_acc":
        return None
    try:
        return int(text) if name in INTEGERS else float(text)
    except ValueError:
        raise Bad(f"row {row}: {name} is {text[:40]!r}, not a number") from None
