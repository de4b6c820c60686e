"""Preallocated buffers for forward and backward passes over batches of up to `rows` rows.

Everything a training step writes lives here or in the model, so the hot loop allocates no
array memory. A batch with fewer rows (the last partial minibatch, an evaluation tail) uses
`rows_view(n)`: views of the first n rows, which stay C-contiguous, made once and cached.
"""
import numpy as np

from ..runtime.jit import ready
from .kernels import n_chunks

# Evaluation runs in chunks of this many rows: MNIST's validation and test sets each fit in one.
EVAL_ROWS = 16384
# The buffers a view of fewer rows cuts (rows_view); the reduction scratch is shared whole.
SLICED = ("x", "x16", "y", "acts", "deltas", "acts16", "deltas16")


def buffer_shapes(sizes, dtype, rows, *, backward=True, gather=True, columns=None,
                  mixed=False):
    """Every buffer a Workspace for layer `sizes` and `rows` rows allocates, in its field order:
    name -> (shape, dtype), a list of those (one per layer), or None (left out). Workspace
    allocates from this and plan.py counts bytes from it, so the two cannot drift apart.
    columns: the gathered inputs' width when it is not sizes[0] (prune.py's kept columns);
    mixed: the matmul operands in bfloat16 (the gathered inputs only so, activations and deltas
    beside their float copies)."""
    widths = sizes[1:]
    bf16 = np.uint16
    return {
        # (B, n_in) the minibatch
        "x": ((rows, columns or sizes[0]), dtype) if gather and not mixed else None,
        "x16": ((rows, sizes[0]), bf16) if gather and mixed else None,
        "y": ((rows,), np.int32) if gather else None,  # (B,) minibatch labels
        "acts": [((rows, w), dtype) for w in widths],  # (B, H_l); last: logits
        "deltas": [((rows, w), dtype) for w in widths] if backward else None,  # (B, H_l) dL/dz
        "partial": ((n_chunks(rows), max(widths)), dtype),  # per-chunk sums
        "loss_partial": ((n_chunks(rows),), np.float64),  # (chunks,)
        "count_partial": ((n_chunks(rows),), np.int64),  # (chunks,)
        # (B, H_l) the hidden layers' outputs, and every layer's dL/dz, in bfloat16
        "acts16": [((rows, w), bf16) for w in widths[:-1]] if mixed else None,
        "deltas16": [((rows, w), bf16) for w in widths] if mixed and backward else None,
    }


def buffer_bytes(shapes):
    """The bytes of buffer_shapes' buffers, without allocating them."""
    specs = [spec for value in shapes.values() if value is not None
             for spec in (value if isinstance(value, list) else [value])]
    return sum(int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
               for shape, dtype in specs)


def _zeros(spec):
    if spec is None:
        return None
    if isinstance(spec, list):
        return [np.zeros(shape, dtype) for shape, dtype in spec]
    return np.zeros(*spec)


class Workspace:
    def __init__(self, model, rows, *, backward=True, gather=True, columns=None, _parent=None):
        """Buffers for `model` and batches of up to `rows` rows. backward=False leaves out the
        deltas (evaluation); gather=False leaves out the minibatch input buffer, for passes that
        read contiguous rows of a dataset directly (full batch, evaluation); columns: the
        gathered inputs' width when only some columns are gathered (prune.py). A mixed-precision
        model gets the bfloat16 operand buffers too (buffer_shapes)."""
        self.rows = rows
        self._views = {}
        if _parent is None:
            ready(model.dtype)
            shapes = buffer_shapes(model.sizes, model.dtype, rows, backward=backward,
                                   gather=gather, columns=columns, mixed=model.mixed)
            for name, spec in shapes.items():
                setattr(self, name, _zeros(spec))
        else:
            for name in SLICED:
                value = getattr(_parent, name)
                setattr(self, name, None if value is None else
                        [v[:rows] for v in value] if isinstance(value, list) else value[:rows])
            # Kernels use only the first n_chunks(rows) rows of the scratch buffers.
            self.partial = _parent.partial
            self.loss_partial = _parent.loss_partial
            self.count_partial = _parent.count_partial

    @property
    def mixed(self):
        return self.acts16 is not None

    @property
    def logits(self):
        return self.acts[-1]  # (B, n_out)

    def rows_view(self, rows):
        """This workspace cut to its first `rows` rows (itself when rows == self.rows)."""
        if rows == self.rows:
            return self
        if not 0 < rows < self.rows:
            raise ValueError(f"a workspace for {self.rows} rows cannot hold {rows}")
        view = self._views.get(rows)
        if view is None:
            view = self._views[rows] = Workspace(None, rows, _parent=self)
        return view

    @property
    def nbytes(self):
        buffers = [self.x, self.x16, self.y, *self.acts, *(self.deltas or ()), self.partial,
                   *(self.acts16 or ()), *(self.deltas16 or ())]
        return sum(b.nbytes for b in buffers if b is not None)

    def __repr__(self):
        return f"Workspace(rows={self.rows}, {self.nbytes / 2**20:.1f} MiB)"
