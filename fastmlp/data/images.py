"""Digit pictures (PNG, JPEG, ...) to MNIST-style inputs: 28 x 28 grayscale, white digit on
black, the digit fitted into a 20 x 20 box and centred by its centre of mass, as the MNIST
images were made. Needs Pillow (`pip install 'fastmlp[images]'`); the files are read by
pictures.py. `read_inputs` also takes IDX files of images, as `fastmlp predict` does."""
from pathlib import Path

import numpy as np

from ..errors import DataError
from .idx import IdxError, read_idx
from .pictures import NotAPicture, frames, pillow, read_gray

SIDE, BOX = 28, 20
# A picture whose gray levels span less than this (of 255) has no ink to read: blank paper, a
# flat colour, a photo of nothing. Classifying it would only report the model's bias.
MIN_CONTRAST = 32
# A "digit" whose ink covers more than this share of the whole picture is not a digit on a
# background (a texture, a photo, a picture cropped inside the stroke): it cannot be located.
# MNIST's digits cover 19% of their 28 x 28 picture on average, and under 50% every one.
MAX_INK_SHARE = 0.6


def _ink(gray):
    """A picture's gray levels as light ink on dark (MNIST's way): uint8 kept as uint8 (exact,
    and an eighth of float64's memory for a large photo), anything else as float64."""
    gray = np.asarray(gray)
    if gray.dtype != np.uint8:
        gray = gray.astype(np.float64)
    # MNIST digits are light on dark: a mostly light picture is a dark digit on paper.
    return 255 - gray if np.median(gray) > 127 else gray


def problem(gray):
    """Why a picture (2-D gray levels, or an MNIST-style row) holds no digit to classify, or
    None: no ink at all, or ink everywhere (no digit to locate)."""
    gray = _ink(gray)
    if gray.size == 0 or gray.max() - gray.min() < MIN_CONTRAST:
        return "no ink (blank or nearly uniform picture)"
    ink = gray > gray.min() + 0.2 * (gray.max() - gray.min())
    if ink.mean() > MAX_INK_SHARE:
        return f"no digit located (ink covers {ink.mean():.0%} of the picture)"
    return None


def mnist_style(gray):
    """A 2-D array of gray levels (any size; 0 black, 255 white) to a (784,) uint8 array."""
    Image = pillow()
    gray = _ink(gray)
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
    return mnist_style(read_gray(path))


def read_inputs(path):
    """(images (n, pixels) uint8, names, problems) from an IDX file of images or from one
    picture (its first frame: the name says so when it has more); problems[i] says why image i
    holds no digit (`problem`), else None. A file that is neither is refused in one line that
    says why it is not either; a picture that cannot be read, in the picture's own line."""
    def reason(error):
        return str(error).removeprefix(f"{path}: ")

    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path}: an empty file (0 bytes), neither a picture nor an IDX file")
    try:
        array = read_idx(path)
    except IdxError as idx_error:
        try:
            gray = read_gray(path)
        except NotAPicture as image_error:
            raise DataError(f"{path}: neither an IDX file ({reason(idx_error)}) nor a "
                            f"picture ({reason(image_error)})") from None
        count = frames(path)
        name = str(path) if count == 1 else f"{path} (frame 1 of {count})"
        # The original picture is judged, not its 28 x 28 version, which fills a box anyway.
        return mnist_style(gray)[None, :], [name], [problem(gray)]
    if array.ndim == 3:
        names = [f"{path}[{i}]" for i in range(len(array))]
    else:
        array, names = array[None], [str(path)]
    return array.reshape(len(array), -1), names, [problem(image) for image in array]
