"""Affine augmentation fused into the minibatch gather: every image of a batch rotated, scaled,
sheared and translated by its own random amounts, sampled bilinearly, while it is copied into
the workspace (kernels.gather_rows does the plain gather and the integer shifts).

The draws are counter-based (draws.uniform), keyed like the shifts by the seed and the step,
so a run resumed from a checkpoint draws what the uninterrupted run would have, at any thread
count. With affine augmentation on, the first layer prunes no input columns (prune.py): a
rotation or scaling can light pixels that no training image lights.

The affine draws, the padded source and the bilinear sample are inline helpers, which the
elastic gather (elastic.py) shares: it adds its displacement to these sampling coordinates.
"""
import numba
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


@numba.njit(inline="always")
def affine_map(key, base, rotate, scale, shear, shift):
    """(m00, m01, m10, m11, ty, tx): the map of gather_affine's docstring drawn from counters
    base .. base + 4 of `key`, the rotation already divided by the scale."""
    radians = np.pi / 180.0
    angle = rotate * radians * (2.0 * uniform(key, base) - 1.0)
    inv_s = 1.0 / (1.0 + scale * (2.0 * uniform(key, base + 1) - 1.0))
    h = np.tan(shear * radians * (2.0 * uniform(key, base + 2) - 1.0))
    ty = shift * (2.0 * uniform(key, base + 3) - 1.0)
    tx = shift * (2.0 * uniform(key, base + 4) - 1.0)
    cos, sin = np.cos(angle) * inv_s, np.sin(angle) * inv_s
    return cos, cos * h - sin, sin, sin * h + cos, ty, tx


@numba.njit(inline="always")
def padded_source(x, src, side):
    """Image `src` of x as float64 with a border of zeros (one row/column before, two after),
    rows of side + 3: bilinear_at reads it without bounds tests (docs/performance.md, "Affine
    augmentation without bounds tests")."""
    stride = side + 3
    padded = np.zeros(stride * stride, np.float64)
    for r in range(side):
        for c in range(side):
            padded[(r + 1) * stride + c + 1] = x[src, r * side + c]
    return padded


@numba.njit(inline="always")
def bilinear_at(padded, side, sx, sy):
    """The source of padded_source sampled bilinearly at column sx, row sy, zeros outside: the
    coordinates are clamped to [-1, side], where the border reads zeros."""
    stride, top = side + 3, np.float64(side)
    sx = min(max(sx, -1.0), top)
    sy = min(max(sy, -1.0), top)
    fx0, fy0 = np.floor(sx), np.floor(sy)
    fx, fy = sx - fx0, sy - fy0
    p = (np.int64(fy0) + 1) * stride + np.int64(fx0) + 1
    return ((1.0 - fy) * ((1.0 - fx) * padded[p] + fx * padded[p + 1])
            + fy * ((1.0 - fx) * padded[p + stride] + fx * padded[p + stride + 1]))


@numba.njit(inline="always")
def put_pixel(xb, xb16, write16, i, j, value):
    """Pixel j of output image i: to xb16 in bfloat16 in mixed precision (write16), else to xb
    in the images' type, rounded once."""
    if write16:
        xb16[i, j] = bfloat16_of(value)
    else:
        xb[i, j] = value


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
    for i in prange(n):
        src = index[i]
        yb[i] = y[src]
        m00, m01, m10, m11, ty, tx = affine_map(key, DRAWS * i, rotate, scale, shear, shift)
        padded = padded_source(x, src, side)
        for r in range(side):
            v = r - centre - ty
            ox = centre + m01 * v
            oy = centre + m11 * v
            for c in range(side):
                u = c - centre - tx
                put_pixel(xb, xb16, write16, i, r * side + c,
                          bilinear_at(padded, side, ox + m00 * u, oy + m10 * u))
