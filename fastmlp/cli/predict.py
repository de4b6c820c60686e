"""`fastmlp predict`: classify pictures of digits (any size) or the images of an IDX file."""
from ..errors import FastMLPError
from . import add_command
from .options import existing_file


def add_parser(subparsers):
    parser = add_command(subparsers, "predict", description="Print each image's predicted "
                         "class and the probability of every class. Pictures are converted "
                         "the MNIST way (see the README).")
    parser.add_argument("model", type=existing_file, metavar="MODEL.npz")
    parser.add_argument("images", nargs="+", type=existing_file, metavar="IMAGE")
    return parser


def run(args):
    import numpy as np

    from ..classifier import MLPClassifier  # it scales uint8 images as training did
    from ..images import read_inputs

    clf = MLPClassifier.load(args.model)
    n_in = clf.model_.sizes[0]
    for path in args.images:
        images, names = read_inputs(path)
        if images.shape[1] != n_in:
            raise FastMLPError(f"{path}: {images.shape[1]} pixels per image, the model takes "
                               f"{n_in}")
        for name, p in zip(names, clf.predict_proba(images)):
            top = int(np.argmax(p))
            probs = " ".join(f"{k}:{v:.3f}" for k, v in enumerate(p))
            print(f"{name}: {top} ({100 * p[top]:.1f}%)  {probs}")
