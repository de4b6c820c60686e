"""A folder of pictures with one subfolder per class (`cats/`, `dogs/`; or `train/<class>/` and
`test/<class>/` for a test split of its own). Each picture is read as `fastmlp predict` reads
pictures (pictures.py: upright, as a person sees it, 8-bit grayscale) and resized to one size:
the size given, else the first picture's. The class names are the subfolders' names. Needs
Pillow."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .pictures import picture_size, pillow, read_gray

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SPLIT_FOLDERS = ("train", "test")


@dataclass(frozen=True)
class Pictures:
    x: np.ndarray  # (n, height * width) uint8
    labels: np.ndarray  # (n,) the class folder of each picture
    files: list  # each picture's path, relative to the folder
    size: tuple  # (width, height)


def pictures_in(directory):
    """The picture files below `directory`, in name order (hidden files and other files left
    out: a README beside the pictures is no sample)."""
    return sorted(p for p in Path(directory).rglob("*") if p.is_file()
                  and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(directory).parts))


def class_folders(root):
    """The class subfolders of `root`, in name order."""
    return sorted(d for d in Path(root).iterdir() if d.is_dir() and not d.name.startswith("."))


def layout(root):
    """{split: folder of class subfolders}: {"train": root/train, "test": root/test} when root
    holds both, else {"train": root}; raises when root has no class subfolders."""
    root = Path(root)
    subfolders = [d.name for d in class_folders(root)]
    if set(SPLIT_FOLDERS) <= set(subfolders):
        splits = {name: root / name for name in SPLIT_FOLDERS}
    else:
        splits = {"train": root}
    for split, folder in splits.items():
        if not class_folders(folder):
            raise DataError(f"{folder}: no class subfolders; a folder dataset holds one "
                            "subfolder of pictures per class")
    return splits


def parse_size(text):
    """"28" or "32x24" (width x height) to (width, height)."""
    parts = str(text).lower().split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f'must be N or WxH with positive integers, e.g. 28 or 32x24, got '
                         f'{text!r}')
    return size


def first_size(root):
    """(width, height) of the first picture of a folder dataset, in name order."""
    for folder in layout(root).values():
        for d in class_folders(folder):
            files = pictures_in(d)
            if files:
                return picture_size(files[0])
    raise DataError(f"{root}: no PNG or JPEG pictures in its class subfolders")


def convert(path, size):
    """One picture as a folder-trained model takes it: its gray levels resized to `size`
    (width, height), as a (height * width,) uint8 row."""
    gray = read_gray(path)
    if gray.shape[::-1] != tuple(size):
        image = pillow()
        gray = np.asarray(image.fromarray(gray).resize(tuple(size), image.LANCZOS))
    return gray.reshape(-1)


def read_split(folder, size):
    """Pictures of every class subfolder of `folder`, resized to `size` (width, height)."""
    rows, labels, files = [], [], []
    for d in class_folders(folder):
        found = pictures_in(d)
        if not found:
            raise DataError(f"{d}: no PNG or JPEG pictures in this class folder")
        for path in found:
            rows.append(convert(path, size))
            labels.append(d.name)
            files.append(str(path.relative_to(folder)))
    return Pictures(np.stack(rows), np.array(labels), files, tuple(size))


def count(root, size):
    """{split: pictures} and the features per picture, without reading the pictures (the memory
    plan before loading)."""
    counts = {split: sum(len(pictures_in(d)) for d in class_folders(folder))
              for split, folder in layout(root).items()}
    return counts, size[0] * size[1]
