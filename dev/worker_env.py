"""Why do runs train slower inside a Dask worker? The same runs (a grid of
dev/dask_scaling.py, one warm-up run first) timed in a plain child process and inside the
worker of a 1-worker embedded cluster (fastmlp.grids.cluster.connect), under different
environments, in turns; each row gives the runs' own fit seconds summed and the page faults and
context switches of the process that ran them (getrusage deltas over the grid), then what a run
sees (environment variables, thread pools, affinity, switch interval). docs/performance.md
("Runs in Dask workers") has the figures.

    python dev/worker_env.py --grid mini --seeds 2 --repeats 2

Modes: process (this machine's environment); +malloc (Dask's MALLOC_TRIM_THRESHOLD_=65536);
+worker-env (that and the worker's *_NUM_THREADS=1); a worker with Dask's default nanny
environment, the same without MALLOC_TRIM_THRESHOLD_ (what the embedded cluster does), and
that with Dask's statistical profiler on (the embedded cluster turns it off).
"""
import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
from unittest import mock

import dask

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from dask_scaling import GRIDS  # noqa: E402

from fastmlp.grids.experiments import load_grid  # noqa: E402
from fastmlp.grids.runs import plan_jobs, run_job  # noqa: E402
from fastmlp.settings import RunOptions  # noqa: E402

MALLOC = {"MALLOC_TRIM_THRESHOLD_": "65536"}
THREADS_1 = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
             "NUMBA_NUM_THREADS": "1"}


def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {"minflt": r.ru_minflt, "majflt": r.ru_majflt, "nvcsw": r.ru_nvcsw,
            "nivcsw": r.ru_nivcsw, "cpu": r.ru_utime + r.ru_stime}


def run_grid(jobs, opts):
    """The warm-up run, then the grid's: (fit seconds summed, rusage deltas over the grid)."""
    run_job(jobs[0], opts)
    before = usage()
    fit = sum(run_job(j, opts)["result"]["summary"]["wall_seconds"] for j in jobs)
    after = usage()
    return {"fit": fit, **{k: after[k] - before[k] for k in before}}


def environment():
    """What a run sees: the variables that matter and the thread pools."""
    import threading

    import numba

    from fastmlp.runtime.threads import threads_in_force
    keys = ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
            "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_THREADING_LAYER")
    return {"env": {k: os.environ.get(k) for k in keys}, "pools": threads_in_force(),
            "affinity": sorted(os.sched_getaffinity(0)), "switch": sys.getswitchinterval(),
            "threads": threading.active_count(), "layer": numba.config.THREADING_LAYER,
            "profiler": dask.config.get("distributed.worker.profile.enabled")}


def jobs_of(grid, seeds):
    path = pathlib.Path(tempfile.mkdtemp()) / "grid.toml"
    path.write_text(GRIDS[grid])
    g = load_grid(path)
    return plan_jobs(g.experiments, seeds)


def child(grid, seeds):
    out = run_grid(jobs_of(grid, seeds), RunOptions(threads=1))
    print(json.dumps({**out, "where": environment()}))


def in_child(grid, seeds, extra):
    env = {**os.environ, **extra}
    done = subprocess.run([sys.executable, __file__, "--child", "--grid", grid, "--seeds",
                           str(seeds)], env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.splitlines()[-1])


def in_worker(grid, seeds, environ, profile=False):
    from fastmlp.grids import cluster
    # connect() sets cluster.QUIET over the caller's config: the profiler is switched there.
    quiet = {**cluster.QUIET, "distributed.worker.profile.enabled": profile}
    malloc = mock.patch.dict(cluster.MALLOC_ENVIRONMENT, clear=True)  # environ decides
    with mock.patch.dict(cluster.QUIET, quiet), malloc, \
            dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        with cluster.connect(1, 1) as client:
            out = client.submit(run_grid, jobs_of(grid, seeds), RunOptions(threads=1),
                                pure=False).result()
            where = client.submit(environment, pure=False).result()
    return {**out, "where": where}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=GRIDS, default="mini")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--modes", nargs="+", default=None, help="a subset of the modes, by name")
    args = parser.parse_args()
    if args.child:
        return child(args.grid, args.seeds)
    g, n = args.grid, args.seeds
    modes = {
        "process": lambda: in_child(g, n, {}),
        "process+malloc": lambda: in_child(g, n, MALLOC),
        "process+worker-env": lambda: in_child(g, n, {**MALLOC, **THREADS_1}),
        "worker (dask default env)": lambda: in_worker(g, n, {**MALLOC, **THREADS_1}),
        "worker without malloc": lambda: in_worker(g, n, THREADS_1),
        "worker without malloc, profiler on": lambda: in_worker(g, n, THREADS_1, profile=True),
    }
    chosen = args.modes or list(modes)
    for _ in range(args.repeats):
        for name in chosen:
            r = modes[name]()
            print(f"{name:36s} fit {r['fit']:6.2f} s  cpu {r['cpu']:6.2f} s  minflt "
                  f"{r['minflt']:8d}  vcsw {r['nvcsw']:7d}  ivcsw {r['nivcsw']:6d}  "
                  f"{json.dumps(r['where'])}", flush=True)


if __name__ == "__main__":
    main()
