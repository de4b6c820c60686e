"""Grids on a real Dask cluster on loopback: a scheduler and two single-threaded workers started
as `python -m dask ...` processes, the command line pointed at them with --scheduler-file.

Runs equal the in-process runs bit for bit at the same thread count; a SIGKILLed worker's run is
run again elsewhere and ends with the same history; a deleted record is the only run redone; a
failing run leaves an error record while the others finish; data whose checksums differ fail
with an error record; Ctrl-C lets running runs finish and exits 130; a successive-halving
sweep (rungs resumed from checkpoints the client keeps) equals the same sweep in process."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fastmlp.cli import main
from fastmlp.grids.cluster import EPOCH_TOPIC, connect, thread_environment
from fastmlp.grids.experiments import load_grid
from fastmlp.grids.runs import plan_jobs, run_job
from fastmlp.settings import RunOptions
from tests.helpers import cli_argv, run_cli, write_dataset

distributed = pytest.importorskip("distributed")

START_TIMEOUT = 60  # seconds for the scheduler file and both workers; a fixture that waits
# longer has a broken cluster, and says so with the logs

# Four small runs (two seeds): full batch and minibatches, 3 epochs each.
GRID = """\
seeds = 2
[defaults]
epochs = 3
init = "he"
[[experiment]]
name = "full"
layers = [16]
[[experiment]]
name = "mini"
layers = [8, 4]
batch_size = 8192
"""

# Runs long enough (a second or more of epochs at one thread) to be caught mid-run: workers
# send an epoch event at most every EPOCH_EVENT_SECONDS, and always the last epoch's.
SLOW_EPOCHS = 48
SLOW_GRID = f"""\
seeds = 1
[defaults]
epochs = {SLOW_EPOCHS}
init = "he"
[[experiment]]
name = "slow-a"
layers = [16]
[[experiment]]
name = "slow-b"
layers = [16, 8]
"""
THIRD = '[[experiment]]\nname = "slow-c"\nlayers = [12]\n'


TIMINGS = ("seconds", "samples_per_s")  # the only fields of an epoch that may differ


def _tail(path, lines=30):
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _fail_with_logs(root, what):
    logs = "\n".join(f"--- {p.name}\n{_tail(p)}" for p in sorted(root.glob("*.log")))
    pytest.fail(f"the test cluster did not start: {what}\n{logs}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """{"file": the scheduler file, "client": a Client of the test, "root": the log folder}."""
    root = tmp_path_factory.mktemp("cluster")
    scheduler_file = root / "scheduler.json"
    env = {**os.environ, **thread_environment(1)}
    processes = []

    def start(name, *args):
        with open(root / f"{name}.log", "wb") as log:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "dask", *map(str, args)], stdout=log,
                stderr=subprocess.STDOUT, env=env, start_new_session=True))

    client = None
    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", 0, "--no-dashboard",
              "--scheduler-file", scheduler_file)
        deadline = time.monotonic() + START_TIMEOUT
        while not scheduler_file.is_file():
            if time.monotonic() > deadline or processes[0].poll() is not None:
                _fail_with_logs(root, "no scheduler file")
            time.sleep(0.1)
        for i in range(2):
            start(f"worker-{i}", "worker", "--scheduler-file", scheduler_file, "--nthreads", 1,
                  "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}")
        client = distributed.Client(scheduler_file=str(scheduler_file), timeout="20s")
        try:
            client.wait_for_workers(2, timeout=max(1, deadline - time.monotonic()))
        except TimeoutError:
            _fail_with_logs(root, "fewer than 2 workers registered")
        yield {"file": scheduler_file, "client": client, "root": root}
    finally:
        if client is not None:
            client.close()
        for process in processes:  # the whole group: a worker's nanny and its worker process
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


def write_grid(directory, text):
    path = directory / "grid.toml"
    path.write_text(text)
    return path


def on_cluster(cluster, grid, out, *args):
    return run_cli("experiments", grid, "--scheduler-file", cluster["file"], "--out-dir", out,
                   "--quiet", *args)


def records(out):
    found = {}
    for path in (out / "runs").glob("*.json"):
        record = json.loads(path.read_text())
        found[(record["experiment"], record["seed"])] = record
    return found


def numbers(history):
    """An epoch history without its timings: what must be equal bit for bit."""
    return [{k: v for k, v in epoch.items() if k not in TIMINGS} for epoch in history]


def in_process(grid, threads=1):
    """{(experiment, seed): history} of the grid's runs in this process."""
    g = load_grid(grid)
    results = {}
    for job in plan_jobs(g.experiments, g.seeds):
        record = run_job(job, RunOptions(threads=threads))
        assert record["status"] == "ok", record.get("error")
        results[(job.experiment, job.seed)] = numbers(record["result"]["history"])
    return results


