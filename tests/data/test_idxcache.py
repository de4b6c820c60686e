"""The cache of decompressed IDX files: used only when it holds the expected bytes of the same
source file; a damaged copy is rewritten, a changed source is read afresh, small files are not
cached, and a cache that cannot be written changes nothing."""
import gzip
import hashlib

import numpy as np
import pytest

from fastmlp.data import idx, idxcache
from fastmlp.data.idx import IdxError
from tests.helpers import idx_bytes


@pytest.fixture
def source(tmp_path, monkeypatch):
    monkeypatch.setattr(idxcache, "MIN_CACHED_BYTES", 0)  # the tests' files are tiny
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = idx_bytes(array)
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(raw))
    return path, array, hashlib.sha256(raw).hexdigest()


def _copies(root):
    return list((root / "decompressed").glob("*.idx"))


def test_the_second_read_comes_from_the_cache(source, tmp_path, monkeypatch):
    path, array, digest = source
    root = tmp_path / "cache"
    got, got_digest = idxcache.read_idx_cached(path, digest, root)
    np.testing.assert_array_equal(got, array)
    assert got_digest == digest and len(_copies(root)) == 1

    def undecompressed(*args, **kwargs):
        raise AssertionError("the source was decompressed again")
    monkeypatch.setattr(idx.gzip, "decompress", undecompressed)
    got, got_digest = idxcache.read_idx_cached(path, digest, root)
    np.testing.assert_array_equal(got, array)
    assert got_digest == digest


def test_a_damaged_copy_is_not_trusted_but_rewritten(source, tmp_path):
    path, array, digest = source
    root = tmp_path / "cache"
    idxcache.read_idx_cached(path, digest, root)
    copy, = _copies(root)
    damaged = bytearray(copy.read_bytes())
    damaged[-1] ^= 0xFF
    copy.write_bytes(bytes(damaged))
    np.testing.assert_array_equal(idxcache.read_idx_cached(path, digest, root)[0], array)
    assert copy.read_bytes() == idx_bytes(array)


def test_a_changed_source_is_read_afresh_and_its_error_reported(source, tmp_path):
    path, array, digest = source
    root = tmp_path / "cache"
    idxcache.read_idx_cached(path, digest, root)
    path.write_bytes(gzip.compress(idx_bytes(array + 1)))
    with pytest.raises(IdxError, match="sha256"):
        idxcache.read_idx_cached(path, digest, root)


def test_an_unwritable_cache_changes_nothing(source, tmp_path):
    path, array, digest = source
    root = tmp_path / "not-a-directory"
    root.write_text("a file where the cache directory would be")
    got, got_digest = idxcache.read_idx_cached(path, digest, root)
    np.testing.assert_array_equal(got, array)
    assert got_digest == digest


def test_small_files_are_not_cached(source, tmp_path, monkeypatch):
    path, array, digest = source
    monkeypatch.setattr(idxcache, "MIN_CACHED_BYTES", path.stat().st_size + 1)
    root = tmp_path / "cache"
    np.testing.assert_array_equal(idxcache.read_idx_cached(path, digest, root)[0], array)
    assert not (root / "decompressed").exists()
