"""The contestants of `fastmlp bench --to-accuracy`, each run as a whole process of its own:
`python -m fastmlp.bench.racers NAME CONFIG.json --threads N` trains the recipe CONFIG (a
TrainConfig as JSON) and prints one JSON line per epoch, `{"epoch", "t", "val", "val_s", "test",
"test_s"}`: `t` is time.monotonic() when the epoch's training ended (the system-wide clock, so
the parent, which read it just before starting this process, can subtract), then each split's
accuracy and the seconds its evaluation took (the parent charges only the final evaluation).

- fastmlp: the engine, started the way `fastmlp train` starts (data loading overlapped with
  loading numba and the kernels).
- torch, torch-compile, torch-bf16: the same recipe in PyTorch, written the ordinary way
  (nn.Sequential, torch.optim, LambdaLR over fastmlp's schedule, plain tensor batching with
  randperm; integer shifts by indexing a padded batch, affine and elastic augmentation as
  F.affine_grid plus Gaussian-smoothed fields (a bank drawn once, as fastmlp draws it),
  sampled by one F.grid_sample; the weight average through AveragedModel); torch-compile
  trains through torch.compile(model), whose compile happens in the first steps and is charged
  like any other start-up. All evaluate in eager mode.
- sklearn: scikit-learn's MLPClassifier with its default Adam (lr 1e-3, alpha 1e-4), the
  recipe's layers and batch size, one partial_fit per epoch.

This module imports only the standard library at the top, so that a contestant's start-up is
its own.
"""
import argparse
import json
import time


def _epochs(config, dataset, train_epoch, accuracy):
    """Run config.epochs epochs, printing each epoch's line; accuracy(split) -> fraction."""
    for epoch in range(1, config.epochs + 1):
        train_epoch()
        line = {"epoch": epoch, "t": time.monotonic()}
        for name in ("val", "test"):
            start = time.monotonic()
            line[name] = accuracy(getattr(dataset, name))
            line[name + "_s"] = time.monotonic() - start
        print(json.dumps(line), flush=True)


def race_fastmlp(config, threads):
    from concurrent.futures import ThreadPoolExecutor

    from ..data.load import load_dataset_for
    with ThreadPoolExecutor(1) as pool:  # as cli/train.py: data beside numba's start-up
        loading = pool.submit(load_dataset_for, config)
        from ..engine.workspace import EVAL_ROWS, Workspace
        from ..runtime.threads import thread_limits
        from ..settings import RunOptions
        from ..training.trainer import make_trainer
        dataset = loading.result()
    trainer = make_trainer(config, dataset, options=RunOptions(threads=threads))
    with thread_limits(threads):
        rows = max(len(dataset.val), len(dataset.test))
        ws = Workspace(trainer.model, min(EVAL_ROWS, rows), backward=False, gather=False)
        evaluators = {}  # made once per split, as `fastmlp train` evaluates

        def accuracy(split):
            if id(split) not in evaluators:
                evaluators[id(split)] = trainer.evaluator(split.x, split.y, ws, plain=True)
            return evaluators[id(split)]()[0]
        _epochs(config, dataset, trainer.epoch, accuracy)


def _torch_model(config, n_in, n_out):
    import torch
    from torch import nn

    init = {"he": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
            "glorot": nn.init.xavier_uniform_,
            "uniform": lambda w: nn.init.uniform_(w, -0.5, 0.5)}[config.init]
    sizes = [n_in, *config.layers, n_out]
    layers = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(a, b)
        with torch.no_grad():
            init(linear.weight)
            if config.init == "uniform":
                nn.init.uniform_(linear.bias, -0.5, 0.5)
            else:
                nn.init.zeros_(linear.bias)
        layers.append(linear)
        if k < len(sizes) - 2:
            layers.append(nn.ReLU())
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
    from ..precisions import parameter_dtype
    return nn.Sequential(*layers).to(getattr(torch, parameter_dtype(config.dtype).name))


def _torch_optimizer(config, params):
    import torch

    if config.optimizer in ("sgd", "momentum"):
        momentum = config.momentum if config.optimizer == "momentum" else 0.0
        return torch.optim.SGD(params, lr=config.lr, momentum=momentum,
                               nesterov=config.nesterov, weight_decay=config.weight_decay)
    adam = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return adam(params, lr=config.lr, betas=(config.beta1, config.beta2), eps=config.eps,
                weight_decay=config.weight_decay)


