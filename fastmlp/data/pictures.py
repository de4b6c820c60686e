"""Picture files to gray levels, the way a person looking at them sees them: turned upright by
their EXIF orientation, transparent parts shown over a background the ink stands out from,
16-bit and floating-point levels scaled to 0..255, the first frame of an animation or a
multi-page file. Every picture fastmlp reads (`predict`, folder datasets) is opened here, so
that one set of checks refuses, in one line, what is no picture, is damaged, or is larger than
MAX_PIXELS (judged from its header, before anything is decoded). Needs Pillow."""
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import DataError, FastMLPError

# The most pixels a picture may have. Reading one costs about 6 bytes a pixel (decoded colour,
# gray, the ink mask): 64 megapixels, a 48-megapixel phone photo and more, stay under 400 MB.
# Pillow's own limit (its warning, its DecompressionBombError) is lifted while a header is read,
# so that this one is the limit, said in fastmlp's words with the picture's size.
MAX_PIXELS = 64 * 2**20
# Pillow's decoders raise many kinds of exception on damaged files (OSError, SyntaxError,
# struct.error, EOFError, IndexError, ...): whatever a decoder raises means "not readable".
DECODE_ERRORS = (Exception,)
ORIENTATION = 0x0112  # the EXIF tag


class NotAPicture(DataError):
    """A file Pillow does not recognise as a picture at all (other readers may take it)."""


def pillow():
    """Pillow's Image module, or one line saying how to install it."""
    try:
        from PIL import Image
    except ImportError:
        raise FastMLPError("reading images needs Pillow: pip install pillow") from None
    return Image


def _open(Image, path):
    """Image.open (the header read) under fastmlp's pixel limit instead of Pillow's."""
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        return Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


@contextmanager
def opened(path):
    """The picture at `path`, opened (its header read, nothing decoded) and checked: a file,
    recognised, of 1 to MAX_PIXELS pixels. Errors while decoding it inside the block are one
    line too."""
    Image = pillow()
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: a directory, not a picture")
    if path.exists() and not path.is_file():  # reading it might never end
        raise DataError(f"{path}: not a regular file (a device or a pipe), not a picture")
    # Pillow's warnings (odd EXIF or TIFF tags, its size limit) and what libtiff prints to
    # stderr about a damaged TIFF are no business of the user's: what matters is said in one
    # line, or the picture is read.
    with warnings.catch_warnings(), _stderr_silenced():
        warnings.simplefilter("ignore")
        with _checked(Image, path) as image:
            yield image


@contextmanager
def _stderr_silenced():
    """File descriptor 2 sent to /dev/null for the block (C libraries write to it directly)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no stderr at all: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextmanager
def _checked(Image, path):
    try:
        image = _open(Image, path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except Image.UnidentifiedImageError:
        raise NotAPicture(f"{path}: not a readable image (in no format Pillow knows: PNG, "
                          "JPEG, GIF, TIFF, BMP, WebP, ...)") from None
    except DECODE_ERRORS as e:
        raise DataError(f"{path}: not a readable image ({_reason(e)})") from None
    with image:
        width, height = image.size
        if width * height == 0:
            raise DataError(f"{path}: an empty picture ({width} x {height} pixels)")
        if width * height > MAX_PIXELS:
            raise DataError(f"{path}: {width} x {height} pixels ({width * height / 1e6:.0f} "
                            f"megapixels), more than the {MAX_PIXELS / 1e6:.0f} megapixels "
                            "fastmlp reads from a picture; resize it first")
        try:
            yield image
        except FastMLPError:
            raise
        except DECODE_ERRORS as e:
            raise DataError(f"{path}: not a readable image (a damaged {image.format}: "
                            f"{_reason(e)})") from None


def _reason(error):
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def picture_size(path):
    """(width, height) of the picture at `path` as it is seen: turned by its EXIF orientation
    (5 to 8 turn it a quarter)."""
    with opened(path) as image:
        width, height = image.size
        return (height, width) if image.getexif().get(ORIENTATION, 1) in (5, 6, 7, 8) else \
            (width, height)


def frames(path):
    """How many frames (pages) the picture at `path` holds; only the first is read."""
    with opened(path) as image:
        return getattr(image, "n_frames", 1)


def read_gray(path):
    """The picture at `path` as a person sees it, as 2-D gray levels (uint8, 0 black)."""
    from PIL import ImageOps

    with opened(path) as image:
        image.seek(0)
        ImageOps.exif_transpose(image, in_place=True)
        return _gray(image, path)


def _gray(image, path):
    """An upright Pillow image to uint8 gray levels."""
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        return _levels(np.asarray(image), path)
    if mode == "P":
        mode = "RGBA" if "transparency" in image.info else "RGB"
        image = image.convert(mode)
    if "A" in mode or "a" in mode or "transparency" in image.info:
        return _composite(image.convert("RGBA").convert("LA"))
    return np.asarray(image.convert("L"))


def _levels(values, path):
    """16-bit, 32-bit or floating-point levels to 0..255: 0..1 times 255 (a float picture's
    usual range, or a mask), 0..255 as they are, 0..65535 divided by 257 (16-bit levels); any
    other range stretched from its minimum to its maximum."""
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        raise DataError(f"{path}: the picture's levels contain NaN or infinity")
    low, high = values.min(), values.max()
    if low >= 0 and high <= 1:
        values = values * 255
    elif low < 0 or high > 65535:
        values = (values - low) * (255 / (high - low) if high > low else 0)
    elif high > 255:
        values = values / 257
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _composite(image):
    """Gray and alpha (an "LA" image) over the background a viewer would show it on: white
    under dark ink, black under light ink (a dark digit on a transparent PNG is a dark digit on
    white paper, not black on black)."""
    both = np.asarray(image)
    gray, alpha = both[..., 0], both[..., 1].astype(np.uint16)
    seen = alpha > 127
    light_ink = seen.any() and gray[seen].mean() > 127
    background = 0 if light_ink else 255
    # (gray * alpha + background * (255 - alpha)) / 255, rounded: fits uint16.
    mixed = gray * alpha + np.uint16(background) * (255 - alpha) + 127
    return (mixed // 255).astype(np.uint8)
