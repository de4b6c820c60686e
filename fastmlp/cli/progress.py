"""The progress bars of the commands that train (train, experiments, sweep) and how they write
an accuracy."""
import sys


def percent(value):
    return "n/a" if value is None else f"{100 * value:.2f}%"


class _Silent:
    """What a bar is with --quiet: the calls a command makes on a tqdm bar, doing nothing but
    `write`. tqdm is then not imported at all, which shortens start-up (docs/performance.md,
    "Start-up and exit")."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass

    def set_description(self, *args, **kwargs):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def set_postfix_str(self, *args, **kwargs):
        pass

    @staticmethod
    def write(text, file=None):
        print(text, file=file or sys.stdout)


def _bar(total, quiet, initial, unit):
    if quiet:
        return _Silent()
    from tqdm import tqdm

    # On stderr, so that stdout keeps only the results.
    return tqdm(total=total, initial=initial, unit=unit, file=sys.stderr, dynamic_ncols=True)


def epoch_bar(total, quiet, initial=0):
    """A tqdm bar counting epochs (a silent stand-in when quiet)."""
    return _bar(total, quiet, initial, "epoch")


def run_bar(total, quiet, initial=0):
    """A tqdm bar counting a grid's runs (its ETA is the runs' rate; silent when quiet)."""
    return _bar(total, quiet, initial, "run")