def _shifter(shift, side):
    """Shift every image of a batch by uniform integers in [-shift, shift] rows and columns,
    zero fill (what fastmlp's gather kernel does), by indexing a zero-padded batch."""
    import torch
    import torch.nn.functional as F

    line = torch.arange(side)

    def shifted(xb, generator):
        n = len(xb)
        d = torch.randint(-shift, shift + 1, (n, 2), generator=generator)
        padded = F.pad(xb.view(n, side, side), (shift,) * 4)
        rows = (line - d[:, :1] + shift)[:, :, None]
        cols = (line - d[:, 1:] + shift)[:, None, :]
        return padded[torch.arange(n)[:, None, None], rows, cols].reshape(n, side * side)
    return shifted


def _warp(xb, side, w, rotate, scale, shear, shift, field=None):
    """Images xb (n, side * side) under augment.gather_affine's map, w (n, 5) its draws in
    [-1, 1) (angle, scale, shear, row shift, column shift), plus, if given, a displacement
    field (n, side, side, 2) in pixels, x then y, added to the sampling coordinates: one
    bilinear sample, zeros outside. With align_corners=True the grid's -1 and 1 are the corner
    pixels' centres, so the map about the centre keeps its matrix and shifts divide by it."""
    import torch
    import torch.nn.functional as F

    n, centre = len(xb), (side - 1) / 2
    angle = torch.deg2rad(rotate * w[:, 0])
    s = 1 + scale * w[:, 1]
    h = torch.tan(torch.deg2rad(shear * w[:, 2]))
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    m = torch.stack([cos, cos * h - sin, sin, sin * h + cos], 1).view(n, 2, 2)
    t = shift * w[:, [4, 3], None] / centre  # (tx, ty), in the grid's units
    grid = F.affine_grid(torch.cat([m, -m @ t], 2), [n, 1, side, side], align_corners=True)
    if field is not None:
        grid = grid + field / centre
    return F.grid_sample(xb.view(n, 1, side, side), grid, align_corners=True).view(n, -1)


def _smoothed(noise, sigma):
    """noise (n, 2, side, side) smoothed along columns and rows by a Gaussian of standard
    deviation sigma truncated at 3 sigma, weights summing to 1, zeros beyond the grid
    (F.conv2d's zero padding): the smoothing of engine/elastic.py."""
    import torch
    import torch.nn.functional as F

    radius = int(3 * sigma + 0.5)
    k = torch.arange(-radius, radius + 1, dtype=noise.dtype)
    g = torch.exp(-k * k / (2 * sigma * sigma))
    g = g / g.sum()
    planes = noise.flatten(0, 1)[:, None]
    planes = F.conv2d(planes, g.view(1, 1, -1, 1), padding=(radius, 0))
    return F.conv2d(planes, g.view(1, 1, 1, -1), padding=(0, radius)).view(noise.shape)


