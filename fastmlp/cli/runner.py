"""What `fastmlp experiments` and `fastmlp sweep` share: the flags of where runs execute, and
the progress bars that show a grid as it runs (grids.executor.Observer)."""
import sys

from ..grids.address import DEFAULT_TIMEOUT
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
    parser.add_argument("--scheduler-timeout", type=float, default=DEFAULT_TIMEOUT,
                        metavar="SECONDS",
                        help="how long an existing scheduler has to answer before the command "
                             "gives up (default: %(default)g)")
    parser.add_argument("--fresh", action="store_true",
                        help="run every run again, replacing the records of earlier commands "
                             "(default: finished runs recorded in OUT_DIR/runs are read back)")
    parser.add_argument("--dashboard", action="store_true",
                        help="serve the embedded cluster's Dask dashboard and print its address "
                             "(needs bokeh: pip install 'fastmlp[dashboard]')")


def execution(args):
    """The grids.Execution the flags ask for."""
    from ..grids.executor import Execution

    return Execution(workers=args.workers, threads=args.threads, scheduler=args.scheduler,
                     scheduler_file=args.scheduler_file, data_dir=args.data_dir,
                     fresh=args.fresh, dashboard=args.dashboard,
                     scheduler_timeout=args.scheduler_timeout)


def progress(quiet):
    """An Observer drawing a grid's progress on stderr: in this process, a bar of epochs
    named after the running run; on a cluster, a bar of runs with the running ones beside it."""
    from ..grids.executor import Observer

    class Progress(Observer):
        def __init__(self):
            self.bar, self.on_cluster, self.running, self.failed = None, False, {}, 0

        def note(self, text):
            self.write(f"fastmlp: {text}")

        def write(self, line):
            if self.bar is None:
                print(line, file=sys.stderr)
            else:
                self.bar.write(line, file=sys.stderr)

        def batch_started(self, jobs, on_cluster):
            self.on_cluster, self.running, self.failed = on_cluster, {}, 0
            self.bar = (run_bar(len(jobs), quiet) if on_cluster else
                        epoch_bar(sum(j.epochs for j in jobs), quiet)).__enter__()

        def batch_ended(self):
            self.bar.__exit__(None, None, None)
            self.bar = None

        def run_started(self, job):
            if self.on_cluster:
                self.running[job.key] = (job, 0)
                self._show()
            else:
                self.bar.set_description(job.label, refresh=False)

        def run_epoch(self, job, epoch, val_acc):
            if not self.on_cluster:
                self.bar.set_postfix(val=percent(val_acc), refresh=False)
                self.bar.update()
            elif job.key in self.running:
                self.running[job.key] = (job, epoch)
                self._show()

        def run_ended(self, job, record):
            if record["status"] != "ok":
                self.failed += 1
                self.write(f"fastmlp: {job.label} failed: {record['error']}")
            if self.on_cluster:
                self.running.pop(job.key, None)
                self.bar.update()
                self._show()

        def interrupted(self, running):
            self.write("fastmlp: interrupted: letting the running run finish (Ctrl-C again "
                       "abandons it)" if not self.on_cluster else
                       f"fastmlp: interrupted: letting the {running} running runs finish "
                       "(Ctrl-C again abandons them)")

        def _show(self):
            epochs = ", ".join(f"{j.label} e{e}" for j, e in self.running.values())
            self.bar.set_postfix_str(f"running {len(self.running)}, failed {self.failed}"
                                     + (f" | {epochs}" if epochs else ""), refresh=True)

    return Progress()
