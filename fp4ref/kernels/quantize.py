"""Numba loops of the block-quantization pipeline (fast path). No public API; see fp4ref.quantize.

One fused pass per tile: amax → scale code → element codes. The input arrives as a 3-D float32/float64 view
(batch, rows, cols); tiles are ``tr × tc`` over (rows, cols) of each batch item (1-D blocks: tr = 1; contiguous
memory blocks: one block per row). Tiles are independent and every reduction inside a tile runs in a fixed
order, so the result does not depend on the number of threads.

Arithmetic. Each option that names a float32 (or input-dtype) expression is emulated as "float64 operation,
then one rounding into the compute type": for +, −, ×, ÷ of two compute-type numbers the float64 result is
either exact or rounded innocuously (53 ≥ 2·24 + 2; Figueroa, "When is double rounding innocuous?", 1995), so
this equals the vendor's native float32/bfloat16/float16 operation. Every function compiles with
``error_model="numpy"``: a division by zero gives ±Inf/NaN as IEEE 754 says instead of raising. The "exact" expressions round once from
the exact rational value: divisions use a round-to-odd float64 quotient (exact remainder through Dekker's
two-product), which the final rounding into a format of at most 51 bits turns into the correctly rounded code
(Boldo & Melquiond, "When double rounding is odd", 2005).
"""
import math

import numpy as np
from numba import njit, prange

from .bits import wide_vectors
from .cast import F_SIGN_BIT, P_MODE, P_NEG_ZERO_CODE, encode_one

# --- int64 parameter vector ------------------------------------------------------------------------------------
(IP_RULE, IP_EXP, IP_SEXPR, IP_EEXPR, IP_T, IP_EMAX, IP_EMBITS, IP_SCALE_FP32, IP_SCALE_NAN, IP_SCALE_INF,
 IP_ZERO_SUB, IP_AMAX_NAN, IP_NAN_SIGN, IP_FAST, IP_ADECODE, IP_TR, IP_TC, IP_PAD, IP_FLOOR_ON,
 IP_NAN_BLOCK, IP_TIN, IP_ZERO_CODE, IP_LEN) = range(23)
# --- float64 parameter vector ----------------------------------------------------------------------------------
(FP_M, FP_G, FP_D, FP_ZERO_AMAX, FP_PAD, FP_FLOOR, FP_PM, FP_QGS, FP_QEPS, FP_LEN) = range(10)

RULE_FLOOR, RULE_CEIL, RULE_EVEN, RULE_RATIO, RULE_PAPER, RULE_QUEST = range(6)
EXP_BITS, EXP_LOG2 = range(2)
(SE_EXACT, SE_DIV, SE_MUL_RCP, SE_MUL_GRCP, SE_DIV_DIV_D, SE_DIV_D_DIV, SE_PAPER, SE_DIV_D_MUL_RCP,
 SE_RCP_D_RCP) = range(9)
(EE_EXACT, EE_DIV, EE_MUL_RCP, EE_TE, EE_TORCHAO, EE_JAX, EE_PAPER, EE_JAX_RCP, EE_RCP_RCP) = range(9)
T_EXACT, T_F32, T_BF16, T_F16, T_F64 = range(5)
# special scale codes: the quantity is NaN/Inf and the option says which code; >= 0 is a literal code
SC_EXPONENT_FIELD = -2          # Inf amax read through its float32 exponent field (2^128)
AD_EXACT, AD_BITS_MIN_NORMAL, AD_BITS_INF, AD_RCP0_ONE = range(4)
PAD_NONE, PAD_INCLUDE, PAD_EXCLUDE = range(3)

FLT_MAX = 3.4028234663852886e38
TOWARD_POSITIVE = 4  # fp4ref.rounding.TOWARD_POSITIVE


# --- rounding into a compute type ------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _round_bin(v, p, emin, vmax):
    """v rounded to nearest-even into a binary format with p-bit significands, min exponent emin."""
    if v != v or v == 0.0 or math.isinf(v):
        return v
    a = abs(v)
    e = math.frexp(a)[1] - 1
    if e < emin:
        e = emin
    q = math.ldexp(a, p - 1 - e)
    r = math.ldexp(np.rint(q), e - p + 1)
    if r > vmax:
        r = math.inf
    return math.copysign(r, v)


