"""`fastmlp bench`: training samples/s for every combination of the options, beside the
machine's GEMM peak measured in the same run."""
import argparse
import sys

from ..atomic import write_atomically
from ..errors import FastMLPError
from ..presets import PRESETS
from ..settings import BY_NAME
from . import add_command
from .options import add_setting, at_least, default_text, distinct_files, output_path

# Bench's own learning rate for Adam, which diverges at the table's default.
ADAM_LR = 1e-3


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be an accuracy in (0, 1], got {text}")
    return value


def add_parser(subparsers):
    from ..bench.peers import OPTIMIZERS as PEER_OPTIMIZERS

    parser = add_command(
        subparsers, "bench",
        description="Measure training samples/s (best of --repeats epochs after a warm-up "
                    "epoch) for every combination of the options below, beside the GEMM peak "
                    "of this machine measured in the same run.")
    add_setting(parser, "layers", action="append", default=None,
                help="hidden layers; repeat the option for several architectures",
                shown=default_text("layers"))
    add_setting(parser, "batch_size", nargs="+", default=[None, 128],
                help="batch sizes to compare")
    add_setting(parser, "dtype", nargs="+", default=[BY_NAME["dtype"].default], metavar="DTYPE",
                help=f"precisions to compare ({', '.join(BY_NAME['dtype'].constraint.names())})")
    add_setting(parser, "threads", nargs="+", default=None, metavar="N",
                help="thread counts to compare", shown="1 and every core")
    add_setting(parser, "blas", nargs="+", default=["auto"],
                help="GEMM library settings to compare (auto: each matmul on the faster "
                     "library, timed on this machine)")
    # Every peer must implement the optimizer, so the choice is the peers', not the table's.
    add_setting(parser, "optimizer", choices=PEER_OPTIMIZERS,
                default=BY_NAME["optimizer"].default,
                help="the optimizer of every measured trainer, peers included")
    add_setting(parser, "lr", default=None,
                shown=f"{default_text('lr')}, or {ADAM_LR:g} for adam")
    parser.add_argument("--repeats", type=at_least(1), default=5,
                        help="timed epochs per measurement, the best counts (default: 5)")
    parser.add_argument("--peers", action="store_true",
                        help="also time PyTorch (if installed) and a plain-NumPy trainer on "
                             "the same configurations, each in its own process")
    parser.add_argument("--peer-runs", type=at_least(1), default=1, metavar="N",
                        help="run each peer in N processes and count its best (default: 1); "
                             "a peer's speed can vary from one process to the next")
    parser.add_argument("--profile", action="store_true",
                        help="break each measured epoch into phases: batch gather, matmuls, "
                             "fused kernels, loss, update")
    race = parser.add_argument_group(
        "time to accuracy (--to-accuracy): whole processes per seed, until a target accuracy")
    race.add_argument("--to-accuracy", type=_fraction, metavar="X",
                      help="instead of samples/s: the whole-process time until the recipe "
                           "first reaches accuracy X (e.g. 0.98), checked after every epoch "
                           "(the checks are not charged), over --seeds seeds; with --peers "
                           "also PyTorch eager, torch.compile and scikit-learn")
    race.add_argument("--metric", choices=("test", "val"), default="test",
                      help="the accuracy the target is of (default: test)")
    race.add_argument("--seeds", type=at_least(1), default=5, metavar="N",
                      help="seeds 0..N-1, each in its own process (default: 5)")
    race.add_argument("--peer-seeds", type=at_least(1), metavar="N",
                      help="seeds 0..N-1 for the peers (default: --seeds); torch.compile "
                           "alone takes ~30 s a process")
    race.add_argument("--preset", choices=sorted(PRESETS), help="the recipe: a preset")
    race.add_argument("--recipe", nargs=argparse.REMAINDER, default=[], metavar="TRAIN FLAGS",
                      help="the recipe as `fastmlp train` flags (beside or instead of "
                           "--preset); takes every word after it, so give it last")
    parser.add_argument("--json", type=output_path, metavar="FILE")
    parser.add_argument("--csv", type=output_path, metavar="FILE")
    parser.add_argument("--plot", type=output_path, metavar="FILE.png",
                        help="throughput against thread count; with --to-accuracy, accuracy "
                             "against whole-process time (needs matplotlib)")
    return parser


