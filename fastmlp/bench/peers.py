"""Peers that `fastmlp bench --peers` measures fastmlp against, doing equal work: the same layer
sizes, batch size, dtype, thread count and optimizer (plain SGD), with forward, backward and
update all counted, on the same MNIST training split.

- numpy: the textbook NumPy trainer the source documents describe, written the simple way:
  new arrays every step, no fused kernels, BLAS through `@`.
- torch: PyTorch on the CPU (nn.Linear + ReLU, CrossEntropyLoss, torch.optim.SGD), when
  installed (`pip install -e ".[peers]"`).

Each peer runs in its own process (`python -m fastmlp.bench.peers NAME ...`, one JSON line out), so
that its thread pools and settings are its own: fastmlp's OMP_WAIT_POLICY default, for one,
would change how PyTorch's OpenMP pool behaves.
"""
import argparse
import json
import os
import subprocess
import sys
from functools import partial

import numpy as np

from ..runtime.timing import best_seconds

PEERS = ("numpy", "torch", "torch-bf16")
# The peers that compute in bfloat16, against which a mixed-precision row is like for like.
BFLOAT16_PEERS = ("torch-bf16",)


def _epochs(step, x, y, batch_size, permutation):
    """An epoch function: one step on everything at full batch (batch_size None or >= n), else
    steps on minibatches gathered (as new arrays, the simple way) in a fresh random order."""
    n = len(y)
    batch_size = n if batch_size is None else min(batch_size, n)

    def epoch():
        if batch_size == n:
            step(x, y)
            return
        order = permutation(n)
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            step(x[index], y[index])
    return epoch


def _he_weights(sizes, dtype, seed):
    rng = np.random.default_rng(seed)
    return ([rng.normal(0, np.sqrt(2 / n_in), (n_in, n_out)).astype(dtype)
             for n_in, n_out in zip(sizes[:-1], sizes[1:])],
            [np.zeros(n_out, dtype) for n_out in sizes[1:]])


OPTIMIZERS = ("sgd", "momentum", "adam")  # with fastmlp's defaults: momentum 0.9, Adam 0.9/0.999


def _numpy_optimizer(name, params, lr):
    """update(i, grad) for parameter i, the textbook way (new arrays every call)."""
    if name == "sgd":
        def update(i, grad):
            params[i] -= lr * grad
        return update
    state = [[np.zeros_like(p), np.zeros_like(p)] for p in params]
    steps = [0] * len(params)

    def update(i, grad):
        m, v = state[i]
        if name == "momentum":
            state[i][0] = 0.9 * m + grad
            params[i] -= lr * state[i][0]
            return
        steps[i] += 1
        state[i] = [0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad * grad]
        m_hat = state[i][0] / (1 - 0.9 ** steps[i])
        v_hat = state[i][1] / (1 - 0.999 ** steps[i])
        params[i] -= lr * m_hat / (np.sqrt(v_hat) + 1e-8)
    return update


def numpy_epoch(sizes, batch_size, dtype, lr, x, y, seed=0, optimizer="sgd"):
    """An epoch function of the plain-NumPy reference trainer."""
    weights, biases = _he_weights(sizes, dtype, seed)
    update = _numpy_optimizer(optimizer, weights + biases, lr)
    rng = np.random.default_rng(seed)

    def step(xb, yb):
        acts = [xb]
        for k, (w, b) in enumerate(zip(weights, biases)):
            z = acts[-1] @ w + b
            acts.append(np.maximum(z, 0) if k < len(weights) - 1 else z)
        z = acts[-1]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        delta = e / e.sum(axis=1, keepdims=True)
        delta[np.arange(len(yb)), yb] -= 1
        delta /= len(yb)
        for k in range(len(weights) - 1, -1, -1):
            dw = acts[k].T @ delta
            db = delta.sum(axis=0)
            if k > 0:
                delta = (delta @ weights[k].T) * (acts[k] > 0)
            update(k, dw)
            update(len(weights) + k, db)

    epoch = _epochs(step, x, y, batch_size, rng.permutation)
    epoch.weights, epoch.biases = weights, biases  # for the tests' equal-work check
    return epoch


