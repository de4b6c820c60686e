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

from .errors import FastMLPError

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


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _fraction(text):
    value = _positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _batch_size(text):
    return None if text == "full" else _int_at_least(1)(text)


def _output_path(text):
    """Refuse an output the run could not write before the run starts, not after it."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory")
    parent = path.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"directory {parent} is not writable")
    return path


def build_parser():
    from .data import DATASETS
    from .model import DTYPES, INITS

    parser = _Parser(prog="fastmlp", description="Train multilayer perceptrons on MNIST-style "
                     "images, fast, on the CPU.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser(
        "train", help="train an MLP and report its accuracy",
        description="Train an MLP: 784 inputs -> ReLU hidden layers -> softmax over 10 classes, "
                    "cross-entropy loss. The defaults are the source documents' deepest "
                    "experiment: [128, 64, 32], He init, full-batch gradient descent, lr 0.1, "
                    "400 epochs.")
    train.add_argument("--layers", nargs="+", type=_int_at_least(1), default=[128, 64, 32],
                       metavar="N", help="hidden layer sizes (default: 128 64 32)")
    train.add_argument("--init", choices=INITS, default="he", help="weight initialisation "
                       "(default: he; uniform is the documents' [-0.5, 0.5] baseline)")
    train.add_argument("--epochs", type=_int_at_least(1), default=400)
    train.add_argument("--batch-size", type=_batch_size, default=None, metavar="full|N",
                       help="full: one gradient step per epoch over all training images "
                            "(default); N: minibatches of N, reshuffled every epoch. N larger "
                            "than the training set means full batch")
    train.add_argument("--lr", type=_positive_float, default=0.1, help="learning rate (0.1)")
    train.add_argument("--threads", type=_int_at_least(1), default=None,
                       help="BLAS and numba threads (default: every core)")
    train.add_argument("--dtype", choices=list(DTYPES), default="float32")
    train.add_argument("--seed", type=_int_at_least(0), default=0,
                       help="seeds the validation split, the initialisation and the shuffling")
    train.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    train.add_argument("--data-dir", default=None,
                       help="directory holding the dataset's four IDX files (or a <dataset>/ "
                            "folder with them); default: $FASTMLP_DATA, the repository's data/, "
                            "the user cache, then system directories")
    train.add_argument("--val-fraction", type=_fraction, default=0.2,
                       help="share of the training images held out for validation (0.2)")
    train.add_argument("--eval-every", type=_int_at_least(0), default=0, metavar="K",
                       help="also measure test accuracy every K epochs (default: only at the "
                            "end)")
    train.add_argument("--out", type=_output_path, default=None, metavar="FILE",
                       help="write the configuration, summary and per-epoch history as JSON, or "
                            "as CSV when FILE ends in .csv (written atomically)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

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


def _run_train(args):
    from tqdm import tqdm

    from .config import TrainConfig, dataset_for

    config = TrainConfig(layers=tuple(args.layers), init=args.init, epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, dtype=args.dtype,
                         seed=args.seed, threads=args.threads, dataset=args.dataset,
                         val_fraction=args.val_fraction, eval_every=args.eval_every,
                         data_dir=args.data_dir)
    # Decompressing and checksumming the data releases the GIL, so it overlaps with importing
    # numba and loading the cached kernels: start-up is the longer of the two, not their sum.
    with ThreadPoolExecutor(1) as pool:
        loading = pool.submit(dataset_for, config)
        from .trainer import train
        dataset = loading.result()  # before the progress bar, so a data error prints alone
    with tqdm(total=config.epochs, unit="epoch", disable=args.quiet, file=sys.stderr,
              dynamic_ncols=True) as bar:
        def on_epoch(stats):
            bar.set_postfix(loss=f"{stats.train_loss:.4f}", train=_percent(stats.train_acc),
                            val=_percent(stats.val_acc),
                            samples_s=f"{stats.samples_per_s:,.0f}", refresh=False)
            bar.update()

        result = train(config, dataset, on_epoch=on_epoch)
    final = result.final
    print(f"val {_percent(final.val_acc)} | test {_percent(final.test_acc)} | "
          f"{len(result.history)} epochs in {result.wall_seconds:.1f} s "
          f"(training {result.train_seconds:.1f} s) | {result.samples_per_s:,.0f} samples/s")
    if args.out is not None:
        if args.out.suffix.lower() == ".csv":
            text = _history_csv(result)
        else:
            text = json.dumps(result.to_dict(), indent=1) + "\n"
        _write(args.out, text)


def _run_bench(args):
    from . import bench
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
                     log=lambda line: print(line, file=sys.stderr))
    print(bench.table(rows, peers))
    if args.profile:
        print(bench.profile_table(rows))
    outputs = [(args.json, lambda: bench.to_json(rows)),
               (args.csv, lambda: bench.to_csv(rows, peers)),
               (args.plot, lambda: bench.plot(rows))]
    for path, render in outputs:
        if path is not None:
            _write(path, render())


def _write(path, data):
    from .atomic import write_atomically
    try:
        write_atomically(path, data)
    except OSError as e:
        raise FastMLPError(f"cannot write {path}: {e.strerror or e}") from None


def _run_download(args):
    from .data import download_dataset
    print(download_dataset(args.dataset, args.dest))


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        {"train": _run_train, "bench": _run_bench,
         "download": _run_download}[args.command](args)
    except FastMLPError as e:
        print(f"fastmlp: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("fastmlp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
