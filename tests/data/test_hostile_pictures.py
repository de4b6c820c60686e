"""Hostile pictures (data/pictures.py, the one reader of picture files): each is read as a person
looking at it sees it, or refused in one line, quickly, with nothing written, whether it comes
through `fastmlp predict` or a folder dataset."""
import io
import os
import struct
import time
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fastmlp.classifier import MLPClassifier
from fastmlp.cli import main
from fastmlp.data import source
from fastmlp.data.images import read_inputs
from fastmlp.data.pictures import MAX_PIXELS, read_gray
from fastmlp.errors import DataError
from tests.helpers import raises_one_line

Image = pytest.importorskip("PIL.Image")

# An upright "L" in white on black: asymmetric, so any wrong turn or mirror shows.
UPRIGHT = np.zeros((40, 30), np.uint8)
UPRIGHT[5:35, 8:13] = 255
UPRIGHT[30:35, 8:24] = 255

# EXIF orientation -> how the stored pixels were turned from upright (a viewer undoes it).
STORED = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
          4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
          6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
          8: Image.Transpose.ROTATE_270}


def png_header(width, height):
    """A small PNG whose header claims width x height 8-bit gray pixels."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                                 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def saved(image, suffix, **options):
    out = io.BytesIO()
    image.save(out, format={".tif": "TIFF", ".jpg": "JPEG"}.get(suffix, suffix[1:].upper()),
               **options)
    return out.getvalue()


@pytest.mark.parametrize("orientation", sorted(STORED))
def test_exif_orientation_is_undone(tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "turned.png"
    Image.fromarray(UPRIGHT).transpose(STORED[orientation]).save(path, exif=exif)
    assert np.array_equal(read_gray(path), UPRIGHT)


def alpha(ink_level, mode="RGBA"):
    """The "L" drawn in ink_level on a fully transparent background of the opposite level."""
    rgba = np.zeros((*UPRIGHT.shape, 4), np.uint8)
    rgba[..., :3] = np.where(UPRIGHT[..., None] > 0, ink_level, 255 - ink_level)
    rgba[..., 3] = UPRIGHT
    return Image.fromarray(rgba, "RGBA").convert(mode)


def levels(array, mode=None):
    return Image.fromarray(array, mode) if mode else Image.fromarray(array)


# name -> (the picture file's bytes, the gray levels a person sees: the "L" light on dark, or
# dark on light).
SEEN = {
    "L": (lambda: saved(levels(UPRIGHT), ".png"), UPRIGHT),
    "RGB": (lambda: saved(levels(UPRIGHT).convert("RGB"), ".png"), UPRIGHT),
    "dark ink, transparent": (lambda: saved(alpha(0), ".png"), 255 - UPRIGHT),
    "light ink, transparent": (lambda: saved(alpha(255), ".png"), UPRIGHT),
    "LA dark ink": (lambda: saved(alpha(0, "LA"), ".png"), 255 - UPRIGHT),
    "P": (lambda: saved(levels(UPRIGHT).convert("P"), ".png"), UPRIGHT),
    "P, transparent": (lambda: saved(alpha(0).convert("P"), ".png"), 255 - UPRIGHT),
    "1-bit": (lambda: saved(levels(UPRIGHT).convert("1"), ".png"), UPRIGHT),
    "CMYK": (lambda: saved(levels(UPRIGHT).convert("CMYK"), ".tif"), UPRIGHT),
    "16-bit": (lambda: saved(levels(UPRIGHT.astype(np.uint16) * 257), ".png"), UPRIGHT),
    "16-bit, big-endian": (lambda: saved(Image.frombytes(
        "I;16B", UPRIGHT.shape[::-1], (UPRIGHT.astype(">u2") * 257).tobytes()), ".tif"), UPRIGHT),
    "32-bit": (lambda: saved(levels(UPRIGHT.astype(np.int32) * 257), ".tif"), UPRIGHT),
    "float 0..1": (lambda: saved(levels(UPRIGHT.astype(np.float32) / 255), ".tif"), UPRIGHT),
    "float -1..1": (lambda: saved(levels(UPRIGHT.astype(np.float32) / 127.5 - 1), ".tif"),
                    UPRIGHT),
    "GIF, first frame": (lambda: saved(levels(UPRIGHT), ".gif", save_all=True,
                                       append_images=[levels(255 - UPRIGHT)]), UPRIGHT),
    "TIFF, first page": (lambda: saved(levels(UPRIGHT), ".tif", save_all=True,
                                       append_images=[levels(255 - UPRIGHT)]), UPRIGHT),
    "BMP": (lambda: saved(levels(UPRIGHT), ".bmp"), UPRIGHT),
    "JPEG, YCbCr": (lambda: saved(levels(UPRIGHT).convert("RGB"), ".jpg", quality=95), UPRIGHT),
}


@pytest.mark.parametrize("name", SEEN)
def test_pictures_are_read_as_a_person_sees_them(tmp_path, name):
    make, seen = SEEN[name]
    path = tmp_path / "picture"
    path.write_bytes(make())
    gray = read_gray(path)
    tolerance = 40 if "JPEG" in name else 1  # JPEG blurs the edges
    assert gray.dtype == np.uint8 and gray.shape == seen.shape
    assert np.abs(gray.astype(int) - seen).max() <= tolerance, name


def test_a_multi_frame_file_says_which_frame_was_read(tmp_path):
    path = tmp_path / "two.gif"
    path.write_bytes(SEEN["GIF, first frame"][0]())
    _, names, problems = read_inputs(path)
    assert names == [f"{path} (frame 1 of 2)"] and problems == [None]


# name -> (the file's bytes, the words of the one line).
REFUSED = {
    "bomb": (png_header(20000, 20000), "20000 x 20000 pixels (400 megapixels), more than"),
    "over the cap": (png_header(MAX_PIXELS + 1, 1), "more than the 67 megapixels"),
    "wide": (png_header(2**31 - 1, 1), "resize it first"),
    "truncated": (saved(levels(UPRIGHT), ".png")[:60], "damaged PNG"),
    "NaN levels": (saved(levels(np.full((4, 4), np.nan, np.float32)), ".tif"), "NaN"),
    "text": (b"a README, renamed\n" * 4, "no format Pillow knows"),
    "empty": (b"", "empty file (0 bytes)"),
    "zero size": (png_header(0, 7), "not a readable image"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_hostile_pictures_are_one_line_quickly(tmp_path, name):
    content, words = REFUSED[name]
    path = tmp_path / "picture.png"
    path.write_bytes(content)
    started = time.perf_counter()
    raises_one_line(lambda: read_inputs(path), str(path), words)
    assert time.perf_counter() - started < 2  # refused from the header, not by decoding
    assert [p.name for p in tmp_path.iterdir()] == ["picture.png"]


def test_libtiffs_own_complaints_are_not_printed(tmp_path, capfd):
    """Found by the fuzz run: libtiff writes to stderr itself about a damaged LZW strip."""
    path = tmp_path / "damaged.tif"
    path.write_bytes(saved(levels(UPRIGHT), ".tif", compression="tiff_lzw")[:-40])
    try:
        read_gray(path)
    except DataError as error:
        assert "\n" not in str(error)
    assert capfd.readouterr().err == ""


def test_a_directory_or_a_missing_file_is_one_line(tmp_path):
    raises_one_line(lambda: read_gray(tmp_path), str(tmp_path), "a directory, not a picture")
    raises_one_line(lambda: read_gray(tmp_path / "no.png"), str(tmp_path / "no.png"),
                    "no such file")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny model of 28 x 28 digits, saved."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("model") / "m.npz"
    MLPClassifier(layers=(4,), epochs=1, batch_size=32).fit(
        rng.integers(0, 256, (64, 784), dtype=np.uint8), np.arange(64) % 10).save(path)
    return path


@pytest.mark.parametrize("name", ["bomb", "truncated", "text", "empty", "directory", "missing",
                                  "pipe"])
def test_predict_refuses_in_one_line_and_prints_nothing(tmp_path, model, capsys, name):
    path = tmp_path / "in.png"
    if name == "directory":
        path.mkdir()
    elif name == "pipe":  # reading it would wait for a writer forever
        os.mkfifo(path)
    elif name != "missing":
        path.write_bytes(REFUSED[name][0])
    Image.fromarray(UPRIGHT).save(tmp_path / "upright.png")
    before = sorted(tmp_path.iterdir())
    try:  # argparse refuses a missing file itself, exiting
        status = main(["predict", model, tmp_path / "upright.png", path])
    except SystemExit as exit:
        status = exit.code
    out, err = capsys.readouterr()
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "error" in err and str(path) in err and sorted(tmp_path.iterdir()) == before


def test_predict_reads_a_sideways_photo_upright(tmp_path, model, capsys):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(UPRIGHT).save(tmp_path / "upright.png")
    Image.fromarray(UPRIGHT).transpose(STORED[6]).save(tmp_path / "turned.jpg", exif=exif,
                                                       quality=100)
    assert main(["predict", model, tmp_path / "upright.png", tmp_path / "turned.jpg"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(": ")[1] == lines[1].split(": ")[1]


def test_folder_datasets_read_through_the_same_reader(tmp_path):
    root = tmp_path / "pics"
    exif = Image.Exif()
    exif[0x0112] = 6
    for label, picture in (("ell", UPRIGHT), ("other", 255 - UPRIGHT)):
        (root / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(picture).transpose(STORED[6]).save(root / label / f"{i}.png",
                                                               exif=exif)
    data = source.load_path(root, **LOAD)
    for x, y in zip(data.train.x, data.train.y):
        assert np.array_equal(np.rint(x * 255).reshape(UPRIGHT.shape),
                              UPRIGHT if data.classes[y] == "ell" else 255 - UPRIGHT)
    (root / "ell" / "3.png").write_bytes(png_header(30000, 30000))
    raises_one_line(lambda: source.load_path(root, **LOAD),
                    str(root / "ell" / "3.png"), "30000 x 30000 pixels")


LOAD = dict(dtype=np.float32, seed=0, val_fraction=0.5)
# Valid pictures of each format whose bytes the fuzzer mutates.
SEEDS = [saved(levels(UPRIGHT), s) for s in (".png", ".jpg", ".gif", ".tif", ".bmp")]


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    return bytes(data[:draw(st.integers(0, len(data)))])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated(), st.binary(max_size=200)))
@example(png_header(65536, 65536))
def test_any_bytes_are_a_picture_or_one_line(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("fuzz") / "picture.png"
    path.write_bytes(content)
    try:
        gray = read_gray(path)
    except DataError as error:
        assert "\n" not in str(error) and str(error).startswith(str(path))
    else:
        assert gray.dtype == np.uint8 and gray.ndim == 2 and 0 < gray.size <= MAX_PIXELS
