"""SIGINT and SIGTERM from the command's first line to its exit: one line and 130 or 143, at any
moment, never a traceback.

The command line installs `handle` before it imports anything heavy (numpy, numba, Dask). The
first signal raises KeyboardInterrupt (SIGINT) or Terminated (SIGTERM), so that `with` blocks
close what they opened (clusters, temporary files) on the way out; the training loop and a
grid's loop put their own handlers in place while they run (stop after the step, let running
runs finish) and give this one back. Whatever exception unwinds after a signal is a
consequence of it, not a bug (numba or Dask may turn the KeyboardInterrupt into another), so
`received()` lets the command line report it as the interruption. A second signal while the
first unwinds ends the process at once, removing the temporary files of writes in progress.
"""
import os
import signal
import sys

from .exit import exit_now

SIGNALS = (signal.SIGINT, signal.SIGTERM)
WORDS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


class Terminated(BaseException):
    """SIGTERM outside training (whose loop stops at a step boundary instead): unwinds the
    command like Ctrl-C does, closing what it opened, and exits with status 143."""


_received = []  # the signals received since `handle` was installed, in order


def status(signum):
    """The exit status of a process a signal ended, as a shell reports it: 128 + its number."""
    return 128 + int(signum)


def line(signum):
    return f"fastmlp: {WORDS.get(signum, 'interrupted')}"


def report(signum=None):
    """Print the one line of the interruption by `signum` (default: the first signal received,
    else SIGINT) and return its exit status."""
    signum = signum or received() or signal.SIGINT
    print(line(signum), file=sys.stderr)
    return status(signum)


def exit_at_once(signum):
    """End the process now: the temporary files of atomic writes in progress removed, one line
    on stderr (written straight to the descriptor: Python's streams may be mid-write), and the
    signal's exit status."""
    from ..atomic import discard_pending  # not at start-up: this module loads before all else

    discard_pending()
    try:
        os.write(2, (line(signum) + "\n").encode())
    except OSError:
        pass
    os._exit(status(signum))


def _handle(signum, frame):
    if _received:  # a second signal while the first unwinds: do not wait for the unwinding
        exit_at_once(_received[0])
    _received.append(signum)
    if signum == signal.SIGTERM:
        raise Terminated
    raise KeyboardInterrupt


def handle():
    """Install the command line's handler of SIGINT and SIGTERM (in the main thread only: no
    other can); returns the handlers it replaced, for `restore`."""
    del _received[:]
    return {sig: signal.signal(sig, _handle) for sig in SIGNALS}


def restore(previous):
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    del _received[:]


def received():
    """The first signal received since `handle`, or None."""
    return _received[0] if _received else None


def at_once():
    """From now on a signal ends the process at once (the command is over: only its exit is
    left, with nothing to close)."""
    for sig in SIGNALS:
        signal.signal(sig, lambda signum, frame: exit_at_once(signum))


def run_command(command):
    """The console script: `command()` (which imports the command line and returns its exit
    status) run with this module's handler in place, then the process ended with that status."""
    handle()
    try:
        status = command()
    except (KeyboardInterrupt, Terminated):  # outside the command line's own try
        status = report()
    finally:
        at_once()  # the command is over: a signal now only cuts its exit short
    exit_now(status)
