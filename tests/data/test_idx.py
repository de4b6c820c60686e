"""The IDX reader: valid files in both encodings, every malformation, and a fuzzed parser."""

import gzip
import hashlib
import math
import struct

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fastmlp.data.idx import IdxError, parse_idx, read_idx, read_idx_sha256
from fastmlp.errors import DataError
from tests.helpers import idx_bytes


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def assert_idx_error(path, *fragments):
    """read_idx raises a one-line IdxError that starts with the path and names the problem."""
    with pytest.raises(IdxError) as info:
        read_idx(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return message


@pytest.mark.parametrize("shape", [(7,), (3, 5), (4, 2, 3), (2, 3, 1, 2), (0, 28, 28)])
def test_raw_and_gzip_load_identically(tmp_path, shape):
    array = np.random.default_rng(1).integers(0, 256, size=shape, dtype=np.uint8)
    data = idx_bytes(array)
    raw = read_idx(write(tmp_path / "a", data))
    gz = read_idx(write(tmp_path / "a.gz", gzip.compress(data)))
    assert raw.dtype == gz.dtype == np.uint8
    np.testing.assert_array_equal(raw, array)
    np.testing.assert_array_equal(gz, array)


def test_gzip_is_detected_by_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    data = idx_bytes(array)
    gz_without_suffix = write(tmp_path / "gz-without-suffix", gzip.compress(data))
    raw_with_suffix = write(tmp_path / "raw-with-suffix.gz", data)
    np.testing.assert_array_equal(read_idx(gz_without_suffix), array)
    np.testing.assert_array_equal(read_idx(raw_with_suffix), array)


def test_sha256_is_of_the_uncompressed_bytes(tmp_path):
    data = idx_bytes(np.arange(10, dtype=np.uint8))
    digest = hashlib.sha256(data).hexdigest()
    path = write(tmp_path / "labels.gz", gzip.compress(data))
    array, got = read_idx_sha256(path)
    assert got == digest
    np.testing.assert_array_equal(read_idx(path, expect_sha256=digest.upper()), array)


def test_checksum_mismatch_names_both_digests(tmp_path):
    data = idx_bytes(np.arange(10, dtype=np.uint8))
    path = write(tmp_path / "labels", data)
    wrong = "0" * 64
    with pytest.raises(IdxError) as info:
        read_idx(path, expect_sha256=wrong)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert wrong in message and hashlib.sha256(data).hexdigest() in message


def test_idx_error_is_a_data_error():
    assert issubclass(IdxError, DataError)


def test_missing_file(tmp_path):
    assert_idx_error(tmp_path / "nope", "no such file")


def test_unreadable_path(tmp_path):
    assert_idx_error(tmp_path, "cannot read")


def test_empty_file(tmp_path):
    assert_idx_error(write(tmp_path / "empty", b""), "empty")


def test_empty_gzip_stream(tmp_path):
    assert_idx_error(write(tmp_path / "empty.gz", gzip.compress(b"")), "empty")


def test_header_shorter_than_magic(tmp_path):
    assert_idx_error(write(tmp_path / "f", b"\x00\x00\x08"), "truncated header", "got 3")


def test_header_shorter_than_its_dimensions(tmp_path):
    data = bytes([0, 0, 8, 3]) + struct.pack(">2I", 60000, 28)
    assert_idx_error(write(tmp_path / "f", data), "truncated header", "16 bytes", "got 12")


def test_truncated_body(tmp_path):
    data = idx_bytes(np.zeros((10, 28, 28), np.uint8))[:-7840 + 1000]
    message = assert_idx_error(write(tmp_path / "f.gz", gzip.compress(data)), "truncated body")
    assert "expected 7840 bytes" in message and "got 1000" in message


def test_trailing_bytes(tmp_path):
    data = idx_bytes(np.zeros(5, np.uint8)) + b"\x01\x02"
    assert_idx_error(write(tmp_path / "f", data), "trailing bytes", "expected 5 bytes", "got 7")


def test_wrong_magic(tmp_path):
    data = b"\x01\x00\x08\x01" + idx_bytes(np.zeros(3, np.uint8))[4:]
    assert_idx_error(write(tmp_path / "f", data), "not an IDX file", "01 00 08 01")


def test_wrong_element_type(tmp_path):
    data = idx_bytes(np.zeros(3, np.uint8), etype=0x0D)
    assert_idx_error(
        write(tmp_path / "f", data), "element type 0x0D (float32), expected 0x08 (unsigned byte)"
    )


def test_unknown_element_type(tmp_path):
    assert_idx_error(write(tmp_path / "f", b"\x00\x00\x42\x01" + bytes(4)), "0x42 (unknown)")


@pytest.mark.parametrize("rank", [0, 5, 255])
def test_wrong_rank(tmp_path, rank):
    data = bytes([0, 0, 8, rank]) + struct.pack(f">{rank}I", *[1] * rank) + b"\x00"
    assert_idx_error(write(tmp_path / "f", data), f"rank {rank}, expected 1 to 4")


def test_gzip_cut_short(tmp_path):
    compressed = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    assert_idx_error(write(tmp_path / "f.gz", compressed[:-20]), "corrupt gzip data")


def test_gzip_with_damaged_stream(tmp_path):
    compressed = bytearray(gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8))))
    compressed[len(compressed) // 2] ^= 0xFF
    assert_idx_error(write(tmp_path / "f.gz", bytes(compressed)), "corrupt gzip data")


def test_gzip_with_wrong_crc(tmp_path):
    compressed = bytearray(gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8))))
    compressed[-8] ^= 0xFF  # the CRC32 trailer
    assert_idx_error(write(tmp_path / "f.gz", bytes(compressed)), "corrupt gzip data", "CRC")