def _variants(bank, pick):
    """The displacement pairs (n, 2, side, side) images take from the bank (B, 2, side, side)
    as elastic.gather_elastic takes them: pair pick // 8, its fields swapped when bit 2 of pick
    is set, then dx negated when bit 0 is, dy when bit 1 is."""
    import torch

    pairs = bank[pick // 8]
    pairs = torch.where((pick & 4).bool()[:, None, None, None], pairs.flip(1), pairs)
    signs = torch.stack([1 - 2 * (pick & 1), 1 - 2 * (pick >> 1 & 1)], 1).to(bank.dtype)
    return pairs * signs[:, :, None, None]


def _augmenter(config, side):
    """The recipe's augmentation, (xb, generator) -> augmented xb, or None: integer shifts
    alone, else, as fastmlp, the affine map with real shifts and the elastic field, sampled
    once; the fields come, as fastmlp's, from a bank drawn at the first batch."""
    import torch

    rotate, scale, shear, shift = (config.augment_rotate, config.augment_scale,
                                   config.augment_shear, config.augment_shift)
    alpha, sigma = config.augment_elastic, config.augment_elastic_sigma
    if not (rotate or scale or shear or alpha):
        return _shifter(shift, side) if shift else None
    # The bank's size is the engine's (its module brings numba along: ~0.5 s of the peer's
    # start-up, charged only to recipes with affine or elastic augmentation).
    from ..engine.elastic import BANK_FIELDS, VARIANTS
    bank = []

    def augmented(xb, generator):
        n = len(xb)
        if alpha and not bank:
            noise = 2 * torch.rand(BANK_FIELDS, 2, side, side, generator=generator,
                                   dtype=xb.dtype) - 1
            bank.append(_smoothed(noise, sigma))
        w = 2 * torch.rand(n, 5, generator=generator, dtype=xb.dtype) - 1
        field = None
        if alpha:
            pick = torch.randint(0, VARIANTS * BANK_FIELDS, (n,), generator=generator)
            field = alpha * _variants(bank[0], pick).permute(0, 2, 3, 1)
        return _warp(xb, side, w, rotate, scale, shear, shift, field)
    return augmented


def _averaged(model, decay):
    """model's moving average as fastmlp keeps it (kernels.ema_update): from the initial
    weights, after update k, a <- d a + (1 - d) p with d = min(decay, (1 + k) / (10 + k)).
    AveragedModel's first update copies the model and counts as one: made here, on the initial
    weights, it makes the count k at update k."""
    import torch
    from torch.optim.swa_utils import AveragedModel

    def ema(averaged, current, updates):
        k = float(updates)
        torch._foreach_lerp_(averaged, current, 1 - min(decay, (1 + k) / (10 + k)))
    averaged = AveragedModel(model, multi_avg_fn=ema)
    averaged.update_parameters(model)
    return averaged


def race_torch(config, threads, compiled=False, bf16=False):
    """The recipe in PyTorch; compiled: through torch.compile; bf16: its forward passes and
    loss under torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's mixed precision."""
    import math
    from contextlib import nullcontext

    import torch
    from torch import nn

    from ..data.load import load_dataset_for
    from ..engine.schedule import Schedule

    torch.set_num_threads(threads)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    dataset = load_dataset_for(config)
    x, y = torch.from_numpy(dataset.train.x), torch.from_numpy(dataset.train.y).long()
    n = len(y)
    batch = min(config.batch_size or n, n)
    steps = -(-n // batch)
    model = _torch_model(config, x.shape[1], dataset.n_classes)
    forward = torch.compile(model) if compiled else model
    averaged = _averaged(model, config.ema) if config.ema else None
    optimizer = _torch_optimizer(config, model.parameters())
    schedule = Schedule(config.schedule, config.lr, config.epochs, steps, config.warmup,
                        config.lr_step_epochs, config.lr_gamma)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: schedule.lr(step) / config.lr)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    augmented = _augmenter(config, math.isqrt(x.shape[1]))

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()

    def train_epoch():
        model.train()
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch):
            index = order[start:start + batch]
            xb, yb = x[index], y[index]
            if augmented is not None:
                xb = augmented(xb, generator)
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = loss_fn(forward(xb), yb)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if averaged is not None:
                averaged.update_parameters(model)

    evaluated = model if averaged is None else averaged

    def accuracy(split):
        evaluated.eval()
        with torch.no_grad(), autocast():
            logits = evaluated(torch.from_numpy(split.x))
        return float((logits.argmax(1).numpy() == split.y).mean())

    _epochs(config, dataset, train_epoch, accuracy)


def race_sklearn(config, threads):
    import warnings

    import numpy as np
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    from ..data.load import load_dataset_for

    dataset = load_dataset_for(config)
    n = len(dataset.train)
    clf = MLPClassifier(hidden_layer_sizes=config.layers, random_state=config.seed,
                        batch_size=min(config.batch_size or n, n))
    classes = np.arange(dataset.n_classes)
    with threadpool_limits(limits=threads, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one partial_fit per epoch "does not converge"
        _epochs(config, dataset,
                lambda: clf.partial_fit(dataset.train.x, dataset.train.y, classes=classes),
                lambda split: float(clf.score(split.x, split.y)))


CONTESTANTS = {
    "fastmlp": race_fastmlp,
    "torch": race_torch,
    "torch-compile": lambda config, threads: race_torch(config, threads, compiled=True),
    "torch-bf16": lambda config, threads: race_torch(config, threads, bf16=True),
    "sklearn": race_sklearn,
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastmlp.bench.racers")
    parser.add_argument("contestant", choices=CONTESTANTS)
    parser.add_argument("config", help="the recipe: a TrainConfig as a JSON object")
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args(argv)
    from ..settings import TrainConfig

    try:
        CONTESTANTS[args.contestant](TrainConfig(**json.loads(args.config)), args.threads)
    except ImportError as e:
        print(json.dumps({"error": f"{args.contestant}: {e.name} is not installed"}))
    return 0


if __name__ == "__main__":
    from ..runtime.exit import exit_now

    exit_now(main())
