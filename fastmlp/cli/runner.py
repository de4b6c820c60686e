"""What `fastmlp experiments` and `fastmlp sweep` share: the options of where runs execute (this
process, an embedded Dask cluster, an existing scheduler), resuming from the record store, the
progress display, and the outcome every report is built from."""
import sys
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from ..errors import FastMLPError, TrainingInterrupted
from .options import at_least
from .progress import epoch_bar, percent, run_bar


def add_execution_options(parser):
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=at_least(0), default=None, metavar="N",
                       help="worker processes of the embedded Dask cluster, each running one "
                            "run at a time; 0 runs every run in this process, one after the "
                            "other (default: one per core, divided by --threads)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on an existing Dask cluster (tcp://HOST:8786) instead")
    where.add_argument("--scheduler-file", default=None, metavar="FILE",
                       help="run on the existing Dask cluster that wrote FILE "
                            "(dask scheduler --scheduler-file FILE)")
    parser.add_argument("--fresh", action="store_true",
                        help="run every run again, replacing the records of earlier commands "
                             "(default: finished runs recorded in OUT_DIR/runs are read back)")
    parser.add_argument("--dashboard", action="store_true",
                        help="serve the embedded cluster's Dask dashboard and print its address "
                             "(needs bokeh: pip install 'fastmlp[dashboard]')")


@dataclass
class Outcome:
    records: dict  # key -> ok record of every job (read back or run now)
    failed: list  # (job, error record) of the jobs that failed now
    complete: bool  # False when Ctrl-C stopped the grid
    resumed: int  # jobs read back from earlier commands
    cluster: dict  # where the runs ran: {"workers", "threads", "scheduler"}


def on_cluster(args):
    return args.scheduler is not None or args.scheduler_file is not None or args.workers != 0


