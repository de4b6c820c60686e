"""The `fastmlp` command line: `fastmlp train ...` and `fastmlp download ...`.

Every problem a user can fix ends in one line on stderr and exit status 2, never a traceback.
"""
import argparse
import csv
import io
import json
import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .atomic import write_atomically
from .errors import FastMLPError, TrainingInterrupted

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # argparse prints the usage block too; one line that names the problem is enough.
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _int_at_least(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def _float(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _positive_float(text):
    value = _float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _fraction(text):
    value = _positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _non_negative_float(text):
    return 0.0 if _float(text) == 0 else _positive_float(text)


def _probability(text):
    value = _non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _existing_file(text):
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return Path(text)


def _batch_size(text):
    return None if text == "full" else _int_at_least(1)(text)


def _output_path(text):
    """Refuse an output the run could not write before the run starts, not after it."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory")
    if path.exists() and not path.is_file():
        # Outputs are renamed into place: over a device or a pipe that would replace it.
        raise argparse.ArgumentTypeError(f"{text} exists and is not a regular file")
    parent = path.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"directory {parent} is not writable")
    return path


def build_parser():
    from .config import OPTIMIZERS
    from .data import DATASETS
    from .model import DTYPES, INITS
    from .peers import OPTIMIZERS as PEER_OPTIMIZERS
    from .presets import PRESETS
    from .schedule import SCHEDULES

    parser = _Parser(prog="fastmlp", description="Train multilayer perceptrons on MNIST-style "
                     "images, fast, on the CPU.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser(
        "train", help="train an MLP and report its accuracy",
        argument_default=argparse.SUPPRESS,  # unset flags fall back to the preset, then defaults
        description="Train an MLP: 784 inputs -> ReLU hidden layers -> softmax over 10 classes, "
                    "cross-entropy loss. The defaults are the source documents' deepest "
                    "experiment: [128, 64, 32], He init, full-batch gradient descent, lr 0.1, "
                    "400 epochs.")
    train.add_argument("--preset", choices=sorted(PRESETS),
                       help="a tested recipe (see the README); flags given beside it win")
    train.add_argument("--layers", nargs="+", type=_int_at_least(1), metavar="N",
                       help="hidden layer sizes (default: 128 64 32)")
    train.add_argument("--init", choices=INITS, help="weight initialisation "
                       "(default: he; uniform is the documents' [-0.5, 0.5] baseline)")
    train.add_argument("--epochs", type=_int_at_least(1), help="default: 400")
    train.add_argument("--batch-size", type=_batch_size, metavar="full|N",
                       help="full: one gradient step per epoch over all training images "
                            "(default); N: minibatches of N, reshuffled every epoch. N larger "
                            "than the training set means full batch")
    train.add_argument("--lr", type=_positive_float, help="learning rate (default: 0.1)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, help="default: sgd")
    train.add_argument("--momentum", type=_fraction, help="momentum's beta (default: 0.9)")
    train.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    train.add_argument("--weight-decay", type=_non_negative_float,
                       help="L2 penalty (sgd, momentum, adam) or decoupled decay (adamw)")
    train.add_argument("--dropout", type=_probability,
                       help="inverted dropout on hidden layers while training (default: 0)")
    train.add_argument("--augment-shift", type=_int_at_least(0), metavar="K",
                       help="shift each training image by up to K pixels (default: 0)")
    train.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule "
                       "(default: constant)")
    train.add_argument("--warmup", type=_non_negative_float, metavar="EPOCHS",
                       help="linear learning-rate warm-up (default: 0)")
    train.add_argument("--lr-step-epochs", type=_int_at_least(1), metavar="N",
                       help="step schedule: decay every N epochs (default: a third of the run)")
    train.add_argument("--lr-gamma", type=_fraction, help="step schedule's decay (0.1)")
    train.add_argument("--patience", type=_int_at_least(0), metavar="N",
                       help="early stopping after N epochs without improvement; the best "
                            "weights are restored (default: 0, off)")
    train.add_argument("--early-stop", choices=("val_acc", "val_loss"),
                       help="what early stopping watches (default: val_acc)")
    train.add_argument("--threads", type=_int_at_least(1),
                       help="BLAS and numba threads (default: every core)")
    train.add_argument("--dtype", choices=list(DTYPES), help="default: float32")
    train.add_argument("--seed", type=_int_at_least(0),
                       help="seeds the validation split, the initialisation, the shuffling, "
                            "dropout and augmentation (default: 0)")
    train.add_argument("--dataset", choices=sorted(DATASETS), help="default: mnist")
    train.add_argument("--data-dir",
                       help="directory holding the dataset's four IDX files (or a <dataset>/ "
                            "folder with them); default: $FASTMLP_DATA, the repository's data/, "
                            "the user cache, then system directories")
    train.add_argument("--val-fraction", type=_fraction,
                       help="share of the training images held out for validation (0.2)")
    train.add_argument("--eval-every", type=_int_at_least(0), metavar="K",
                       help="also measure test accuracy every K epochs (default: only at the "
                            "end)")
    train.add_argument("--out", type=_output_path, metavar="FILE",
                       help="write the configuration, summary and per-epoch history as JSON, or "
                            "as CSV when FILE ends in .csv (written atomically)")
    train.add_argument("--save", type=_output_path, metavar="MODEL.npz",
                       help="save the trained model (weights, architecture, settings, history, "
                            "data checksums), atomically")
    train.add_argument("--checkpoint-every", type=_int_at_least(1), metavar="K",
                       help="also write the --save file every K epochs, resumable")
    train.add_argument("--resume", type=_existing_file, metavar="CKPT.npz",
                       help="continue the run saved in CKPT.npz with its own settings (only "
                            "--epochs, --threads and the output flags may be given beside it); "
                            "it keeps writing to CKPT.npz unless --save names another file")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    evaluate = commands.add_parser(
        "evaluate", help="accuracy, per-class precision/recall and confusion matrix of a model")
    evaluate.add_argument("model", type=_existing_file, metavar="MODEL.npz")
    evaluate.add_argument("--dataset", choices=sorted(DATASETS), default=None,
                          help="default: the dataset the model was trained on")
    evaluate.add_argument("--data-dir", default=None)
    evaluate.add_argument("--split", choices=("test", "val", "train"), default="test")
    evaluate.add_argument("--plot", type=_output_path, metavar="CM.png",
                          help="draw the confusion matrix (needs matplotlib)")

    predict = commands.add_parser(
        "predict", help="classify digit images (PNG/JPEG, any size) or an IDX file")
    predict.add_argument("model", type=_existing_file, metavar="MODEL.npz")
    predict.add_argument("images", nargs="+", type=_existing_file, metavar="IMAGE")

    plot = commands.add_parser("plot", help="draw loss and accuracy curves of a run")
    plot.add_argument("run", type=_existing_file, metavar="RUN.json",
                      help="written by fastmlp train --out")
    plot.add_argument("-o", "--output", type=_output_path, required=True, metavar="FILE.png")

    bench = commands.add_parser(
        "bench", help="measure training throughput per configuration and thread count",
        description="Measure training samples/s (best of --repeats epochs after a warm-up "
                    "epoch) for every combination of the options below, beside the GEMM peak "
                    "of this machine measured in the same run.")
    bench.add_argument("--layers", nargs="+", type=_int_at_least(1), action="append",
                       metavar="N", help="hidden layers; repeat the option for several "
                                         "architectures (default: 128 64 32)")
    bench.add_argument("--batch-size", nargs="+", type=_batch_size, default=[None, 128],
                       metavar="full|N", help="default: full 128")
    bench.add_argument("--dtype", nargs="+", choices=list(DTYPES), default=["float32"])
    bench.add_argument("--threads", nargs="+", type=_int_at_least(1), default=None,
                       metavar="N", help="thread counts to compare (default: 1 and every core)")
    bench.add_argument("--optimizer", choices=PEER_OPTIMIZERS, default="sgd",
                       help="the optimizer of every measured trainer, peers included "
                            "(default: sgd)")
    bench.add_argument("--lr", type=_positive_float, default=None,
                       help="learning rate (default: 0.1, or 0.001 for adam)")
    bench.add_argument("--repeats", type=_int_at_least(1), default=5,
                       help="timed epochs per measurement, the best counts (default: 5)")
    bench.add_argument("--peers", action="store_true",
                       help="also time PyTorch (if installed) and a plain-NumPy trainer on the "
                            "same configurations, each in its own process")
    bench.add_argument("--profile", action="store_true",
                       help="break each measured epoch into phases: batch gather, matmuls, "
                            "fused kernels, loss, update")
    bench.add_argument("--json", type=_output_path, metavar="FILE")
    bench.add_argument("--csv", type=_output_path, metavar="FILE")
    bench.add_argument("--plot", type=_output_path, metavar="FILE.png",
                       help="throughput against thread count (needs matplotlib)")

    experiments = commands.add_parser(
        "experiments", help="run the source documents' experiments over several seeds",
        description="Run every experiment of a grid (default: the source documents' four) once "
                    "per seed, then print a Markdown table of the measured accuracies beside the "
                    "reported ones, and write it, the full histories (JSON) and a plot (PNG) into "
                    "--out-dir.")
    experiments.add_argument("grid", nargs="?", default=None, metavar="GRID",
                             help="a grid TOML file (default: the shipped experiments.toml)")
    experiments.add_argument("--seeds", type=_int_at_least(1), default=None, metavar="N",
                             help="seeds 0..N-1 per experiment (default: the grid's, 3)")
    experiments.add_argument("--only", nargs="+", default=None, metavar="NAME",
                             help="run only these experiments")
    experiments.add_argument("--threads", type=_int_at_least(1), default=None,
                             help="BLAS and numba threads (default: every core)")
    experiments.add_argument("--dtype", choices=list(DTYPES), default=None,
                             help="override every experiment's dtype")
    experiments.add_argument("--epochs", type=_int_at_least(1), default=None,
                             help="override every experiment's epochs, for a quick look (the "
                                  "table then compares nothing with the documents)")
    experiments.add_argument("--out-dir", default="results", metavar="DIR",
                             help="where experiments.md, .json and .png go (default: results)")
    experiments.add_argument("--update-readme", nargs="?", const="README.md", default=None,
                             metavar="PATH", help="replace the results section between the "
                             "experiments markers of PATH (default: README.md)")
    experiments.add_argument("--quiet", action="store_true", help="no progress bar")

    download = commands.add_parser(
        "download", help="fetch a dataset's four IDX files (checksummed) into the user cache",
        description="Download a dataset from its public mirrors, verify each file's SHA-256 "
                    "and write it atomically.")
    download.add_argument("dataset", choices=sorted(DATASETS))
    download.add_argument("--dest", default=None, metavar="DIR",
                          help="directory to put <dataset>/ in (default: the user cache)")
    return parser


def _history_csv(result):
    rows = result.to_dict()["history"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _percent(value):
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _train_config(args):
    """The run's TrainConfig: flags given, else the preset's values, else the defaults; with
    --resume, the checkpoint's settings, of which only --epochs and --threads may change."""
    from dataclasses import fields, replace

    from . import checkpoint
    from .config import TrainConfig
    from .presets import PRESETS

    names = {f.name for f in fields(TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in names}
    if "layers" in given:
        given["layers"] = tuple(given["layers"])
    if getattr(args, "checkpoint_every", None) and getattr(args, "save", None) is None:
        raise FastMLPError("--checkpoint-every needs --save FILE to write the checkpoints to")
    if getattr(args, "resume", None) is None:
        return TrainConfig(**{**PRESETS.get(getattr(args, "preset", None), {}), **given}), None
    saved = checkpoint.load(args.resume)
    changed = set(given) - {"epochs", "threads"} | ({"preset"} & set(vars(args)))
    if changed:
        flags = ", ".join("--" + name.replace("_", "-") for name in sorted(changed))
        raise FastMLPError(f"--resume continues the saved run with its own settings; drop "
                           f"{flags}")
    if not saved.state:
        raise FastMLPError(f"{args.resume}: a final model, not a resumable checkpoint")
    return replace(saved.config, **given), saved


def _run_train(args):
    from tqdm import tqdm

    from .config import dataset_for

    config, resume = _train_config(args)
    quiet = getattr(args, "quiet", False)
    # Decompressing and checksumming the data releases the GIL, so it overlaps with importing
    # numba and loading the cached kernels: start-up is the longer of the two, not their sum.
    with ThreadPoolExecutor(1) as pool:
        loading = pool.submit(dataset_for, config)
        from .classifier import MLPClassifier  # imports numba and loads the kernels
        dataset = loading.result()  # before the progress bar, so a data error prints alone
    done = len(resume.history) if resume is not None else 0
    with tqdm(total=config.epochs, initial=done, unit="epoch", disable=quiet,
              file=sys.stderr, dynamic_ncols=True) as bar:
        def on_epoch(stats):
            bar.set_postfix(loss=f"{stats.train_loss:.4f}", train=_percent(stats.train_acc),
                            val=_percent(stats.val_acc),
                            samples_s=f"{stats.samples_per_s:,.0f}", refresh=False)
            bar.update()

        clf = MLPClassifier.from_config(config)
        # A resumed run goes on writing to its checkpoint unless --save names another file;
        # Ctrl-C without either leaves its checkpoint here.
        save = getattr(args, "save", None) or (args.resume if resume is not None else None)
        clf.fit_dataset(dataset, on_epoch, save_path=save,
                        checkpoint_every=getattr(args, "checkpoint_every", 0), resume=resume,
                        interrupt_path=save or Path("fastmlp-interrupted.npz"))
    result = clf.result_
    final = result.final
    best = f" (best epoch {result.best_epoch})" if config.patience else ""
    print(f"val {_percent(final.val_acc)} | test {_percent(final.test_acc)}{best} | "
          f"{len(result.history)} epochs in {result.wall_seconds:.1f} s "
          f"(training {result.train_seconds:.1f} s) | {result.samples_per_s:,.0f} samples/s")
    out = getattr(args, "out", None)
    if out is not None:
        if out.suffix.lower() == ".csv":
            text = _history_csv(result)
        else:
            text = json.dumps(result.to_dict(), indent=1) + "\n"
        write_atomically(out, text)


def _load_model(path):
    from .classifier import MLPClassifier
    return MLPClassifier.load(path)


def _run_evaluate(args):
    from .data import load_dataset
    from .inference import confusion_matrix, precision_recall

    clf = _load_model(args.model)
    name = args.dataset or clf.dataset_.get("name", "mnist")
    if name not in ("mnist", "fashion-mnist"):
        raise FastMLPError(f"{args.model}: trained on {name!r}; pass --dataset")
    # The training run's seed and fraction, so that train and val are the splits it used.
    data = load_dataset(name, dtype=clf.dtype, seed=clf.seed,
                        val_fraction=clf.config().val_fraction, data_dir=args.data_dir)
    split = getattr(data, args.split)
    if split.x.shape[1] != clf.model_.sizes[0]:
        raise FastMLPError(f"{args.model}: the model takes {clf.model_.sizes[0]} features, "
                           f"{name} images have {split.x.shape[1]}")
    predicted = clf.predict(split.x)
    counts = confusion_matrix(split.y, predicted, clf.model_.sizes[-1])
    precision, recall = precision_recall(counts)
    print(f"{name} {args.split}: accuracy {_percent((predicted == split.y).mean())} on "
          f"{len(split.y)} images")
    print("class  precision  recall  support")
    for k in range(len(counts)):
        print(f"{k:>5}  {100 * precision[k]:8.2f}%  {100 * recall[k]:5.2f}%  "
              f"{counts[k].sum():>7}")
    print("confusion matrix (rows: true class, columns: predicted)")
    for row in counts:
        print(" ".join(f"{v:5d}" for v in row))
    if args.plot is not None:
        from .plots import confusion_png
        write_atomically(args.plot, confusion_png(counts, f"{name} {args.split}"))


def _inputs(path):
    """(images (n, pixels) uint8, names) from an IDX file of images or one picture."""
    from .idx import IdxError, read_idx
    from .images import read_image

    def reason(error):
        return str(error).removeprefix(f"{path}: ")

    try:
        array = read_idx(path)
    except IdxError as idx_error:
        try:
            return read_image(path)[None, :], [str(path)]
        except FastMLPError as image_error:
            raise FastMLPError(f"{path}: neither an IDX file ({reason(idx_error)}) nor a "
                               f"picture ({reason(image_error)})") from None
    if array.ndim == 3:
        return array.reshape(len(array), -1), [f"{path}[{i}]" for i in range(len(array))]
    return array.reshape(1, -1), [str(path)]


def _run_predict(args):
    import numpy as np

    clf = _load_model(args.model)
    for path in args.images:
        images, names = _inputs(path)
        if images.shape[1] != clf.model_.sizes[0]:
            raise FastMLPError(f"{path}: {images.shape[1]} pixels per image, the model takes "
                               f"{clf.model_.sizes[0]}")
        for name, p in zip(names, clf.predict_proba(images)):
            top = int(np.argmax(p))
            probs = " ".join(f"{k}:{v:.3f}" for k, v in enumerate(p))
            print(f"{name}: {top} ({100 * p[top]:.1f}%)  {probs}")


def _run_plot(args):
    from .plots import curves_png
    try:
        run = json.loads(args.run.read_text())
        history = run["history"]
    except (ValueError, KeyError, TypeError):
        raise FastMLPError(f"{args.run}: not a run written by fastmlp train --out") from None
    write_atomically(args.output, curves_png(history, str(args.run)))


def _run_bench(args):
    from . import bench, plots
    from .peers import PEERS
    from .threads import default_threads

    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401  (checked before an hour of measuring, not after)
        except ImportError:
            raise FastMLPError("--plot needs matplotlib: pip install matplotlib") from None
    threads = args.threads or sorted({1, default_threads()})
    peers = PEERS if args.peers else ()
    rows = bench.run(args.layers or [[128, 64, 32]], args.batch_size, args.dtype, threads,
                     repeats=args.repeats, peers=peers, profile=args.profile,
                     optimizer=args.optimizer,
                     lr=args.lr or (1e-3 if args.optimizer == "adam" else 0.1),
                     log=lambda line: print(line, file=sys.stderr))
    print(bench.table(rows, peers))
    if args.profile:
        print(bench.profile_table(rows))
    outputs = [(args.json, lambda: bench.to_json(rows)),
               (args.csv, lambda: bench.to_csv(rows, peers)),
               (args.plot, lambda: plots.throughput_png(rows))]
    for path, render in outputs:
        if path is not None:
            write_atomically(path, render())


def _experiments_command(args):
    """The command line that reproduces the numbers (output options left out)."""
    import shlex
    words = ["fastmlp", "experiments"]
    if args.grid is not None:
        words.append(args.grid)
    for option, value in (("--seeds", args.seeds), ("--epochs", args.epochs),
                          ("--dtype", args.dtype), ("--threads", args.threads)):
        if value is not None:
            words += [option, str(value)]
    if args.only:
        words += ["--only", *args.only]
    return shlex.join(words)


def _run_experiments(args):
    from tqdm import tqdm

    from . import experiments as ex
    from .threads import default_threads

    # Everything that can be refused is refused before the first run, not an hour later.
    grid = ex.load_grid(args.grid)
    chosen = ex.select(grid, args.only, epochs=args.epochs, dtype=args.dtype,
                       threads=args.threads)
    seeds = args.seeds or grid.seeds
    readme = None if args.update_readme is None else ex.read_readme(args.update_readme)
    out_dir = Path(args.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FastMLPError(f"cannot create {out_dir}: {e.strerror or e}") from None
    try:
        import matplotlib  # noqa: F401  (an optional extra: without it, no PNG)
        can_plot = True
    except ImportError:
        can_plot = False
        print("fastmlp: note: matplotlib is not installed, so no PNG will be written "
              "(pip install matplotlib)", file=sys.stderr)

    with tqdm(total=seeds * sum(e.config.epochs for e in chosen), unit="epoch",
              disable=args.quiet, file=sys.stderr, dynamic_ncols=True) as bar:
        def on_run(experiment, seed):
            bar.set_description(f"{experiment.name} seed {seed}", refresh=False)

        def on_epoch(stats):
            bar.set_postfix(val=_percent(stats.val_acc), refresh=False)
            bar.update()

        runs = ex.run_all(chosen, seeds, on_run=on_run, on_epoch=on_epoch)

    rows = ex.summarize(chosen, runs)
    command, date = _experiments_command(args), ex.today()
    machine = ex.machine(args.threads or default_threads())
    text = ex.markdown(rows, ex.provenance_line(command, date, machine))
    context = {"command": command, "date": date, "machine": machine, "grid": grid.path,
               "seeds": list(range(seeds)), "epochs_override": args.epochs,
               "dtype_override": args.dtype}
    write_atomically(out_dir / "experiments.md", text)
    write_atomically(out_dir / "experiments.json", ex.to_json(rows, runs, context))
    if can_plot:
        write_atomically(out_dir / "experiments.png", ex.plot(rows))
    if readme is not None:
        # Read again: the README may have been edited while the experiments ran.
        readme = ex.read_readme(args.update_readme)
        write_atomically(args.update_readme, ex.replace_section(readme, text, args.update_readme))
    print(text, end="")


def _run_download(args):
    from .data import download_dataset
    print(download_dataset(args.dataset, args.dest))


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        {"train": _run_train, "bench": _run_bench, "download": _run_download,
         "evaluate": _run_evaluate, "predict": _run_predict, "plot": _run_plot,
         "experiments": _run_experiments}[args.command](args)
    except TrainingInterrupted as e:
        print(f"fastmlp: {e}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except FastMLPError as e:
        print(f"fastmlp: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("fastmlp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`fastmlp predict ... | head`): not an error
        sys.stderr.close()
        return 0
    return 0
