"""Elastic distortions (Simard, Steinkraus & Platt 2003) fused into the minibatch gather, on top
of the affine map of augment.py: one pass per image, one bilinear sample per pixel.

A field pair is two fields dx, dy of uniforms in [-1, 1) on the image grid, each smoothed by a
Gaussian of standard deviation sigma pixels (weights summing to 1, truncated at 3 sigma, zeros
beyond the grid: scipy's gaussian_filter with mode="constant", the convention of the usual
implementations), scaled by alpha; output pixel (r, c) samples the source at the affine map's
coordinates plus (dx, dy) at (r, c). The field is not normalised: alpha 34, sigma 4 (Simard's
MNIST values) then displace pixels by about 1.4 px RMS (docs/user-guide.md).

Drawing and smoothing a fresh pair per image cost 3.6 times the affine gather (docs/performance.md,
"Elastic distortions"), so a run draws a bank of BANK_FIELDS pairs once, from its seed, and each
image takes one pair of the bank with dx and dy each negated or not and possibly swapped: eight
variants per pair. Each variant is a true sample of the same smoothed-noise distribution (the
uniforms are symmetric and dx, dy independent and alike); what changes is that images share
fields. With 8 x BANK_FIELDS variants, composed with a fresh affine map per image, an image
rarely meets the same distortion twice. The fields are drawn on the whole grid, not on a coarser
grid upsampled, which would change their covariance (piecewise linear instead of Gaussian).
Draws are counter-based under keys of their own: the affine draws stay those of
augment.gather_affine, and a resumed run has the same bank and picks the same variants.
"""
import math

import numba
import numpy as np
from numba import prange

from ..runtime.jit import kernel
from .augment import DRAWS, affine_map, bilinear_at, padded_source, put_pixel
from .draws import uniform

# The jit.ready group of the elastic gather: made ready only by runs that distort.
GROUP = "elastic"
# Field pairs in a run's bank: 2,048 x 28 x 56 float32 is 12.8 MB, drawn in ~50 ms.
BANK_FIELDS = 2048
# Variants per field pair: dx negated or not, dy negated or not, the two swapped or not.
VARIANTS = 8


def elastic_on(alpha):
    """Whether this augment_elastic setting distorts at all."""
    return bool(alpha)


def gaussian_taps(sigma):
    """The smoothing's weights: exp(-k^2 / (2 sigma^2)) for |k| <= 3 sigma (rounded to whole
    pixels), divided by their sum; float64, odd length, symmetric."""
    radius = int(3.0 * sigma + 0.5)
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-k * k / (2.0 * sigma * sigma))
    return taps / taps.sum()


def smoothing(sigma, side):
    """(G, radius), computed once per run: the smoothing along one axis of a side-long grid as a
    banded (side, side) matrix, G[r, k] = taps[k - r + radius] within the band, 0 outside (the
    zeros beyond the grid), so a field U smooths to G U G^T."""
    taps = gaussian_taps(sigma)
    radius = (len(taps) - 1) // 2
    offset = np.subtract.outer(np.arange(side), np.arange(side))
    near = np.abs(offset) <= radius
    return np.where(near, taps[np.where(near, radius - offset, 0)], 0.0), radius


@numba.njit(inline="always")
def smoothed_field(key, base, side, g, radius):
    """(side, 2 side) float64, row r holding dx's row r then dy's: uniforms in [-1, 1) from
    counters base .. base + 2 side^2 - 1 of `key` (dx's grid row by row, then dy's), smoothed
    as G U G^T. Every inner loop runs over a whole contiguous row from index 0: with indices
    numba cannot prove non-negative (k - r + radius) it tests each one and nothing vectorises,
    4x slower (docs/performance.md, "Elastic distortions"). Along rows G is applied whole (the
    band's short loops cost more than its zeros), along columns only its band."""
    width = 2 * side
    raw = np.empty((side, width), np.float64)
    for r in range(side):
        for f in range(2):
            for c in range(side):
                raw[r, f * side + c] = 2.0 * uniform(key, base + (f * side + r) * side + c) - 1.0
    rows = np.zeros((side, width), np.float64)  # raw smoothed along each row: raw G^T
    for r in range(side):
        for f in range(2):
            for k in range(side):
                v = raw[r, f * side + k]
                for c in range(side):
                    rows[r, f * side + c] += g[k, c] * v
    field = np.zeros((side, width), np.float64)  # then along each column: G rows
    for r in range(side):
        for k in range(max(0, r - radius), min(side, r + radius + 1)):
            w = g[r, k]
            for j in range(width):
                field[r, j] += w * rows[k, j]
    return field


