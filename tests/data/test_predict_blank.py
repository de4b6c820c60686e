"""`fastmlp predict` reports a picture with no digit in it instead of classifying it, and
prints JSON for scripts with --json."""
import json

import numpy as np
import pytest

from fastmlp.classifier import MLPClassifier
from fastmlp.data.images import problem, read_inputs
from tests.helpers import idx_bytes, run_cli

pil = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def files(tmp_path_factory, mnist):
    d = tmp_path_factory.mktemp("predict")
    clf = MLPClassifier(layers=(16,), epochs=1, batch_size=512)
    clf.fit(mnist.train.x[:2000], mnist.train.y[:2000])
    clf.save(d / "m.npz")
    digit = (mnist.test.x[0].reshape(28, 28) * 255).astype(np.uint8)
    pil.fromarray(255 - digit).resize((84, 84)).save(d / "digit.png")
    pil.fromarray(np.full((60, 40), 250, np.uint8)).save(d / "blank.png")
    noise = np.random.default_rng(0).integers(0, 256, (60, 60)).astype(np.uint8)
    pil.fromarray(noise).save(d / "noise.png")
    (d / "two.idx").write_bytes(idx_bytes(np.stack([digit, np.zeros_like(digit)])))
    return d


def test_what_holds_no_digit():
    assert problem(np.full((30, 30), 255)) == "no ink (blank or nearly uniform picture)"
    assert problem(np.full((30, 30), 7)).startswith("no ink")
    assert problem(np.random.default_rng(1).integers(0, 256, (40, 40))).startswith(
        "no digit located")


def test_no_mnist_image_is_reported(mnist, tmp_path):
    images = np.rint(mnist.test.x * 255).astype(np.uint8).reshape(-1, 28, 28)
    (tmp_path / "test.idx").write_bytes(idx_bytes(images))
    pixels, _, problems = read_inputs(tmp_path / "test.idx")
    assert len(pixels) == 10000 and not any(problems)


def test_a_blank_picture_is_reported_not_classified(files):
    proc = run_cli("predict", files / "m.npz", files / "digit.png", files / "blank.png",
                   files / "noise.png", files / "two.idx")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 5
    assert lines[0].startswith(f"{files / 'digit.png'}: ") and "%" in lines[0]
    assert lines[1] == f"{files / 'blank.png'}: no digit (no ink (blank or nearly uniform " \
                       f"picture))"
    assert lines[2].startswith(f"{files / 'noise.png'}: no digit (no digit located")
    assert "%" in lines[3] and lines[4].startswith(f"{files / 'two.idx'}[1]: no digit (no ink")
    warnings = proc.stderr.splitlines()
    assert len(warnings) == 3 and all(w.startswith("fastmlp: warning: ") for w in warnings)
    assert warnings[0].endswith("blank.png: no ink (blank or nearly uniform picture); "
                                "not classified")


def test_json_output(files):
    proc = run_cli("predict", files / "m.npz", files / "digit.png", files / "blank.png",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    digit, blank = json.loads(proc.stdout)
    assert digit["name"] == str(files / "digit.png") and digit["problem"] is None
    assert isinstance(digit["class"], int) and abs(sum(digit["probabilities"]) - 1) < 1e-6
    assert blank == {"name": str(files / "blank.png"), "class": None, "probabilities": None,
                     "problem": "no ink (blank or nearly uniform picture)"}
    assert "warning" in proc.stderr
