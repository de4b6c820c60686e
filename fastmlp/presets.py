"""Named, tested recipes for `fastmlp train --preset NAME`: TrainConfig settings that reach a
stated accuracy at a stated cost (measured figures are in the README)."""

PRESETS = {
    # The documents' [128, 64, 32], trained well: Nesterov momentum, cosine schedule with
    # warm-up, light shift augmentation.
    "fast": dict(layers=(128, 64, 32), optimizer="momentum", nesterov=True, lr=0.05,
                 batch_size=128, schedule="cosine", warmup=1.0, epochs=20, augment_shift=1,
                 weight_decay=5e-4),
    # The best MLP within a few minutes: wide, dropout, stronger augmentation, longer cosine.
    "best": dict(layers=(1024, 1024), optimizer="momentum", nesterov=True, lr=0.05,
                 batch_size=128, schedule="cosine", warmup=2.0, epochs=40, augment_shift=2,
                 dropout=0.2, weight_decay=5e-4),
}
