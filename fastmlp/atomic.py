"""Atomic file output: readers never see a half-written file."""
import os
from pathlib import Path

from .errors import OutputFailed

# The temporary files of writes in progress: a process ended at once by a second Ctrl-C
# (runtime/signals.py) removes them first, so no ".NAME.PID.part" is left beside the output.
_PENDING = set()


def write_atomically(path, data):
    """Write bytes or text to `path` by writing a temporary file beside it and renaming it over
    `path`; on any failure the temporary file is removed, `path` is left as it was, and the
    failure (a full disk, a vanished directory) is one OutputFailed line naming the file."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    _PENDING.add(tmp)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise OutputFailed(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        _unlink(tmp)
        _PENDING.discard(tmp)


def _unlink(path):
    try:
        path.unlink(missing_ok=True)
    except OSError:  # its directory is gone or not one: nothing was left there
        pass


def discard_pending():
    """Remove the temporary files of the writes in progress (before the process ends at once);
    their targets keep what they held."""
    for tmp in list(_PENDING):
        _unlink(tmp)
