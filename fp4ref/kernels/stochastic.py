"""Numba loops for stochastic rounding (fast path). No public API; see fp4ref.stochastic for the semantics.

Every variant rounds the exact input once: |x| = (n + f) * q with q the quantum of the target binade (the same
split as kernels.cast.encode_one), and the variant decides from the exact fraction f (0 < f < 1) and the random
integer r (0 <= r < 2**width) whether n becomes n + 1 ("away" from zero). NaN, ±Inf, zeros, negative inputs
into unsigned formats and overflow use the deterministic cast's policy arrays (kernels.cast.cast_params), so the
specials are treated exactly as by fp4ref.encode.
"""
import math

import numpy as np
from numba import njit, prange

from .bits import f64_as_u64, u64_as_f64
from .cast import (F_BIAS, F_BITS, F_EMIN, F_FRAC_BITS, F_HAS_ZERO, F_INF_CODE, F_KIND, F_MAX_CODE, F_MAX_NEG,
                   F_MBITS, F_NAN_CODE, F_SIGN_BIT, F_SIGNED, KIND_INT, P_INF_NEG, P_INF_POS, P_NAN_NEG,
                   P_NAN_POS, P_NEG_ZERO_CODE, P_NEGATIVE, P_OVF, P_ZERO)
from .random import philox_block

# variant ids (fp4ref.stochastic.VARIANTS maps the names)
V_PTX, V_TE, V_GFLOAT, V_GFLOAT_ODD, V_GFLOAT_FAST, V_GFLOAT_FASTEST, V_EXACT = range(7)

# stochastic-exact with a fraction that needs more than `width` random bits (a CastError in fp4ref.stochastic)
ERR_RBITS = -4

_MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_CHUNK_BLOCKS = 512


@njit(cache=True, inline="always")
def _pow2(k):
    """2.0**k for -1022 <= k <= 1023, exactly (from the exponent field)."""
    return u64_as_f64(np.uint64(1023 + k) << np.uint64(52))


@njit(cache=True, inline="always")
def away(variant, f, r, width, prec, n, qexp):
    """Whether n + f (0 < f < 1, in units of the quantum 2**qexp) rounds away from zero; -1 for ERR_RBITS.

    f is exact (float64); r is the element's random integer; prec is the significand precision of the sum in
    gfloat's fast variants (53 with NumPy arrays of any dtype; 24, 11, 8 with torch/JAX float32, float16,
    bfloat16 arrays).
    """
    y = f * _pow2(width)                 # exact: a power-of-two scaling of f
    fl = math.floor(y)
    top = np.int64(1) << width
    if variant == V_PTX:
        # carry out of (truncated fraction bits) + r: the bits of f below 2**-width never matter
        return 1 if np.int64(fl) + r >= top else 0
    if variant == V_GFLOAT or variant == V_GFLOAT_ODD:
        g = y - fl
        odd = (np.int64(fl) & 1) == 1
        tie_up = odd if variant == V_GFLOAT else not odd
        d = np.int64(fl) + (1 if (g > 0.5 or (g == 0.5 and tie_up)) else 0)
        return 1 if d + r >= top else 0
    if variant == V_GFLOAT_FAST or variant == V_GFLOAT_FASTEST:
        if variant == V_GFLOAT_FAST:
            c = np.float64(2 * r + 1) * _pow2(-width - 1)
        else:
            c = np.float64(r) * _pow2(-width)
        # gfloat adds in `prec` bits and compares the rounded sum with 1.0: float64 adds natively; in a narrower
        # precision fl(f + c) >= 1 exactly when f + c >= 1 - 2**-(prec+1) (the tie rounds to 1.0), and
        # 1 - 2**-(prec+1) - c is exact in float64
        if prec >= 53:
            return 1 if f + c >= 1.0 else 0
        return 1 if f >= (1.0 - _pow2(-prec - 1)) - c else 0
    if variant == V_TE:
        # fl32(a + r/256 * step) >= hi, hi = (n + 1) * 2**qexp: true when f + r/256 >= 1 - h/q, h being half
        # the float32 spacing just below hi (ties go to hi: every E2M1 grid value has an even float32 significand)
        hb = f64_as_u64(np.float64(n + 1) * _pow2(qexp))
        k = np.int64(hb >> np.uint64(52)) - 1023
        pow2 = (hb & np.uint64(0xFFFFFFFFFFFFF)) == 0
        hq = _pow2(k - 24 - (1 if pow2 else 0) - qexp)
        return 1 if f >= (1.0 - hq) - np.float64(r & 0xFF) * _pow2(-8) else 0  # both sides exact
    # V_EXACT: away with probability exactly f, which needs f * 2**width to be an integer
    if y != fl:
        return -1
    return 1 if r < np.int64(fl) else 0