T_FLUSH = 8  # or-ed into a compute type: subnormal operands read as zero and subnormal results flush (DAZ/FTZ)


@njit(cache=True, error_model="numpy")
def _min_normal(tt):
    if tt == T_F16:
        return 2.0 ** -14
    if tt == T_F64:
        return 2.0 ** -1022
    return 2.0 ** -126


@njit(cache=True, error_model="numpy")
def daz(v, t):
    """An operand as a DAZ unit reads it (identity without T_FLUSH)."""
    if t >= T_FLUSH and abs(v) < _min_normal(t & 7):
        return math.copysign(0.0, v)
    return v


@njit(cache=True, error_model="numpy")
def rnd(v, t):
    tt = t & 7
    if tt == T_F32:
        r = np.float64(np.float32(v))
    elif tt == T_BF16:
        r = _round_bin(v, 8, -126, 3.3895313892515355e38)
    elif tt == T_F16:
        r = _round_bin(v, 11, -14, 65504.0)
    else:
        r = v
    if t >= T_FLUSH:
        return daz(r, t)
    return r


# --- exact helpers ---------------------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _split(a):
    c = 134217729.0 * a
    hi = c - (c - a)
    return hi, a - hi


@njit(cache=True, error_model="numpy")
def _two_prod_err(a, b, p):
    ah, al = _split(a)
    bh, bl = _split(b)
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl


@njit(cache=True, error_model="numpy")
def div_ro(n, d):
    """n / d rounded to odd in float64 (d > 0 finite; n finite)."""
    q = n / d
    if math.isinf(q) or n == 0.0 or math.isinf(d):
        return q  # exact: ±Inf, ±0 (n zero or d infinite)
    p = q * d
    r = (n - p) - _two_prod_err(q, d, p)
    if r == 0.0:
        return q
    if (np.int64(np.float64(q).view(np.int64)) & 1) == 1:
        return q
    return np.nextafter(q, math.inf if r > 0.0 else -math.inf)


@njit(cache=True, error_model="numpy")
def _floor_log2(a):
    return math.frexp(a)[1] - 1


@njit(cache=True, error_model="numpy")
def _ceil_log2(a):
    m, e = math.frexp(a)
    return e - 1 if m == 0.5 else e


@njit(cache=True, error_model="numpy")
def _log2_t(a, t):
    """log2(a) rounded into compute type t (float64 log2 is within an ulp of 53 bits; then one rounding): the
    float log2 that code taking floor/ceil of torch.log2/np.log2 in that dtype sees."""
    return rnd(math.log2(a), t)


# --- scale code of one tile ------------------------------------------------------------------------------------
SC_ENCODE = -3  # scale_quantity: the second slot is the quantity to encode into the scale format


@njit(cache=True, error_model="numpy")
def scale_code(a, ip, fp, sfp, spol):
    """Scale code (or, for the fp32 scale format, -1 with the value in the second slot) for tile amax ``a``.

    Returns (code, value): value is the decoded scale for fp32 scales, else unused (NaN).
    """
    code, q = scale_quantity(a, ip, fp, spol)
    if code == SC_ENCODE:
        return encode_one(q, sfp, spol), math.nan
    return code, q


