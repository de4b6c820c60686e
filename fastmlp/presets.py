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
    # The highest validation accuracy within about 55 s in dev/presets/best-affine*.toml (rank 1
    # of best-affine-3): two layers of 512, batch 256, dropout, affine augmentation.
    "best": dict(layers=(512, 512), optimizer="momentum", nesterov=True, lr=0.1,
                 batch_size=256, schedule="cosine", warmup=1.0, epochs=24, augment_shift=2,
                 augment_rotate=10.0, augment_scale=0.1, dropout=0.2, weight_decay=5e-4),
    # The most a pure MLP reaches here in 10 minutes: the augmentation of rank 1 of
    # dev/presets/best-affine-leaderboard.md on [1024, 1024], for as many epochs as fit in well
    # under 10 minutes (a 75-epoch run did not: docs/performance.md, "Time to accuracy"). Not
    # searched: one run takes minutes of a shared machine.
    "record": dict(layers=(1024, 1024), optimizer="momentum", nesterov=True, lr=0.05,
                   batch_size=128, schedule="cosine", warmup=2.0, epochs=50, augment_shift=2,
                   augment_rotate=15.0, augment_scale=0.15, augment_shear=10.0, dropout=0.1,
                   ema=0.999, weight_decay=5e-4),
}

# What each preset's run ends with, for `fastmlp train --help`: test accuracy at the last epoch,
# mean and range over seeds 0-4 (record: one seed), whole process, 2 threads, float32, on a
# 2-vCPU AMD EPYC (docs/performance.md, "Time to accuracy").
MEASURED = {
    "fast": "98.49% test at the end (mean of 5 seeds, 98.37-98.60%), 3.5 s",
    "best": "99.01% test at the end (mean of 5 seeds, 98.97-99.04%), 57 s",
    "record": "99.15% test at the end (one seed), 392 s",
}
