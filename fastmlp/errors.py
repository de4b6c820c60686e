"""The error types fastmlp raises for problems a user can fix.

The command line turns every FastMLPError into one line on stderr and its `exit_status`: 2 for a
usage error (a bad flag or setting, a bad file named on the command line), 1 for a failure
while running (RunFailure: divergence, data failing its checksum, out of memory, failed grid
runs), 130 or 143 for a run that SIGINT or SIGTERM stopped. Anything else is a bug and keeps its
traceback. Where scikit-learn's conventions name an exception (ValueError for bad input,
NotFittedError), fastmlp's type inherits from it too, so code written for scikit-learn catches
it.
"""
import signal

EXIT_FAILURE = 1
EXIT_USAGE = 2


class FastMLPError(Exception):
    """A problem with the user's input, files or settings; the message is one line."""

    exit_status = EXIT_USAGE


class InputError(FastMLPError, ValueError):
    """Arrays given to the Python API that cannot be what they claim (wrong shape, NaN, labels
    outside the classes the model knows); a ValueError, as scikit-learn raises for bad input."""


class InputTypeError(FastMLPError, TypeError):
    """Arrays of the wrong kind for the Python API (sparse matrices, Python objects that are not
    numbers); a TypeError, as scikit-learn raises for them."""


class DataError(FastMLPError):
    """A dataset file is missing, unreadable or not what it claims to be."""


class RunFailure(FastMLPError):
    """A run that was asked for correctly but failed while running (exit status 1)."""

    exit_status = EXIT_FAILURE


class ChecksumMismatch(RunFailure, DataError):
    """Data files whose SHA-256 is not the one expected (the registry's, or the one a saved
    model recorded): corrupt or other files."""


class DownloadFailed(RunFailure, DataError):
    """No mirror gave a dataset file with the right checksum."""


class OutOfMemory(RunFailure):
    """A run needs more memory than is available or allowed (plan.py), or an allocation failed;
    refused before training, in one line naming the need and the limit."""


class Diverged(RunFailure):
    """The training loss became non-finite or exploded (training/stopping.py)."""


class RunsFailed(RunFailure):
    """Runs of a grid or sweep ended with errors (their records say which)."""


class OutputFailed(RunFailure):
    """An output file could not be written (a full disk, a vanished directory)."""


class TrainingInterrupted(FastMLPError):
    """SIGINT or SIGTERM stopped training at a step boundary; `path` is the checkpoint written
    then, if any. The command line exits with 128 + the signal's number: 130 for SIGINT (Ctrl-C),
    143 for SIGTERM."""

    def __init__(self, message, path=None, signum=signal.SIGINT):
        super().__init__(message)
        self.path = path
        self.signum = signum

    @property
    def exit_status(self):
        return 128 + int(self.signum)
