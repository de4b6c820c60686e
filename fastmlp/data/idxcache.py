"""A cache of decompressed IDX files, so that start-up does not gunzip MNIST every run
(docs/performance.md, "The decompressed IDX cache").

A cached copy is named by the SHA-256 of the compressed file, so a replaced or damaged source
file is read afresh, its errors reported as ever, and checkouts that ship the same files share
one copy; a copy is used only when its bytes have the checksum the registry expects: a damaged
copy is never trusted, only rewritten. Files under MIN_CACHED_BYTES compressed (the label
files, the tests' small datasets) decompress in no time and are not cached, so the cache does
not fill with copies of temporary files.

The cache lives in the user cache directory (`<cache_dir>/decompressed`); where that cannot be
written (a read-only home), loading simply decompresses, as before.
"""
import hashlib
import os
from pathlib import Path

from ..atomic import write_atomically
from ..errors import FastMLPError
from .idx import IdxError, parse_idx, read_idx_sha256

MIN_CACHED_BYTES = 1 << 20


def read_idx_cached(path: Path, expect_sha256: str, cache_root: Path):
    """(uint8 array, hex SHA-256) of the IDX file at `path`, as idx.read_idx_sha256 returns
    them, from the decompressed copy in `cache_root` when `path` is a large gzipped file and a
    valid copy is there; otherwise read from `path` and, when it qualifies, a copy is left for
    the next run."""
    path = Path(path)
    try:
        qualifies = path.suffix == ".gz" and path.stat().st_size >= MIN_CACHED_BYTES
        compressed = path.read_bytes() if qualifies else None
    except OSError:  # reading it again says what is wrong, in idx's words
        compressed = None
    if compressed is None:
        return read_idx_sha256(path, expect_sha256=expect_sha256)
    cached = cache_root / "decompressed" / (hashlib.sha256(compressed).hexdigest() + ".idx")
    try:
        return parse_idx(cached.read_bytes(), str(cached), expect_sha256=expect_sha256)
    except (OSError, IdxError):
        pass  # no copy yet, or a damaged one: decompress the source
    array, digest = parse_idx(compressed, str(path), expect_sha256=expect_sha256)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big")
                                                        for n in array.shape)
    try:
        os.makedirs(cached.parent, exist_ok=True)
        write_atomically(cached, header + array.tobytes())
    except (OSError, FastMLPError):
        pass  # a read-only or full cache directory: the next run decompresses again
    return array, digest
