"""Counter-based random numbers: every random draw inside a kernel (dropout masks, shifts,
affine maps) is a pure function of a 64-bit key, which the caller derives from the seed, the
optimizer step and a salt, and of the index of the thing drawn for. Results therefore depend
neither on the thread count nor on scheduling, and a resumed run draws what the uninterrupted
one would have."""
import numba
import numpy as np

_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # splitmix64's Weyl increment, 2**64 / golden ratio
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def step_key(seed, step, salt):
    """The 64-bit key (as int64) for a kernel's random draws at optimizer step `step` of a run
    seeded `seed`; `salt` tells draws of the same step apart (the layer for dropout). Kernels
    hash the key before use, so a plain linear combination is enough here."""
    key = (seed * 0x9E3779B97F4A7C15 + step * 64 + salt) & 0xFFFFFFFFFFFFFFFF
    return key - (1 << 64) if key >= 1 << 63 else key


@numba.njit(inline="always")
def mix64(z):
    """splitmix64's finaliser (Stafford's variant 13), a bijection on uint64."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@numba.njit(inline="always")
def uniform(key, counter):
    """A float64 in [0, 1) from (key, counter): the top 53 bits of output number `counter`
    (0-based) of a splitmix64 generator seeded with mix64(key). Hashing the key keeps the
    streams of nearby keys apart; inside a loop it is loop-invariant and hoisted."""
    state = mix64(np.uint64(key)) + (np.uint64(counter) + np.uint64(1)) * _GAMMA
    return np.float64(mix64(state) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


