"""Numba loops for element encode (fast path). No public API; see fp4ref.cast.

The value is rounded from its exact float64 representation: |x| = s * 2^q with q the quantum exponent of the
target binade, so s = ldexp(|x|, -q) is exact and floor/fraction of s decide the rounding. All inputs
(float16/bfloat16/float32/float64) are exact in float64, so this is a single rounding.

float32 inputs, and float16/bfloat16 ones widened exactly to float32 bit patterns per element, take a second loop,
``encode_array_f32``, with the same semantics computed on the bit fields in integer arithmetic and without
branches, so that LLVM vectorizes it (about 10x the float64 loop; a sweep of all 2^32 float32 inputs takes
seconds).
"""
import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .bits import f32_as_u32, f64_as_u64, shl32, shr32, u64_as_f64, wide_vectors

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


def encode_array(x, out, fp, pol):
    """Encode flat x (float64, float32, float16 or bfloat16) into flat uint8 out; returns the number of elements
    that hit a raise-policy."""
    if x.dtype == np.float64:
        return encode_array_f64(x, out, fp, pol)
    return encode_array_f32(*bit_patterns(x), out, fp, pol)


def bit_patterns(a):
    """(bits, bf16) of a C-contiguous float32, float16 or bfloat16 array for the float32 bit-field loops: its
    memory as uint32 (float32) or uint16 (bf16: whether the patterns are bfloat16, else float16)."""
    if a.dtype == np.float32:
        return a.view(np.uint32), False
    return a.view(np.uint16), a.dtype.name == "bfloat16"


@njit(cache=True, parallel=True)
def encode_array_f64(x, out, fp, pol):
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


@njit(cache=True)
def bits32_params(fp, pol):
    """The loop-invariant integers of encode_bits32 for a format and its policies.

    An integer format is the float format with mbits = bits - 1 and one binade whose quantum is 2^-frac_bits
    (emin = mbits - frac_bits): every magnitude below 2^(emin+1) then lands in that binade's n, and its code is
    n; larger ones overflow. Negative codes: float sets the sign bit, int takes the two's complement, both as
    ((mag ^ nx) + na) & nm.
    """
    mode = pol[P_MODE]
    if fp[F_KIND] == KIND_INT:
        mb = fp[F_BITS] - 1
        emin = mb - fp[F_FRAC_BITS]
        bias = 1 - emin
        lim_pos, lim_neg = fp[F_MAX_CODE], fp[F_MAX_NEG]
        ovf_pos, ovf_neg = lim_pos, lim_neg  # int formats saturate
        nx, na, nm = -1, 1, (1 << fp[F_BITS]) - 1
    else:
        mb, emin, bias = fp[F_MBITS], fp[F_EMIN], fp[F_BIAS]
        lim_pos = lim_neg = fp[F_MAX_CODE]
        ovf = pol[P_OVF]
        big = fp[F_INF_CODE] if ovf == 2 else fp[F_NAN_CODE]
        ovf_pos = fp[F_MAX_CODE] if (ovf == 0 or toward_zero_for(mode, False)) else big
        ovf_neg = fp[F_MAX_CODE] if (ovf == 0 or toward_zero_for(mode, True)) else big
        nx, na, nm = 0, fp[F_SIGN_BIT], 0xFF
    unsigned = 1 if fp[F_SIGNED] == 0 else 0
    neg_abs = 1 if (unsigned == 1 and pol[P_NEGATIVE] == NEG_ABS) else 0
    if fp[F_HAS_ZERO] != 0:
        z_pos, z_neg = 0, pol[P_NEG_ZERO_CODE]
    else:
        z_pos = z_neg = pol[P_ZERO]
    # the rounding increment added below the cut, as all-ones masks per mode (see encode_bits32)
    m_half = -1 if mode <= 2 else 0
    k_one = 1 if mode == 1 else 0
    m_odd = -1 if mode == 0 else 0
    return (mb, emin, bias, lim_pos, lim_neg, ovf_pos, ovf_neg, nx, na, nm, unsigned, neg_abs, pol[P_NEGATIVE],
            z_pos, z_neg, pol[P_NAN_POS], pol[P_NAN_NEG], pol[P_INF_POS], pol[P_INF_NEG], pol[P_E8M0_SUB],
            m_half, k_one, m_odd, 1 if mode == 4 else 0, 1 if mode == 5 else 0, 1 if mode == 6 else 0)


