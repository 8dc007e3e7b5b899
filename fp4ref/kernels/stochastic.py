"""Numba loops for stochastic rounding (fast path). No public API; see fp4ref.stochastic for the semantics.

Every variant rounds the exact input once: |x| = (n + f) * q with q the quantum of the target binade (the same
split as kernels.cast.encode_one), and the variant decides from the exact fraction f (0 <= f < 1) and the random
integer r (0 <= r < 2**width) whether n becomes n + 1 ("away" from zero). NaN, ±Inf, zeros, negative inputs
into unsigned formats and overflow use the deterministic cast's policy arrays (kernels.cast.cast_params), so the
specials are treated exactly as by fp4ref.encode.
"""
import math

import numpy as np
from numba import njit, prange

from .bits import f64_as_u64, shl32, shr32, u64_as_f64, wide_vectors
from .cast import bits32_at, bits32_params, finish_bits32, int32_params
from .cast import (F_BIAS, F_BITS, F_EMIN, F_FRAC_BITS, F_INF_CODE, F_KIND, F_MAX_CODE, F_MAX_NEG, F_MBITS,
                   F_NAN_CODE, F_SIGN_BIT, F_SIGNED, KIND_INT, P_INF_NEG, P_INF_POS, P_NAN_NEG, P_NAN_POS,
                   P_NEG_ZERO_CODE, P_NEGATIVE, P_OVF)
from .random import philox_block

# variant ids (fp4ref.stochastic.VARIANTS maps the names)
V_PTX, V_TE, V_GFLOAT, V_GFLOAT_ODD, V_GFLOAT_FAST, V_GFLOAT_FASTEST, V_EXACT = range(7)

# stochastic-exact with a fraction that needs more than `width` random bits (a CastError in fp4ref.stochastic)
ERR_RBITS = -4

_MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_CHUNK_BLOCKS = 512   # Philox blocks per parallel work item
_CHUNK_WORDS = 4096   # packed words per parallel work item
_CHUNK = 16384        # elements per parallel work item


@njit(cache=True, inline="always")
def _pow2(k):
    """2.0**k for -1022 <= k <= 1023, exactly (from the exponent field)."""
    return u64_as_f64(np.uint64(1023 + k) << np.uint64(52))


