"""A run from start to end: the epoch loop around a Session (session.py), with checkpoints,
resuming, the halving's rungs, Ctrl-C and SIGTERM, and the TrainResult it returns."""
import os
import shlex
import signal
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..data.dataset import Dataset
from ..data.load import load_dataset_for
from ..engine.model import MLP
from ..errors import InputError, InputTypeError, OutputFailed, TrainingInterrupted
from ..runtime.threads import thread_limits, threads_in_force
from ..settings import RUN_SETTINGS, RunOptions, TrainConfig, to_flags
from . import checkpoint
from .plan import check_data_fits
from .session import Session

# What each of train's arguments must be, and what to pass instead, for the one line that says
# so (the API's edge: a wrong type is refused here, not as an AttributeError deep inside).
EXPECTED = {
    "config": (TrainConfig, "a fastmlp.TrainConfig (e.g. TrainConfig(epochs=5); None for the "
                            "defaults)"),
    "dataset": (Dataset, "a fastmlp.Dataset from fastmlp.load_dataset(...), or None to load "
                         "the one config names (TrainConfig(dataset=..., data=...))"),
    "options": (RunOptions, "a fastmlp.RunOptions (e.g. RunOptions(threads=2)) or None"),
    "resume": (checkpoint.Checkpoint, "a checkpoint's path or None"),
    "initial": (MLP, "a fastmlp.MLP (a fitted model's) or None"),
}


def _checked(arguments):
    """train's arguments checked at its edge: a resume path loaded; a wrong type or value is
    one line naming the argument, what it got and what to pass."""
    if isinstance(arguments["resume"], (str, os.PathLike)):
        arguments["resume"] = checkpoint.load(arguments["resume"])
    for name, (kind, instead) in EXPECTED.items():
        value = arguments[name]
        if value is not None and not isinstance(value, kind):
            raise InputTypeError(f"train: {name} must be {instead}, got "
                                 f"{type(value).__name__} {_short(value)}")
    if arguments["on_epoch"] is not None and not callable(arguments["on_epoch"]):
        raise InputTypeError("train: on_epoch must be a function of each EpochStats, or None")
    for name in ("save_path", "interrupt_path"):
        if arguments[name] is not None and not isinstance(arguments[name], (str, os.PathLike)):
            raise InputTypeError(f"train: {name} must be a path or None, got "
                                 f"{type(arguments[name]).__name__} {_short(arguments[name])}")
    for name, least in (("checkpoint_every", 0), ("stop_after", 1)):
        value = arguments[name]
        if value is not None and (isinstance(value, bool) or not isinstance(
                value, (int, np.integer)) or value < least):
            raise InputError(f"train: {name} must be an integer >= {least}, got {value!r}")
    return arguments


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@contextmanager
def _stop_on_signals(trainer, handle=True):
    """While training, SIGINT and SIGTERM ask the trainer to stop after the current step;
    a second SIGINT interrupts at once. Only the main thread can take signals; elsewhere (or
    when not `handle`) this does nothing."""
    if not handle or threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum, frame):
        if trainer.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        trainer.stop_requested = True
        trainer.stop_signal = signum

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def train(config=None, dataset=None, on_epoch=None, *, options=None, save_path=None,
          checkpoint_every=0, resume=None, interrupt_path=None, max_memory=None,
          stop_after=None, handle_signals=True, plan=None, initial=None, resume_words=()):
    """Train an MLP as `config` says and return a TrainResult.

    dataset: from fastmlp.load_dataset (its test split may be None); loaded from config
    when omitted (a dataset read from files is first sized: one larger than memory is refused
    before it is loaded). options: RunOptions (threads, data directory). on_epoch: called
    with each EpochStats as it is made (the CLI's progress bar). save_path: where the model is
    written at the end, and every `checkpoint_every` epochs as a resumable checkpoint.
    resume: a checkpoint.Checkpoint to continue from (or its path); config defaults to its
    config (a changed number of epochs is the only change of config that makes sense).
    initial: an MLP whose weights the run starts from instead of its initialisation (a warm
    start).
    stop_after: end after this epoch, before config.epochs (a rung of successive halving), with
    the learning-rate schedule of config.epochs all the same, so that the run resumed from the
    checkpoint then written to save_path (its last weights, whatever the early stopping kept)
    ends bit for bit as one run straight through; the test accuracy is measured after that
    checkpoint is written, as a straight run measures it only at its end.
    SIGINT/SIGTERM stop training after the current step with TrainingInterrupted, having
    written a resumable checkpoint to interrupt_path (default: save_path) when there is one
    (unless handle_signals is False: a grid's loop handles them itself); its message ends with
    the command that resumes, with the run options and `resume_words` (the caller's outputs).
    A diverging run (stopping.diverged) stops with Diverged. A run that would need more
    memory than is available or `max_memory` bytes is refused with OutOfMemory (plan.py);
    `plan` is plan_for(config, dataset) when the caller has made it already (choosing the fast
    path scans the inputs).
    """
    arguments = _checked(dict(config=config, dataset=dataset, on_epoch=on_epoch,
                              options=options, resume=resume, initial=initial,
                              save_path=save_path, interrupt_path=interrupt_path,
                              checkpoint_every=checkpoint_every, stop_after=stop_after))
    resume = arguments["resume"]
    if config is None:
        config = resume.config if resume is not None else TrainConfig()
    options = RunOptions() if options is None else options
    if dataset is None:
        check_data_fits(config, options.data_dir, max_memory)
        dataset = load_dataset_for(config, options.data_dir)
    session = Session(config, dataset, options, max_memory, resume, plan, initial)
    config, trainer = session.config, session.trainer

    def command(path):
        """The command that resumes from `path`, as the user can paste it into a shell."""
        return shlex.join(["fastmlp", "train", "--resume", str(path),
                           *to_flags(options, RUN_SETTINGS), *resume_words])

    def stop(epoch):
        path = interrupt_path or save_path
        where = f"during epoch {epoch}" if trainer.position else f"after epoch {epoch}"
        signum = trainer.stop_signal or signal.SIGINT
        what = "terminated" if signum == signal.SIGTERM else "interrupted"
        if path is None:
            raise TrainingInterrupted(f"{what} {where}; nothing saved (no --save path)",
                                      signum=signum)
        failed = ""
        try:
            write_kept(session, path, command)
        except OutputFailed as e:
            if e.kept is None:
                raise
            failed, path = f"cannot write {e.path}; ", e.kept
        raise TrainingInterrupted(f"{what} {where}; {failed}checkpoint written to {path}; "
                                  f"resume with: {command(path)}", path, signum)

    # Overflow shows up as a non-finite loss, which ends the run with a clear message; numpy's
    # warnings from inside the matmuls would only repeat it less clearly.
    with thread_limits(options.threads), np.errstate(over="ignore", invalid="ignore"), \
            _stop_on_signals(trainer, handle_signals):
        in_force = threads_in_force()
        started = time.perf_counter()
        session.start()
        last = config.epochs if stop_after is None else min(stop_after, config.epochs)
        for epoch in range(session.epochs_done + 1, last + 1):
            stats = session.epoch()
            if stats is None:
                stop(epoch)
            if save_path is not None and checkpoint_every and epoch % checkpoint_every == 0:
                write_kept(session, save_path, command)
            if on_epoch is not None:
                on_epoch(stats)
            if session.early.stop:
                break
            if trainer.stop_requested and epoch < last:
                stop(epoch)
        rung = last < config.epochs and save_path is not None
        if rung:
            write_kept(session, save_path, command)
        result = session.finish(started, in_force)
    if save_path is not None and not rung:
        write_kept(session, save_path, command)
    return result


