"""`fastmlp evaluate`: a saved model's accuracy, per-class precision and recall and confusion
matrix, on the very split it was trained with (or on another dataset, by name or by path),
with the classes named as the model names them."""
from pathlib import Path

from ..atomic import write_atomically
from ..errors import DataError, FastMLPError
from . import add_command
from .options import add_setting, distinct_files, existing_file, output_path

SPLITS = ("test", "val", "train")


def add_parser(subparsers):
    parser = add_command(subparsers, "evaluate", description="Evaluate a model saved by "
                         "fastmlp train --save on one split of its dataset: by default the "
                         "same files and train/validation split it was trained with, their "
                         "features scaled as they were for training.")
    parser.add_argument("model", type=existing_file, metavar="MODEL.npz")
    other = parser.add_mutually_exclusive_group()
    add_setting(other, "dataset", default=None, shown="the dataset the model was trained on")
    add_setting(other, "data", default=None, shown="the files the model was trained on")
    add_setting(parser, "label_column", default=None, shown="the model's")
    add_setting(parser, "data_dir", default=None)
    parser.add_argument("--split", choices=SPLITS, default="test",
                        help="which split to evaluate on (default: test)")
    parser.add_argument("--plot", type=output_path, metavar="CM.png",
                        help="draw the confusion matrix (needs matplotlib)")
    return parser


def _data(saved, args):
    """The dataset to evaluate on: the saved record's exact split, or --dataset / --data split
    with the run's seed and validation fraction, its labels mapped to the model's classes."""
    from ..data.load import load_dataset, load_recorded
    from ..data.source import load_path

    record, config = saved.dataset, saved.config
    if args.dataset is None and args.data is None:
        source = record.get("source")
        if source is not None and not Path(source["path"]).exists():
            raise FastMLPError(f"{args.model}: trained on {source['path']}, which is no longer "
                               "there; give its files with --data PATH")
        try:
            return load_recorded(record, dtype=saved.model.dtype, data_dir=args.data_dir,
                                 scaler=saved.scaler)
        except DataError:
            raise  # about the data files, which it names
        except FastMLPError as e:  # about what the model recorded
            raise FastMLPError(f"{args.model}: {e}") from None
    seed = config.seed if record.get("seed") is None else record["seed"]
    val_fraction = record.get("val_fraction") or config.val_fraction
    if args.data is not None:
        source = record.get("source") or {}
        label_column = (args.label_column if args.label_column is not None
                        else config.label_column)
        return load_path(args.data, dtype=saved.model.dtype, seed=seed,
                         val_fraction=val_fraction, label_column=label_column,
                         image_size=source.get("image_size") or config.image_size,
                         standardize=saved.scaler is not None, scaler=saved.scaler,
                         classes=saved.classes)
    dataset = load_dataset(args.dataset, dtype=saved.model.dtype, seed=seed,
                           val_fraction=val_fraction, data_dir=args.data_dir,
                           standardize=saved.scaler is not None, scaler=saved.scaler)
    if dataset.classes.tolist() != saved.classes.tolist():
        raise FastMLPError(f"{args.model}: the model's classes are not {args.dataset}'s "
                           f"({', '.join(map(str, saved.classes[:10].tolist()))})")
    return dataset


def run(args):
    from ..engine.inference import confusion_matrix, evaluation_report, predict_proba
    from ..training import checkpoint

    distinct_files([("--plot", args.plot)], [("MODEL.npz", args.model), ("--data", args.data)])
    saved = checkpoint.load(args.model)
    data = _data(saved, args)
    split, n_in = getattr(data, args.split), saved.model.sizes[0]
    if split is None:
        where = args.data or data.name
        raise FastMLPError(f"{Path(where).name}: no test split (the file holds training data "
                           "only); use --split val")
    if split.x.shape[1] != n_in:
        what = "images have" if data.image_shape else "samples have"
        raise FastMLPError(f"{args.model}: the model takes {n_in} features, {data.name} "
                           f"{what} {split.x.shape[1]}")
    predicted = predict_proba(saved.model, split.x).argmax(axis=1)
    counts = confusion_matrix(split.y, predicted, saved.model.sizes[-1])
    title = f"{data.name} {args.split}"
    print(evaluation_report(counts, title, saved.classes), end="")
    if args.plot is not None:
        from ..plots import confusion_png
        write_atomically(args.plot, confusion_png(counts, title, saved.classes))
