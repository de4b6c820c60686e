"""A folder of IDX files of any MNIST-style dataset (EMNIST, KMNIST, ...): its training images and
labels, and optionally its test images and labels, found by the words in their names
(`train-images`, `train-labels`, `t10k-` or `test-images`, `-labels`), gzipped or raw. Any number
of classes: the labels are whatever values the files hold."""
import gzip
import struct
from pathlib import Path

from ..errors import DataError
from .idx import IdxError

ROLES = {
    "train images": ("train-images",),
    "train labels": ("train-labels",),
    "test images": ("t10k-images", "test-images"),
    "test labels": ("t10k-labels", "test-labels"),
}


def _stem(path):
    return path.name[:-3] if path.name.endswith(".gz") else path.name


def roles(directory):
    """{role: path} of the IDX files in `directory`, or None when it holds no training images
    and labels; several files for one role (two datasets in one folder) is an error. The raw file
    wins over its .gz twin, as for the registered datasets."""
    directory = Path(directory)
    files = [p for p in directory.iterdir() if p.is_file() and "idx" in p.name.lower()]
    found = {}
    for role, words in ROLES.items():
        matches = {}
        for path in files:
            if any(word in path.name.lower() for word in words):
                stem = _stem(path)
                if stem not in matches or not path.name.endswith(".gz"):
                    matches[stem] = path
        if len(matches) > 1:
            raise DataError(f"{directory}: several files for the {role}: "
                            f"{', '.join(sorted(p.name for p in matches.values()))}; put one "
                            "dataset per folder")
        if matches:
            found[role] = next(iter(matches.values()))
    if "train images" not in found or "train labels" not in found:
        return None
    if ("test images" in found) != ("test labels" in found):
        have, lacks = (("test images", "test labels") if "test images" in found
                       else ("test labels", "test images"))
        raise DataError(f"{directory}: {found[have].name} has no {lacks} beside it")
    return found


def header_shape(path):
    """The dimensions in an IDX file's header, read without reading its body (the memory plan
    before loading)."""
    opener = gzip.open if Path(path).name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or not 1 <= head[3] <= 4:
                raise IdxError(f"{path}: not an IDX file")
            dims = f.read(4 * head[3])
            return struct.unpack(f">{head[3]}I", dims)
    except (OSError, EOFError, struct.error) as e:
        raise IdxError(f"{path}: not a readable IDX file ({e})") from None