@njit(cache=True, error_model="numpy")
def scale_quantity(a, ip, fp, spol):
    """As scale_code, but where the scale is the rounding of a quantity into the scale format, (SC_ENCODE, q)."""
    rule = ip[IP_RULE]
    t = ip[IP_T]
    if rule <= RULE_EVEN or rule == RULE_QUEST:
        if a != a:
            return ip[IP_SCALE_NAN], math.nan
        if math.isinf(a):
            if ip[IP_SCALE_INF] != SC_EXPONENT_FIELD:
                return ip[IP_SCALE_INF], math.nan
            e = 128
        elif a == 0.0:
            e = -100000
        else:
            if rule == RULE_EVEN:
                # round the amax to (element mantissa bits + 1) significant bits, ties away from zero, in the
                # compute type (a float32 result may overflow to Inf: then the exponent field reads 2^128)
                mb = ip[IP_EMBITS]
                m, ex = math.frexp(a)
                r = math.ldexp(math.floor(math.ldexp(m, mb + 1) + 0.5), ex - mb - 1)
                if (t & 7) == T_F32 and r > FLT_MAX:
                    r = math.inf
                a = r
            if math.isinf(a):
                e = 128
            elif ip[IP_EXP] == EXP_LOG2:
                lg = _log2_t(a, ip[IP_TIN])
                e = np.int64(math.ceil(lg)) if rule == RULE_CEIL else np.int64(math.floor(lg))
            elif rule == RULE_CEIL:
                e = _ceil_log2(a)
            else:
                e = _floor_log2(a)
        e = e - ip[IP_EMAX]
        if e < -1100:
            e = -1100
        if e > 1100:
            e = 1100
        if ip[IP_SCALE_FP32] == 1:
            v = rnd(math.ldexp(1.0, e), T_F32)
            return -1, v
        return SC_ENCODE, math.ldexp(1.0, e)
    # ratio rules: the quantity in the compute type, then one rounding into the scale format
    m = fp[FP_M]
    se = ip[IP_SEXPR]
    a = daz(a, t)
    if se == SE_EXACT:
        if rule == RULE_PAPER:
            q = div_ro(fp[FP_PM] * fp[FP_D], a) if a != 0.0 else math.inf
        else:
            q = div_ro(a * fp[FP_G], m * fp[FP_D])
    elif se == SE_DIV:
        q = rnd(a / m, t)
    elif se == SE_MUL_RCP:
        q = rnd(a * rnd(1.0 / m, t), t)
    elif se == SE_MUL_GRCP:
        q = rnd(a * rnd(fp[FP_G] * rnd(1.0 / m, t), t), t)
    elif se == SE_DIV_DIV_D:
        q = rnd(rnd(a / m, t) / fp[FP_D], t)
    elif se == SE_DIV_D_DIV:
        q = rnd(rnd(a / fp[FP_D], t) / m, t)
    elif se == SE_DIV_D_MUL_RCP:
        q = rnd(rnd(a / fp[FP_D], t) * rnd(1.0 / m, t), t)
    elif se == SE_RCP_D_RCP:
        q = rnd(rnd(a * rnd(1.0 / fp[FP_D], t), t) * rnd(1.0 / m, t), t)
    else:  # SE_PAPER: (m' / amax) * D, the encode scale
        q = rnd(rnd(fp[FP_PM] / a, t) * fp[FP_D], t)
    if q != q:
        return ip[IP_SCALE_NAN], math.nan
    if math.isinf(q) and ip[IP_SCALE_INF] >= 0:
        return ip[IP_SCALE_INF], math.nan
    if ip[IP_FLOOR_ON] == 1 and q < fp[FP_FLOOR]:
        q = fp[FP_FLOOR]
    if ip[IP_SCALE_FP32] == 1:
        return -1, rnd(q, T_F32)
    if ip[IP_EXP] == EXP_LOG2 and not math.isinf(q):
        # power-of-two scale from a float32 log2 of the quantity (ceil for toward-positive, else floor)
        if q == 0.0:
            q = 0.0
        else:
            lg = _log2_t(q, ip[IP_TIN])
            e = np.int64(math.ceil(lg)) if spol[P_MODE] == TOWARD_POSITIVE else np.int64(math.floor(lg))
            q = math.ldexp(1.0, max(-1100, min(1100, e)))
    return SC_ENCODE, q


# --- element factors of one tile -------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def tile_factors(code, s, ip, fp):
    """(sa, r, exact_div, den, num_g) of a tile with scale code ``code`` and value ``s``: the scale the element
    arithmetic sees, the per-tile factor of the product expressions (1/den exactly for a power-of-two exact
    denominator) and, for the exact expression otherwise, x·num_g/den by an exact division."""
    ee = ip[IP_EEXPR]
    t = ip[IP_T]
    ad = ip[IP_ADECODE]
    sa = _arith_scale(code, s, ad)
    r = 1.0
    exact_div = False
    den = 1.0
    num_g = 1.0
    if ee == EE_EXACT:
        if ip[IP_RULE] == RULE_PAPER:
            # encode-role scale: x·s/D
            den = fp[FP_D]
            num_g = s
        else:
            den = s * fp[FP_D]
            num_g = fp[FP_G]
        if den == den and den > 0.0 and num_g == 1.0 and math.frexp(den)[0] == 0.5 \
                and den >= 2.0 ** -1000 and den <= 2.0 ** 1000:
            r = 1.0 / den
        else:
            exact_div = True
    elif ee == EE_MUL_RCP:
        if ad == AD_RCP0_ONE and code == 0:
            r = 1.0
        else:
            r = rnd(1.0 / sa, t)
    elif ee == EE_TE:
        r = rnd(1.0 / rnd(s * fp[FP_D], T_F32), T_F32)
        if r > FLT_MAX:
            r = FLT_MAX
    elif ee == EE_TORCHAO:
        r = rnd(rnd(1.0 / fp[FP_D], T_F32) / s, T_F32)
    return sa, r, exact_div, den, num_g


