"""Numba drivers for the 2^32 float32 sweeps: fast path against the integer reference, chunked ml_dtypes."""
import numpy as np
from numba import njit, prange

from fp4ref.exact.cast import bits_encode, split_f32
from fp4ref.kernels.cast import encode_one


@njit(cache=True, parallel=True)
def _sweep(lo, hi, fp, pol, q, tpos, tneg, first):
    bad = 0
    for i in prange(lo, hi):
        b = np.uint32(i)
        neg, is_nan, is_inf, sig, ex, lg = split_f32(b)
        if is_nan:
            x = np.nan
        elif is_inf:
            x = np.inf
        else:
            x = np.ldexp(np.float64(sig), ex)
        if neg:
            x = -x
        a = encode_one(x, fp, pol)
        r = bits_encode(neg, is_nan, is_inf, sig, ex, q, tpos, tneg, lg)
        if a < 0:
            a = -1
        if a != r:
            bad += 1
            first[0] = i
    return bad


def sweep_f32(fp, pol, refparams, lo=0, hi=1 << 32):
    """Mismatch count over float32 bit patterns [lo, hi) and one mismatching pattern (or -1)."""
    first = np.full(1, -1, np.int64)
    bad = _sweep(lo, hi, fp, pol, *refparams, first)
    return bad, int(first[0])
