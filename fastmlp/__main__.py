"""`python -m fastmlp` and the `fastmlp` console script (pyproject.toml names `console`).

SIGINT and SIGTERM are handled from this module's first lines, before the command line, numpy,
numba or Dask are imported: a Ctrl-C at any moment ends in one line and status 130 (143 for
SIGTERM), never in a traceback from the middle of an import. Only what runs before Python
reaches this module (the interpreter's own start-up) is out of reach."""
from .runtime.signals import run_command


def _command_line():
    from .cli import main  # the heavy imports start here, under the handler

    return main(handle_signals=False)


def console():
    run_command(_command_line)


if __name__ == "__main__":
    console()
