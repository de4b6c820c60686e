"""Atomic file output: readers never see a half-written file."""
import os
from pathlib import Path


def write_atomically(path, data):
    """Write bytes or text to `path` by writing a temporary file beside it and renaming it over
    `path`; on any failure the temporary file is removed and `path` is left as it was."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
