"""bfloat16, the matmul operands of `--dtype mixed_bfloat16`: the top 16 bits of a float32
(sign, the 8-bit exponent, 7 bits of mantissa), kept as uint16 bit patterns.

Rounding is to nearest, ties to even, as the bf16 matrix units and PyTorch round; a NaN stays
a (quiet) NaN, and values past the largest bfloat16 round to infinity. The fused kernels write
an operand's bfloat16 copy where they write the value itself (bfloat16_of); `to_bfloat16`
converts arrays that no kernel passes, once (the inputs); `widen` turns bfloat16 back into
float32, exactly, for a BLAS without bfloat16 matmuls. Numpy twins in tests/naive.py.
"""
import numba
import numpy as np
from numba import prange, types
from numba.extending import intrinsic

from ..runtime.jit import kernel

# The jit.ready group of the conversion kernels: made ready by mixed-precision runs only.
GROUP = "bfloat16"
# An empty bfloat16 buffer: what a kernel that can write a bfloat16 copy gets when the run has
# none to write (every run but a mixed-precision one).
NONE_2D = np.empty((0, 0), np.uint16)
NONE_1D = np.empty(0, np.uint16)


@intrinsic
def float32_bits(typingctx, value):
    """The bit pattern of a float32, as a uint32 (a bitcast: no memory round trip)."""
    if value != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.uint32))
    return types.uint32(types.float32), codegen


@numba.njit(inline="always")
def bfloat16_of(value):
    """The bfloat16 (uint16 bits) nearest to `value` rounded to float32, ties to even."""
    bits = float32_bits(np.float32(value))
    if (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000):  # NaN: quiet, sign kept
        return np.uint16((bits >> np.uint32(16)) | np.uint32(0x40))
    odd = (bits >> np.uint32(16)) & np.uint32(1)
    return np.uint16((bits + np.uint32(0x7FFF) + odd) >> np.uint32(16))


@kernel("void(u2[::1], F[::1])", parallel=True, group=GROUP)
def to_bfloat16(out, x):
    """out = x rounded to bfloat16, both flat (reshape(-1) of C-contiguous arrays)."""
    for i in prange(x.shape[0]):
        out[i] = bfloat16_of(x[i])


@kernel("void(u4[::1], u2[::1])", parallel=True, group=GROUP)
def widen(out_bits, x):
    """out_bits = x as float32 bit patterns (bfloat16 widens exactly), both flat."""
    for i in prange(x.shape[0]):
        out_bits[i] = np.uint32(x[i]) << np.uint32(16)


def bfloat16_copy(x):
    """A new uint16 array: x (a C-contiguous float32 array) rounded to bfloat16."""
    x = np.ascontiguousarray(x)
    out = np.empty(x.shape, np.uint16)
    to_bfloat16(out.reshape(-1), x.reshape(-1))
    return out


def widened(x16, out=None):
    """x16 (bfloat16 bits, C-contiguous) as float32, into `out` (C-contiguous, the same
    shape) when given."""
    out = np.empty(x16.shape, np.float32) if out is None else out
    widen(out.reshape(-1).view(np.uint32), x16.reshape(-1))
    return out
