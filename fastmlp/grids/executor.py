"""Where a grid's runs execute (this process, an embedded Dask cluster, an existing scheduler),
resumed from the record store, each record written as its run ends, and what happened told to
an Observer (the command line's Observer draws progress bars; from Python a grid is silent
unless given one)."""
import threading
from contextlib import ExitStack
from dataclasses import dataclass

from ..errors import RunsFailed, TrainingInterrupted
from ..runtime.threads import default_threads
from ..settings import RunOptions
from .address import DEFAULT_TIMEOUT, connect_timeout, scheduler_address


class Observer:
    """What a grid tells whoever shows its progress. Every method does nothing here; a subclass
    overrides what it shows. Methods about runs may be called from a Dask client's thread."""

    def note(self, text):
        """A line worth telling the user (runs read back, a rung starting, "note: ..." where
        something may not be what the user expects)."""

    def batch_started(self, jobs, on_cluster):
        """A batch of runs starts: in this process one after the other, or on a cluster."""

    def batch_ended(self):
        """The batch is over (every run ended, or Ctrl-C stopped it)."""

    def run_started(self, job):
        pass

    def run_epoch(self, job, epoch, val_acc):
        pass

    def run_ended(self, job, record):
        """A run's record ("status" "ok" or "error") has been written."""

    def interrupted(self, running):
        """The first Ctrl-C: the `running` runs finish, no other starts."""


