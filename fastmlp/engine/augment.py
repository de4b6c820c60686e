"""Affine augmentation fused into the minibatch gather: every image of a batch rotated, scaled,
sheared and translated by its own random amounts, sampled bilinearly, while it is copied into
the workspace (kernels.gather_rows does the plain gather and the integer shifts).

The draws are counter-based (draws.uniform), keyed like the shifts by the seed and the step,
so a run resumed from a checkpoint draws what the uninterrupted run would have, at any thread
count. With affine augmentation on, the first layer prunes no input columns (prune.py): a
rotation or scaling can light pixels that no training image lights.
"""
import numpy as np
from numba import prange

from ..runtime.jit import kernel
from .bfloat16 import bfloat16_of
from .draws import uniform

# Draws per image: angle, scale, shear, row shift, column shift (counters 5 i .. 5 i + 4).
DRAWS = 5


def affine_on(rotate, scale, shear):
    """Whether these augment_rotate, augment_scale and augment_shear settings transform at all."""
    return bool(rotate or scale or shear)


@kernel("void(F[:, ::1], u2[:, ::1], i4[::1], F[:, ::1], i4[::1], i8[::1], i8, f8, f8, f8, f8, "
        "i8)", parallel=True)
def gather_affine(xb, xb16, yb, x, y, index, side, rotate, scale, shear, shift, key):
    """xb[i] = image index[i] of x (N, side * side) under a random affine map, yb[i] = its label;
    in mixed precision (xb16 not empty) the images go to xb16 in bfloat16 instead.

    With u_k = uniform(key, DRAWS * i + k) and w_k = 2 u_k - 1 (uniform in [-1, 1)): angle
    a = w_0 * rotate degrees, s = 1 + w_1 * scale, h = tan(w_2 * shear degrees), translation
    (ty, tx) = (w_3, w_4) * shift pixels (continuous). Output pixel (r, c) samples the source
    bilinearly, zeros outside, at

        [sx, sy] = ctr + R(a) [[1, h], [0, 1]] [c - ctr - tx, r - ctr - ty] / s,

    ctr = (side - 1) / 2 and R(a) the rotation [[cos a, -sin a], [sin a, cos a]]: the image is
    moved by (ty, tx), magnified by s, and rotated and sheared about its centre. Coordinates and
    weights are float64; each pixel is rounded once to the images' type.
    """
    n = index.shape[0]
    write16 = xb16.shape[0] > 0
    centre = 0.5 * (side - 1)
    stride, top = side + 3, np.float64(side)
    radians = np.pi / 180.0
    for i in prange(n):
        src = index[i]
        yb[i] = y[src]
        base = DRAWS * i
        angle = rotate * radians * (2.0 * uniform(key, base) - 1.0)
        inv_s = 1.0 / (1.0 + scale * (2.0 * uniform(key, base + 1) - 1.0))
        h = np.tan(shear * radians * (2.0 * uniform(key, base + 2) - 1.0))
        ty = shift * (2.0 * uniform(key, base + 3) - 1.0)
        tx = shift * (2.0 * uniform(key, base + 4) - 1.0)
        cos, sin = np.cos(angle) * inv_s, np.sin(angle) * inv_s
        m00, m01, m10, m11 = cos, cos * h - sin, sin, sin * h + cos
        # The source with a border of zeros (one row/column before, two after): coordinates
        # clamped to [-1, side] then read zeros wherever the sample falls outside, so the inner
        # loop has no bounds tests (docs/performance.md, "Affine augmentation without bounds
        # tests").
        padded = np.zeros(stride * stride, np.float64)
        for r in range(side):
            for c in range(side):
                padded[(r + 1) * stride + c + 1] = x[src, r * side + c]
        for r in range(side):
            v = r - centre - ty
            ox = centre + m01 * v
            oy = centre + m11 * v
            for c in range(side):
                u = c - centre - tx
                sx = min(max(ox + m00 * u, -1.0), top)
                sy = min(max(oy + m10 * u, -1.0), top)
                fx0, fy0 = np.floor(sx), np.floor(sy)
                fx, fy = sx - fx0, sy - fy0
                p = (np.int64(fy0) + 1) * stride + np.int64(fx0) + 1
                value = ((1.0 - fy) * ((1.0 - fx) * padded[p] + fx * padded[p + 1])
                         + fy * ((1.0 - fx) * padded[p + stride] + fx * padded[p + stride + 1]))
                if write16:
                    xb16[i, r * side + c] = bfloat16_of(value)
                else:
                    xb[i, r * side + c] = value
