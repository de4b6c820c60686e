"""The per-user cache directory, and a small JSON store in it of choices measured on this
machine (which GEMM library is fastest for a matmul), so that a second run pays nothing.

Entries are keyed by everything that decides them (the CPU, the library versions, the threads,
the shapes): a change of any gives a new key, never a stale answer. Writers hold a lock on the
store, so that two first runs at once measure once and agree.
"""
import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path

from ..atomic import write_atomically
from ..errors import FastMLPError

CHOICES_FILE = "measured-choices.json"


def cache_dir():
    """The per-user cache directory: $XDG_CACHE_HOME/fastmlp, else ~/.cache/fastmlp."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fastmlp"


class Choices:
    """The measured choices of this user on this machine: {key: JSON value}. Where the cache
    cannot be written (a read-only home), choices live as long as the process."""

    def __init__(self, path=None):
        self.path = Path(path) if path is not None else cache_dir() / CHOICES_FILE
        self._memory = {}
        self._disk = None  # the file as last read: read once, again under the lock

    def _read(self):
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            data = {}
        self._disk = data if isinstance(data, dict) else {}
        return self._disk

    def get(self, key):
        return self._memory.get(key, (self._disk if self._disk is not None
                                      else self._read()).get(key))

    @contextmanager
    def locked(self):
        """Hold the store's lock (a file beside it) while the body reads, measures and writes;
        without a writable directory, no lock: this process keeps its own choices."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path.with_name(self.path.name + ".lock"), "a")
        except OSError:
            handle = None
        if handle is None:
            yield self
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._disk = None  # what another process wrote while this one waited
            try:
                yield self
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def put(self, entries):
        """Add {key: value} entries (under `locked`)."""
        self._memory.update(entries)
        data = self._read()
        data.update(entries)
        try:
            write_atomically(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n")
        except FastMLPError:
            pass  # a read-only or full cache: the choices stay in this process
