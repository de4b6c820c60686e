"""How the kernels are compiled: numba's cache directory, its threading layer and OpenMP's idle
policy, the fastmath flags, and `kernel`, which declares a kernel that compiles (or loads from
numba's cache) for one float type when a run first asks for it with `ready`.
"""
import os

# numba's OpenMP pool and OpenBLAS's pool take turns on the same cores, and spinning OpenMP
# workers steal the cores from the next BLAS call, so idle workers must sleep
# (docs/performance.md, "OpenMP's idle threads"). libgomp reads this when the first parallel
# kernel loads it; a value the user set is kept.
INJECTED_ENV = {} if "OMP_WAIT_POLICY" in os.environ else {"OMP_WAIT_POLICY": "PASSIVE"}
os.environ.update(INJECTED_ENV)

import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402


def _import_arraymath_without_scipy():
    """numba's first compile or cache load imports numba.np.arraymath, which imports
    scipy.linalg (when SciPy is installed) only to learn whether np.dot on 1-D arrays may call
    BLAS, a large share of a run's start-up (docs/performance.md, "Start-up and exit"). No
    fastmlp kernel calls np.dot, so arraymath is imported here with SciPy hidden: a 1-D np.dot
    in a kernel would run numba's own loop. Once SciPy is imported (by the user, scikit-learn)
    its cost is paid, and nothing is hidden."""
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    hidden = "scipy" if "scipy" not in sys.modules else "scipy.linalg"
    sys.modules[hidden] = None  # `import scipy...` raises ImportError
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        if hidden in sys.modules and sys.modules[hidden] is None:
            del sys.modules[hidden]


_import_arraymath_without_scipy()


def _writable(directory):
    try:
        os.makedirs(directory, exist_ok=True)
        tempfile.TemporaryFile(dir=directory).close()
        return True
    except OSError:
        return False


def _cache_fallback():
    """Where numba caches the compiled kernels when it cannot by itself. It writes beside this
    file (__pycache__), else into the user cache (~/.cache/numba); from a read-only install with
    no writable home it would refuse to load a cache=True kernel at all, so then a directory in
    the temporary directory takes their place (kept across runs until the system clears it)."""
    if numba.config.CACHE_DIR or _writable(os.path.join(os.path.dirname(__file__),
                                                        "__pycache__")):
        return None
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if _writable(os.path.join(home, "numba")):
        return None
    user = getattr(os, "getuid", int)()  # one directory per user, as a home would be
    return os.path.join(tempfile.gettempdir(), f"fastmlp-numba-cache-{user}")


# Set here, not through NUMBA_CACHE_DIR: numba may already have read its environment (threads.py
# imports it first); config.CACHE_DIR is read when each kernel is decorated.
numba.config.CACHE_DIR = _cache_fallback() or numba.config.CACHE_DIR

# OpenMP first (with the policy above); tbb or numba's own workqueue where it is missing.
numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]

# fastmath without nnan/ninf: with those flags isnan/isfinite would silently return False and a
# diverging run could not be detected.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

# Every kernel declared by `kernel`, by group: [(dispatcher, signature template, slp)].
_DECLARED = {}
# The (group, numba type code) pairs made ready so far.
_READY = set()
# Held while a kernel's compile switch is on, so that two threads making kernels ready (say
# MLPClassifier fits in a thread pool) cannot switch it off under each other's compile.
_LOCK = threading.RLock()
_CODES = {np.dtype(np.float32): "f4", np.dtype(np.float64): "f8"}


def kernel(template, parallel=False, error_model="python", group="core", slp=False, **options):
    """Declare a kernel whose signature is `template` with F standing for the float type, compiled
    (or loaded from numba's cache) for one float type when `ready(dtype, group)` first asks for
    it, not at import: a run compiles only what it calls (docs/performance.md, "Kernels compiled
    on first use"). Until then, and for any other types, the kernel refuses to compile, as an
    eagerly compiled one does.

    error_model="numpy" lets a float division by zero give inf/nan instead of raising: without
    it numba checks every division for zero, and a loop that divides does not vectorise.
    slp=True compiles with LLVM's SLP vectoriser on (numba leaves it off; see fastpath/lanes.py)."""
    options = {"parallel": parallel, "fastmath": FASTMATH, "cache": True, "nogil": True,
               "error_model": error_model, **options}

    def declare(fn):
        dispatcher = numba.njit(**options)(fn)
        # What disable_compile() sets; numba asserts a signature exists before that method may.
        dispatcher._can_compile = False
        with _LOCK:
            _DECLARED.setdefault(group, []).append((dispatcher, template, slp))
            for ready_group, code in _READY:  # declared after its group was made ready
                if ready_group == group:
                    compile_kernel(dispatcher, template.replace("F", code), slp)
        return dispatcher
    return declare


def compile_kernel(dispatcher, signature, slp=False):
    """Compile (or load from numba's cache) one signature of a declared kernel."""
    previous = numba.config.SLP_VECTORIZE
    numba.config.SLP_VECTORIZE = int(slp or previous)
    dispatcher.disable_compile(False)
    try:
        dispatcher.compile(signature)
    finally:
        # As disable_compile(True), which asserts a signature was compiled: a Ctrl-C during
        # the first compilation must unwind as itself, not as that AssertionError.
        dispatcher._can_compile = False
        numba.config.SLP_VECTORIZE = previous


def declared(group=None):
    """The kernels declared so far, of one group or of all (group by group in name order):
    [(dispatcher, signature template, slp)]. The test suite fills numba's cache from it."""
    with _LOCK:
        return [entry for name in sorted(_DECLARED) if group in (None, name)
                for entry in _DECLARED[name]]


def groups():
    """The names of the groups of kernels declared so far."""
    with _LOCK:
        return sorted(_DECLARED)


def readied():
    """The (group, dtype name) pairs made ready so far in this process."""
    names = {code: dtype.name for dtype, code in _CODES.items()}
    with _LOCK:
        return sorted((group, names[code]) for group, code in _READY)


def ready(dtype, group="core"):
    """Compile, or load from numba's cache, the `group` kernels for float type `dtype` (once per
    process). Workspace calls it for the core kernels, fused.FusedPass and sparse.SparseRows for
    their groups."""
    code = _CODES[np.dtype(dtype)]
    with _LOCK:
        if (group, code) in _READY:
            return
        for dispatcher, template, slp in _DECLARED.get(group, ()):
            compile_kernel(dispatcher, template.replace("F", code), slp)
        _READY.add((group, code))
