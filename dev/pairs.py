"""Where does a 1-thread run lose when another runs beside it? Per kind of the documents' grid
(fewer epochs), three ways, each in fresh processes: two seeds one after the other in one
process at 2 threads; the same two seeds as two 1-thread processes started together (what two
Dask workers do); one 1-thread process alone. Prints the runs' fit seconds (training and
evaluation) and the ratios that decide `fastmlp experiments` on a cluster against in process.

    python dev/pairs.py deep wide ten

The pair beats the two runs in turn by (their fit summed) / (the pair's slower fit); 0.8x of
the in-process wall time needs 1.25x (docs/performance.md, "The documents' grid on two cores").
"""
import argparse
import json
import os
import subprocess
import sys

KINDS = {"deep": {"layers": (128, 64, 32), "init": "he", "epochs": 40},
         "wide": {"layers": (128,), "init": "he", "epochs": 40, "eval_every": 1},
         "ten": {"layers": (10,), "init": "he", "epochs": 200}}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMBA_NUM_THREADS": "1"}


def child(kind, threads, seeds):
    from fastmlp.grids.records import run_key
    from fastmlp.grids.runs import Job, run_job
    from fastmlp.settings import RunOptions, TrainConfig

    fits = []
    for seed in seeds:
        config = TrainConfig(**KINDS[kind], lr=0.1, batch_size="full", seed=seed)
        record = run_job(Job(kind, seed, config, run_key(config)), RunOptions(threads=threads))
        fits.append(record["result"]["summary"]["wall_seconds"])
    print(json.dumps(fits))


def spawn(kind, threads, seeds):
    env = {**os.environ, **(ONE_THREAD if threads == 1 else {})}
    return subprocess.Popen([sys.executable, __file__, "--child", kind, str(threads),
                             *map(str, seeds)], env=env, stdout=subprocess.PIPE, text=True)


def fits(process):
    out, _ = process.communicate()
    if process.returncode:
        sys.exit(f"a child failed (exit {process.returncode})")
    return json.loads(out.splitlines()[-1])


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2], int(sys.argv[3]), [int(s) for s in sys.argv[4:]])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="+", choices=KINDS)
    args = parser.parse_args()
    for kind in args.kinds:
        in_turn = fits(spawn(kind, 2, [0, 1]))
        pair = [spawn(kind, 1, [0]), spawn(kind, 1, [1])]
        pair = [fits(p)[0] for p in pair]
        (alone,) = fits(spawn(kind, 1, [0]))
        print(f"{kind} ({KINDS[kind]['epochs']} epochs): in turn at 2 threads "
              f"{in_turn[0]:.2f} + {in_turn[1]:.2f} s | pair at 1 thread {pair[0]:.2f}, "
              f"{pair[1]:.2f} s | alone at 1 thread {alone:.2f} s || pair's work vs 2 threads "
              f"{sum(in_turn) / max(pair):.2f}x; beside another vs alone "
              f"{max(pair) / alone:.2f}x; one run's 2-thread speed-up "
              f"{2 * alone / sum(in_turn):.2f}x", flush=True)


if __name__ == "__main__":
    main()
