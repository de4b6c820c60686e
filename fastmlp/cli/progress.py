"""The progress bars of the commands that train (train, experiments, sweep) and how they write
an accuracy."""
import sys


def percent(value):
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _bar(total, quiet, initial, unit):
    from tqdm import tqdm

    # On stderr, so that stdout keeps only the results.
    return tqdm(total=total, initial=initial, unit=unit, disable=quiet, file=sys.stderr,
                dynamic_ncols=True)


def epoch_bar(total, quiet, initial=0):
    """A tqdm bar counting epochs."""
    return _bar(total, quiet, initial, "epoch")


def run_bar(total, quiet, initial=0):
    """A tqdm bar counting a grid's runs (its ETA is the runs' rate)."""
    return _bar(total, quiet, initial, "run")