@pytest.fixture(scope="module")
def grid_run(cluster, tmp_path_factory):
    """GRID run once on the cluster at one thread: the grid file, its output and the process."""
    root = tmp_path_factory.mktemp("grid")
    grid = write_grid(root, GRID)
    proc = on_cluster(cluster, grid, root / "out", "--threads", 1)
    assert proc.returncode == 0, proc.stderr
    return {"grid": grid, "out": root / "out", "proc": proc}


def test_cluster_runs_equal_in_process_runs_bit_for_bit(grid_run):
    proc = grid_run["proc"]
    found = records(grid_run["out"])
    expected = in_process(grid_run["grid"])
    assert set(found) == set(expected)
    for run, record in found.items():
        assert record["status"] == "ok"
        assert numbers(record["result"]["history"]) == expected[run], run
        assert record["result"]["run"]["effective_threads"] == {"blas": 1, "numba": 1}
        assert record["worker"].startswith("tcp://127.0.0.1:")
        assert {"fastmlp", "numpy", "numba", "distributed"} <= set(record["versions"])
    assert len({r["worker"] for r in found.values()}) == 2  # both workers took runs
    report = json.loads((grid_run["out"] / "experiments.json").read_text())
    assert [(r["experiment"], r["seed"]) for r in report["runs"]] == [
        ("full", 0), ("full", 1), ("mini", 0), ("mini", 1)]
    assert "Dask cluster at" in proc.stdout


def _worker_running(client, key):
    for address, keys in client.processing().items():
        if key in keys:
            return address
    return None


def test_a_sigkilled_workers_run_is_run_again_with_the_same_history(cluster, tmp_path):
    client = cluster["client"]
    grid = write_grid(tmp_path, SLOW_GRID)
    start = len(client.get_events(EPOCH_TOPIC))
    proc = subprocess.Popen(cli_argv("experiments", grid, "--scheduler-file", cluster["file"],
                                     "--out-dir", tmp_path / "out", "--quiet", "--threads", 1),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        events = [e[1] for e in client.get_events(EPOCH_TOPIC)[start:]
                  if 2 <= e[1]["epoch"] < SLOW_EPOCHS]  # a run in the middle of its epochs
        victim = events and _worker_running(client, f"fastmlp-{events[0]['key']}")
        if victim:
            break
        assert time.monotonic() < deadline and proc.poll() is None, "no run to interrupt"
        time.sleep(0.05)
    key = events[0]["key"]
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)  # the worker process; its nanny starts a new one
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    found = {r["key"]: r for r in records(tmp_path / "out").values()}
    assert found[key]["status"] == "ok" and found[key]["worker"] != victim  # run elsewhere
    g = load_grid(grid)
    job = next(j for j in plan_jobs(g.experiments, g.seeds) if j.key == key)
    expected = run_job(job, RunOptions(threads=1))["result"]["history"]
    assert numbers(found[key]["result"]["history"]) == numbers(expected)
    assert len(found) == 2 and {r["status"] for r in found.values()} == {"ok"}
    assert client.wait_for_workers(2, timeout=30) is None  # the nanny brought one back


def test_a_deleted_record_is_the_only_run_done_again(cluster, grid_run, tmp_path):
    grid, out = grid_run["grid"], tmp_path / "out"
    shutil.copytree(grid_run["out"], out)
    paths = sorted((out / "runs").glob("*.json"))
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in paths}
    deleted = paths[0]
    old = json.loads(deleted.read_text())
    deleted.unlink()
    proc = on_cluster(cluster, grid, out)
    assert proc.returncode == 0, proc.stderr
    assert "3 of 4 runs read back" in proc.stderr
    for p in paths[1:]:
        assert (p.stat().st_mtime_ns, p.read_bytes()) == before[p]  # not written again
    new = json.loads(deleted.read_text())
    assert new["started"] >= old["started"]
    assert numbers(new["result"]["history"]) == numbers(old["result"]["history"])
    report = json.loads((out / "experiments.json").read_text())
    assert len(report["runs"]) == 4 and report["missing_runs"] == []


def test_a_failing_run_leaves_an_error_record_and_the_others_finish(cluster, tmp_path):
    grid = write_grid(tmp_path, GRID + '[[experiment]]\nname = "diverges"\nlayers = [16]\n'
                                       'lr = 1e6\n')
    out = tmp_path / "out"
    proc = on_cluster(cluster, grid, out, "--seeds", 1)
    assert proc.returncode == 1  # a failure while running
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("fastmlp: diverges seed 0 failed: training diverged")
    assert lines[-1].startswith("fastmlp: error: 1 of 3 runs failed")
    found = records(out)
    assert found[("diverges", 0)]["status"] == "error"
    assert "diverged" in found[("diverges", 0)]["error"]
    assert {found[(n, 0)]["status"] for n in ("full", "mini")} == {"ok"}
    assert "diverges seed 0" in proc.stdout  # the table names the run it lacks
    report = json.loads((out / "experiments.json").read_text())
    assert [r["experiment"] for r in report["runs"]] == ["full", "mini"]


