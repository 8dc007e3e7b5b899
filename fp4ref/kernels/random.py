"""Numba loops for fp4ref.random (Philox4x32-10). No public API here.

Words travel as uint64 holding 32-bit values so that each 32x32 -> 64-bit product is one native multiply
(the high half by a shift, the low half by a mask). Constants: Salmon et al., "Parallel random numbers: as easy
as 1, 2, 3" (SC11), as used by Random123 and curand's curand_philox4x32_x.h.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .bits import wide_vectors

_M0 = np.uint64(0xD2511F53)   # round multipliers
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)   # Weyl key increments
_W1 = np.uint64(0xBB67AE85)
_MASK = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)

# Counter blocks per parallel work item. The (thread, block) pairs of all streams are flattened and cut into
# chunks, so one long stream and many short ones both spread over the cores, and the Philox loop of a chunk runs
# over plain arrays of counters, which LLVM vectorises (short per-thread loops would leave it latency-bound).
_CHUNK_BLOCKS = 1024


@njit(cache=True, inline="always")
def philox_block(c0, c1, c2, c3, k0, k1):
    """The Philox4x32-10 bijection of one 128-bit counter (c0 lowest word) under the key (k0, k1).

    All arguments are uint64 holding 32-bit words; returns the four output words the same way. The key is
    bumped between rounds (nine bumps for ten rounds); the bump after round ten is never used.
    """
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _MASK, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK
        k0 = (k0 + _W0) & _MASK
        k1 = (k1 + _W1) & _MASK
    return c0, c1, c2, c3


@njit(cache=True, parallel=True)
def philox_streams(k0, k1, counter_hi, counter_lo, lane, count, out):
    """out[t, :count] = words lane, lane+1, ... of the stream whose block b has the 128-bit counter
    (counter_hi[t] << 64) + counter_lo + b (mod 2**128); each block gives its words in order x, y, z, w.

    k0, k1, counter_lo: uint64; counter_hi: uint64[n]; lane in 0..3; out: uint32[n, count], C-contiguous.
    """
    n = counter_hi.shape[0]
    nb = (lane + count + 3) // 4
    total = n * nb
    for chunk in prange((total + _CHUNK_BLOCKS - 1) // _CHUNK_BLOCKS):
        wide_vectors()
        j0 = chunk * _CHUNK_BLOCKS
        m = min(total, j0 + _CHUNK_BLOCKS) - j0
        his = np.empty(m, np.uint64)
        los = np.empty(m, np.uint64)
        t = j0 // nb
        b = j0 - t * nb
        for j in range(m):
            lo = counter_lo + np.uint64(b)
            los[j] = lo
            # the low 64 counter bits wrapped: carry into the high 64 (curand's Philox_State_Incr does the same)
            his[j] = counter_hi[t] + (_ONE if lo < counter_lo else _ZERO)
            b += 1
            if b == nb:
                b = 0
                t += 1
        words = np.empty((m, 4), np.uint32)
        for j in range(m):
            lo = los[j]
            hi = his[j]
            x0, x1, x2, x3 = philox_block(lo & _MASK, lo >> _S32, hi & _MASK, hi >> _S32, k0, k1)
            words[j, 0] = x0
            words[j, 1] = x1
            words[j, 2] = x2
            words[j, 3] = x3
        t = j0 // nb
        b = j0 - t * nb
        for j in range(m):
            i = 4 * b - lane
            if i >= 0 and i + 4 <= count:
                out[t, i] = words[j, 0]
                out[t, i + 1] = words[j, 1]
                out[t, i + 2] = words[j, 2]
                out[t, i + 3] = words[j, 3]
            else:  # first or last block of a stream: only the words inside [lane, lane + count)
                for q in range(4):
                    if 0 <= i + q < count:
                        out[t, i + q] = words[j, q]
            b += 1
            if b == nb:
                b = 0
                t += 1


@njit(cache=True, parallel=True)
def philox_blocks(counters, keys, out):
    """out[i] = Philox4x32-10(counters[i], keys[i]) for uint32 counters[n, 4], keys[n, 2]."""
    for i in prange(counters.shape[0]):
        wide_vectors()
        x0, x1, x2, x3 = philox_block(np.uint64(counters[i, 0]), np.uint64(counters[i, 1]),
                                      np.uint64(counters[i, 2]), np.uint64(counters[i, 3]),
                                      np.uint64(keys[i, 0]), np.uint64(keys[i, 1]))
        out[i, 0] = x0
        out[i, 1] = x1
        out[i, 2] = x2
        out[i, 3] = x3
