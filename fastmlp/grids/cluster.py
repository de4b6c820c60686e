"""A grid's runs on Dask distributed: the embedded LocalCluster or an existing scheduler, one task
per run through the futures API, and the client-side loop that streams records to disk as runs
finish, survives lost workers and stops gracefully on Ctrl-C.

Each worker runs one run at a time (--nthreads 1): BLAS limits are per process (threadpoolctl
cannot give two threads of one process different limits), so a run's --threads is the whole
worker's BLAS and numba thread count, set in the worker's environment before it imports numpy.
Workers load their own data from their own disk with the checksummed lookup; nothing large
travels: a task is a Job (a frozen TrainConfig) and its result a record of a few hundred kB.
"""
import logging
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

import dask
import distributed
from distributed.diagnostics.plugin import WorkerPlugin

from ..errors import FastMLPError
from .address import DEFAULT_TIMEOUT, scheduler_address, scheduler_file_address
from .runs import Interrupts, lost_record, run_job

EPOCH_TOPIC = "fastmlp-epoch"
# At most two epoch events a second per run: a [10] run's epochs take tens of milliseconds,
# and one event each would crowd the scheduler.
EPOCH_EVENT_SECONDS = 0.5
# Beyond a connection's timeout, how long to let Dask report its own error before giving up.
GRACE_SECONDS = 1
LOOPBACK_ANY_PORT = "127.0.0.1:0"
TRACKER_QUIET = "ignore::UserWarning:multiprocessing.resource_tracker"
# Dask's housekeeping, slowed down for the embedded cluster: its event loops (scheduler, nannies
# and client in this process) would otherwise take CPU from the runs. Work stealing has nothing
# to do: no more tasks are in flight than worker threads. The workers' statistical profiler is
# off: it samples the running task's stack from the worker's event loop, taking the GIL from
# the run (docs/performance.md, "Runs in Dask workers").
QUIET = {"distributed.admin.tick.interval": "1s",
         "distributed.admin.system-monitor.interval": "5s",
         "distributed.worker.memory.monitor-interval": "1s",
         "distributed.scheduler.work-stealing": False,
         "distributed.worker.profile.enabled": False}


# Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers (to hand freed memory back to
# the OS sooner). Setting it also switches off glibc's dynamic mmap threshold, so every
# allocation above 128 kB becomes a fresh mmap (page faults, zeroing) and its free a munmap.
# Without it, workers allocate as a plain process does (docs/performance.md, "Runs in Dask
# workers"); a run's big arrays (the dataset split) are mmap'd and returned on free either way.
# None unsets a variable in the nanny's config.
MALLOC_ENVIRONMENT = {"MALLOC_TRIM_THRESHOLD_": None}


def thread_environment(threads):
    """What a worker process's environment sets before numpy and numba load: its BLAS pools
    and numba's pool at `threads` (dask's Nanny sets the BLAS ones to 1, not numba's)."""
    value = str(threads)
    return {"OMP_NUM_THREADS": value, "OPENBLAS_NUM_THREADS": value, "MKL_NUM_THREADS": value,
            "NUMBA_NUM_THREADS": value}


@contextmanager
def connect(workers, threads, scheduler=None, scheduler_file=None, dashboard=False,
            timeout=DEFAULT_TIMEOUT):
    """A distributed.Client: to the scheduler at `scheduler` (address) or in `scheduler_file`,
    answering within `timeout` seconds, or to an embedded LocalCluster of `workers` single-task
    worker processes whose runs use `threads` BLAS and numba threads each. Closed (and the
    cluster shut down) on exit."""
    if scheduler is not None or scheduler_file is not None:
        address = (scheduler_address(scheduler) if scheduler is not None else
                   scheduler_file_address(scheduler_file))
        with _reach(address, timeout) as client:
            yield client
        return
    if dashboard:
        try:
            import bokeh  # noqa: F401  (the dashboard's optional extra)
        except ImportError:
            raise FastMLPError("--dashboard needs bokeh: pip install 'fastmlp[dashboard]'"
                               ) from None
    # multiprocessing's resource tracker (a process of its own, started with this one's -W
    # options) warns of the semaphores of a cluster whose start-up a Ctrl-C cut short, after
    # the command's one line: the process is ending, nothing is leaked.
    if TRACKER_QUIET not in sys.warnoptions:
        sys.warnoptions.append(TRACKER_QUIET)
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}),
               **MALLOC_ENVIRONMENT, **thread_environment(threads)}
    saved = os.environ.copy()  # the nannies (in this process) write environ into ours
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ, **QUIET}):
            # The scheduler serves HTTP (health, metrics) even without the dashboard, on 8787
            # of every interface unless told: a free port of the loopback, always, like the
            # scheduler and the workers themselves.
            cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=LOOPBACK_ANY_PORT if dashboard else None,
                silence_logs=logging.ERROR,
                scheduler_kwargs={"dashboard_address": LOOPBACK_ANY_PORT})
        with cluster, distributed.Client(cluster) as client:
            client.register_plugin(_IgnoreSigint(), name="fastmlp-ignore-sigint")
            yield client
    finally:
        os.environ.clear()
        os.environ.update(saved)