@njit(cache=True, inline="always")
def encode_bits32(b, q):
    """Code of the float32 with bits b (int64, 0 <= b < 2^32), or a negative ERR_* sentinel; q = bits32_params.

    Same semantics as encode_one. The input is sig * 2^(max(ex, 1) - 150); the target quantum in the binade
    ec = max(e, emin) is 2^(ec - mb), so the cut is r = ec - mb + 150 - max(ex, 1) bits up (r >= 16 for every
    format; clamping it to 31 changes no result since sig < 2^24). Rounding adds an increment below the cut
    and truncates: nearest-even half-1+odd, nearest-away half, nearest-zero half-1, toward-zero 0, directed
    away from zero 2^r-1, round-to-odd 2^r-1 when even. The magnitude code is base + n with base =
    (ec + bias - 1) << mb: n's carry into the next binade (or from subnormal to normal) is the next code.
    float32 subnormals are put in binade -127 (their true binade is lower): only E8M0, emin = -127, sees it.
    """
    (mb, emin, bias, lim_pos, lim_neg, ovf_pos, ovf_neg, nx, na, nm, unsigned, neg_abs, neg_code, z_pos, z_neg,
     nan_pos, nan_neg, inf_pos, inf_neg, e8m0_sub, m_half, k_one, m_odd, k_pos, k_neg, k_odd) = q
    # in 32 bits (shl32/shr32; with int32 q the whole loop runs in 32-bit lanes): 16 <= r <= 31, and the sum
    # below is under 2^24 + 2^30 + 2^31 + 2 < 2^32
    u, i = np.uint32, np.int32
    b = u(b)
    sgn = i(shr32(b, 31))
    ex = i(shr32(b, 23) & u(0xFF))
    man = i(b & u(0x7FFFFF))
    neg = i(sgn & i(i(1) - neg_abs))
    sig = u(man | (i(0x800000) if ex != i(0) else i(0)))
    ec = i(max(i(ex - i(127)), emin))
    r = i(min(i(ec - mb + i(150) - max(ex, i(1))), i(31)))
    base = i(shl32(i(ec + bias - i(1)), mb))
    mask = u(shl32(u(1), r) - u(1))
    odd = i(i(base + i(shr32(sig, r))) & i(1))
    away = i((k_neg if neg != i(0) else k_pos) | (k_odd & (odd ^ i(1))))
    n = i(shr32(u(sig + u(shr32(mask, 1) & u(m_half)) + u(k_one) + u(odd & m_odd) + u(mask & u(-away))), r))
    mag = i(max(i(base + n), i(0)))  # E8M0 below 2^-127 with n = 0: code 0 (no zero to round to)
    if e8m0_sub != i(0) and ex == i(0) and man > i(0x400000):
        mag = i(1)  # (2^-127, 2^-126) → 2^-126, the vendors' E8M0 cast of float32 subnormals
    return finish_bits32(mag, neg, sgn, ex, man, q)


@njit(cache=True, inline="always")
def finish_bits32(mag, neg, sgn, ex, man, q):
    """The code of a float32 (sign bit sgn, exponent and mantissa fields ex, man) from its rounded magnitude code
    mag: overflow policy, sign mapping (neg: the sign the code takes, 0 under negative='abs'), then Inf,
    unsigned negatives, zeros and NaN by their own codes. Shared by encode_bits32 and stochastic-ptx's bit-field
    loop (kernels/stochastic.py)."""
    (mb, emin, bias, lim_pos, lim_neg, ovf_pos, ovf_neg, nx, na, nm, unsigned, neg_abs, neg_code, z_pos, z_neg,
     nan_pos, nan_neg, inf_pos, inf_neg, e8m0_sub, m_half, k_one, m_odd, k_pos, k_neg, k_odd) = q
    if mag > (lim_neg if neg != 0 else lim_pos):
        mag = ovf_neg if neg != 0 else ovf_pos
    c = np.int32(((mag ^ nx) + na) & nm) if neg != 0 else mag  # int32: stays in 32-bit lanes with int32 mag
    if ex == 255 and man == 0:
        c = inf_neg if neg != 0 else inf_pos
    if unsigned != 0 and sgn != 0 and neg_abs == 0:
        c = neg_code
    if ex == 0 and man == 0:
        c = z_neg if sgn != 0 else z_pos
    if ex == 255 and man != 0:
        c = nan_neg if sgn != 0 else nan_pos
    return c


_SPAN = 16384  # elements per parallel work item of encode_array_f32


