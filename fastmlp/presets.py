"""Named recipes for `fastmlp train --preset NAME` (and `fastmlp bench --to-accuracy --preset`):
TrainConfig settings chosen on validation accuracy, never test. The searches and their
leaderboards are in dev/presets/; what they found and what the presets measure is in
docs/performance.md ("The presets' searches", "Time to accuracy").
"""

PRESETS = {
    # The fastest to a first epoch at >= 98.1% validation on every seed in the searches
    # dev/presets/fast-3.toml ... fast-11.toml: rank 1 of fast-11, where label smoothing let
    # lr 0.25 reach the bar in 3 epochs.
    "fast": dict(layers=(256, 128), optimizer="momentum", nesterov=True, lr=0.25,
                 batch_size=128, schedule="cosine", warmup=0.25, epochs=3, augment_shift=1,
                 weight_decay=5e-4, label_smoothing=0.1),
    # The highest validation accuracy of dev/presets/best-8.toml (mean of seeds 0 and 1) among
    # the recipes that fit the ~20 s of its target on a CPU with bfloat16 matrix units: best-5's
    # rank 1 (elastic distortions, dropout 0.1, the weight average) in mixed precision at batch
    # 512, 24 epochs (best-6 ... best-8; 28 epochs took 22.3 s there).
    "best": dict(layers=(512, 512), dtype="mixed_bfloat16", optimizer="momentum", nesterov=True,
                 lr=0.3, batch_size=512, schedule="cosine", warmup=1.0, epochs=24,
                 augment_shift=2, augment_rotate=10.0, augment_scale=0.1, augment_elastic=20.0,
                 dropout=0.1, ema=0.999, weight_decay=5e-4),
    # The highest validation accuracy of dev/presets/record-2.toml (seed 0): `best`'s recipe on
    # three hidden layers, 200 epochs, 2 warm-up epochs, against a wider and a longer run of
    # the same ~9 minutes on a CPU with bfloat16 matrix units.
    "record": dict(layers=(2048, 1024, 512), dtype="mixed_bfloat16", optimizer="momentum",
                   nesterov=True, lr=0.25, batch_size=512, schedule="cosine", warmup=2.0,
                   epochs=200, augment_shift=2, augment_rotate=10.0, augment_scale=0.1,
                   augment_elastic=20.0, dropout=0.1, ema=0.999, weight_decay=5e-4),
}

# What each preset's run ends with, for `fastmlp train --help`: test accuracy at the last epoch,
# mean and range over seeds 0..N-1, and the median whole run as `fastmlp bench --to-accuracy`
# charges it, 2 threads, on MEASURED_ON (docs/race-NAME.json; a test keeps these equal to them).
MEASURED_ON = "a 2-vCPU Intel Xeon with AMX-BF16"
MEASURED = {
    "fast": "98.45% test at the end (mean of 10 seeds, 98.33-98.57%), 2.0 s median whole run",
    "best": "99.15% test at the end (mean of 5 seeds, 99.10-99.18%), 18.7 s median whole run",
    "record": "99.49% test at the end (mean of 3 seeds, 99.46-99.52%), 544.3 s median whole run",
}
