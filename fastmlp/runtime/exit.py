"""Ending a process whose work is done without the interpreter's teardown."""
import os
import sys


def exit_now(code):
    """End the process with status `code`, skipping the interpreter's teardown: unloading
    numba, llvmlite and the thread pools takes about half a second after every run that
    trained (docs/performance.md, "Start-up and exit"). By then every file is written and
    closed (atomically) and every cluster closed by its `with`; only the standard streams need
    flushing."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader gone away, or a stream already closed
            pass
    os._exit(code)
