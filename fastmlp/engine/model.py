"""The MLP: layer sizes, one flat parameter buffer with per-layer views, and initialisation."""
import numpy as np

from ..errors import FastMLPError


def _he(w, b, rng):
    fan_in, _ = w.shape
    w[...] = rng.normal(0.0, np.sqrt(2.0 / fan_in), w.shape)
    b[...] = 0


def _uniform(w, b, rng):  # the first source document's baseline: weights and biases
    w[...] = rng.uniform(-0.5, 0.5, w.shape)
    b[...] = rng.uniform(-0.5, 0.5, b.shape)


def _glorot(w, b, rng):
    fan_in, fan_out = w.shape
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    w[...] = rng.uniform(-limit, limit, w.shape)
    b[...] = 0


# Initialisation schemes: name -> function filling one layer's weights (n_in, n_out) and biases
# in place from a numpy Generator.
INITS = {"he": _he, "uniform": _uniform, "glorot": _glorot}

# Each layer's weights and biases start on a 64-byte boundary of the flat buffer, so that the
# views BLAS and the kernels see are aligned for AVX-512 loads; the padding stays zero.
_ALIGN_BYTES = 64


def _aligned(offset, itemsize):
    step = _ALIGN_BYTES // itemsize
    return -(-offset // step) * step


def _layout(sizes, itemsize):
    """Offsets (weights, biases) of every layer in the flat buffer, and its total length."""
    offsets, end = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = _aligned(end, itemsize)
        b = _aligned(w + n_in * n_out, itemsize)
        offsets.append((w, b))
        end = b + n_out
    return offsets, end


def flat_length(sizes, dtype):
    """Elements of the flat parameter (and gradient) buffer of an MLP of `sizes`, padding
    included: what MLP allocates, without allocating it (plan.py counts memory with it)."""
    return _layout(tuple(int(s) for s in sizes), np.dtype(dtype).itemsize)[1]


def training_flops(sizes, first_columns=None):
    """Training FLOPs per sample of an MLP of `sizes`: forward and weight-gradient matmuls for
    every layer, input-gradient matmuls for every layer but the first (2 FLOPs per
    multiply-add). first_columns: the input columns the first layer's multiply-adds take per
    row where a path skips some (pruned: the kept ones; sparse: the nonzeros, on average);
    every input by default."""
    macs = [n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    if first_columns is not None:
        macs[0] = first_columns * sizes[1]
    return 2 * (2 * sum(macs) + sum(macs[1:]))


def _layer_views(flat, sizes, itemsize=None):
    """Per-layer weights (n_in, n_out) and biases (n_out,) as views into a flat buffer, laid
    out for elements of `itemsize` bytes (flat's own by default)."""
    offsets, _ = _layout(sizes, itemsize or flat.itemsize)
    weights = [flat[w:w + n_in * n_out].reshape(n_in, n_out)
               for (w, _), n_in, n_out in zip(offsets, sizes[:-1], sizes[1:])]
    biases = [flat[b:b + n_out] for (_, b), n_out in zip(offsets, sizes[1:])]
    return weights, biases


class MLP:
    """n_in -> hidden layers (ReLU) -> n_out (softmax), e.g. MLP([784, 128, 64, 32, 10]).

    `params` is ONE contiguous buffer holding every weight and bias; `weights[l]` (n_in, n_out)
    and `biases[l]` (n_out,) are views into it. `grads` has the same layout, with the views
    `dweights` and `dbiases`, so an optimizer is one loop over two flat arrays.

    mixed=True (mixed precision, float32 parameters) adds `params16`, the parameters in
    bfloat16 at the same offsets, with the views `weights16`: the matmuls' operands. The update
    kernels keep it current; whoever changes `params` otherwise calls `load` or `refresh`.
    """

    def __init__(self, sizes, dtype=np.float32, mixed=False):
        sizes = _sizes(sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise FastMLPError(f"layer sizes must be positive integers, got {list(sizes)}")
        self.sizes = sizes
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            self.dtype = None
        if self.dtype not in (np.float32, np.float64):
            raise FastMLPError(f"dtype must be float32 or float64, got {dtype!r}")
        length = flat_length(sizes, self.dtype)
        self.params = np.zeros(length, self.dtype)  # (P,)
        self.grads = np.zeros(length, self.dtype)  # (P,)
        self.weights, self.biases = _layer_views(self.params, sizes)
        self.dweights, self.dbiases = _layer_views(self.grads, sizes)
        self.params16 = self.weights16 = None
        if mixed:  # imported here: settings imports this module before numba may load
            if self.dtype != np.float32:
                raise FastMLPError(f"mixed precision needs float32 parameters, got {self.dtype}")
            from ..runtime.jit import ready
            from .bfloat16 import GROUP
            ready(self.dtype, GROUP)
            self.params16 = np.zeros(length, np.uint16)  # (P,)
            self.weights16, _ = _layer_views(self.params16, sizes, self.dtype.itemsize)

    @property
    def mixed(self):
        return self.params16 is not None

    def refresh(self):
        """Write the bfloat16 copy of the parameters again (mixed precision; else nothing)."""
        if self.params16 is not None:
            from .bfloat16 import to_bfloat16
            to_bfloat16(self.params16, self.params)

    def load(self, params):
        """Set the parameters to `params` (a flat array of their length) and their bfloat16
        copy with them."""
        np.copyto(self.params, params)
        self.refresh()

    @property
    def n_layers(self):
        return len(self.weights)

    @property
    def n_params(self):
        """Trainable parameters (the alignment padding is not counted)."""
        return sum(w.size + b.size for w, b in zip(self.weights, self.biases))

    def flops_per_sample(self):
        """Training FLOPs per sample (training_flops): what `fastmlp bench` counts."""
        return training_flops(self.sizes)

    def initialize(self, scheme, rng):
        """Fill the parameters in place. Draws are made in float64 and then cast, so a float32
        and a float64 model from the same generator start from the same values."""
        fill = INITS[scheme]  # a name TrainConfig checked
        for w, b in zip(self.weights, self.biases):
            fill(w, b, rng)
        self.refresh()
        return self

    def __reduce__(self):
        # Rebuilt from its sizes and a copy of its flat buffer: pickling the views apart would
        # unpickle weights that no longer live in `params` (and, memory-mapped by joblib,
        # read-only arrays the kernels cannot write).
        return (_rebuild, (self.sizes, self.dtype.name, self.params, self.mixed))

    def __repr__(self):
        precision = "mixed_bfloat16" if self.mixed else self.dtype.name
        return f"MLP({'-'.join(map(str, self.sizes))}, {precision}, {self.n_params} params)"


def _rebuild(sizes, dtype, params, mixed=False):
    """An MLP of `sizes` holding a copy of `params` (MLP.__reduce__'s way back)."""
    model = MLP(sizes, dtype, mixed=mixed)
    model.load(params)
    return model


def _sizes(sizes):
    """Layer sizes as a tuple of ints, or one line saying what they must be."""
    try:
        given = list(sizes)
        ints = tuple(int(s) for s in given)
    except (TypeError, ValueError, OverflowError):
        ints = None
    if ints is None or any(i != s for i, s in zip(ints, given)):
        raise FastMLPError(f"layer sizes must be a list of positive integers (inputs, hidden "
                           f"..., classes), e.g. [784, 128, 10], got {sizes!r}")
    return ints