def test_data_whose_checksums_differ_is_an_error_record(cluster, tmp_path):
    # Files under the MNIST names that are not MNIST: each worker's checksummed lookup refuses.
    images = np.zeros((20, 28, 28), np.uint8)
    labels = np.arange(20, dtype=np.uint8) % 10
    write_dataset(tmp_path / "data", {
        "train-images-idx3-ubyte": images, "train-labels-idx1-ubyte": labels,
        "t10k-images-idx3-ubyte": images, "t10k-labels-idx1-ubyte": labels})
    grid = write_grid(tmp_path, GRID)
    proc = on_cluster(cluster, grid, tmp_path / "out", "--seeds", 1, "--only", "full",
                      "--data-dir", tmp_path / "data")
    assert proc.returncode == 1
    record = records(tmp_path / "out")[("full", 0)]
    assert record["status"] == "error"
    assert "sha256 of the uncompressed content is" in record["error"]
    assert "Traceback" not in proc.stderr


def test_ctrl_c_lets_running_runs_finish_and_exits_130(cluster, tmp_path):
    client = cluster["client"]
    grid = write_grid(tmp_path, SLOW_GRID + THIRD)
    start = len(client.get_events(EPOCH_TOPIC))
    proc = subprocess.Popen(cli_argv("experiments", grid, "--scheduler-file", cluster["file"],
                                     "--out-dir", tmp_path / "out", "--quiet", "--threads", 1),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len({e[1]["key"] for e in client.get_events(EPOCH_TOPIC)[start:]}) < 2:
        assert time.monotonic() < deadline and proc.poll() is None, "the runs did not start"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "letting the 2 running runs finish" in stderr
    assert "interrupted: 2 of 3 runs finished" in stderr
    found = records(tmp_path / "out")
    assert sorted(found) == [("slow-a", 0), ("slow-b", 0)]  # the third was never submitted
    assert "slow-c seed 0" in stdout  # the report of what finished names what did not


HALVING_SPEC = """\
seeds = 1
[fixed]
layers = [8]
epochs = 3
batch_size = 8192
optimizer = "momentum"
schedule = "cosine"
init = "he"
[space]
lr = [0.02, 0.1, 0.5]
[halving]
min_epochs = 1
"""


def test_a_halving_sweep_on_the_cluster_equals_it_in_process(cluster, tmp_path, capsys):
    spec = tmp_path / "sweep.toml"
    spec.write_text(HALVING_SPEC)
    for where, out in ((["--scheduler-file", cluster["file"]], "cluster"),
                       (["--workers", 0], "here")):  # in this process: its imports are loaded
        status = main(["sweep", spec, *where, "--threads", 1, "--quiet", "--out-dir",
                       tmp_path / out])
        assert status == 0, capsys.readouterr().err
    capsys.readouterr()
    there, here = (
        {p.stem: json.loads(p.read_text()) for p in (tmp_path / d / "runs").glob("*.json")}
        for d in ("cluster", "here"))
    assert sorted(there) == sorted(here) and len(there) == 3 + 1  # rungs at 1 and 3 epochs
    for key, record in there.items():
        assert numbers(record["result"]["history"]) == numbers(here[key]["result"]["history"])
    assert sum(r.get("rung", {}).get("resumed_from") == 1 for r in there.values()) == 1
    assert (tmp_path / "cluster" / "checkpoints").is_dir()  # written by the client


def _worker_environment():
    keys = ("MALLOC_TRIM_THRESHOLD_", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    return {key: os.environ.get(key) for key in keys}


def test_the_embedded_clusters_workers_get_the_thread_variables_and_no_malloc_threshold():
    """Dask's nanny would set MALLOC_TRIM_THRESHOLD_ (which fixes glibc's mmap threshold:
    cluster.py); the embedded cluster's workers run without it, with --threads' variables."""
    before = dict(os.environ)
    with connect(1, 2) as client:
        (seen,) = client.run(_worker_environment).values()
    assert seen == {"MALLOC_TRIM_THRESHOLD_": None, "NUMBA_NUM_THREADS": "2",
                    "OPENBLAS_NUM_THREADS": "2"}
    assert dict(os.environ) == before  # the nannies wrote into this process's environment


def test_the_embedded_cluster_listens_on_the_loopback_only():
    """No other machine can send the embedded cluster work or read its state: the scheduler,
    the workers and the scheduler's HTTP server (health, metrics) listen on 127.0.0.1."""
    with connect(1, 1) as client:
        scheduler = client.cluster.scheduler
        addresses = [scheduler.address, *client.scheduler_info()["workers"]]
        http = [sock.getsockname()[0] for sock in scheduler.http_server._sockets.values()]
    assert all(a.startswith("tcp://127.0.0.1:") for a in addresses), addresses
    assert http and set(http) == {"127.0.0.1"}, http