@njit(cache=True)
def sr_encode_one(x, r, fp, pol, variant, width, prec):
    """Code of float64 x rounded stochastically with random integer r (0 <= r < 2**width), or a negative error
    sentinel (kernels.cast ERR_* where a policy says raise, ERR_RBITS for stochastic-exact).

    fp, pol: fp4ref.cast.cast_params arrays (their rounding mode is ignored); variant: V_*; width: random bits
    per element (1..62; stochastic-te reads r & 0xFF); prec: significand bits of the sum in the gfloat fast
    variants (53, 24, 11 or 8; ignored by the others). stochastic-te assumes x is a float32 value; the fast
    variants assume (2r + 1) * 2**-(width+1) and r * 2**-width are exact in x's dtype (width < its precision).
    """
    if x != x:
        return pol[P_NAN_NEG] if math.copysign(1.0, x) < 0.0 else pol[P_NAN_POS]
    neg = math.copysign(1.0, x) < 0.0
    if x == 0.0:
        if fp[F_HAS_ZERO] == 0:
            return pol[P_ZERO]
        return pol[P_NEG_ZERO_CODE] if neg else 0
    if neg and fp[F_SIGNED] == 0:
        return pol[P_NEGATIVE]
    if math.isinf(x):
        return pol[P_INF_NEG] if neg else pol[P_INF_POS]
    a = abs(x)
    if fp[F_KIND] == KIND_INT:
        fb = fp[F_FRAC_BITS]
        s = a * _pow2(fb)
        limit = fp[F_MAX_NEG] if neg else fp[F_MAX_CODE]
        if s >= limit + 1.0:
            n = limit
        else:
            n = np.int64(math.floor(s))
            f = s - n
            if f != 0.0:
                up = away(variant, f, r, width, prec, n, -fb)
                if up < 0:
                    return ERR_RBITS
                n = min(n + up, limit)  # int formats saturate (no NaN/Inf codes)
        if neg:
            return ((1 << fp[F_BITS]) - n) & ((1 << fp[F_BITS]) - 1)
        return n
    mbits = fp[F_MBITS]
    e = np.int64((f64_as_u64(a) >> 52) & 0x7FF) - 1023
    if e < fp[F_EMIN]:
        e = fp[F_EMIN]
    if e > 256:
        mag = fp[F_MAX_CODE] + 1  # both neighbours lie far beyond every format's max
    else:
        s = a * _pow2(mbits - e)
        n = np.int64(math.floor(s))
        f = s - n
        if f != 0.0:
            up = away(variant, f, r, width, prec, n, e - mbits)
            if up < 0:
                return ERR_RBITS
            n += up
        one = np.int64(1) << mbits
        if n == one << 1:
            n = one
            e += 1
        if n < one:
            mag = n
        else:
            mag = ((e + fp[F_BIAS]) << mbits) | (n - one)
    if mag > fp[F_MAX_CODE]:
        ovf = pol[P_OVF]
        if ovf == 0:
            mag = fp[F_MAX_CODE]
        elif ovf == 2:
            mag = fp[F_INF_CODE]
        else:
            mag = fp[F_NAN_CODE]
    if neg:
        return mag | fp[F_SIGN_BIT]
    return mag


@njit(cache=True, parallel=True)
def encode_bits(x, r, out, fp, pol, variant, width, prec):
    """out[i] = code of x[i] with random integer r[i] (flat arrays); returns the number of error sentinels."""
    errors = 0
    for i in prange(x.size):
        c = sr_encode_one(np.float64(x[i]), np.int64(r[i]), fp, pol, variant, width, prec)
        if c < 0:
            errors += 1
            c = 0
        out[i] = c
    return errors


@njit(cache=True, inline="always")
def lane_bits(tab, g, w):
    """Lane g's random integer from the 32-bit word w: tab[g, byte, value] holds each byte's contribution."""
    return (tab[g, 0, w & 0xFF] + tab[g, 1, (w >> 8) & 0xFF] + tab[g, 2, (w >> 16) & 0xFF]
            + tab[g, 3, (w >> 24) & 0xFF])


@njit(cache=True, parallel=True)
def encode_words(x, words, out, fp, pol, variant, width, prec, tab):
    """Packed words: element j * G + g takes lane g of words[j] (G = tab.shape[0])."""
    G = tab.shape[0]
    errors = 0
    for j in prange(words.size):
        w = np.int64(words[j])
        for g in range(G):
            i = j * G + g
            c = sr_encode_one(np.float64(x[i]), lane_bits(tab, g, w), fp, pol, variant, width, prec)
            if c < 0:
                errors += 1
                c = 0
            out[i] = c
    return errors


@njit(cache=True, parallel=True)
def encode_philox(x, out, fp, pol, variant, width, prec, tab, k0, k1, subs, lo, lane0, L):
    """Counter-based bits: stream t (subsequence subs[t]) covers x[t*L:(t+1)*L]; its words are curand's
    Philox4x32-10 words lane0, lane0 + 1, ... of blocks lo, lo + 1, ... (the low 64 counter bits, carrying into
    the subsequence), and word j feeds elements j * G .. j * G + G - 1 of the stream through the lane table.
    """
    G = tab.shape[0]
    S = subs.shape[0]
    nw = L // G
    nb = (lane0 + nw + 3) // 4
    per = (nb + _CHUNK_BLOCKS - 1) // _CHUNK_BLOCKS
    errors = 0
    for chunk in prange(S * per):
        t = chunk // per
        b0 = (chunk - t * per) * _CHUNK_BLOCKS
        b1 = min(nb, b0 + _CHUNK_BLOCKS)
        hi = subs[t]
        base = t * L
        for b in range(b0, b1):
            c_lo = lo + np.uint64(b)
            c_hi = hi + (_ONE if c_lo < lo else _ZERO)
            x0, x1, x2, x3 = philox_block(c_lo & _MASK32, c_lo >> _S32, c_hi & _MASK32, c_hi >> _S32, k0, k1)
            for q in range(4):
                j = 4 * b + q - lane0
                if j < 0 or j >= nw:
                    continue
                wq = x0 if q == 0 else (x1 if q == 1 else (x2 if q == 2 else x3))
                w = np.int64(wq)
                for g in range(G):
                    i = base + j * G + g
                    c = sr_encode_one(np.float64(x[i]), lane_bits(tab, g, w), fp, pol, variant, width, prec)
                    if c < 0:
                        errors += 1
                        c = 0
                    out[i] = c
    return errors


@njit(cache=True)
def first_error_bits(x, r, fp, pol, variant, width, prec):
    for i in range(x.size):
        c = sr_encode_one(np.float64(x[i]), np.int64(r[i]), fp, pol, variant, width, prec)
        if c < 0:
            return i, c
    return -1, 0
