"""The progress bar of the commands that train (train, experiments) and how they write an
accuracy."""
import sys


def percent(value):
    return "n/a" if value is None else f"{100 * value:.2f}%"


def epoch_bar(total, quiet, initial=0):
    """A tqdm bar counting epochs on stderr, so that stdout keeps only the results."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="epoch", disable=quiet, file=sys.stderr,
                dynamic_ncols=True)