@njit(cache=True, inline="always")
def away(variant, f, r, width, prec, n, qexp):
    """Whether n + f (0 <= f < 1, in units of the quantum 2**qexp) rounds away from zero; -1 for ERR_RBITS.

    f is exact (float64); r is the element's random integer; prec is the significand precision of the sum in
    gfloat's fast variants (53 with NumPy arrays of any dtype; 24, 11, 8 with torch float32, float16, bfloat16
    tensors). f = 0 gives 0 for every variant within its width limits (fp4ref.stochastic checks them).
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


# sr_params tuple fields
(Q_KIND, Q_BITS, Q_MBITS, Q_BIAS, Q_EMIN, Q_SIGNED, Q_MAX_CODE, Q_SIGN_BIT, Q_FRAC_BITS, Q_MAX_NEG, Q_OVF_CODE,
 Q_NAN_POS, Q_NAN_NEG, Q_NEG_ZERO_CODE, Q_NEGATIVE, Q_INF_POS, Q_INF_NEG) = range(17)


@njit(cache=True)
def sr_params(fp, pol):
    """The fields of fp4ref.cast.cast_params' (fp, pol) arrays that sr_encode_one reads, as a tuple.

    A tuple, not the arrays: an array passed to a per-element function costs atomic reference-count updates
    on every call (tens of ns per element here), while a tuple is a plain value.
    """
    ovf = pol[P_OVF]
    ovf_code = fp[F_MAX_CODE] if ovf == 0 else (fp[F_INF_CODE] if ovf == 2 else fp[F_NAN_CODE])
    return (fp[F_KIND], fp[F_BITS], fp[F_MBITS], fp[F_BIAS], fp[F_EMIN], fp[F_SIGNED], fp[F_MAX_CODE],
            fp[F_SIGN_BIT], fp[F_FRAC_BITS], fp[F_MAX_NEG], ovf_code, pol[P_NAN_POS], pol[P_NAN_NEG],
            pol[P_NEG_ZERO_CODE], pol[P_NEGATIVE], pol[P_INF_POS], pol[P_INF_NEG])


@njit(cache=True, inline="always")
def sr_encode_one(x, r, prm, variant, width, prec):
    """Code of float64 x rounded stochastically with random integer r (0 <= r < 2**width), or a negative error
    sentinel (kernels.cast ERR_* where a policy says raise, ERR_RBITS for stochastic-exact).

    prm: sr_params(fp, pol) of fp4ref.cast.cast_params arrays for a format with a zero and (float kinds)
    subnormals; their rounding mode is ignored. Compute it once, outside the element loop. variant: V_*;
    width: random bits per element (1..62; stochastic-te reads r & 0xFF); prec: significand bits of the sum in
    the gfloat fast variants (53, 24, 11 or 8; ignored by the others). stochastic-te assumes x is a float32
    value; the fast variants assume (2r + 1) * 2**-(width+1) and r * 2**-width are exact in x's dtype.

    The float path has no data-dependent branch (the specials are selected at the end), so element loops
    vectorise; f = 0 needs no test since no variant rounds an exact value away.
    """
    neg = math.copysign(1.0, x) < 0.0
    a = min(abs(x), 2.0 ** 200)        # beyond every format's max: ±Inf then overflows like any large value
    mbits = prm[Q_MBITS]
    limit = prm[Q_MAX_NEG] if neg else prm[Q_MAX_CODE]
    if prm[Q_KIND] == KIND_INT:
        qexp = -prm[Q_FRAC_BITS]
        e = np.int64(0)
        s = min(a * _pow2(-qexp), limit + 1.0)   # exact below the clamp; beyond it saturates
    else:
        e = max(np.int64((f64_as_u64(a) >> 52) & 0x7FF) - 1023, prm[Q_EMIN])
        qexp = e - mbits
        s = a * _pow2(-qexp)           # exact: a power-of-two scaling
    fl = math.floor(s)
    n = np.int64(fl)
    up = away(variant, s - fl, r, width, prec, n, qexp)
    n += max(up, 0)
    if prm[Q_KIND] == KIND_INT:
        n = min(n, limit)              # integer formats saturate (no NaN/Inf codes)
        code = (((1 << prm[Q_BITS]) - n) & ((1 << prm[Q_BITS]) - 1)) if neg else n
    else:
        c = n >> (mbits + 1)           # carried into the next binade: 2 * 2**mbits -> 2**mbits, e + 1
        n >>= c
        # with subnormals the smallest normal binade's biased exponent is 1, so this also encodes n < 2**mbits
        mag = ((e + c + prm[Q_BIAS]) << mbits) + n - (np.int64(1) << mbits)
        mag = prm[Q_OVF_CODE] if mag > prm[Q_MAX_CODE] else mag
        code = (mag | prm[Q_SIGN_BIT]) if neg else mag
    code = ERR_RBITS if up < 0 else code
    code = (prm[Q_INF_NEG] if neg else prm[Q_INF_POS]) if math.isinf(x) else code
    code = prm[Q_NEGATIVE] if (neg and prm[Q_SIGNED] == 0 and x != 0.0) else code
    code = (prm[Q_NEG_ZERO_CODE] if neg else 0) if x == 0.0 else code
    return (prm[Q_NAN_NEG] if neg else prm[Q_NAN_POS]) if x != x else code


@njit(cache=True, inline="always")
def _loop(x, r, out, m, prm, variant, width, prec):
    errors = 0
    for k in range(m):
        c = sr_encode_one(x[k], r[k], prm, variant, width, prec)
        errors += c < 0
        out[k] = max(c, 0)
    return errors


@njit(cache=True)
def span(x, r, out, m, prm, variant, width, prec):
    """out[:m] from float64 x[:m] and int64 r[:m] (a chunk's copies; out: the chunk's slice of the output, as
    offset indexing keeps LLVM from vectorizing); returns the number of error sentinels.

    One loop per variant, each with the variant a constant: then the loop holds that variant's arithmetic only
    and vectorises (with a run-time variant it computes every variant). A function of its own, called once per
    chunk with float64/int64 buffers: inside a parallel loop body the same loop is not vectorised, and one
    signature keeps the compile (all seven loops) to one.
    """
    wide_vectors()
    if variant == V_PTX:
        return _loop(x, r, out, m, prm, V_PTX, width, prec)
    if variant == V_TE:
        return _loop(x, r, out, m, prm, V_TE, width, prec)
    if variant == V_GFLOAT:
        return _loop(x, r, out, m, prm, V_GFLOAT, width, prec)
    if variant == V_GFLOAT_ODD:
        return _loop(x, r, out, m, prm, V_GFLOAT_ODD, width, prec)
    if variant == V_GFLOAT_FAST:
        return _loop(x, r, out, m, prm, V_GFLOAT_FAST, width, prec)
    if variant == V_GFLOAT_FASTEST:
        return _loop(x, r, out, m, prm, V_GFLOAT_FASTEST, width, prec)
    return _loop(x, r, out, m, prm, V_EXACT, width, prec)


@njit(cache=True, parallel=True)
def encode_bits(x, r, out, fp, pol, variant, width, prec):
    """out[i] = code of x[i] with random integer r[i] (flat arrays); returns the number of error sentinels."""
    prm = sr_params(fp, pol)
    n = x.size
    errors = 0
    for chunk in prange((n + _CHUNK - 1) // _CHUNK):
        wide_vectors()
        i0 = chunk * _CHUNK
        m = min(n, i0 + _CHUNK) - i0
        xc = np.empty(m, np.float64)
        rc = np.empty(m, np.int64)
        for k in range(m):
            xc[k] = x[i0 + k]
            rc[k] = np.int64(r[i0 + k])
        errors += span(xc, rc, out[i0:i0 + m], m, prm, variant, width, prec)
    return errors


@njit(cache=True, parallel=True)
def encode_words(x, w, out, fp, pol, variant, width, prec, tab):
    """Packed words: element j * G + g takes lane g of w[j]; tab[g, byte, value] (int64[G, 4, 256]) holds what
    each byte of a word adds to lane g's integer."""
    prm = sr_params(fp, pol)
    G = tab.shape[0]
    nw = w.size
    errors = 0
    for chunk in prange((nw + _CHUNK_WORDS - 1) // _CHUNK_WORDS):
        wide_vectors()
        j0 = chunk * _CHUNK_WORDS
        j1 = min(nw, j0 + _CHUNK_WORDS)
        m = (j1 - j0) * G
        xc = np.empty(m, np.float64)
        for k in range(m):
            xc[k] = x[j0 * G + k]
        r = np.empty(m, np.int64)
        for j in range(j0, j1):
            v = np.int64(w[j])
            for g in range(G):
                r[(j - j0) * G + g] = (tab[g, 0, v & 0xFF] + tab[g, 1, (v >> 8) & 0xFF]
                                       + tab[g, 2, (v >> 16) & 0xFF] + tab[g, 3, (v >> 24) & 0xFF])
        errors += span(xc, r, out[j0 * G:j0 * G + m], m, prm, variant, width, prec)
    return errors


@njit(cache=True, parallel=True)
def encode_philox(x, xb, bf16, out, fp, pol, variant, width, prec, tab, low, k0, k1, subs, lo, lane0, L, ptx32):
    """Counter-based bits: stream t (subsequence subs[t]) covers x[t*L:(t+1)*L]; its words are curand's
    Philox4x32-10 words lane0, lane0 + 1, ... of blocks lo, lo + 1, ... (the low 64 counter bits, carrying into
    the subsequence), and word j feeds elements j * G .. j * G + G - 1 of the stream (lane table tab; low >= 0:
    tab is the one-lane table of the word's low bits, word & low, taken without the table).
    ptx32: the case is encode_ptx_bits32's, whose float32 bit-field code then runs on xb (bit patterns as there)
    instead of the float64 loop on x.
    """
    prm = sr_params(fp, pol)
    q32 = int32_params(bits32_params(fp, pol))
    G = tab.shape[0]
    S = subs.shape[0]
    nw = L // G
    nb = (lane0 + nw + 3) // 4
    per = (nb + _CHUNK_BLOCKS - 1) // _CHUNK_BLOCKS
    errors = 0
    for chunk in prange(S * per):
        wide_vectors()
        t = chunk // per
        b0 = (chunk - t * per) * _CHUNK_BLOCKS
        b1 = min(nb, b0 + _CHUNK_BLOCKS)
        hi = subs[t]
        j0 = max(4 * b0 - lane0, 0)       # the stream's words j0 .. j1-1 lie in blocks b0 .. b1-1
        j1 = min(4 * b1 - lane0, nw)
        # the counters first, then the blocks in a loop of their own (which vectorizes, as in philox_streams)
        los = np.empty(b1 - b0, np.uint64)
        his = np.empty(b1 - b0, np.uint64)
        for b in range(b0, b1):
            c_lo = lo + np.uint64(b)
            los[b - b0] = c_lo
            his[b - b0] = hi + (_ONE if c_lo < lo else _ZERO)
        wd = np.empty(4 * (b1 - b0), np.uint32)
        for q in range(b1 - b0):
            y0, y1, y2, y3 = philox_block(los[q] & _MASK32, los[q] >> _S32, his[q] & _MASK32, his[q] >> _S32, k0,
                                          k1)
            wd[4 * q] = y0
            wd[4 * q + 1] = y1
            wd[4 * q + 2] = y2
            wd[4 * q + 3] = y3
        m = max(j1 - j0, 0) * G
        i0 = t * L + j0 * G
        w0 = j0 + lane0 - 4 * b0
        if ptx32 and low >= 0:  # one lane: the words themselves, masked in the loop
            errors += _ptx32_span(xb[i0:i0 + m], bf16, wd[w0:w0 + m], low, out[i0:i0 + m], q32, width)
            continue
        r = np.empty(m, np.int64)
        if low >= 0:  # one lane (G = 1)
            _low_bits(wd[w0:w0 + m], low, r)
        else:
            for j in range(j1 - j0):
                v = np.int64(wd[w0 + j])
                for g in range(G):
                    r[j * G + g] = (tab[g, 0, v & 0xFF] + tab[g, 1, (v >> 8) & 0xFF]
                                    + tab[g, 2, (v >> 16) & 0xFF] + tab[g, 3, (v >> 24) & 0xFF])
        if ptx32:
            errors += _ptx32_span(xb[i0:i0 + m], bf16, r, -1, out[i0:i0 + m], q32, width)
        else:
            xc = np.empty(m, np.float64)
            for k in range(m):
                xc[k] = x[i0 + k]
            errors += span(xc, r, out[i0:i0 + m], m, prm, variant, width, prec)
    return errors


@njit(cache=True)
def _low_bits(w, low, r):
    """r[k] = w[k] & low (slices: see span)."""
    for k in range(w.size):
        r[k] = np.int64(w[k]) & low


@njit(cache=True)
def first_error_bits(x, r, fp, pol, variant, width, prec):
    prm = sr_params(fp, pol)
    for i in range(x.size):
        c = sr_encode_one(np.float64(x[i]), np.int64(r[i]), prm, variant, width, prec)
        if c < 0:
            return i, c
    return -1, 0


@njit(cache=True, inline="always")
def _ptx32_code(b, rr, width, q):
    """stochastic-ptx code of the float32 with bits b (uint32) and random integer rr (width <= 32 bits), or an
    error sentinel; q = int32_params(bits32_params), made once outside the loop. The carry rule is encode_bits32 with
    the random integer, aligned under the cut, as the increment: n = (sig + r * 2^(cut - width)) >> cut
    (r >> (width - cut) when the cut is narrower), so the input bits below 2^-width of the quantum never matter,
    as the ISA says. A cut beyond 24 + width bits leaves n = 0 whatever r is, so clamping it there changes
    nothing.

    Computed in 32 bits (the int64 form measured 1.5x slower, e2m1 fp32 4096^2): with s1 = max(cut - width, 0),
    s2 = max(width - cut, 0), sh = min(cut, width), n = ((sig >> s1) + (r >> s2)) >> sh, as floor((y + k) / d)
    = floor((floor(y) + k) / d) for integers k, d; the sum is halved before it could pass 2^32 (width 32)."""
    mb, emin, bias = q[0], q[1], q[2]
    u, i = np.uint32, np.int32
    sgn = i(shr32(b, 31))
    ex = i(shr32(b, 23) & u(0xFF))
    man = i(b & u(0x7FFFFF))
    sig = u(man | (i(0x800000) if ex != i(0) else i(0)))
    ec = max(i(ex - i(127)), emin)
    cut = min(i(ec - mb + i(150) - max(ex, i(1))), i(i(24) + width))
    s1 = max(i(cut - width), i(0))     # s1 <= 24, s2 <= 16 (cut >= 16), 1 <= sh <= 32: 32-bit shifts below 32
    s2 = max(i(width - cut), i(0))
    sh = min(cut, width)
    a = shr32(sig, s1)
    r = shr32(u(rr), s2)
    n = shr32(u(shr32(u(a + u(r & u(1))), 1) + shr32(r, 1)), i(sh - i(1)))
    mag = max(i(shl32(i(ec + bias - i(1)), mb) + i(n)), i(0))
    return finish_bits32(mag, sgn, sgn, ex, man, q)  # the caller excludes negative='abs': the code's sign is x's


@njit(cache=True, parallel=True)
def encode_ptx_bits32(xb, bf16, r, out, fp, pol, width):
    """stochastic-ptx on bit patterns xb (uint32: float32; uint16: bfloat16 if bf16, else float16, widened per
    element) with per-element integers r (width <= 32 bits), as _ptx32_code; nonzero if any code is an error
    sentinel. Runs in _CHUNK-element spans (one loop of 1-D slices each, see _ptx32_span)."""
    q = int32_params(bits32_params(fp, pol))
    n = xb.size
    errors = 0
    for chunk in prange((n + _CHUNK - 1) // _CHUNK):
        i0 = chunk * _CHUNK
        i1 = min(n, i0 + _CHUNK)
        errors += _ptx32_span(xb[i0:i1], bf16, r[i0:i1], -1, out[i0:i1], q, width)
    return errors


@njit(cache=True)
def _ptx32_span(xb, bf16, r, low, out, q, width):
    """out[k] = _ptx32_code of xb[k] (as encode_ptx_bits32) with r[k] & low (a chunk's slices, see span); 1 if any
    code is an error sentinel, else 0. The sentinels are found by OR-ing the int32 codes (the sign bit survives):
    a 64-bit counter would hold LLVM to 8 lanes, where the codes take 16."""
    wide_vectors()
    seen = np.int32(0)
    for k in range(xb.size):
        c = _ptx32_code(bits32_at(xb, k, bf16), r[k] & low, width, q)
        seen = np.int32(seen | c)
        out[k] = max(c, np.int32(0))
    return 1 if seen < 0 else 0
