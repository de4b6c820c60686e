"""`fastmlp evaluate`: a saved model's accuracy, per-class precision and recall and confusion
matrix, on the very split it was trained with (or on another dataset)."""
from ..atomic import write_atomically
from ..errors import DataError, FastMLPError
from . import add_command
from .options import add_setting, existing_file, output_path

SPLITS = ("test", "val", "train")


def add_parser(subparsers):
    parser = add_command(subparsers, "evaluate", description="Evaluate a model saved by "
                         "fastmlp train --save on one split of its dataset: by default the "
                         "same files and train/validation split it was trained with.")
    parser.add_argument("model", type=existing_file, metavar="MODEL.npz")
    add_setting(parser, "dataset", default=None, shown="the dataset the model was trained on")
    add_setting(parser, "data_dir", default=None)
    parser.add_argument("--split", choices=SPLITS, default="test",
                        help="which split to evaluate on (default: test)")
    parser.add_argument("--plot", type=output_path, metavar="CM.png",
                        help="draw the confusion matrix (needs matplotlib)")
    return parser


def _data(saved, args):
    """The dataset to evaluate on: the saved record's exact split, or --dataset split with the
    run's seed and validation fraction."""
    from ..data.load import load_dataset, load_recorded

    record, config = saved.dataset, saved.config
    if args.dataset is None:
        try:
            return load_recorded(record, dtype=saved.model.dtype, data_dir=args.data_dir)
        except DataError:
            raise  # about the data files, which it names
        except FastMLPError as e:  # about what the model recorded
            raise FastMLPError(f"{args.model}: {e}") from None
    seed = config.seed if record.get("seed") is None else record["seed"]
    return load_dataset(args.dataset, dtype=saved.model.dtype, seed=seed,
                        val_fraction=record.get("val_fraction") or config.val_fraction,
                        data_dir=args.data_dir)


def run(args):
    from ..engine.inference import confusion_matrix, evaluation_report, predict_proba
    from ..training import checkpoint

    saved = checkpoint.load(args.model)
    data = _data(saved, args)
    split, n_in = getattr(data, args.split), saved.model.sizes[0]
    if split.x.shape[1] != n_in:
        raise FastMLPError(f"{args.model}: the model takes {n_in} features, {data.name} "
                           f"images have {split.x.shape[1]}")
    predicted = predict_proba(saved.model, split.x).argmax(axis=1)
    counts = confusion_matrix(split.y, predicted, saved.model.sizes[-1])
    title = f"{data.name} {args.split}"
    print(evaluation_report(counts, title), end="")
    if args.plot is not None:
        from ..plots import confusion_png
        write_atomically(args.plot, confusion_png(counts, title))
