"""`fastmlp predict`: classify pictures (any size), the images of IDX files, or the samples of a
dataset file or folder, each read and scaled as the model's training data was, and name their
classes as the model does (Fashion-MNIST's "Dress", a folder's class names). A picture with no
digit in it (blank, uniform, ink everywhere) is reported, not classified, by a digits model."""
import json
import sys

from ..errors import FastMLPError
from . import add_command
from .options import existing_file, existing_path


def add_parser(subparsers):
    parser = add_command(subparsers, "predict", description="Print each sample's predicted "
                         "class and the probability of every class. Pictures are converted "
                         "as the model's training images were (the MNIST way for a model of "
                         "28 x 28 digits, see docs/user-guide.md; resized to the model's size "
                         "for one trained on a folder of pictures).")
    parser.add_argument("model", type=existing_file, metavar="MODEL.npz")
    parser.add_argument("images", nargs="*", type=existing_path, metavar="INPUT",
                        help="pictures (PNG, JPEG), IDX files of images, .npz files (x_test, "
                             "else x_train), CSV/TSV files (a label column is left out), or "
                             "folders of pictures")
    parser.add_argument("--data", type=existing_path, action="append", default=[],
                        metavar="PATH", help="also classify every sample of this dataset file "
                                             "or folder (as an INPUT)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON list of {name, class, probabilities, problem} "
                             "instead of lines (probabilities in the order of the model's "
                             "classes); class and probabilities are null for an image with no "
                             "digit, and problem says why")
    return parser


def _size(saved):
    """(width, height) of the pictures a folder-trained model takes, else None."""
    source = saved.dataset.get("source") or {}
    size = source.get("image_size") if source.get("kind") == "folder" else None
    return None if size is None else tuple(size)


def run(args):
    import numpy as np

    from ..data.classes import names
    from ..data.inputs import read_for
    from ..data.scaling import to_float
    from ..engine.inference import predict_proba
    from ..training import checkpoint

    inputs = [*args.images, *args.data]
    if not inputs:
        raise FastMLPError("nothing to classify: give INPUT files or --data PATH")
    saved = checkpoint.load(args.model)
    n_in, classes = saved.model.sizes[0], names(saved.classes)
    size, label_column = _size(saved), saved.config.label_column
    # Pictures are checked for a digit to classify only by a model of the digits 0..9 trained
    # on a registered dataset (MNIST): a blank picture says nothing, a dark pullover is no error.
    digits = not saved.dataset.get("source") and saved.classes.tolist() == list(range(10))
    # Every input read and checked before the first line is printed: a bad one is the only
    # output, never a line after half of the others.
    read = []
    for path in inputs:
        found = read_for(path, n_in, size, label_column, digits)
        if found.rows.shape[1] != n_in:
            what = "pixels per image" if found.rows.dtype == np.uint8 else "features per sample"
            raise FastMLPError(f"{path}: {found.rows.shape[1]} {what}, the model takes {n_in}")
        x = to_float(found.rows, saved.model.dtype, str(path))
        if saved.scaler is not None:
            x = saved.scaler.apply(x if x is not found.rows else x.copy())
        read.append((found, x))
    records = []
    for found, x in read:
        for name, problem, p in zip(found.names, found.problems, predict_proba(saved.model, x)):
            if problem is not None:
                print(f"fastmlp: warning: {name}: {problem}; not classified", file=sys.stderr)
                records.append({"name": name, "class": None, "probabilities": None,
                                "problem": problem})
                if not args.json:
                    print(f"{name}: no digit ({problem})")
                continue
            top = int(np.argmax(p))
            records.append({"name": name, "class": saved.classes[top].item(),
                            "probabilities": p.tolist(), "problem": None})
            if not args.json:
                probs = " ".join(f"{k}:{v:.3f}" for k, v in zip(classes, p))
                print(f"{name}: {classes[top]} ({100 * p[top]:.1f}%)  {probs}")
    if args.json:
        print(json.dumps(records, indent=1))
