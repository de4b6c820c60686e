"""Does the Dask worker's sampling profiler (distributed.worker.profile, every 10 ms) slow the
runs? The mini grid's 8 runs on a 1-worker embedded cluster (fastmlp.cluster.connect), the
runs' own fit seconds summed, with the profiler on (Dask's default) and off, in turns; and in
this process.

    flock /tmp/fastmlp-cpu.lock python bench/worker_profiler.py
"""
import pathlib
import sys
import tempfile

import dask

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from dask_scaling import GRIDS  # noqa: E402

from fastmlp.cluster import connect  # noqa: E402
from fastmlp.grid import load_grid  # noqa: E402
from fastmlp.runs import plan_jobs, run_job  # noqa: E402
from fastmlp.settings import RunOptions  # noqa: E402


def main():
    path = pathlib.Path(tempfile.mkdtemp()) / "grid.toml"
    path.write_text(GRIDS["mini"])
    g = load_grid(path)
    jobs = plan_jobs(g.experiments, g.seeds)
    opts = RunOptions(threads=1)
    for _ in range(2):
        for label, enabled in (("worker, profiler on", True), ("worker, profiler off", False)):
            with dask.config.set({"distributed.worker.profile.enabled": enabled}):
                with connect(1, 1) as client:
                    # First a run to warm the worker (imports, kernels, data), then the grid.
                    client.submit(run_job, jobs[0], opts, pure=False).result()
                    fits = [client.submit(run_job, j, opts, pure=False).result()
                            ["result"]["summary"]["wall_seconds"] for j in jobs]
            print(f"{label}: fit {sum(fits):.1f} s", flush=True)
        fits = [run_job(j, opts)["result"]["summary"]["wall_seconds"] for j in jobs]
        print(f"this process: fit {sum(fits):.1f} s", flush=True)


if __name__ == "__main__":
    main()