@njit(cache=True, error_model="numpy")
def _arith_scale(code, s, ad):
    """The scale value the vendor's arithmetic sees (E8M0 decode quirks)."""
    if ad == AD_BITS_MIN_NORMAL:
        if code == 0:
            return 2.0 ** -126
        if code == 255:
            return math.inf
    elif ad == AD_BITS_INF:
        if code == 255:
            return math.inf
    return s


@njit(cache=True, error_model="numpy")
def elem_value(x, s, r, ee, t, fpv):
    """The value the element rounding sees, for input x, tile scale s and precomputed factor r."""
    if ee == EE_EXACT:
        return x * r  # r == 1/den exactly (power-of-two denominators); other cases go through elem_exact
    x = daz(x, t)
    s = daz(s, t)
    r = daz(r, t)
    if ee == EE_DIV:
        return rnd(x / s, t)
    if ee == EE_JAX:
        return rnd(rnd(x / fpv[FP_D], t) / s, t)
    if ee == EE_PAPER:
        return rnd(rnd(x / fpv[FP_D], t) * s, t)
    if ee == EE_JAX_RCP:
        return rnd(rnd(x / fpv[FP_D], t) * rnd(1.0 / s, t), t)
    if ee == EE_RCP_RCP:
        return rnd(rnd(x * rnd(1.0 / fpv[FP_D], t), t) * rnd(1.0 / s, t), t)
    return rnd(x * r, t)


@njit(cache=True, error_model="numpy")
def elem_exact(x, num_g, den):
    """x·G/den rounded to odd (den > 0); x·G must be exact in float64 (checked by the caller in Python)."""
    if den == 0.0:
        if x == 0.0:
            return x
        return math.copysign(math.inf, x)
    return div_ro(x * num_g, den)


@njit(cache=True, error_model="numpy")
def _nan_of(x, s, r, d, canonical):
    """The NaN an element expression produced, with the sign the platform gives it: CUDA's canonical NaN is
    positive; on x86 an operand NaN propagates (a NaN scale factor, positive here, wins over an input NaN, as
    PyTorch's CPU kernels give; an input NaN keeps its sign) and an invalid operation on non-NaN operands
    (Inf/Inf, 0/0, 0·Inf) gives the negative default NaN."""
    if canonical:
        return math.nan
    if s != s or r != r or d != d:
        return math.nan
    if x != x:
        return math.copysign(math.nan, x)
    return math.copysign(math.nan, -1.0)


@njit(cache=True, error_model="numpy")
def encode_fast(v, thr, nthr, sb, negz):
    """Code of v in a 4-bit float format by exclusive thresholds (v not NaN)."""
    a = abs(v)
    n = 0
    for k in range(nthr):
        n += a > thr[k]
    if math.copysign(1.0, v) < 0.0:
        if v == 0.0:
            return negz
        return n | sb
    return n


@njit(cache=True, error_model="numpy")
def encode_fast_signed(v, thp, thn, nthr, sb, negz):
    if math.copysign(1.0, v) < 0.0:
        return encode_fast(v, thn, nthr, sb, negz)
    return encode_fast(v, thp, nthr, sb, negz)


