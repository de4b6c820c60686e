"""`fastmlp predict`: classify pictures of digits (any size) or the images of an IDX file.
A picture with no digit in it (blank, uniform, ink everywhere) is reported, not classified."""
import json
import sys

from ..errors import FastMLPError
from . import add_command
from .options import existing_file


def add_parser(subparsers):
    parser = add_command(subparsers, "predict", description="Print each image's predicted "
                         "class and the probability of every class. Pictures are converted "
                         "the MNIST way (see docs/user-guide.md).")
    parser.add_argument("model", type=existing_file, metavar="MODEL.npz")
    parser.add_argument("images", nargs="+", type=existing_file, metavar="IMAGE")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON list of {name, class, probabilities, problem} "
                             "instead of lines; class and probabilities are null for an image "
                             "with no digit, and problem says why")
    return parser


def run(args):
    import numpy as np

    from ..classifier import MLPClassifier  # it scales uint8 images as training did
    from ..data.images import read_inputs

    clf = MLPClassifier.load(args.model)
    n_in = clf.model_.sizes[0]
    records = []
    for path in args.images:
        images, names, problems = read_inputs(path)
        if images.shape[1] != n_in:
            raise FastMLPError(f"{path}: {images.shape[1]} pixels per image, the model takes "
                               f"{n_in}")
        for name, problem, p in zip(names, problems, clf.predict_proba(images)):
            if problem is not None:
                print(f"fastmlp: warning: {name}: {problem}; not classified", file=sys.stderr)
                records.append({"name": name, "class": None, "probabilities": None,
                                "problem": problem})
                if not args.json:
                    print(f"{name}: no digit ({problem})")
                continue
            top = int(np.argmax(p))
            records.append({"name": name, "class": top, "probabilities": p.tolist(),
                            "problem": None})
            if not args.json:
                probs = " ".join(f"{k}:{v:.3f}" for k, v in enumerate(p))
                print(f"{name}: {top} ({100 * p[top]:.1f}%)  {probs}")
    if args.json:
        print(json.dumps(records, indent=1))