def write_kept(session, path, command):
    """Write the run's checkpoint to `path`; when that fails (a full disk, a vanished
    directory), write it to a file in another directory so the trained model is not lost, and
    raise OutputFailed saying where it is (its `kept`; None when every place failed) and, when
    epochs remain, the `command(kept)` that resumes from it."""
    try:
        session.write(path)
        return
    except OutputFailed as e:
        failure = e
    path = Path(path)
    previous = (f"; {path} still holds the checkpoint written before" if path.is_file()
                else "")
    for directory in fallback_directories(path):
        kept = directory / f"fastmlp-{os.getpid()}-{path.name}"
        try:
            session.write(kept)
        except OutputFailed:
            continue
        done, epochs = session.epochs_done, session.config.epochs
        more = (f"; training stopped there: resume with: {command(kept)}"
                if done < epochs and not session.early.stop else "")
        error = OutputFailed(f"{failure}; the model after epoch {done} was written to {kept} "
                             f"instead (move it where it belongs){previous}{more}")
        error.path, error.kept = path, kept
        raise error
    error = OutputFailed(f"{failure}; writing it elsewhere failed too{previous}")
    error.path, error.kept = path, None
    raise error


def fallback_directories(path):
    """Where a checkpoint goes when its own directory cannot take it: the temporary directory,
    the working directory, the home directory (each once, its own directory left out)."""
    seen = {path.parent.resolve()}
    for directory in (Path(tempfile.gettempdir()), Path.cwd(), Path.home()):
        if directory.resolve() not in seen:
            seen.add(directory.resolve())
            yield directory
