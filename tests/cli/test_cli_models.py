"""Saved models through the real command line: evaluate, predict and plot, resuming a
checkpoint, and the flags of the training options refused in one line."""
import json

import numpy as np
import pytest

from tests.helpers import MNIST_DIR, run_cli


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A [64] model trained 3 epochs on MNIST through the CLI, with its run JSON."""
    folder = tmp_path_factory.mktemp("model")
    proc = run_cli("train", "--layers", 64, "--epochs", 3, "--batch-size", 128, "--optimizer",
                   "adam", "--lr", 0.002, "--quiet", "--save", folder / "m.npz", "--out",
                   folder / "run.json")
    assert proc.returncode == 0, proc.stderr
    return folder


def test_cli_evaluate_prints_accuracy_per_class_and_confusion(saved_model):
    proc = run_cli("evaluate", saved_model / "m.npz", "--plot", saved_model / "cm.png")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    summary = json.loads((saved_model / "run.json").read_text())["summary"]
    assert lines[0] == f"mnist test: accuracy {100 * summary['test_acc']:.2f}% on 10000 samples"
    matrix = [list(map(int, line.split())) for line in lines[-10:]]
    assert sum(map(sum, matrix)) == 10000
    assert sum(matrix[k][k] for k in range(10)) == round(summary["test_acc"] * 10000)
    assert (saved_model / "cm.png").read_bytes().startswith(b"\x89PNG")


def test_cli_predict_reads_a_png_made_from_an_mnist_test_image(saved_model, tmp_path, mnist):
    pil = pytest.importorskip("PIL.Image")
    proc = run_cli("predict", saved_model / "m.npz", MNIST_DIR / "t10k-images-idx3-ubyte.gz")
    predicted = [int(line.split(": ")[1].split()[0]) for line in proc.stdout.splitlines()]
    assert len(predicted) == 10000
    # The first test images the model gets right, as pictures: a dark digit on white paper,
    # five times larger than MNIST's, must come back as the same class.
    right = [i for i in range(50) if predicted[i] == mnist.test.y[i]][:5]
    paths = []
    for i in right:
        pixels = (mnist.test.x[i].reshape(28, 28) * 255).astype(np.uint8)
        paths.append(tmp_path / f"digit{i}.png")
        pil.fromarray(255 - pixels).resize((140, 140)).save(paths[-1])
    proc = run_cli("predict", saved_model / "m.npz", *paths)
    assert proc.returncode == 0, proc.stderr
    got = [int(line.split(": ")[1].split()[0]) for line in proc.stdout.splitlines()]
    assert got == [int(mnist.test.y[i]) for i in right]


def test_cli_plot_draws_the_curves(saved_model):
    proc = run_cli("plot", saved_model / "run.json", "-o", saved_model / "curves.png")
    assert proc.returncode == 0, proc.stderr
    assert (saved_model / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_cli_resume_continues_a_checkpoint(tmp_path):
    common = ["--layers", 16, "--batch-size", 512, "--optimizer", "momentum", "--quiet"]
    whole = run_cli("train", *common, "--epochs", 4, "--save", tmp_path / "whole.npz")
    part = run_cli("train", *common, "--epochs", 2, "--save", tmp_path / "part.npz",
                   "--checkpoint-every", 1)
    assert whole.returncode == part.returncode == 0
    more = run_cli("train", "--resume", tmp_path / "part.npz", "--epochs", 4, "--quiet")
    assert more.returncode == 0, more.stderr
    refused = run_cli("train", "--resume", tmp_path / "part.npz", "--lr", 0.5)
    assert refused.returncode == 2 and "--lr" in refused.stderr


@pytest.mark.parametrize("args, words", [
    (["--optimizer", "rmsprop"], "--optimizer"),
    (["--dropout", "1"], "--dropout"),
    (["--label-smoothing", "1"], "--label-smoothing"),
    (["--weight-decay", "-1"], "--weight-decay"),
    (["--schedule", "linear"], "--schedule"),
    (["--preset", "slow"], "--preset"),
    (["--checkpoint-every", "2"], "--save"),
    (["--resume", "/no/such.npz"], "no such file"),
])
def test_cli_refuses_bad_modern_flags(args, words):
    proc = run_cli("train", "--epochs", 1, *args)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr
