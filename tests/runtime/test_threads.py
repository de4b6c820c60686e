"""Thread counts: more threads than cores are clamped with a note, and a run records the BLAS and
numba threads really in force."""
import json

import numba

from fastmlp.runtime.threads import (
    PARALLEL_MIN_ROWS,
    default_threads,
    kernel_threads,
    thread_limits,
    threads_in_force,
    usable_threads,
)
from tests.helpers import run_cli


def _numba(threads):
    return min(threads, numba.config.NUMBA_NUM_THREADS)  # numba's pool size caps it


def test_more_threads_than_cores_are_clamped():
    cores = default_threads()
    assert usable_threads(None) == cores
    assert usable_threads(1) == 1
    assert usable_threads(cores + 1000) == cores
    with thread_limits(cores + 1000) as used:
        assert used == cores
        assert threads_in_force() == {"blas": cores, "numba": _numba(cores)}
    with thread_limits(1):
        assert threads_in_force() == {"blas": 1, "numba": 1}


def test_kernel_threads_run_small_batches_on_one_thread_and_a_heavy_kernel_on_all():
    with thread_limits(2):
        run = numba.get_num_threads()
        with kernel_threads(PARALLEL_MIN_ROWS):
            assert numba.get_num_threads() == run
        with kernel_threads(PARALLEL_MIN_ROWS - 1):
            assert numba.get_num_threads() == 1
            with kernel_threads(64, min_rows=64):  # the run's threads again, then back to one
                assert numba.get_num_threads() == run
            assert numba.get_num_threads() == 1
            with kernel_threads(63, min_rows=64):
                assert numba.get_num_threads() == 1
        assert numba.get_num_threads() == run


def test_the_cli_notes_the_clamp_and_records_the_threads_in_force(tmp_path):
    out = tmp_path / "run.json"
    proc = run_cli("train", "--threads", "1000", "--epochs", "1", "--layers", "16", "--quiet",
                   "--out", out)
    assert proc.returncode == 0, proc.stderr
    cores = default_threads()
    note = [line for line in proc.stderr.splitlines() if "--threads 1000" in line]
    assert note == [f"fastmlp: note: --threads 1000 is more than the {cores} cores this "
                    f"process may use; using {cores}"]
    run = json.loads(out.read_text())["run"]
    assert run["threads"] == 1000  # what was asked for, beside what was used
    assert run["effective_threads"] == {"blas": cores, "numba": _numba(cores)}
    proc = run_cli("train", "--threads", "1", "--epochs", "1", "--layers", "16", "--quiet",
                   "--out", out)
    assert proc.returncode == 0 and "note" not in proc.stderr
    assert json.loads(out.read_text())["run"]["effective_threads"] == {"blas": 1, "numba": 1}


def test_bench_measures_and_labels_only_the_threads_a_run_can_use(tmp_path):
    cores = default_threads()
    out = tmp_path / "bench.json"
    proc = run_cli("bench", "--layers", "8", "--batch-size", "full", "--threads", "1",
                   str(cores + 1000), "--repeats", "1", "--json", out)
    assert proc.returncode == 0, proc.stderr
    assert (f"asks for more than the {cores} cores this process may use; measuring "
            f"{' '.join(map(str, sorted({1, cores})))}") in proc.stderr
    assert sorted(row["threads"] for row in json.loads(out.read_text())) == sorted({1, cores})
