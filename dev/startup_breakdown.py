"""Where the whole process of a time-to-accuracy run goes: one fastmlp run as
`fastmlp.bench.racers` makes it (the process `fastmlp bench --to-accuracy` times), stage by
stage (docs/performance.md, "Start-up and exit").

    python dev/startup_breakdown.py [--preset fast] [--runs 3]

The parent reads time.monotonic() (system-wide) just before starting each child, the child
stamps every stage with it, and the parent reads it again when the child has exited, so the
interpreter's start-up and the process's exit are measured too. Each stage is the median over
the runs (the runs are whole processes, one after the other). The kernels' loading is timed per
`jit.ready` group and float type, with the number of kernels loaded.
"""
import argparse
import json
import statistics
import subprocess
import sys
import time


def child(preset, started):
    stamps = [("interpreter start-up (python, site)", time.monotonic())]

    def stamp(name):
        stamps.append((name, time.monotonic()))

    from concurrent.futures import ThreadPoolExecutor

    import fastmlp  # noqa: F401
    stamp("import fastmlp")
    from fastmlp.data.load import load_dataset_for
    from fastmlp.presets import PRESETS
    from fastmlp.settings import TrainConfig
    stamp("import data, presets, settings")
    config = TrainConfig(**PRESETS[preset])
    loaded = {}

    def load():
        t = time.monotonic()
        dataset = load_dataset_for(config)
        loaded["data"] = time.monotonic() - t
        return dataset

    with ThreadPoolExecutor(1) as pool:  # as racers.race_fastmlp: data beside numba
        loading = pool.submit(load)
        from fastmlp.runtime import jit
        stamp("import numba (fastmlp.runtime.jit)")
        readied, original = [], jit.ready

        def timed_ready(dtype, group="core"):
            t = time.monotonic()
            fresh = (group, jit._CODES[jit.np.dtype(dtype)]) not in jit._READY
            original(dtype, group)
            if fresh:
                readied.append((f"load kernels: group {group}, {jit.np.dtype(dtype)} "
                                f"({len(jit._DECLARED.get(group, ()))} kernels)",
                                time.monotonic() - t))
        jit.ready = timed_ready
        import fastmlp.engine.workspace
        fastmlp.engine.workspace.ready = timed_ready
        from fastmlp.engine.inference import evaluate
        from fastmlp.engine.workspace import EVAL_ROWS, Workspace
        from fastmlp.runtime.threads import thread_limits
        from fastmlp.training.trainer import make_trainer
        stamp("import trainer and the rest")
        dataset = loading.result()
        stamp("wait for the data")
    with thread_limits(2):
        trainer = make_trainer(config, dataset)
        ws = Workspace(trainer.model, min(EVAL_ROWS, len(dataset.val)), gather=False)
        stamp("trainer + workspaces (incl. kernels' loading)")
        for epoch in range(1, config.epochs + 1):
            trainer.epoch()
            stamp(f"epoch {epoch} training")
            for name in ("val", "test"):
                split = getattr(dataset, name)
                acc = evaluate(trainer.evaluated, ws, split.x, split.y)[0]
                stamp(f"epoch {epoch} {name} evaluation ({acc:.2%})")
    print(json.dumps({"started": started, "stamps": stamps, "readied": readied,
                      "data_thread": loaded["data"]}), flush=True)


def parent(preset, runs):
    rows, extra = {}, {}
    for _ in range(runs):
        started = time.monotonic()
        out = subprocess.run([sys.executable, __file__, "--child", str(started), "--preset",
                              preset], capture_output=True, text=True, check=True).stdout
        ended = time.monotonic()
        record = json.loads(out)
        previous = started
        for name, t in record["stamps"]:
            rows.setdefault(name, []).append(t - previous)
            previous = t
        rows.setdefault("exit (after the last stamp)", []).append(ended - previous)
        rows.setdefault("whole process", []).append(ended - started)
        for name, seconds in record["readied"]:
            extra.setdefault(f"  of which {name}", []).append(seconds)
        extra.setdefault("  data loading + split (its own thread)", []).append(
            record["data_thread"])
    print(f"| stage (`python dev/startup_breakdown.py --preset {preset} --runs {runs}`) "
          "| median s | min-max s |")
    print("| --- | --- | --- |")
    for name, values in [*rows.items(), *extra.items()]:
        print(f"| {name} | {statistics.median(values):.3f} | {min(values):.3f}-"
              f"{max(values):.3f} |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.preset, args.child)
    else:
        parent(args.preset, args.runs)


if __name__ == "__main__":
    main()
