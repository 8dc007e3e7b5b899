"""Counting code mismatches without a mask (check's clean-dump case: the mask is built only where some differ)."""
import numpy as np
from numba import njit, prange

from .bits import wide_vectors


@njit(cache=True)
def _count_run(a, b):
    wide_vectors()
    k = 0
    for i in range(a.size):
        k += a[i] != b[i]
    return k


@njit(cache=True, parallel=True)
def count_differ(a, b):
    """Number of positions where the flat integer arrays a and b (same size) differ. The chunks are slices
    counted by a function of their own: indexing inside the prange loop measured 10x slower (not vectorized)."""
    n = a.size
    nchunk = 64
    part = np.zeros(nchunk, np.int64)
    step = (n + nchunk - 1) // nchunk
    for c in prange(nchunk):
        lo = min(c * step, n)
        hi = min(lo + step, n)
        part[c] = _count_run(a[lo:hi], b[lo:hi])
    return part.sum()
