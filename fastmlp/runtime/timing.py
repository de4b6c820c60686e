"""Best-of timing shared by `fastmlp bench`, its peers (`python -m fastmlp.bench.peers`) and the
pytest benchmarks. It imports nothing of fastmlp's, so a peer's process stays light."""
import time


def best_seconds(functions, repeats):
    """The fastest of `repeats` runs of each function, after one untimed warm-up run each.
    The functions take turns, so that a drift in this machine's speed hits them alike and
    their ratio holds."""
    for f in functions:
        f()
    best = [float("inf")] * len(functions)
    for _ in range(repeats):
        for i, f in enumerate(functions):
            t0 = time.perf_counter()
            f()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best