# --- the fused pass --------------------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _tile_stats(x, b, r0, r1, c0, c1, ip, fp):
    """(amax, has_nan) of one tile, padding included when the option says so."""
    amax = 0.0
    nan = False
    ignore = ip[IP_AMAX_NAN] == 1
    for i in range(r0, r1):
        for j in range(c0, c1):
            v = abs(np.float64(x[b, i, j]))
            if v != v:
                if not ignore:
                    nan = True
            elif v > amax:
                amax = v
    full = (r1 - r0) == ip[IP_TR] and (c1 - c0) == ip[IP_TC]
    if not full and ip[IP_PAD] == PAD_INCLUDE:
        pv = abs(fp[FP_PAD])
        if pv != pv:
            if not ignore:
                nan = True
        elif pv > amax:
            amax = pv
    return amax, nan


@njit(cache=True, error_model="numpy")
def _quest_stat(x, b, i, c0, c1, ip, fp):
    """QuEST scale quantity of one contiguous 32-element block, float32 arithmetic, pairwise tree sums."""
    n = c1 - c0
    buf_s = np.empty(n, np.float64)
    buf_q = np.empty(n, np.float64)
    for j in range(n):
        v = np.float64(x[b, i, c0 + j])
        buf_s[j] = v
        buf_q[j] = rnd(v * v, T_F32)
    w = n
    while w > 1:
        h = w // 2
        for j in range(h):
            buf_s[j] = rnd(buf_s[j] + buf_s[j + h], T_F32)
            buf_q[j] = rnd(buf_q[j] + buf_q[j + h], T_F32)
        w = h
    msq = rnd(buf_q[0] / n, T_F32)
    mean = rnd(buf_s[0] / n, T_F32)
    var = rnd(msq - rnd(mean * mean, T_F32), T_F32)
    std = rnd(math.sqrt(var), T_F32) if var >= 0.0 else math.nan
    return rnd(rnd(fp[FP_QGS] * std, T_F32) + fp[FP_QEPS], T_F32)


@njit(cache=True, parallel=True, error_model="numpy")
def quantize_tiles(x, codes, vals, scode, sval, ip, fp, efp, epol, sfp, spol, stab, thp, thn):
    """Quantize x (B, R, C) into codes (B, R, C) uint8, scale codes scode (B, nTR, nTC) int16 and scale values
    sval (B, nTR, nTC) float64 (the decoded scale; NaN for NaN codes).

    With ``vals`` of x's shape (instead of a (1, 1, 1) dummy), the scaled element values are written there
    and no codes are produced (the stochastic-rounding path rounds them with explicit random bits)."""
    B, R, C = x.shape
    tr = ip[IP_TR]
    tc = ip[IP_TC]
    ntr = (R + tr - 1) // tr
    ntc = (C + tc - 1) // tc
    rule = ip[IP_RULE]
    ee = ip[IP_EEXPR]
    t = ip[IP_T]
    nthr = thp.size
    sb = efp[F_SIGN_BIT]
    negz = epol[P_NEG_ZERO_CODE]
    canonical = ip[IP_NAN_SIGN] == 0
    fast = ip[IP_FAST] == 1
    want_vals = vals.shape == x.shape
    # the tight loop: a 4-bit float format, thresholds equal for both signs, no zero override
    simple = fast and nthr == 7 and ip[IP_ZERO_CODE] < 0 and np.all(thp == thn)
    zero_code = ip[IP_ZERO_CODE]
    for task in prange(B * ntr):
        wide_vectors()
        b = task // ntr
        r0 = (task % ntr) * tr
        r1 = min(r0 + tr, R)
        for tj in range(ntc):
            c0 = tj * tc
            c1 = min(c0 + tc, C)
            if rule == RULE_QUEST:
                a = _quest_stat(x, b, r0, c0, c1, ip, fp)
                nan = False
            else:
                a, nan = _tile_stats(x, b, r0, r1, c0, c1, ip, fp)
                if nan:
                    a = math.nan
                elif a == 0.0 and ip[IP_ZERO_SUB] == 1:
                    a = fp[FP_ZERO_AMAX]
            code, v = scale_code(a, ip, fp, sfp, spol)
            if code == -1:
                s = v
            else:
                s = stab[code]
            scode[b, task % ntr, tj] = code
            sval[b, task % ntr, tj] = s
            sa, r, exact_div, den, num_g = tile_factors(code, s, ip, fp)
            if s != s and ip[IP_NAN_BLOCK] >= 0:
                # the option "every element of a NaN-scaled block gets one code"
                for i in range(r0, r1):
                    for j in range(c0, c1):
                        codes[b, i, j] = ip[IP_NAN_BLOCK]
                        if want_vals:
                            vals[b, i, j] = math.nan
                continue
            if simple and not exact_div and not want_vals and (
                    ee == EE_EXACT or ((ee == EE_MUL_RCP or ee == EE_TE or ee == EE_TORCHAO) and t == T_F32)):
                if _tile_fast(x, codes, b, r0, r1, c0, c1, r, ee == EE_EXACT, thp, sb, negz):
                    continue
            for i in range(r0, r1):
                for j in range(c0, c1):
                    xv = np.float64(x[b, i, j])
                    if exact_div:
                        if den != den or num_g != num_g:
                            q = math.nan
                        else:
                            q = elem_exact(xv, num_g, den)
                    else:
                        q = elem_value(xv, sa, r, ee, t, fp)
                    if q != q:
                        q = _nan_of(xv, sa, r, fp[FP_D], canonical)
                        if want_vals:
                            vals[b, i, j] = q
                        else:
                            codes[b, i, j] = encode_one(q, efp, epol)
                    elif want_vals:
                        vals[b, i, j] = q
                    elif q == 0.0 and zero_code >= 0:
                        codes[b, i, j] = zero_code
                    elif fast:
                        codes[b, i, j] = encode_fast_signed(q, thp, thn, nthr, sb, negz)
                    else:
                        codes[b, i, j] = encode_one(q, efp, epol)


