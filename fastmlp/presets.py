"""Named recipes for `fastmlp train --preset NAME` (and `fastmlp bench --to-accuracy --preset`):
TrainConfig settings chosen on validation accuracy, never test (the searches and their
leaderboards are in presets/ at the top of the repository; the measured figures in the README).
"""

PRESETS = {
    # The fastest to a first epoch at >= 98.1% validation on every seed in the searches
    # presets/fast-3.toml ... fast-8.toml. Rank 1 of presets/fast-8-leaderboard.md, round 7's
    # leaders timed again once minibatches ran plain (paths.PRUNE_MIN_ROWS): 4.22 s, at epochs
    # 4 and 3; round 7's winner (batch 256, lr 0.2) then ended seed 0 at 98.09% validation, and
    # the preset before, [128, 64, 32] at batch 128 for 6 epochs, took 4.47 s (epoch 5).
    "fast": dict(layers=(256, 128), optimizer="momentum", nesterov=True, lr=0.1,
                 batch_size=128, schedule="cosine", warmup=0.25, epochs=4, augment_shift=1,
                 weight_decay=5e-4),
    # The highest validation accuracy within about 55 s in presets/best-affine*.toml (rank 1 of
    # presets/best-affine-3-leaderboard.md, 98.79% validation; 98.71% the best of the others):
    # two layers of 512, batch 256, dropout, affine augmentation.
    "best": dict(layers=(512, 512), optimizer="momentum", nesterov=True, lr=0.1,
                 batch_size=256, schedule="cosine", warmup=1.0, epochs=24, augment_shift=2,
                 augment_rotate=10.0, augment_scale=0.1, dropout=0.2, weight_decay=5e-4),
    # The most a pure MLP reaches here in 10 minutes: the augmentation of rank 1 of
    # presets/best-affine-leaderboard.md on [1024, 1024], trained for as many epochs as fit in
    # well under 10 minutes: a 75-epoch run (`fastmlp bench --to-accuracy`, evaluating test
    # every epoch too) passed 11 minutes on the shared machine, so 50. Not searched further: one
    # run is ten minutes of the shared machine.
    "record": dict(layers=(1024, 1024), optimizer="momentum", nesterov=True, lr=0.05,
                   batch_size=128, schedule="cosine", warmup=2.0, epochs=50, augment_shift=2,
                   augment_rotate=15.0, augment_scale=0.15, augment_shear=10.0, dropout=0.1,
                   ema=0.999, weight_decay=5e-4),
}
