"""A grid's runs: every (experiment, seed) as a Job keyed by its configuration, one Job run into
a record (the same function in this process and on a Dask worker), the in-process loop, and the
Runs the reports read back from the records."""
import dataclasses
import time
import traceback
from dataclasses import dataclass

from .data import load_dataset_for
from .errors import FastMLPError, TrainingInterrupted
from .records import FORMAT, RecordedResult, config_dict, run_key, versions, where
from .settings import RunOptions, TrainConfig


@dataclass(frozen=True)
class Job:
    experiment: str
    seed: int
    config: TrainConfig  # the experiment's, with this seed
    key: str  # records.run_key(config)

    @property
    def label(self):
        return f"{self.experiment} seed {self.seed}"

    @property
    def cost(self):
        """The run's relative cost, to start the longest runs first on a cluster (so that the
        last run to end is a short one): epochs x weights, with MNIST's 784 inputs and 10
        classes assumed, since only the order matters."""
        sizes = (784, *self.config.layers, 10)
        return self.config.epochs * sum(a * b for a, b in zip(sizes, sizes[1:]))


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
    key = (config.dataset, config.dtype, config.seed, config.val_fraction, data_dir)
    if key not in _LOADED:
        _LOADED.clear()  # let the previous split go before the next loads
        _LOADED[key] = load_dataset_for(config, data_dir)
    return _LOADED[key]


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def run_job(job, options, on_epoch=None):
    """Run `job` here (this process or a Dask worker): load its data from this machine's disk
    with the checksummed lookup, train, and return its record. A run that fails (divergence,
    data whose checksums differ, a bug) returns an error record; TrainingInterrupted and
    KeyboardInterrupt propagate."""
    from .trainer import train

    record = {"format": FORMAT, "key": job.key, "experiment": job.experiment, "seed": job.seed,
              "config": config_dict(job.config), **where(), "versions": versions(),
              "started": _now()}
    t0 = time.perf_counter()
    try:
        dataset = _dataset(job.config, options.data_dir)
        result = train(job.config, dataset, on_epoch=on_epoch, options=options)
    except TrainingInterrupted:
        raise
    except FastMLPError as e:
        record.update(status="error", error=str(e))
    except Exception as e:  # a bug: kept whole in the record, and the grid goes on
        record.update(status="error", error=f"{type(e).__name__}: {e}",
                      traceback=traceback.format_exc())
    else:
        record.update(status="ok", result=result.to_dict(), n_val=len(dataset.val.y),
                      n_test=len(dataset.test.y))
    record.update(finished=_now(), wall_seconds=time.perf_counter() - t0)
    return record


def lost_record(job, error):
    """The error record of a job that ended without a record of its own: its task failed on
    the cluster (a worker lost too often, a worker that could not import fastmlp)."""
    return {"format": FORMAT, "key": job.key, "experiment": job.experiment, "seed": job.seed,
            "config": config_dict(job.config), "status": "error",
            "error": f"{type(error).__name__}: {' '.join(str(error).split())}",
            "finished": _now()}


def run_in_process(jobs, options=None, on_start=None, on_epoch=None, on_record=None):
    """Run the jobs one after another in this process; on_record(job, record) as each ends.
    Returns False when SIGINT stopped the run in progress (the finished ones were handed over),
    True when every job ran."""
    options = RunOptions() if options is None else options
    for job in jobs:
        if on_start is not None:
            on_start(job)
        try:
            record = run_job(job, options, on_epoch)
        except TrainingInterrupted:
            return False
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
