"""Sixteen register lanes: the helpers that keep a row's 16 output columns in registers while a
kernel walks a sparse row's nonzeros (the fused pass, the sparse first layer).

A 16-tuple, not a local array: LLVM splits the tuple into sixteen scalars (an array it cannot
prove free of aliasing with the weights stays in memory), and its SLP vectoriser turns the
lane-by-lane arithmetic spelled out below into vector FMAs. numba leaves SLP off, so it is
switched on only while these kernels compile (`slp_kernel`). Two products are added before
touching the accumulator (`axpy2x16`), which breaks the FMA latency chain; without `reassoc`
LLVM keeps that form (docs/performance.md, "The fused pass").
"""
import numba

from ..runtime.jit import FASTMATH, kernel

LANES = 16  # two AVX2 vectors of float32
# Without reassoc: with it LLVM turns the lane sums back into gathers across nonzeros.
LANE_FASTMATH = FASTMATH - {"reassoc"}


def slp_kernel(template, group, parallel=True):
    """A kernel of jit group `group` compiled with LLVM's SLP vectoriser on."""
    return kernel(template, parallel=parallel, error_model="numpy", group=group, slp=True,
                  fastmath=LANE_FASTMATH, boundscheck=False)


@numba.njit(inline="always")
def load16(w, o):
    """w[o:o + 16] as a 16-tuple."""
    return (w[o], w[o + 1], w[o + 2], w[o + 3], w[o + 4], w[o + 5], w[o + 6], w[o + 7],
            w[o + 8], w[o + 9], w[o + 10], w[o + 11], w[o + 12], w[o + 13], w[o + 14], w[o + 15])


@numba.njit(inline="always")
def zeros16(zero):
    return (zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero,
            zero, zero)


@numba.njit(inline="always")
def axpy16(acc, s, w, o):
    """acc + s * w[o:o + 16], lane by lane."""
    return (acc[0] + s * w[o], acc[1] + s * w[o + 1], acc[2] + s * w[o + 2],
            acc[3] + s * w[o + 3], acc[4] + s * w[o + 4], acc[5] + s * w[o + 5],
            acc[6] + s * w[o + 6], acc[7] + s * w[o + 7], acc[8] + s * w[o + 8],
            acc[9] + s * w[o + 9], acc[10] + s * w[o + 10], acc[11] + s * w[o + 11],
            acc[12] + s * w[o + 12], acc[13] + s * w[o + 13], acc[14] + s * w[o + 14],
            acc[15] + s * w[o + 15])


@numba.njit(inline="always")
def axpy2x16(acc, u, w, o, v, q):
    """acc + (u * w[o:o + 16] + v * w[q:q + 16]): two products added before the
    accumulator, which shortens the FMA latency chain per nonzero."""
    return (acc[0] + (u * w[o] + v * w[q]), acc[1] + (u * w[o + 1] + v * w[q + 1]),
            acc[2] + (u * w[o + 2] + v * w[q + 2]), acc[3] + (u * w[o + 3] + v * w[q + 3]),
            acc[4] + (u * w[o + 4] + v * w[q + 4]), acc[5] + (u * w[o + 5] + v * w[q + 5]),
            acc[6] + (u * w[o + 6] + v * w[q + 6]), acc[7] + (u * w[o + 7] + v * w[q + 7]),
            acc[8] + (u * w[o + 8] + v * w[q + 8]), acc[9] + (u * w[o + 9] + v * w[q + 9]),
            acc[10] + (u * w[o + 10] + v * w[q + 10]), acc[11] + (u * w[o + 11] + v * w[q + 11]),
            acc[12] + (u * w[o + 12] + v * w[q + 12]), acc[13] + (u * w[o + 13] + v * w[q + 13]),
            acc[14] + (u * w[o + 14] + v * w[q + 14]), acc[15] + (u * w[o + 15] + v * w[q + 15]))


@numba.njit(inline="always")
def relu16(a, b, zero):
    """max(a + b[:16], 0), lane by lane (zero: 0 of the float type)."""
    return (max(a[0] + b[0], zero), max(a[1] + b[1], zero), max(a[2] + b[2], zero),
            max(a[3] + b[3], zero), max(a[4] + b[4], zero), max(a[5] + b[5], zero),
            max(a[6] + b[6], zero), max(a[7] + b[7], zero), max(a[8] + b[8], zero),
            max(a[9] + b[9], zero), max(a[10] + b[10], zero), max(a[11] + b[11], zero),
            max(a[12] + b[12], zero), max(a[13] + b[13], zero), max(a[14] + b[14], zero),
            max(a[15] + b[15], zero))


@numba.njit(inline="always")
def relu_grad16(d, h, zero):
    """d where h > 0, else 0, lane by lane (zero: 0 of the float type)."""
    return (d[0] if h[0] > 0 else zero, d[1] if h[1] > 0 else zero, d[2] if h[2] > 0 else zero,
            d[3] if h[3] > 0 else zero, d[4] if h[4] > 0 else zero, d[5] if h[5] > 0 else zero,
            d[6] if h[6] > 0 else zero, d[7] if h[7] > 0 else zero, d[8] if h[8] > 0 else zero,
            d[9] if h[9] > 0 else zero, d[10] if h[10] > 0 else zero, d[11] if h[11] > 0 else zero,
            d[12] if h[12] > 0 else zero, d[13] if h[13] > 0 else zero,
            d[14] if h[14] > 0 else zero, d[15] if h[15] > 0 else zero)


@numba.njit(inline="always")
def add16(out, o, s, d):
    """out[o:o + 16] += s * d, d a 16-tuple."""
    out[o] += s * d[0]
    out[o + 1] += s * d[1]
    out[o + 2] += s * d[2]
    out[o + 3] += s * d[3]
    out[o + 4] += s * d[4]
    out[o + 5] += s * d[5]
    out[o + 6] += s * d[6]
    out[o + 7] += s * d[7]
    out[o + 8] += s * d[8]
    out[o + 9] += s * d[9]
    out[o + 10] += s * d[10]
    out[o + 11] += s * d[11]
    out[o + 12] += s * d[12]
    out[o + 13] += s * d[13]
    out[o + 14] += s * d[14]
    out[o + 15] += s * d[15]


@numba.njit(inline="always")
def put16(out, d):
    """out[:16] = d, a 16-tuple."""
    out[0] = d[0]
    out[1] = d[1]
    out[2] = d[2]
    out[3] = d[3]
    out[4] = d[4]
    out[5] = d[5]
    out[6] = d[6]
    out[7] = d[7]
    out[8] = d[8]
    out[9] = d[9]
    out[10] = d[10]
    out[11] = d[11]
    out[12] = d[12]
    out[13] = d[13]
    out[14] = d[14]
    out[15] = d[15]