@kernel("void(f4[:, :, ::1], i8, f8[:, ::1], i8)", parallel=True, group=GROUP)
def smoothed_bank(bank, key, g, radius):
    """bank[b] = smoothed_field(key, 2 side^2 b, side, g, radius) in float32, bank (B, side,
    2 side), (g, radius) = smoothing(sigma, side)."""
    side = bank.shape[1]
    for b in prange(bank.shape[0]):
        field = smoothed_field(key, 2 * side * side * b, side, g, radius)
        for r in range(side):
            for j in range(2 * side):
                bank[b, r, j] = field[r, j]


def bank_bytes(side, fields=BANK_FIELDS):
    """The memory of field_bank's array."""
    return fields * side * 2 * side * np.dtype(np.float32).itemsize


def field_bank(sigma, side, key, fields=BANK_FIELDS):
    """A run's bank of smoothed field pairs (fields, side, 2 side), float32: row r of pair b
    holds dx's row r then dy's, drawn from counters 2 side^2 b onwards of `key`."""
    bank = np.empty((fields, side, 2 * side), np.float32)
    smoothed_bank(bank, key, *smoothing(sigma, side))
    return bank


@kernel("void(F[:, ::1], u2[:, ::1], i4[::1], F[:, ::1], i4[::1], i8[::1], i8, f8, f8, f8, f8, "
        "i8, f8, f4[:, :, ::1], i8)", parallel=True, group=GROUP)
def gather_elastic(xb, xb16, yb, x, y, index, side, rotate, scale, shear, shift, key, alpha,
                   bank, field_key):
    """augment.gather_affine (same arguments up to `key`, same draws) with an elastic
    displacement added to each pixel's sampling coordinates: [sx, sy] += alpha * (dx, dy) at
    (r, c). Output image i draws pick = floor(uniform(field_key, i) * VARIANTS * B), B = len(bank);
    its fields are bank[pick // 8]'s halves, swapped if bit 2 of pick is set, then dx negated if
    bit 0 is, dy if bit 1 is. Rotate, scale, shear and shift all 0 give the identity map, so the
    distortion alone."""
    n = index.shape[0]
    write16 = xb16.shape[0] > 0
    centre = 0.5 * (side - 1)
    variants = VARIANTS * bank.shape[0]
    for i in prange(n):
        src = index[i]
        yb[i] = y[src]
        m00, m01, m10, m11, ty, tx = affine_map(key, DRAWS * i, rotate, scale, shear, shift)
        padded = padded_source(x, src, side)
        pick = np.int64(uniform(field_key, i) * variants)
        field = bank[pick // VARIANTS]
        ax = -alpha if pick & 1 else alpha
        ay = -alpha if pick & 2 else alpha
        cx = side if pick & 4 else 0  # where dx's row starts in the pair's row, then dy's
        cy = side - cx
        for r in range(side):
            v = r - centre - ty
            ox = centre + m01 * v
            oy = centre + m11 * v
            for c in range(side):
                u = c - centre - tx
                put_pixel(xb, xb16, write16, i, r * side + c,
                          bilinear_at(padded, side, ox + m00 * u + ax * field[r, cx + c],
                                      oy + m10 * u + ay * field[r, cy + c]))


def field_rms(alpha, sigma):
    """The RMS displacement (pixels, each axis) of the field away from the grid's edges:
    alpha * sqrt(1/3) * sum(taps^2), the variance of a uniform times the 2-D weights' squares."""
    taps = gaussian_taps(sigma)
    return alpha * math.sqrt(1.0 / 3.0) * float(np.sum(taps * taps))
