"""Numba loops for element encode (fast path). No public API; see fp4ref.cast.

The value is rounded from its exact float64 representation: |x| = s * 2^q with q the quantum exponent of the
target binade, so s = ldexp(|x|, -q) is exact and floor/fraction of s decide the rounding. All inputs
(float16/bfloat16/float32/float64) are exact in float64, so this is a single rounding.
"""
import math

import numpy as np
from numba import njit, prange

from .bits import f64_as_u64, u64_as_f64

# fp: format description (int64 array), built by fp4ref.cast.cast_params
F_KIND, F_BITS, F_MBITS, F_BIAS, F_EMIN, F_SIGNED, F_HAS_ZERO, F_MAX_CODE, F_SIGN_BIT, F_FRAC_BITS, \
    F_MAX_NEG, F_NAN_CODE, F_INF_CODE, F_LEN = range(14)
KIND_FLOAT, KIND_INT = 0, 1

# pol: policies (int64 array); codes are resolved in Python, negative values are error sentinels
P_MODE, P_OVF, P_NAN_POS, P_NAN_NEG, P_NEG_ZERO_CODE, P_NEGATIVE, P_ZERO, P_INF_POS, P_INF_NEG, P_E8M0_SUB, \
    P_LEN = range(11)
NEG_ABS = -10  # P_NEGATIVE: encode |x| (torch's e8m0 cast ignores the sign)

ERR_NAN, ERR_NEGATIVE, ERR_ZERO = -1, -2, -3


@njit(cache=True, inline="always")
def round_up(n, f, neg, mode, odd):
    """Whether the magnitude n + f (0 < f < 1) rounds up to n + 1. `odd`: parity of the code of n."""
    if mode == 0:
        return f > 0.5 or (f == 0.5 and odd)
    if mode == 1:
        return f >= 0.5
    if mode == 2:
        return f > 0.5
    if mode == 3:
        return False
    if mode == 4:
        return not neg
    if mode == 5:
        return neg
    return not odd


@njit(cache=True, inline="always")
def toward_zero_for(mode, neg):
    return mode == 3 or (mode == 4 and neg) or (mode == 5 and not neg)


@njit(cache=True)
def encode_one(x, fp, pol):
    """Code of float64 x, or a negative ERR_* sentinel where a policy says raise."""
    if x != x:
        sgn = math.copysign(1.0, x) < 0.0
        return pol[P_NAN_NEG] if sgn else pol[P_NAN_POS]
    neg = math.copysign(1.0, x) < 0.0
    if x == 0.0:
        if fp[F_HAS_ZERO] == 0:
            return pol[P_ZERO]
        return pol[P_NEG_ZERO_CODE] if neg else 0
    if neg and fp[F_SIGNED] == 0:
        if pol[P_NEGATIVE] != NEG_ABS:
            return pol[P_NEGATIVE]
        x = -x
        neg = False
    if math.isinf(x):
        return pol[P_INF_NEG] if neg else pol[P_INF_POS]
    a = abs(x)
    mode = pol[P_MODE]
    if fp[F_KIND] == KIND_INT:
        s = math.ldexp(a, fp[F_FRAC_BITS])
        limit = fp[F_MAX_NEG] if neg else fp[F_MAX_CODE]
        if s >= limit + 1.0:
            n = limit + 1
        else:
            n = np.int64(math.floor(s))
            f = s - n
            if f != 0.0 and round_up(n, f, neg, mode, (n & 1) == 1):
                n += 1
        if n > limit:
            n = limit  # int formats have no NaN/Inf: saturation is the only overflow policy
        if neg:
            return ((1 << fp[F_BITS]) - n) & ((1 << fp[F_BITS]) - 1)
        return n
    mbits = fp[F_MBITS]
    # binade exponent from the float64 exponent field; float64 subnormals (< 2^-1022) clamp to EMIN (>= -127)
    e = np.int64((f64_as_u64(a) >> 52) & 0x7FF) - 1023
    if e < fp[F_EMIN]:
        e = fp[F_EMIN]
    if e > 256:
        e, s = 256, 0.0  # far beyond every format's max (all < 2^129): overflows below
        n = np.int64(2) << mbits
    else:
        s = a * u64_as_f64(np.uint64(1023 + mbits - e) << np.uint64(52))  # exact: a power-of-two scaling
        n = np.int64(math.floor(s))
    f = s - n
    if f != 0.0 and e < 256:
        if mbits > 0:
            odd = (n & 1) == 1
        else:
            odd = n != 0 and ((e + fp[F_BIAS]) & 1) == 1
        if round_up(n, f, neg, mode, odd):
            n += 1
    one = np.int64(1) << mbits
    if n == one << 1:
        n = one
        e += 1
    if n < one:
        mag = n  # subnormal or zero (formats without subnormals: n == 0 only below the min, code 0 = min)
    else:
        mag = ((e + fp[F_BIAS]) << mbits) | (n - one)
    if pol[P_E8M0_SUB] != 0 and a > 5.877471754111438e-39 and a < 1.1754943508222875e-38:
        mag = 1  # (2^-127, 2^-126) → 2^-126, the vendors' E8M0 cast of float32 subnormals
    if mag > fp[F_MAX_CODE]:
        ovf = pol[P_OVF]
        if ovf == 0 or toward_zero_for(mode, neg):
            mag = fp[F_MAX_CODE]
        elif ovf == 2:
            mag = fp[F_INF_CODE]
        else:
            mag = fp[F_NAN_CODE]
    if neg:
        return mag | fp[F_SIGN_BIT]
    return mag


@njit(cache=True, parallel=True)
def encode_array(x, out, fp, pol):
    """Encode flat x into flat uint8 out; returns the number of elements that hit a raise-policy."""
    errors = 0
    for i in prange(x.size):
        c = encode_one(np.float64(x[i]), fp, pol)
        if c < 0:
            errors += 1
            c = 0
        out[i] = c
    return errors


@njit(cache=True)
def first_error(x, fp, pol):
    for i in range(x.size):
        c = encode_one(np.float64(x[i]), fp, pol)
        if c < 0:
            return i, c
    return -1, 0
