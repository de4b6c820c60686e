"""Read IDX files, the container format of MNIST, gzip-compressed or raw.

IDX layout: two zero bytes, an element-type byte, a rank byte, one big-endian uint32 per
dimension, then the elements in C order. Only unsigned bytes (type 0x08) are accepted: that is
all MNIST-style datasets use, and it lets the body be returned without conversion.
"""

import gzip
import hashlib
import math
import struct
import zlib
from os import PathLike

import numpy as np

from ..errors import ChecksumMismatch, DataError

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
_TYPE_NAMES = {
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}
_MAX_RANK = 4


class IdxError(DataError):
    """An IDX file is unreadable or malformed; the message starts with the file's path."""


class IdxChecksumMismatch(ChecksumMismatch, IdxError):
    """An IDX file whose uncompressed bytes do not have the SHA-256 expected."""


def read_idx(path: str | PathLike, *, expect_sha256: str | None = None) -> np.ndarray:
    """Return the uint8 array stored in the IDX file at `path` (read-only, shaped from the header).

    With `expect_sha256`, the SHA-256 of the uncompressed bytes must match it.
    """
    return read_idx_sha256(path, expect_sha256=expect_sha256)[0]


def read_idx_sha256(
    path: str | PathLike, *, expect_sha256: str | None = None
) -> tuple[np.ndarray, str]:
    """Like `read_idx`, but also return the hex SHA-256 of the uncompressed bytes."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise IdxError(f"{path}: no such file") from None
    except OSError as e:
        raise IdxError(f"{path}: cannot read: {e.strerror or e}") from None
    return parse_idx(data, str(path), expect_sha256=expect_sha256)


def parse_idx(
    data: bytes, source: str, *, expect_sha256: str | None = None
) -> tuple[np.ndarray, str]:
    """Decode IDX `data` (gzip-compressed or raw) into (read-only uint8 array, hex SHA-256).

    `source` names where the bytes came from (a path or URL) and starts every error message.
    """
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            # A file with a known checksum that does not even decompress fails that checksum.
            error = IdxError if expect_sha256 is None else IdxChecksumMismatch
            raise error(f"{source}: corrupt gzip data: {e}") from None
    digest = hashlib.sha256(data).hexdigest()
    if expect_sha256 is not None and digest != expect_sha256.lower():
        raise IdxChecksumMismatch(
            f"{source}: sha256 of the uncompressed content is {digest}, expected {expect_sha256} "
            "(corrupt file or a different dataset)"
        )
    return _decode(data, source), digest


def _decode(data: bytes, source: str) -> np.ndarray:
    if not data:
        raise IdxError(f"{source}: empty, no IDX header")
    if len(data) < 4:
        raise IdxError(f"{source}: truncated header: expected at least 4 bytes, got {len(data)}")
    zero0, zero1, etype, rank = data[:4]
    if zero0 or zero1:
        raise IdxError(
            f"{source}: not an IDX file: magic bytes {data[:4].hex(' ')}, "
            "expected 00 00 <type> <rank>"
        )
    if etype != _UBYTE:
        raise IdxError(
            f"{source}: element type 0x{etype:02X} ({_TYPE_NAMES.get(etype, 'unknown')}), "
            f"expected 0x{_UBYTE:02X} ({_TYPE_NAMES[_UBYTE]})"
        )
    if not 1 <= rank <= _MAX_RANK:
        raise IdxError(f"{source}: rank {rank}, expected 1 to {_MAX_RANK}")
    header_len = 4 + 4 * rank
    if len(data) < header_len:
        raise IdxError(
            f"{source}: truncated header: rank {rank} needs {header_len} bytes, got {len(data)}"
        )
    shape = struct.unpack(f">{rank}I", data[4:header_len])
    expected = math.prod(shape)
    got = len(data) - header_len
    if got != expected:
        problem = "truncated body" if got < expected else "trailing bytes"
        dims = "x".join(map(str, shape))
        raise IdxError(
            f"{source}: {problem}: expected {expected} bytes of data ({dims}), got {got}"
        )
    # A view of the decompressed bytes, so a 47 MB file is never copied.
    flat = np.frombuffer(data, np.uint8, count=expected, offset=header_len)
    try:
        return flat.reshape(shape)
    except ValueError:  # an empty array whose other dimensions multiply past numpy's limit
        raise IdxError(f"{source}: dimensions {'x'.join(map(str, shape))} are too large for "
                       "an array") from None