class _IgnoreSigint(WorkerPlugin):
    """A worker plugin of the embedded cluster: its workers share the terminal's process group,
    so Ctrl-C reaches them too; they ignore it and the client decides (let running runs
    finish, or cancel them). Registered on every worker, restarted ones included."""

    def setup(self, worker):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _reach(address, timeout):
    """A Client of the scheduler at `address`, or FastMLPError within `timeout` seconds (and a
    little more). Dask's own timeout does not bound every peer (one that accepts and stays
    silent, or answers in another protocol, can hold the handshake for minutes), so the
    connection is made in a thread this one stops waiting for; a client that arrives after
    that is closed there."""
    outcome, lock = {}, threading.Lock()

    def attempt():
        try:
            with dask.config.set({"distributed.comm.timeouts.connect": f"{timeout}s"}):
                client = distributed.Client(address, timeout=f"{timeout}s")
        except Exception as e:  # whatever Dask makes of a peer that is no scheduler
            outcome["error"] = e
            return
        with lock:
            outcome["client"] = client
            late = outcome.get("abandoned", False)
        if late:
            client.close()

    thread = threading.Thread(target=attempt, name="fastmlp-connect", daemon=True)
    thread.start()
    thread.join(timeout + GRACE_SECONDS)
    with lock:
        outcome["abandoned"] = True
        if "client" in outcome:
            return outcome["client"]
    error = outcome.get("error")
    why = (f"no answer as a Dask scheduler within {timeout:g} s" if error is None else
           " ".join(str(error).split()) or type(error).__name__)
    raise FastMLPError(f"cannot reach the Dask scheduler at {address}: {why} "
                       f"(--scheduler-timeout sets the wait)")


def workers_threads(client):
    """The number of tasks the cluster runs at once (its workers' threads)."""
    return sum(client.nthreads().values())


def _remote(job, options):
    """The task: run `job` on this worker, with epoch events for the client's progress line."""
    worker = distributed.get_worker()
    last = [0.0]

    def on_epoch(stats):
        now = time.monotonic()
        if now - last[0] >= EPOCH_EVENT_SECONDS or stats.epoch == job.config.epochs:
            last[0] = now
            worker.log_event(EPOCH_TOPIC, {"key": job.key, "epoch": stats.epoch,
                                           "val_acc": stats.val_acc})

    record = run_job(job, options, on_epoch)
    record["worker"] = worker.address
    return record


def run_on_cluster(client, jobs, options, on_start=None, on_epoch=None, on_record=None,
                   on_interrupt=None):
    """Run the jobs as Dask tasks, the longest first, as many in flight as the cluster has
    worker threads (counted again as each run ends, so workers that join later get work);
    on_record(job, record) on this side as each ends, in the order they end. A worker lost
    mid-run has its task run again from the start elsewhere (the same history: runs are
    deterministic); a task that lost its worker too often (distributed.scheduler.
    allowed-failures) becomes an error record.
    on_epoch(job, event) gets the workers' epoch events ({"epoch", "val_acc"}).
    Returns False when Ctrl-C stopped the submitting, True when every job ran."""
    by_key = {job.key: job for job in jobs}
    if on_epoch is not None:
        def handle(event):
            message = event[1]
            job = by_key.get(message.get("key"))
            if job is not None:
                on_epoch(job, message)
        client.subscribe_topic(EPOCH_TOPIC, handle)
    # The longest first (popped from the end), the grid's order among equals: with the
    # shipped grid, a 400-epoch [128, 64, 32] run started last would run alone at the end.
    waiting = sorted(reversed(jobs), key=lambda job: job.cost)
    running = distributed.as_completed()
    submitted = {}

    def submit():
        while waiting and running.count() < max(1, workers_threads(client)):
            job = waiting.pop()
            future = client.submit(_remote, job, options, key=f"fastmlp-{job.key}",
                                   pure=False, retries=0)
            submitted[future.key] = job
            running.add(future)
            if on_start is not None:
                on_start(job)

    with Interrupts(on_interrupt or (lambda: None)) as interrupts:
        try:
            submit()
            for future in running:
                job = submitted[future.key]
                try:
                    record = future.result()
                except Exception as e:  # KilledWorker, or a worker that could not unpickle
                    record = lost_record(job, e)
                future.release()
                if on_record is not None:
                    on_record(job, record)
                if not interrupts.requested:
                    submit()
        except KeyboardInterrupt:
            client.cancel(list(running.futures))
            raise
        finally:
            if on_epoch is not None:
                client.unsubscribe_topic(EPOCH_TOPIC)
    return not interrupts.requested
