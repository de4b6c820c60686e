"""Minibatches: each shuffled batch gathered into a buffer by a kernel (shifted or transformed
when augmenting), and, where it pays, gathered one batch ahead on a second thread while the
caller runs the step of the batch before.

The draws of the augmentation are keyed by the seed and the step that trains on the batch, so
a batch gathered ahead is bit for bit the batch gathered in turn.
"""
import threading

import numba
import numpy as np

from . import augment, prune
from .kernels import gather_rows, step_key

# Salt of the shift and affine augmentation draws (dropout uses the layer index, which stays
# far below).
SHIFT_SALT = 63


class Gather:
    """gather(xb, yb, index, step): the rows `index` of x, y into xb, yb, augmented with the
    draws of optimizer step `step`. affine: (rotate, scale, shear) of augment.gather_affine or
    None; kept: the input columns a pruned first layer reads (prune.py), or None for all."""

    def __init__(self, x, y, side, shift, affine, kept, seed):
        self.x, self.y, self.side, self.shift = x, y, side, shift
        self.affine, self.kept, self.seed = affine, kept, seed

    def __call__(self, xb, yb, index, step):
        key = step_key(self.seed, step, SHIFT_SALT)
        if self.affine is not None:
            augment.gather_affine(xb, yb, self.x, self.y, index, self.side, *self.affine,
                                  float(self.shift), key)
        elif self.kept is None:
            gather_rows(xb, yb, self.x, self.y, index, self.side, self.shift, key)
        else:
            prune.gather_columns(xb, yb, self.x, self.y, index, self.kept, self.side,
                                 self.shift, key)


def feed(fill, start, stop, ahead):
    """What serves batches start .. stop - 1 of an epoch: `fill(b, slot)` gathers batch b into
    slot 0 or 1. Batch `start` is filled here, in this thread (which also makes numba load its
    threading layer); with `ahead` the rest are filled on a worker thread one ahead (Ahead),
    else in turn in this thread (InTurn), both through take(b) and done(b) in a `with` block.
    numba's workqueue layer (used only where neither OpenMP nor TBB loads) aborts when two
    threads launch kernels at once: there batches come in turn."""
    fill(start, 0)
    if ahead and numba.threading_layer() != "workqueue":
        return Ahead(fill, start, stop)
    return InTurn(fill, start)


class InTurn:
    """Each batch filled into slot 0 when the caller takes it."""

    def __init__(self, fill, start):
        self.fill, self.start = fill, start

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def take(self, b):
        if b != self.start:
            self.fill(b, 0)
        return 0

    def done(self, b):
        pass


class Ahead:
    """Batches start + 1 .. stop - 1 filled on a worker thread, one ahead of the caller, into
    the two slots in turn (batch b into slot (b - start) % 2; `start` is in slot 0 already).
    take(b) waits until batch b is filled and returns its slot; done(b) gives the slot back
    once the step no longer reads it. Leaving the `with` block stops the worker and waits for
    it, so no gather writes into a slot afterwards (an epoch cut short by stop_requested leaves
    at once, and an exception in the worker is raised by take).

    Two plain locks per slot hand it back and forth (C locks, no Python-level condition):
    `filled` is held while the slot waits for the worker, `free` while the caller reads it."""

    def __init__(self, fill, start, stop):
        self.fill, self.start, self.stop = fill, start, stop
        self.filled = [threading.Lock(), threading.Lock()]
        self.free = [threading.Lock(), threading.Lock()]
        self.filled[1].acquire()  # slot 0 holds batch `start`, which the caller reads
        self.free[0].acquire()
        self.stopping, self.error = False, None
        self.worker = threading.Thread(target=self._work, name="fastmlp-gather", daemon=True)

    def __enter__(self):
        self.worker.start()
        return self

    def take(self, b):
        slot = (b - self.start) & 1
        self.filled[slot].acquire()
        if self.error is not None:
            raise self.error
        return slot

    def done(self, b):
        self.free[(b - self.start) & 1].release()

    def __exit__(self, *exc):
        self.stopping = True
        for lock in self.free:  # only this thread releases them: no race on locked()
            if lock.locked():
                lock.release()
        self.worker.join()

    def _work(self):
        # numba's thread count is per thread: this one's gathers run on it alone.
        numba.set_num_threads(1)
        slot = 1
        try:
            for b in range(self.start + 1, self.stop):
                slot = (b - self.start) & 1
                self.free[slot].acquire()
                if self.stopping:
                    return
                self.fill(b, slot)
                self.filled[slot].release()
        except BaseException as error:  # handed to the caller, which raises it in take(b)
            self.error = error
            self.filled[slot].release()


class Slots:
    """The buffers minibatches are gathered into: slot 0 is the workspace's own (x, y), slot 1
    a second pair of the same shape (only when gathering ahead). view(slot, rows) gives the
    first `rows` rows of a slot as (x, x.T, y), cached."""

    def __init__(self, ws, ahead):
        self.pairs = [(ws.x, ws.y)]
        if ahead:
            self.pairs.append((np.empty_like(ws.x), np.empty_like(ws.y)))
        self._views = {}

    def view(self, slot, rows):
        key = (slot, rows)
        pair = self._views.get(key)
        if pair is None:
            x, y = self.pairs[slot]
            pair = self._views[key] = (x[:rows], x[:rows].T, y[:rows])
        return pair

    @property
    def nbytes(self):
        return sum(x.nbytes + y.nbytes for x, y in self.pairs[1:])
