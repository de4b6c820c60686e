"""Are a run's numbers the same at 1 and 2 threads? Each case run with `run_job` at both
thread counts, the histories (losses and validation accuracy) compared bit for bit.

    python dev/thread_counts.py

The answer decides that a run's thread count never changes midway (docs/performance.md,
"Results at another thread count").
"""
from fastmlp.grids.records import run_key
from fastmlp.grids.runs import Job, run_job
from fastmlp.settings import RunOptions, TrainConfig

CASES = {
    "full batch [128, 64, 32], 2 epochs": TrainConfig(layers=(128, 64, 32), epochs=2, init="he"),
    "full batch [10] (fused), 3 epochs": TrainConfig(layers=(10,), epochs=3, init="he"),
    "batch 128 [128, 64, 32], 1 epoch": TrainConfig(layers=(128, 64, 32), epochs=1, init="he",
                                                   batch_size=128),
    "batch 8192 [128], 2 epochs": TrainConfig(layers=(128,), epochs=2, init="he", batch_size=8192),
}
for name, config in CASES.items():
    runs = {}
    for threads in (1, 2):
        record = run_job(Job(name, 0, config, run_key(config)), RunOptions(threads=threads))
        assert record["status"] == "ok", record
        runs[threads] = [(e["train_loss"], e["val_loss"], e["val_acc"])
                         for e in record["result"]["history"]]
        eff = record["result"]["run"]["effective_threads"]
        print(f"  {name} threads={threads} in force {eff}")
    same = runs[1] == runs[2]
    diff = max(abs(a[1] - b[1]) for a, b in zip(runs[1], runs[2]))
    print(f"{name}: identical at 1 and 2 threads: {same}; max |val_loss difference| {diff:.3g}")