def torch_epoch(sizes, batch_size, dtype, lr, x, y, seed=0, optimizer="sgd", bf16=False):
    """An epoch function of the PyTorch peer; bf16=True: its forward pass and loss under
    torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's mixed precision."""
    from contextlib import nullcontext

    import torch
    from torch import nn

    torch.manual_seed(seed)
    torch_dtype = {np.float32: torch.float32, np.float64: torch.float64}[np.dtype(dtype).type]
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if k < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers).to(torch_dtype)
    params = model.parameters()
    optimizer = (torch.optim.Adam(params, lr=lr) if optimizer == "adam" else
                 torch.optim.SGD(params, lr=lr, momentum=0.9 if optimizer == "momentum" else 0))
    loss_fn = nn.CrossEntropyLoss()
    xs, ys = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    def step(xb, yb):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()

    return _epochs(step, xs, ys, batch_size, torch.randperm)


def measure(name, layers, batch_size, dtype, threads, repeats, lr=0.1, optimizer="sgd"):
    """Training samples/s of peer `name` on MNIST's 48,000 training images."""
    from threadpoolctl import threadpool_limits

    from ..data.load import load_dataset

    data = load_dataset("mnist", dtype=dtype)
    x, y = data.train.x, data.train.y
    sizes = [x.shape[1], *layers, data.n_classes]
    if name.startswith("torch"):
        import torch
        torch.set_num_threads(threads)
        make = partial(torch_epoch, bf16=name == "torch-bf16")
    else:
        make = numpy_epoch
    with threadpool_limits(limits=threads, user_api="blas"):
        epoch = make(sizes, batch_size, dtype, lr, x, y, optimizer=optimizer)
        seconds, = best_seconds([epoch], repeats)
    return len(y) / seconds


def peer_env():
    """The environment a peer process starts from: the user's, without fastmlp's defaults.
    (jit is imported here, not at the top: importing it sets those defaults, and a peer's
    process imports this module.)"""
    from ..runtime import blas_idle, jit
    injected = {**jit.INJECTED_ENV, **blas_idle.INJECTED_ENV}
    return {k: v for k, v in os.environ.items() if k not in injected}


def peer_samples_per_s(peer, layers, batch_size, dtype, threads, repeats, optimizer, lr):
    """samples/s of a peer measured in its own process, or an error string. A peer computes
    in float (its bfloat16 one in float32 with autocast) for a mixed-precision row."""
    dtype = "float32" if dtype == "mixed_bfloat16" else dtype
    command = [sys.executable, "-m", "fastmlp.bench.peers", peer, "--layers", *map(str, layers),
               "--dtype", np.dtype(dtype).name, "--threads", str(threads),
               "--repeats", str(repeats), "--optimizer", optimizer, "--lr", str(lr)]
    if batch_size is not None:
        command += ["--batch-size", str(batch_size)]
    proc = subprocess.run(command, capture_output=True, text=True, env=peer_env())
    if proc.returncode != 0:
        return f"{peer} failed: {proc.stderr.strip().splitlines()[-1:]}"
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    return answer.get("samples_per_s", answer.get("error"))



def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastmlp.bench.peers")
    parser.add_argument("peer", choices=PEERS)
    parser.add_argument("--layers", type=int, nargs="+", required=True)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args(argv)
    try:
        rate = measure(args.peer, args.layers, args.batch_size, np.dtype(args.dtype),
                       args.threads, args.repeats, args.lr, args.optimizer)
    except ImportError as e:
        print(json.dumps({"error": f"{args.peer} is not installed ({e.name})"}))
        return 0
    print(json.dumps({"samples_per_s": rate}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