@njit(cache=True, error_model="numpy")
def _tile_fast(x, codes, b, r0, r1, c0, c1, r, exact64, th, sb, negz):
    """Codes of one tile whose element value is x·r (exact in float64, or one float32 multiplication) in a
    4-bit float format with seven sign-symmetric exclusive thresholds, branch-free so that it vectorizes.
    Returns False (codes not final) when the tile holds a NaN value, for the general loop to handle."""
    t0, t1, t2, t3, t4, t5, t6 = th[0], th[1], th[2], th[3], th[4], th[5], th[6]
    r32 = np.float32(r)
    nan = 0
    for i in range(r0, r1):
        for j in range(c0, c1):
            if exact64:
                v = np.float64(x[b, i, j]) * r
            else:
                v = np.float64(np.float32(x[b, i, j]) * r32)
            a = abs(v)
            nan |= np.int64(a != a)
            n = (np.int64(a > t0) + np.int64(a > t1) + np.int64(a > t2) + np.int64(a > t3) + np.int64(a > t4)
                 + np.int64(a > t5) + np.int64(a > t6))
            neg = np.int64(math.copysign(1.0, v) < 0.0)
            zero = np.int64(a == 0.0)
            # negative: sign bit, except -0 which takes the neg_zero policy's code
            codes[b, i, j] = n + neg * (sb + zero * (negz - sb))
    return nan == 0


@njit(cache=True, parallel=True, error_model="numpy")
def tensor_amax(x, ip, fp):
    """(max over tiles of the tile amax, any NaN) with the tile geometry, NaN and zero-substitution options."""
    B, R, C = x.shape
    tr = ip[IP_TR]
    tc = ip[IP_TC]
    ntr = (R + tr - 1) // tr
    ntc = (C + tc - 1) // tc
    part = np.zeros(B * ntr, np.float64)
    pnan = np.zeros(B * ntr, np.bool_)
    for task in prange(B * ntr):
        wide_vectors()
        b = task // ntr
        r0 = (task % ntr) * tr
        r1 = min(r0 + tr, R)
        m = 0.0
        nan = False
        for tj in range(ntc):
            c0 = tj * tc
            c1 = min(c0 + tc, C)
            a, n = _tile_stats(x, b, r0, r1, c0, c1, ip, fp)
            if n:
                nan = True
            if a == 0.0 and ip[IP_ZERO_SUB] == 1:
                a = fp[FP_ZERO_AMAX]
            if a > m:
                m = a
        part[task] = m
        pnan[task] = nan
    m = 0.0
    nan = False
    for k in range(part.size):
        if part[k] > m:
            m = part[k]
        if pnan[k]:
            nan = True
    return m, nan
