"""The record store: one JSON file per finished run, keyed by a hash of what decides its numbers,
written atomically as each run ends, so that a grid interrupted anywhere keeps every finished
run and the same command resumes by reading them back.

A record is {"format", "key", "status": "ok" | "error", "experiment", "seed", "config", "host",
"worker", "versions", "started", "finished", "wall_seconds", ...} plus, for "ok", the run's
TrainResult.to_dict() under "result" and the validation and test sizes; for "error", the
one-line "error" (and a "traceback" when it was not a FastMLPError). A rung of successive
halving (halving.py) is a run of its own, keyed "KEY-eN" (it stops at epoch N); its record says
so under "rung" ({"epochs", "resumed_from"}), and the checkpoint it stopped at, which the next
rung goes on from, is kept beside the records in DIR/checkpoints/KEY-eN.npz.
"""
import dataclasses
import functools
import hashlib
import json
import platform
import socket
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_atomically
from ..data.source import fingerprint
from ..errors import FastMLPError
from ..runtime.versions import fastmlp_version
from ..runtime.versions import versions as package_versions
from ..training.result import EpochStats

FORMAT = 2  # 2: records carry the dataset's classes and are run again under another version
RECORDS_DIR = "runs"  # below --out-dir
CHECKPOINTS_DIR = "checkpoints"  # likewise


def config_dict(config):
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(config).items()}


def run_key(config):
    """The record's key: the SHA-256 (16 hex digits) of the configuration as canonical JSON.
    The seed is part of it; the threads and the data directory are not (RunOptions never
    change what a run is), so a record made on any machine serves every later command. Data
    read from files (config.data) enters by its content's SHA-256, not its path: changed files
    are another run, the same files moved are the same run."""
    values = config_dict(config)
    if values.get("data") is not None:
        values["data"] = data_fingerprint(values["data"])
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=64)
def data_fingerprint(path):
    """source.fingerprint, once per path and command (a grid keys each of its runs)."""
    return "sha256:" + fingerprint(path)


def versions():
    return package_versions(distributed=True)


def where():
    """The host and process a record is made in."""
    return {"host": socket.gethostname(), "platform": platform.platform()}


@dataclass
class RecordedResult:
    """What the reports read of a run, rebuilt from its record (the TrainResult interface they
    use: history, final, n_train, wall_seconds, to_dict)."""
    data: dict  # TrainResult.to_dict()

    @property
    def history(self):
        return [EpochStats(**e) for e in self.data["history"]]

    @property
    def final(self):
        return self.history[self.data["summary"]["best_epoch"] - 1]

    @property
    def n_train(self):
        return self.data["dataset"]["n_train"]

    @property
    def wall_seconds(self):
        return self.data["summary"]["wall_seconds"]

    def to_dict(self):
        return self.data


def _readable(record):
    """Whether an "ok" record holds what the reports read of it (an edited or damaged one may
    not): such a record is run again, as a missing one is, not a traceback in the report."""
    def number(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    try:
        result = RecordedResult(record["result"])
        history = result.history
        best = result.data["summary"]["best_epoch"]
        return (isinstance(best, int) and 1 <= best <= len(history)
                and all(number(v) for stats in history
                        for k, v in dataclasses.asdict(stats).items()
                        if not (k == "test_acc" and v is None))
                and number(result.n_train) and number(result.wall_seconds)
                and all(isinstance(record[k], int) and record[k] >= 0
                        for k in ("n_val", "n_test")))
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


class RecordStore:
    """The records of one output directory (DIR/runs/KEY.json)."""

    def __init__(self, out_dir):
        self.directory = Path(out_dir) / RECORDS_DIR
        self.checkpoints = Path(out_dir) / CHECKPOINTS_DIR
        self.stale = {}  # key -> why its record was not read back (finished())

    def create(self):
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise FastMLPError(f"cannot create {self.directory}: {e.strerror or e}") from None

    def path(self, key):
        return self.directory / f"{key}.json"

    def read(self, key):
        """The record of `key`, or None when there is none or it cannot be read (a record cut
        short by a crash before its rename cannot exist: writes are atomic)."""
        try:
            record = json.loads(self.path(key).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("key") != key:
            return None
        return record

    def finished(self, keys):
        """{key: record} of the keys whose run finished well (error records are run again).
        A record of another format or fastmlp version is run again too, never mixed with this
        version's: `stale` then says {key: why} for the caller to tell."""
        found, self.stale = {}, {}
        current = fastmlp_version()
        for key in keys:
            record = self.read(key)
            if record is None or record.get("status") != "ok":
                continue
            made_by = (record.get("versions") or {}).get("fastmlp")
            if record.get("format") != FORMAT:
                self.stale[key] = f"record format {record.get('format')}, not {FORMAT}"
            elif made_by != current:
                self.stale[key] = f"made by fastmlp {made_by}, this is {current}"
            elif not _readable(record):
                self.stale[key] = "damaged (fields missing or of the wrong type)"
            else:
                found[key] = record
        return found

    def checkpoint_path(self, key):
        return self.checkpoints / f"{key}.npz"

    def write(self, record):
        """Write `record`; its "checkpoint" bytes (a rung's) go first into their own file, so
        that a rung's record never exists without its checkpoint."""
        data = record.pop("checkpoint", None)
        if data is not None:
            try:
                self.checkpoints.mkdir(exist_ok=True)
            except OSError as e:
                raise FastMLPError(f"cannot create {self.checkpoints}: {e.strerror or e}"
                                   ) from None
            write_atomically(self.checkpoint_path(record["key"]), data)
        write_atomically(self.path(record["key"]), json.dumps(record, indent=1) + "\n")

    def read_checkpoint(self, key):
        """The bytes of the checkpoint a rung's run `key` stopped at, or None."""
        try:
            return self.checkpoint_path(key).read_bytes()
        except OSError:
            return None

    def remove(self, keys):
        for key in keys:
            self.path(key).unlink(missing_ok=True)
            self.checkpoint_path(key).unlink(missing_ok=True)
