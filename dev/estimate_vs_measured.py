"""The dry run's time estimate (Plan.estimate) against measured epochs, for the table of
docs/performance.md ("The dry run's time estimate"):

    python dev/estimate_vs_measured.py [--threads 2] [--epochs 3]

Each configuration is estimated (as `fastmlp train --dry-run` does), then trained for a few
epochs in the same process: the measured training time per epoch is the fastest of its epochs,
the whole run is TrainResult.wall_seconds (training and evaluation, data loading excluded).
"""
import argparse

from fastmlp.data.load import load_dataset
from fastmlp.runtime.threads import thread_limits
from fastmlp.settings import RunOptions, TrainConfig
from fastmlp.training.loop import train
from fastmlp.training.plan import plan_for

CONFIGS = [
    dict(layers=(10,)),
    dict(layers=(10,), batch_size=128),
    dict(layers=(128, 64, 32)),
    dict(layers=(128, 64, 32), batch_size=1024),
    dict(layers=(128, 64, 32), batch_size=128),
    dict(layers=(128, 64, 32), batch_size=128, optimizer="adam", lr=1e-3),
    dict(layers=(512, 256), batch_size=128, optimizer="momentum"),
    dict(layers=(512, 256), dtype="float64"),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    print("| configuration | training s/epoch: estimated | measured | whole run (training and "
          "evaluation): estimated s | measured s | estimate / measured |")
    print("| --- | --- | --- | --- | --- | --- |")
    data = {}
    for settings in CONFIGS:
        config = TrainConfig(epochs=args.epochs, **settings)
        if config.dtype not in data:
            data[config.dtype] = load_dataset("mnist", dtype=config.dtype)
        dataset = data[config.dtype]
        with thread_limits(args.threads):
            estimate = plan_for(config, dataset).estimate()
        result = train(config, dataset, options=RunOptions(threads=args.threads))
        batch = "full" if config.batch_size is None else config.batch_size
        print(f"| {list(config.layers)} batch {batch} {config.optimizer} {config.dtype} | "
              f"{estimate.train_seconds:.3f} | {min(e.seconds for e in result.history):.3f} | "
              f"{estimate.run_seconds:.2f} | {result.wall_seconds:.2f} | "
              f"{estimate.run_seconds / result.wall_seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