def test_array_is_a_read_only_view(tmp_path):
    # No copy of the body is made; callers convert (e.g. to float) rather than mutate.
    array = read_idx(write(tmp_path / "f", idx_bytes(np.arange(4, dtype=np.uint8))))
    assert not array.flags.writeable and array.flags.c_contiguous


# --- Property test: whatever the bytes, a valid array or an IdxError, never anything else. ---

dimension = st.one_of(st.integers(0, 4), st.integers(0, 2**32 - 1))


@st.composite
def idx_like_blobs(draw):
    rank = draw(st.integers(0, 6))
    etype = draw(st.sampled_from([0x08, 0x08, 0x08, 0x09, 0x0D, 0x00, 0xFF]))
    dims = draw(st.lists(dimension, min_size=rank, max_size=rank))
    magic = draw(st.sampled_from([b"\x00\x00", b"\x00\x00", b"\x1f\x8b", b"\x00\x01"]))
    blob = magic + bytes([etype, rank]) + struct.pack(f">{rank}I", *dims)
    size = math.prod(dims)
    body_len = draw(st.integers(0, 40)) if size > 64 else max(0, size + draw(st.integers(-2, 2)))
    blob += draw(st.binary(min_size=body_len, max_size=body_len))
    if draw(st.booleans()):
        blob = gzip.compress(blob)
    cut = draw(st.integers(0, len(blob)))
    if draw(st.booleans()):
        blob = blob[:cut]
    flips = draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=3))
    mutable = bytearray(blob)
    for position, mask in flips:
        if mutable:
            mutable[position % len(mutable)] ^= mask
    return bytes(mutable)


def check_parse(blob: bytes):
    try:
        array, digest = parse_idx(blob, "fuzz")
    except IdxError as e:
        assert str(e).startswith("fuzz: ") and "\n" not in str(e)
        return
    raw = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
    rank = raw[3]
    shape = struct.unpack(f">{rank}I", raw[4 : 4 + 4 * rank])
    assert array.dtype == np.uint8
    assert array.shape == shape
    assert array.size == math.prod(shape) == len(raw) - 4 - 4 * rank
    assert digest == hashlib.sha256(raw).hexdigest()


@settings(max_examples=400)
@given(idx_like_blobs())
# Found by this test: no data, but dimensions whose product (but for the 0) overflows numpy.
@example(blob=b'\x00\x00\x08\x03\x00\x00\x00\x00\xb5\x04\xc4\x17\xb5\x05"Q')
def test_parser_returns_valid_array_or_idx_error(blob):
    check_parse(blob)


@settings(max_examples=200)
@given(st.binary(max_size=64))
def test_parser_on_arbitrary_bytes(blob):
    check_parse(blob)