def run(args):
    from .. import plots
    from ..bench import tables, throughput
    from ..bench.peers import PEERS
    from ..runtime.threads import default_threads, usable_threads

    distinct_files([("--json", args.json), ("--csv", args.csv), ("--plot", args.plot)])
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401  (checked before an hour of measuring, not after)
        except ImportError:
            raise FastMLPError("--plot needs matplotlib: pip install matplotlib") from None
    if args.to_accuracy is not None:
        return run_race(args)
    if args.preset or args.recipe:
        raise FastMLPError("--preset and --recipe go with --to-accuracy")
    threads = args.threads or sorted({1, default_threads()})
    # A run never uses more threads than cores (threads.usable_threads): a row must say what ran.
    if any(usable_threads(t) < t for t in threads):
        used = sorted({usable_threads(t) for t in threads})
        print(f"fastmlp: note: --threads {' '.join(map(str, threads))} asks for more than the "
              f"{default_threads()} cores this process may use; measuring "
              f"{' '.join(map(str, used))}", file=sys.stderr)
        threads = used
    peers = PEERS if args.peers else ()
    default_lr = ADAM_LR if args.optimizer == "adam" else BY_NAME["lr"].default
    rows = throughput.run(args.layers or [list(BY_NAME["layers"].default)], args.batch_size,
                          args.dtype, threads, repeats=args.repeats, peers=peers,
                          peer_runs=args.peer_runs, profile=args.profile,
                          optimizer=args.optimizer, lr=args.lr or default_lr,
                          blas_options=args.blas,
                          log=lambda line: print(line, file=sys.stderr))
    print(tables.table(rows, peers))
    if args.profile:
        print(tables.profile_table(rows))
    outputs = [(args.json, lambda: tables.to_json(rows)),
               (args.csv, lambda: tables.to_csv(rows, peers)),
               (args.plot, lambda: plots.throughput_png(rows))]
    for path, render in outputs:
        if path is not None:
            write_atomically(path, render())


def race_recipe(args):
    """The TrainConfig of --preset and --recipe, read by `fastmlp train`'s own parser."""
    from . import build_parser
    from .train import configure

    words = ["train", *(["--preset", args.preset] if args.preset else []), *args.recipe]
    parsed = build_parser("train").parse_args(words)
    if getattr(parsed, "resume", None) or getattr(parsed, "out", None):
        raise FastMLPError("--recipe takes training settings, not --resume or outputs")
    return configure(parsed)[0]


def run_race(args):
    from .. import plots
    from ..bench import race
    from ..runtime.threads import usable_threads

    if args.layers or args.profile or args.csv:
        raise FastMLPError("with --to-accuracy, give the recipe as --preset or --recipe "
                           "(train flags), not --layers; --profile and --csv do not apply")
    if args.threads and len(args.threads) > 1:
        raise FastMLPError("--to-accuracy runs at one thread count: give one --threads")
    config = race_recipe(args)
    threads = usable_threads(args.threads[0] if args.threads else None)
    contestants = ("fastmlp", *race.PEER_NAMES) if args.peers else ("fastmlp",)
    seeds = {"fastmlp": args.seeds,
             **{peer: args.peer_seeds or args.seeds for peer in race.PEER_NAMES}}
    runs = race.race(config, {c: seeds[c] for c in contestants}, threads,
                     log=lambda line: print(line, file=sys.stderr))
    rows = race.summarize(runs, args.to_accuracy, args.metric)
    print(race.table(rows, config, args.to_accuracy, args.metric))
    title = f"time to {args.to_accuracy:.1%} {args.metric} accuracy ({threads} threads)"
    outputs = [(args.json, lambda: race.to_json(runs, rows, config, args.to_accuracy,
                                                args.metric)),
               (args.plot, lambda: plots.race_png(runs, args.to_accuracy, args.metric, title))]
    for path, render in outputs:
        if path is not None:
            write_atomically(path, render())
