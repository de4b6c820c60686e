"""OpenBLAS's idle workers sleep soon after a call once fastmlp is imported (fastmlp/blas_idle.py):
the variable is set, a user's value is kept, an OpenBLAS that numpy loaded first is made to
take it, and, where OpenBLAS runs threads, an idle worker really stops burning CPU time."""
import json
import os
import subprocess
import sys

import pytest
from threadpoolctl import threadpool_info

from fastmlp.runtime import blas_idle
from fastmlp.runtime.threads import default_threads

# Prints what blas_idle decided, then the CPU seconds the process burns while it only sleeps
# for IDLE seconds after a 2-thread matmul: OpenBLAS's idle worker spinning, if it spins.
# first: "fastmlp" (imported before numpy), "numpy" (numpy first), "numpy only" (no fastmlp:
# OpenBLAS's default).
PROBE = """
import json, resource, sys, time
first = sys.argv[1]
if first != "fastmlp":
    import numpy
if first != "numpy only":
    from fastmlp import blas_idle
import numpy as np
from threadpoolctl import threadpool_limits
a = np.ones((512, 512))
with threadpool_limits(2, user_api="blas"):
    a @ a
    usage = resource.getrusage(resource.RUSAGE_SELF)
    before = usage.ru_utime + usage.ru_stime
    time.sleep(IDLE)
    usage = resource.getrusage(resource.RUSAGE_SELF)
idle = first == "numpy only"
print(json.dumps({"env": None if idle else blas_idle.os.environ.get(blas_idle.VARIABLE),
                  "in_force": None if idle else blas_idle.in_force(),
                  "idle_cpu": usage.ru_utime + usage.ru_stime - before}))
""".replace("IDLE", "0.3")


def probe(first, **env):
    environ = {k: v for k, v in os.environ.items() if k != blas_idle.VARIABLE}
    proc = subprocess.run([sys.executable, "-c", PROBE, first], capture_output=True, text=True,
                          env={**environ, **env}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_importing_fastmlp_first_sets_the_idle_spin():
    result = probe("fastmlp")
    assert result["env"] == str(blas_idle.IDLE_SPIN_LOG2)
    assert result["in_force"] == blas_idle.IDLE_SPIN_LOG2


def test_a_value_the_user_set_is_kept():
    result = probe("fastmlp", OPENBLAS_THREAD_TIMEOUT="20")
    assert result["env"] == "20" and result["in_force"] == 20
    # Set before the process started, it is in force whoever loads numpy first.
    assert probe("numpy", OPENBLAS_THREAD_TIMEOUT="20")["in_force"] == 20


def _threaded_openblas():
    return any(p["internal_api"] == "openblas" and p.get("threading_layer") == "pthreads"
               for p in threadpool_info())


def test_numpy_first_has_the_loaded_openblas_take_it():
    """numpy loaded first: fastmlp has its OpenBLAS read the variable again (blas_idle._reread),
    and says so; a BLAS without OpenBLAS's threads keeps its own ways (None)."""
    expected = blas_idle.IDLE_SPIN_LOG2 if _threaded_openblas() else None
    assert probe("numpy")["in_force"] == expected


@pytest.mark.skipif(default_threads() < 2 or not _threaded_openblas(),
                    reason="needs OpenBLAS with its own threads, and 2 cores")
def test_an_idle_worker_sleeps_instead_of_spinning():
    """After a 2-thread call, OpenBLAS's default keeps its worker spinning ~0.1 s (2**28 TSC
    cycles); with fastmlp imported, before numpy or after it, the worker sleeps within
    microseconds, so a process that only sleeps burns (almost) no CPU time."""
    spinning = probe("numpy only")["idle_cpu"]
    assert spinning > 0.04, "the control did not spin: this check could not tell"
    assert probe("fastmlp")["idle_cpu"] < 0.02
    assert probe("numpy")["idle_cpu"] < 0.02