@dataclass(frozen=True)
class Execution:
    """Where a grid runs. workers: processes of the embedded Dask cluster, each running one run
    at a time (0: every run in this process, one after the other; None: one per core, divided
    by the threads); scheduler / scheduler_file: an existing Dask cluster instead; threads: BLAS
    and numba threads per run (None: 1 on a cluster, every core in this process); fresh: run
    every run again instead of reading back the records of earlier commands; dashboard: serve
    the embedded cluster's dashboard; scheduler_timeout: seconds an existing scheduler has to
    answer."""
    workers: int | None = None
    threads: int | None = None
    scheduler: str | None = None
    scheduler_file: str | None = None
    data_dir: str | None = None
    fresh: bool = False
    dashboard: bool = False
    scheduler_timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self):
        # Checked here, before any run or connection, for the command line and Python alike.
        if self.scheduler is not None:
            object.__setattr__(self, "scheduler", scheduler_address(self.scheduler))
        object.__setattr__(self, "scheduler_timeout", connect_timeout(self.scheduler_timeout))

    @property
    def on_cluster(self):
        return self.scheduler is not None or self.scheduler_file is not None or \
            self.workers != 0

    @property
    def external(self):
        return self.scheduler is not None or self.scheduler_file is not None

    def resolved(self, observer):
        """(workers, threads per run): on a cluster one thread per run and one worker per core
        by default; in this process every core (as `fastmlp train`)."""
        if not self.on_cluster:
            return 0, self.threads
        threads = self.threads or 1
        workers = self.workers
        if workers is None:
            workers = max(1, default_threads() // threads)
        elif not self.external and workers * threads > default_threads():
            per_run = f"{threads} thread{'s' if threads > 1 else ''}"
            observer.note(f"note: {workers} workers x {per_run} is more than the "
                          f"{default_threads()} cores; the runs will take turns on them")
        return workers, threads


@dataclass
class Outcome:
    records: dict  # key -> ok record of every job (read back or run now)
    failed: list  # (job, error record) of the jobs that failed now
    complete: bool  # False when Ctrl-C stopped the grid
    resumed: int  # jobs read back from earlier commands
    cluster: dict  # where the runs ran: {"workers", "threads", "scheduler"}

    def raise_for_problems(self, total, store):
        """TrainingInterrupted when Ctrl-C stopped the grid, RunsFailed when runs failed."""
        missing = total - len(self.records)
        if not self.complete:
            raise TrainingInterrupted(
                f"interrupted: {len(self.records)} of {total} runs finished and are kept in "
                f"{store.directory}; run the same command again to run the other {missing}")
        if self.failed:
            job, record = self.failed[0]
            raise RunsFailed(f"{len(self.failed)} of {total} runs failed (error records in "
                               f"{store.directory}; the next command runs them again); first: "
                               f"{job.label}: {record['error']}")


class Executor:
    """Runs batches of jobs where `execution` says, kept open from batch to batch so that a
    sweep's rungs share one cluster (connected at the first batch that has runs to do, closed
    on exit)."""

    def __init__(self, execution, store, observer=None):
        self.execution, self.store = execution, store
        self.observer = observer or Observer()
        workers, threads = execution.resolved(self.observer)
        self.options = RunOptions(threads=threads, data_dir=execution.data_dir)
        self.cluster = {"workers": workers, "threads": threads,
                        "scheduler": execution.scheduler or execution.scheduler_file}
        self.noted = set()  # workers already named for running with other BLAS threads
        self._stack = ExitStack()
        self._client = None

    def __enter__(self):
        self.store.create()
        return self

    def __exit__(self, *exc):
        self._stack.close()

    def client(self):
        from .cluster import connect, workers_threads

        if self._client is None:
            e = self.execution
            self._client = self._stack.enter_context(connect(
                self.cluster["workers"], self.cluster["threads"], e.scheduler,
                e.scheduler_file, e.dashboard, e.scheduler_timeout))
            if e.dashboard and self._client.dashboard_link:
                self.observer.note(f"dashboard at {self._client.dashboard_link}")
            self.cluster["workers"] = workers_threads(self._client)
        return self._client

    def run(self, jobs):
        """Run every job not yet recorded in the store (all of them when fresh), writing each
        record as its run ends; returns the Outcome."""
        keys = list(dict.fromkeys(j.key for j in jobs))  # one run per distinct configuration
        if self.execution.fresh:
            self.store.remove(keys)
        records = self.store.finished(keys)
        if self.store.stale:
            why = next(iter(self.store.stale.values()))
            self.observer.note(f"{len(self.store.stale)} records in {self.store.directory} are "
                               f"not read back but run again ({why})")
        resumed = len(records)
        todo = list({j.key: j for j in jobs if j.key not in records}.values())
        failed = []
        lock = threading.Lock()  # a cluster's records arrive on its client's thread
        if resumed:
            self.observer.note(f"{resumed} of {len(keys)} runs read back from "
                               f"{self.store.directory} (--fresh, or fresh=True, runs them again)")

        def keep(job, record):
            with lock:
                self.store.write(record)
                if record["status"] == "ok":
                    records[job.key] = record
                    self._note_threads(record)
                else:
                    failed.append((job, record))
                self.observer.run_ended(job, record)

        complete = True
        if todo:
            on_cluster = self.execution.on_cluster
            self.observer.batch_started(todo, on_cluster)
            try:
                complete = self._on_cluster(todo, keep) if on_cluster else \
                    self._in_process(todo, keep)
            finally:
                self.observer.batch_ended()
        return Outcome(records, failed, complete, resumed, self.cluster)

    def _in_process(self, jobs, keep):
        from .runs import run_in_process

        current = {}

        def started(job):
            current["job"] = job
            self.observer.run_started(job)

        return run_in_process(
            jobs, self.options, started,
            lambda stats: self.observer.run_epoch(current["job"], stats.epoch, stats.val_acc),
            keep, lambda: self.observer.interrupted(1))

    def _on_cluster(self, jobs, keep):
        from .cluster import run_on_cluster

        running = set()

        def started(job):
            running.add(job.key)
            self.observer.run_started(job)

        def ended(job, record):
            running.discard(job.key)
            keep(job, record)

        return run_on_cluster(
            self.client(), jobs, self.options, started,
            lambda job, event: self.observer.run_epoch(job, event["epoch"], event["val_acc"]),
            ended, lambda: self.observer.interrupted(len(running)))

    def _note_threads(self, record):
        """One note per worker whose runs did not get the BLAS threads asked for (an external
        worker started without OPENBLAS_NUM_THREADS, say): its timings are not what they say."""
        asked = self.options.threads
        blas = record["result"]["run"]["effective_threads"].get("blas")
        where = record.get("worker") or record.get("host")
        if asked is None or blas is None or blas == asked or where in self.noted:
            return
        self.noted.add(where)
        self.observer.note(f"note: {where} ran with {blas} BLAS threads, not {asked}; start "
                           f"workers with OPENBLAS_NUM_THREADS={asked} "
                           f"NUMBA_NUM_THREADS={asked}")
