"""Digit pictures (PNG, JPEG, ...) to MNIST-style inputs: 28 x 28 grayscale, white digit on
black, the digit fitted into a 20 x 20 box and centred by its centre of mass, as the MNIST
images were made. Needs Pillow (`pip install -e ".[images]"`). `read_inputs` also takes IDX
files of images, as `fastmlp predict` does."""
from pathlib import Path

import numpy as np

from .errors import FastMLPError
from .idx import IdxError, read_idx

SIDE, BOX = 28, 20


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise FastMLPError("reading images needs Pillow: pip install pillow") from None
    return Image


def mnist_style(gray):
    """A 2-D array of gray levels (any size; 0 black, 255 white) to a (784,) uint8 array."""
    Image = _pillow()
    gray = np.asarray(gray, np.float64)
    # MNIST digits are light on dark: a mostly light picture is a dark digit on paper.
    if np.median(gray) > 127:
        gray = 255 - gray
    # The digit's box: pixels clearly above the background (faint noise does not widen it).
    rows, cols = np.nonzero(gray > 0.2 * gray.max()) if gray.max() > 0 else ((), ())
    out = np.zeros((SIDE, SIDE), np.float64)
    if len(rows) == 0:
        return out.astype(np.uint8).reshape(-1)
    digit = gray[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = BOX / max(digit.shape)
    size = (max(1, round(digit.shape[1] * scale)), max(1, round(digit.shape[0] * scale)))
    digit = np.asarray(Image.fromarray(digit.astype(np.uint8)).resize(size, Image.LANCZOS),
                       np.float64)
    top, left = (SIDE - digit.shape[0]) // 2, (SIDE - digit.shape[1]) // 2
    out[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    # Shift so the centre of mass sits at the centre, as MNIST did.
    total = out.sum()
    if total > 0:
        r = np.arange(SIDE)
        dy = round(SIDE / 2 - 0.5 - (out.sum(axis=1) @ r) / total)
        dx = round(SIDE / 2 - 0.5 - (out.sum(axis=0) @ r) / total)
        out = np.roll(np.roll(out, dy, axis=0), dx, axis=1)
    return np.clip(out, 0, 255).astype(np.uint8).reshape(-1)


def read_image(path):
    """An image file to a (784,) uint8 MNIST-style array."""
    Image = _pillow()
    path = Path(path)
    try:
        with Image.open(path) as image:
            gray = np.asarray(image.convert("L"))
    except FileNotFoundError:
        raise FastMLPError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        raise FastMLPError(f"{path}: not a readable image ({e})") from None
    return mnist_style(gray)


def read_inputs(path):
    """(images (n, pixels) uint8, names) from an IDX file of images or from one picture; a file
    that is neither is refused in one line that says why it is not either."""
    def reason(error):
        return str(error).removeprefix(f"{path}: ")

    try:
        array = read_idx(path)
    except IdxError as idx_error:
        try:
            return read_image(path)[None, :], [str(path)]
        except FastMLPError as image_error:
            raise FastMLPError(f"{path}: neither an IDX file ({reason(idx_error)}) nor a "
                               f"picture ({reason(image_error)})") from None
    if array.ndim == 3:
        return array.reshape(len(array), -1), [f"{path}[{i}]" for i in range(len(array))]
    return array.reshape(1, -1), [str(path)]