@njit(cache=True, parallel=True)
def encode_array_f32(xin, bf16, out, fp, pol):
    """encode_array for float bit patterns xin: uint32 (float32) or uint16 (bfloat16 if bf16, else float16);
    nonzero if some element hit a raise policy. Runs in _SPAN-element spans of 1-D slices (_encode_span)."""
    q = int32_params(bits32_params(fp, pol))
    n = xin.size
    seen = 0
    for chunk in prange((n + _SPAN - 1) // _SPAN):
        i0 = chunk * _SPAN
        i1 = min(n, i0 + _SPAN)
        seen += _encode_span(xin[i0:i1], bf16, out[i0:i1], q)
    return seen


@njit(cache=True)
def _encode_span(xin, bf16, out, q):
    """out[k] = encode_bits32 of xin[k] (sentinels as 0); 1 if some code is a sentinel. The codes are OR-ed in
    int32 (the sign bit survives) rather than counted: a 64-bit counter holds LLVM to 8 lanes where the
    int32 codes take 16."""
    wide_vectors()
    seen = np.int32(0)
    for k in range(xin.size):
        c = encode_bits32(bits32_at(xin, k, bf16), q)
        seen = np.int32(seen | c)
        out[k] = max(c, np.int32(0))
    return 1 if seen < 0 else 0


@njit(cache=True, inline="always")
def int32_params(q):
    """bits32_params as int32 (every entry fits): with them encode_bits32 and the stochastic-ptx code run in
    32-bit lanes."""
    return (np.int32(q[0]), np.int32(q[1]), np.int32(q[2]), np.int32(q[3]), np.int32(q[4]), np.int32(q[5]),
            np.int32(q[6]), np.int32(q[7]), np.int32(q[8]), np.int32(q[9]), np.int32(q[10]), np.int32(q[11]),
            np.int32(q[12]), np.int32(q[13]), np.int32(q[14]), np.int32(q[15]), np.int32(q[16]), np.int32(q[17]),
            np.int32(q[18]), np.int32(q[19]), np.int32(q[20]), np.int32(q[21]), np.int32(q[22]), np.int32(q[23]),
            np.int32(q[24]), np.int32(q[25]))


# Exact widening of 16-bit floats to float32 bit patterns for the float32 loops, in parallel and vectorized
# (NumPy's and ml_dtypes' astype measured 5-20x slower here). bfloat16 is the upper half of a float32; a float16
# is rebiased by 112 (= 127 - 15), its subnormals normalized by an exact float32 product, and Inf/NaN keep
# their payload bits as the F16C instruction (and NumPy) do.
@njit(cache=True, inline="always")
def bf16_bits(h):
    return np.uint32(np.uint32(h) << np.uint32(16))  # Numba types a shift of uint32 as uint64


@njit(cache=True, inline="always")
def f16_bits(h):
    h = np.uint32(h)
    a = h & np.uint32(0x7FFF)
    normal = (a << np.uint32(13)) + np.uint32(0x38000000)
    sub = f32_as_u32(np.float32(a) * np.float32(2.0 ** -24))
    special = (a << np.uint32(13)) | np.uint32(0x7F800000)
    r = special if a >= np.uint32(0x7C00) else (normal if a >= np.uint32(0x400) else sub)
    return np.uint32(((h & np.uint32(0x8000)) << np.uint32(16)) | r)


@njit(cache=True, inline="always")
def widen_run(u, out, bf16):
    """out[j] = the float32 bit pattern of u[j] (bfloat16 if bf16, else float16): one loop per type, so that each
    vectorizes."""
    if bf16:
        for j in range(u.size):
            out[j] = bf16_bits(u[j])
    else:
        for j in range(u.size):
            out[j] = f16_bits(u[j])


def widened(u, w, bf16):
    """The float32 bit patterns of the flat run u: u itself (uint32), or uint16 patterns (bfloat16 if bf16, else
    float16) widened into w[:u.size] by widen_run. Jitted code only."""
    raise NotImplementedError("widened is compiled into jitted callers only")


@overload(widened, inline="always")
def _widened_impl(u, w, bf16):
    if u.dtype == types.uint32:
        return lambda u, w, bf16: u

    def widen(u, w, bf16):
        widen_run(u, w[:u.size], bf16)
        return w[:u.size]
    return widen


def bits32_at(v, j, bf16):
    """The float32 bit pattern of element j of v: uint32 (float32 bits) or uint16 (bfloat16 if bf16, else
    float16) patterns. Jitted code only (dispatched on v's type at compile time)."""
    raise NotImplementedError("bits32_at is compiled into jitted callers only")


@overload(bits32_at, inline="always")
def _bits32_at_impl(v, j, bf16):
    if v.dtype == types.uint32:
        return lambda v, j, bf16: v[j]
    return lambda v, j, bf16: bf16_bits(v[j]) if bf16 else f16_bits(v[j])


@njit(cache=True, parallel=True)
def widen16(u, out, bf16):
    """out (uint32) = the float32 bit patterns of the flat 16-bit float patterns u (uint16): bfloat16 if bf16,
    else float16. Each of 64 chunks is one slice, which is what lets LLVM vectorize the loop."""
    n = u.size
    step = (n + 63) // 64
    for c in prange(64):
        wide_vectors()
        lo = min(c * step, n)
        widen_run(u[lo:min(lo + step, n)], out[lo:min(lo + step, n)], bf16)
