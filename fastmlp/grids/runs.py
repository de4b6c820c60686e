"""A grid's runs: every (experiment, seed) as a Job keyed by its configuration, one Job run into
a record (the same function in this process and on a Dask worker), the in-process loop, and the
Runs the reports read back from the records."""
import dataclasses
import signal
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ..data.load import load_dataset_for
from ..errors import FastMLPError, TrainingInterrupted
from ..settings import RunOptions, TrainConfig
from .records import FORMAT, RecordedResult, config_dict, run_key, versions, where


@dataclass(frozen=True)
class Job:
    experiment: str
    seed: int
    config: TrainConfig  # the experiment's, with this seed
    key: str  # records.run_key(config), with "-eN" for a rung that stops at epoch N
    # Successive halving (halving.py): train epochs start+1..until of the run (None: to the
    # end), going on from `checkpoint` (the bytes of the checkpoint at epoch `start`; None:
    # from scratch, as when it is lost: the same numbers, only slower).
    until: int | None = None
    start: int = 0
    checkpoint: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def label(self):
        to = "" if self.until is None else f" (to epoch {self.until})"
        return f"{self.experiment} seed {self.seed}{to}"

    @property
    def stop(self):
        return self.config.epochs if self.until is None else self.until

    @property
    def epochs(self):
        """The epochs this job trains."""
        return self.stop - (self.start if self.checkpoint is not None else 0)

    @property
    def cost(self):
        """The run's relative cost, to start the longest runs first on a cluster (so that the
        last run to end is a short one): epochs x weights, with MNIST's 784 inputs and 10
        classes assumed, since only the order matters."""
        sizes = (784, *self.config.layers, 10)
        return self.epochs * sum(a * b for a, b in zip(sizes, sizes[1:]))


@dataclass
class Run:
    experiment: str
    seed: int
    result: object  # a TrainResult, or a records.RecordedResult
    n_val: int  # validation and test sizes: the result keeps only the training size
    n_test: int


def plan_jobs(experiments, seeds):
    """Every experiment once per seed 0..seeds-1, seeds the outer loop: the split depends on the
    seed only, so consecutive runs share it (one split loaded at a time, in a process or on a
    worker)."""
    jobs = []
    for seed in range(seeds):
        for e in experiments:
            config = dataclasses.replace(e.config, seed=seed)
            jobs.append(Job(e.name, seed, config, run_key(config)))
    return jobs


# One split per process, kept from run to run: consecutive runs with the same seed share it.
_LOADED = {}


def _dataset(config, data_dir):
    """The split `config` trains on, loaded once for consecutive runs that share it; a dataset
    larger than memory is refused (with the memory plan's line) before it is loaded."""
    key = (config.dataset, config.data, config.label_column, config.image_size,
           config.standardize, config.dtype, config.seed, config.val_fraction, data_dir)
    if key not in _LOADED:
        from ..training.plan import check_data_fits

        _LOADED.clear()  # let the previous split go before the next loads
        check_data_fits(config, data_dir)
        _LOADED[key] = load_dataset_for(config, data_dir)
    return _LOADED[key]


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def run_job(job, options, on_epoch=None, signals=True):
    """Run `job` here (this process or a Dask worker): load its data from this machine's disk
    with the checksummed lookup, train, and return its record. A run that fails (divergence,
    data whose checksums differ, a bug) returns an error record; TrainingInterrupted and
    KeyboardInterrupt propagate. A rung's job (until set) returns the checkpoint it stopped at
    as bytes under "checkpoint" (RecordStore.write keeps them beside the record).
    signals: whether SIGINT and SIGTERM stop training (train's handling); a grid in this
    process leaves them to its own loop, which lets the run finish."""
    from ..training import checkpoint
    from ..training.loop import train

    record = {"format": FORMAT, "key": job.key, "experiment": job.experiment, "seed": job.seed,
              "config": config_dict(job.config), **where(), "versions": versions(),
              "started": _now()}
    if job.until is not None or job.checkpoint is not None:
        record["rung"] = {"epochs": job.stop, "resumed_from": job.stop - job.epochs}
    t0 = time.perf_counter()
    try:
        dataset = _dataset(job.config, options.data_dir)
        resume = None if job.checkpoint is None else checkpoint.loads(job.checkpoint, job.label)
        with tempfile.TemporaryDirectory(prefix="fastmlp-rung-") as scratch:
            save = None if job.until is None else Path(scratch) / "rung.npz"
            result = train(job.config, dataset, on_epoch=on_epoch, options=options,
                           resume=resume, stop_after=job.until, save_path=save,
                           handle_signals=signals)
            if save is not None:
                record["checkpoint"] = save.read_bytes()
    except TrainingInterrupted:
        raise
    except FastMLPError as e:
        record.update(status="error", error=str(e))
    except Exception as e:  # a bug: kept whole in the record, and the grid goes on
        record.update(status="error", error=f"{type(e).__name__}: {e}",
                      traceback=traceback.format_exc())
    else:
        record.update(status="ok", result=result.to_dict(), n_val=len(dataset.val.y),
                      n_test=0 if dataset.test is None else len(dataset.test.y))
    record.update(finished=_now(), wall_seconds=time.perf_counter() - t0)
    return record


def lost_record(job, error):
    """The error record of a job that ended without a record of its own: its task failed on
    the cluster (a worker lost too often, a worker that could not import fastmlp)."""
    return {"format": FORMAT, "key": job.key, "experiment": job.experiment, "seed": job.seed,
            "config": config_dict(job.config), "status": "error",
            "error": f"{type(error).__name__}: {' '.join(str(error).split())}",
            "finished": _now()}


class Interrupts:
    """While a grid's loop runs (here or on a cluster): the first SIGINT asks it to stop
    starting runs and let running runs finish; a second one raises KeyboardInterrupt (the
    running runs are abandoned). Only the main thread can take signals; elsewhere this does
    nothing."""

    def __init__(self, on_first):
        self.requested = False
        self.on_first = on_first

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.on_first()

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def run_in_process(jobs, options=None, on_start=None, on_epoch=None, on_record=None,
                   on_interrupt=None):
    """Run the jobs one after another in this process; on_record(job, record) as each ends.
    The first SIGINT lets the run in progress finish and starts no other (on_interrupt() is
    called); a second one abandons it (KeyboardInterrupt), as on a cluster. Returns False when
    SIGINT stopped the grid before its end, True when every job ran."""
    options = RunOptions() if options is None else options
    with Interrupts(on_interrupt or (lambda: None)) as interrupts:
        for job in jobs:
            if interrupts.requested:
                return False
            if on_start is not None:
                on_start(job)
            record = run_job(job, options, on_epoch, signals=False)
            if on_record is not None:
                on_record(job, record)
    return True


def runs_from_records(experiments, seeds, records):
    """The Runs the reports read, in the grid's order (experiment, then seed), from {key: ok
    record}; runs without a record are left out (an interrupted grid reports what finished)."""
    runs = []
    for e in experiments:
        for seed in range(seeds):
            record = records.get(run_key(dataclasses.replace(e.config, seed=seed)))
            if record is not None:
                runs.append(Run(e.name, seed, RecordedResult(record["result"]),
                                record["n_val"], record["n_test"]))
    return runs