def plan_threads(args):
    """(workers, threads per run): on a cluster one thread per run and one worker per core by
    default; in this process every core (as `fastmlp train`)."""
    from ..threads import default_threads

    if not on_cluster(args):
        return 0, args.threads
    threads = args.threads or 1
    workers = args.workers
    if workers is None:
        workers = max(1, default_threads() // threads)
    elif args.scheduler is None and args.scheduler_file is None and \
            workers * threads > default_threads():
        per_run = f"{threads} thread{'s' if threads > 1 else ''}"
        print(f"fastmlp: note: {workers} workers x {per_run} is more than the "
              f"{default_threads()} cores; the runs will take turns on them", file=sys.stderr)
    return workers, threads


class Executor:
    """Where a command's runs execute, kept open from call to call so that a sweep's rungs
    share one cluster (connected at the first call that has runs to do, closed on exit)."""

    def __init__(self, args, store):
        from ..settings import RunOptions

        self.args, self.store = args, store
        workers, threads = plan_threads(args)
        self.options = RunOptions(threads=threads, data_dir=args.data_dir)
        self.cluster = {"workers": workers, "threads": threads,
                        "scheduler": args.scheduler or args.scheduler_file}
        self.noted = set()  # workers already named for running with other BLAS threads
        self._stack = ExitStack()
        self._client = None

    def __enter__(self):
        self.store.create()
        return self

    def __exit__(self, *exc):
        self._stack.close()

    def client(self):
        from ..cluster import connect, workers_threads

        if self._client is None:
            args = self.args
            self._client = self._stack.enter_context(connect(
                self.cluster["workers"], self.cluster["threads"], args.scheduler,
                args.scheduler_file, args.dashboard))
            if args.dashboard and self._client.dashboard_link:
                print(f"fastmlp: dashboard at {self._client.dashboard_link}", file=sys.stderr)
            self.cluster["workers"] = workers_threads(self._client)
        return self._client

    def run(self, jobs):
        """Run every job not yet recorded in the store (all of them with --fresh), writing
        each record as its run ends; returns the Outcome."""
        keys = list(dict.fromkeys(j.key for j in jobs))  # one run per distinct configuration
        if self.args.fresh:
            self.store.remove(keys)
        records = self.store.finished(keys)
        resumed = len(records)
        todo = list({j.key: j for j in jobs if j.key not in records}.values())
        failed = []
        if resumed:
            print(f"fastmlp: {resumed} of {len(keys)} runs read back from "
                  f"{self.store.directory} (--fresh runs them again)", file=sys.stderr)

        def keep(job, record, bar):
            self.store.write(record)
            if record["status"] == "ok":
                records[job.key] = record
                _note_threads(record, self.options.threads, self.noted, bar)
            else:
                failed.append((job, record))
                bar.write(f"fastmlp: {job.label} failed: {record['error']}", file=sys.stderr)

        complete = True
        if todo and on_cluster(self.args):
            complete = _on_cluster(self.args.quiet, self.client(), todo, self.options, keep)
        elif todo:
            complete = _in_process(self.args.quiet, todo, self.options, keep)
        return Outcome(records, failed, complete, resumed, self.cluster)


def execute(args, experiments, seeds, store):
    """Run every (experiment, seed) not yet recorded in `store`: the Outcome."""
    from ..runs import plan_jobs

    with Executor(args, store) as executor:
        return executor.run(plan_jobs(experiments, seeds))


def _in_process(quiet, jobs, options, keep):
    from ..runs import run_in_process

    with epoch_bar(sum(j.epochs for j in jobs), quiet) as bar:
        def on_start(job):
            bar.set_description(job.label, refresh=False)

        def on_epoch(stats):
            bar.set_postfix(val=percent(stats.val_acc), refresh=False)
            bar.update()

        def on_interrupt():
            bar.write("fastmlp: interrupted: letting the running run finish (Ctrl-C again "
                      "abandons it)", file=sys.stderr)

        return run_in_process(jobs, options, on_start, on_epoch,
                              lambda job, record: keep(job, record, bar), on_interrupt)


def _on_cluster(quiet, client, jobs, options, keep):
    """Whether every job ran (False: Ctrl-C stopped the submitting)."""
    from ..cluster import run_on_cluster

    with run_bar(len(jobs), quiet) as bar:
        # Epoch events arrive on the client's event-loop thread, the rest on this one.
        running, failed, lock = {}, [], threading.Lock()

        def show():
            epochs = ", ".join(f"{j.label} e{e}" for j, e in running.values())
            bar.set_postfix_str(f"running {len(running)}, failed {len(failed)}"
                                + (f" | {epochs}" if epochs else ""), refresh=True)

        def on_start(job):
            with lock:
                running[job.key] = (job, 0)
                show()

        def on_epoch(job, event):
            with lock:
                if job.key in running:
                    running[job.key] = (job, event["epoch"])
                    show()

        def on_record(job, record):
            with lock:
                running.pop(job.key, None)
                if record["status"] != "ok":
                    failed.append(job)
                keep(job, record, bar)
                bar.update()
                show()

        def on_interrupt():
            bar.write(f"fastmlp: interrupted: letting the {len(running)} running runs "
                      "finish (Ctrl-C again abandons them)", file=sys.stderr)

        return run_on_cluster(client, jobs, options, on_start, on_epoch, on_record,
                              on_interrupt)


def _note_threads(record, asked, noted, bar):
    """One note per worker whose runs did not get the BLAS threads asked for (an external
    worker started without OPENBLAS_NUM_THREADS, say): its timings are not what they say."""
    blas = record["result"]["run"]["effective_threads"].get("blas")
    where = record.get("worker") or record.get("host")
    if asked is None or blas is None or blas == asked or where in noted:
        return
    noted.add(where)
    bar.write(f"fastmlp: note: {where} ran with {blas} BLAS threads, not {asked}; start workers "
              f"with OPENBLAS_NUM_THREADS={asked} NUMBA_NUM_THREADS={asked}", file=sys.stderr)


def can_plot():
    try:
        import matplotlib  # noqa: F401  (an optional extra: without it, no PNG)
    except ImportError:
        print("fastmlp: note: matplotlib is not installed, so no PNG will be written "
              "(pip install matplotlib)", file=sys.stderr)
        return False
    return True


def prepare(args, out_dir):
    """Check what can be checked before any run, create `out_dir`, say whether a PNG can be
    drawn: (its RecordStore, whether to plot)."""
    from ..records import RecordStore

    if args.scheduler_file is not None and not Path(args.scheduler_file).is_file():
        raise FastMLPError(f"scheduler file {args.scheduler_file} not found")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FastMLPError(f"cannot create {out_dir}: {e.strerror or e}") from None
    return RecordStore(out_dir), can_plot()


def run_grid(args, experiments, seeds, out_dir):
    """Create `out_dir`, say whether a PNG can be drawn, run the grid into its record store:
    (store, Outcome, the Runs that have a result, whether to plot)."""
    from ..runs import runs_from_records

    store, plot = prepare(args, out_dir)
    outcome = execute(args, experiments, seeds, store)
    runs = runs_from_records(experiments, seeds, outcome.records)
    if not runs:
        finish(outcome, seeds * len(experiments), store)
    return store, outcome, runs, plot


def finish(outcome, total, store):
    """After the reports are written: exit 130 when interrupted, 2 when runs failed."""
    missing = total - len(outcome.records)
    if not outcome.complete:
        raise TrainingInterrupted(
            f"interrupted: {len(outcome.records)} of {total} runs finished and are kept in "
            f"{store.directory}; run the same command again to run the other {missing}")
    if outcome.failed:
        job, record = outcome.failed[0]
        raise FastMLPError(f"{len(outcome.failed)} of {total} runs failed (error records in "
                           f"{store.directory}; the next command runs them again); first: "
                           f"{job.label}: {record['error']}")
