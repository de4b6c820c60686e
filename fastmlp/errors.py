"""The error types fastmlp raises for problems a user can fix.

The command line turns every FastMLPError into one line on stderr and exit status 2; anything
else is a bug and keeps its traceback.
"""


class FastMLPError(Exception):
    """A problem with the user's input, files or settings; the message is one line."""


class DataError(FastMLPError):
    """A dataset file is missing, unreadable or not what it claims to be."""


class OutOfMemory(FastMLPError):
    """A run needs more memory than is available or allowed (plan.py), or an allocation failed;
    refused before training, in one line naming the need and the limit."""


class TrainingInterrupted(FastMLPError):
    """SIGINT or SIGTERM stopped training at a step boundary; `path` is the checkpoint written
    then, if any. The command line exits with status 130 for it."""

    def __init__(self, message, path=None):
        super().__init__(message)
        self.path = path
