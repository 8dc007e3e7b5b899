"""Block quantization of float32 bit patterns (fast path of fp4ref.quantize for float32/float16/bfloat16 inputs).

Same results as ``quantize_tiles`` tile by tile; it takes the tiles whose work is branch-free and leaves the
others (flagged in ``slow``) to that loop: tiles with a NaN/Inf element, a NaN scale, a scale or element
operand that is zero or infinite, or an exact denominator that is not a power of two (the caller also keeps
partial tiles, raise policies and QuEST there). Per tile:
- amax as an integer max of ``bits & 0x7FFFFFFF`` (IEEE order of magnitudes; NaN/Inf compare above every
  finite value, so the same max flags the tiles to leave);
- the scale code: power-of-two rules by the binade the rule picks (a table of ``scale_code`` of each power of
  two), ratio rules with float32 expressions from the quantity in float32 encoded with ``encode_bits32``; both
  are read, for tiles whose code has a ladder, from amax bucket tables (see "Table codes by amax bits"); the
  rest call ``scale_quantity``;
- element codes from the float32 bit fields: for the exact expression with a power-of-two denominator 2^k,
  x·2^-k is rounded once from its exact value by moving the cut by k (``encode_bits32_scaled``); for the float32
  expressions the value is computed in float32 arithmetic, which is what "float64 operation, then one rounding
  into float32" gives (see kernels/quantize.py), and its bits are encoded. The element form of each scale code
  is computed once per call;
- for 4-bit element formats, where a scale code's encoder is a step function of |x| with at most 8 steps, its
  element codes are counted on a ladder of thresholds found from that encoder (see "Ladders" below), or, for
  E2M1 rounded to nearest even with saturation and a float32 product as the element value, computed from the
  product's bits (see "E2M1 by arithmetic").
"""
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .bits import f32_as_u32, f64_as_u64, prefetch, shl32, shr32, u32_as_f32, u64_as_f64, wide_vectors
from .cast import bits32_params, encode_bits32, encode_one, int32_params, widen_run
from .hadamard import te_rows
from .stochastic import _ptx32_code
from .quantize import (EE_DIV, EE_EXACT, EE_JAX, EE_JAX_RCP, EE_PAPER, EE_RCP_RCP, EXP_BITS, FP_D, FP_G, FP_M,
                       FP_ZERO_AMAX, IP_EEXPR, IP_EMBITS, IP_EXP, IP_FLOOR_ON, IP_RULE, IP_SCALE_FP32,
                       IP_SCALE_INF, IP_SEXPR, IP_T, IP_TC, IP_TR, IP_ZERO_SUB, RULE_CEIL, RULE_EVEN, RULE_FLOOR,
                       RULE_RATIO, SC_ENCODE, SE_DIV, SE_DIV_D_DIV, SE_DIV_D_MUL_RCP, SE_DIV_DIV_D, SE_MUL_GRCP,
                       SE_MUL_RCP, SE_RCP_D_RCP, T_F32, scale_code, scale_quantity, tile_factors)

K_RANGE = 300  # |k| handled by encode_bits32_scaled (tests/test_quantize_bits.py checks this range)


@njit(cache=True, inline="always")
def _scaled_cut(b, k, q):
    """(sgn, neg, sig, r, base) of (the finite float32 with bits b) · 2^-k: its value is (base + sig / 2^r) in
    magnitude-code units, so that rounding sig at bit r and adding base gives the magnitude code.

    The binade of the scaled value: its exponent is floor(log2 sig) + max(ex, 1) - 150 - k (floor(log2 sig) read
    from the exponent field of float64(sig), so that float32 subnormals get their true binade). The cut r =
    ec - mb + 150 + k - max(ex, 1) is negative only when sig has fewer than mb significant bits and the scaled
    value is in the format's normal range: the value is then exact, sig << -r with r = 0.
    """
    mb, emin, bias, neg_abs = q[0], q[1], q[2], q[11]
    sgn = b >> 31
    ex = (b >> 23) & 0xFF
    man = b & 0x7FFFFF
    sig = man | (0x800000 if ex != 0 else 0)
    ex1 = max(ex, 1)
    pf = np.int64((f64_as_u64(np.float64(sig)) >> 52) & 0x7FF) - 1023
    ec = max(pf + ex1 - 150 - k, emin)
    r = ec - mb + 150 + k - ex1
    return sgn, sgn & (1 - neg_abs), sig << max(-r, 0), max(r, 0), (ec + bias - 1) << mb


@njit(cache=True, inline="always")
def _scaled_finish(mag, neg, sgn, sig, q):
    """The code of a scaled finite value from its rounded magnitude code (overflow, sign, unsigned, zero)."""
    (mb, emin, bias, lim_pos, lim_neg, ovf_pos, ovf_neg, nx, na, nm, unsigned, neg_abs, neg_code, z_pos, z_neg,
     nan_pos, nan_neg, inf_pos, inf_neg, e8m0_sub, m_half, k_one, m_odd, k_pos, k_neg, k_odd) = q
    if mag > (lim_neg if neg != 0 else lim_pos):
        mag = ovf_neg if neg != 0 else ovf_pos
    c = (((mag ^ nx) + na) & nm) if neg != 0 else mag
    if unsigned != 0 and sgn != 0 and neg_abs == 0:
        c = neg_code
    if sig == 0:
        c = z_neg if sgn != 0 else z_pos
    return c


@njit(cache=True, inline="always")
def encode_bits32_scaled(b, k, q):
    """Code of (the finite float32 with bits b) · 2^-k, rounded once; q = bits32_params; |k| <= K_RANGE.

    As encode_bits32, in the binade of the scaled value (_scaled_cut); r = 0 (an exact value) takes no rounding
    increment. No E8M0 subnormal quirk here (the caller leaves formats with it to the generic loop).
    """
    (mb, emin, bias, lim_pos, lim_neg, ovf_pos, ovf_neg, nx, na, nm, unsigned, neg_abs, neg_code, z_pos, z_neg,
     nan_pos, nan_neg, inf_pos, inf_neg, e8m0_sub, m_half, k_one, m_odd, k_pos, k_neg, k_odd) = q
    sgn, neg, sig, r, base = _scaled_cut(b, k, q)
    r = min(r, 31)
    mask = (np.int64(1) << r) - 1
    odd = (base + (sig >> r)) & 1
    away = (k_neg if neg != 0 else k_pos) | (k_odd & (odd ^ 1))
    inc = ((mask >> 1) & m_half) + k_one + (odd & m_odd) + (mask & -away)
    n = (sig + (inc & -np.int64(r > 0))) >> r
    return _scaled_finish(max(base + n, 0), neg, sgn, sig, q)


@njit(cache=True, inline="always")
def sr_code_scaled(b, rr, width, k, q):
    """stochastic-ptx code of (the finite float32 with bits b) · 2^-k with random integer rr (width <= 32 bits),
    as kernels.stochastic._ptx32_code rounds a float32: n = (sig + rr * 2^(r - width)) >> r (rr >> (width - r)
    for a narrower cut), so the bits of the fraction below 2^-width never matter. A cut beyond 24 + width
    leaves n = 0 whatever rr is, so clamping it there changes nothing; r = 0 (exact) adds rr >> width = 0."""
    sgn, neg, sig, r, base = _scaled_cut(b, k, q)
    r = min(r, 24 + width)
    inc = (rr << max(r - width, 0)) >> max(width - r, 0)
    return _scaled_finish(max(base + ((sig + inc) >> r), 0), neg, sgn, sig, q)


@njit(cache=True, inline="always")
def _f32_of_bits(m):
    """The float64 value of a finite float32 magnitude given by its bits (exact)."""
    ex = m >> 23
    sig = (m & 0x7FFFFF) | (0x800000 if ex != 0 else 0)
    return np.float64(sig) * u64_as_f64(np.uint64(max(ex, 1) - 150 + 1023) << np.uint64(52))


# bfloat16 input is the upper half of float32 bit patterns. quantize_tiles_f32 takes it as int16 (the caller's
# view) and runs the amax and ladder loops on the 16-bit patterns themselves, twice the lanes of widened ones:
# a bfloat16 magnitude a16 reaches a float32 threshold t exactly when a16 >= ceil(t / 2^16). Tiles that leave
# the ladders widen their tile row first.
def magnitude(b):
    """|b| as a bit pattern: b & 0x7FFFFFFF (uint32: float32 bits) or b & 0x7FFF (16-bit float bits; int16:
    bfloat16). Jitted code only."""
    raise NotImplementedError("magnitude is compiled into jitted callers only")


@overload(magnitude, inline="always")
def _magnitude_impl(b):
    if b == types.int16:
        return lambda b: np.int16(b & np.int16(0x7FFF))
    if b == types.uint16:
        return lambda b: np.uint16(b & np.uint16(0x7FFF))
    return lambda b: b & np.uint32(0x7FFFFFFF)


def as_float32(b):
    """The float32 of a bit pattern: uint32 float32 bits, or int16 bfloat16 bits (shifted up 16). Jitted code
    only."""
    raise NotImplementedError("as_float32 is compiled into jitted callers only")


@overload(as_float32, inline="always")
def _as_float32_impl(b):
    if b == types.int16:
        return lambda b: u32_as_f32(shl32(np.uint32(np.uint16(b)), 16))
    return lambda b: u32_as_f32(b)


def negative(b):
    """Whether the sign bit of b is set (uint32 float32 or int16 bfloat16 bits). Jitted code only."""
    raise NotImplementedError("negative is compiled into jitted callers only")


@overload(negative, inline="always")
def _negative_impl(b):
    if b == types.int16:
        return lambda b: b < np.int16(0)
    return lambda b: b >= np.uint32(0x80000000)


def native_ladders(lad, xin):
    """The ladders as xin's patterns compare them: lad itself, or for int16 (bfloat16) input each threshold
    rounded up to a bfloat16 pattern (_NEVER and everything above the largest finite one: 0x7FFF, which no
    finite magnitude reaches; tiles with NaN/Inf never take a ladder). Jitted code only."""
    raise NotImplementedError("native_ladders is compiled into jitted callers only")


@overload(native_ladders)
def _native_ladders_impl(lad, xin):
    if xin.dtype != types.int16:
        return lambda lad, xin: lad

    def to16(lad, xin):
        out = np.empty(lad.shape, np.int16)
        for c in range(lad.shape[0]):
            for j in range(lad.shape[1]):
                out[c, j] = min((np.int64(lad[c, j]) + 0xFFFF) >> 16, 0x7FFF)
        return out
    return to16


def float32_rows(rows, w, c0, c1):
    """A tile row's float32 bit patterns for the tile loop, valid in columns c0 .. c1-1: rows itself (uint32), or
    those columns of the int16 (bfloat16) rows widened into w. Jitted code only."""
    raise NotImplementedError("float32_rows is compiled into jitted callers only")


@overload(float32_rows, inline="always")
def _float32_rows_impl(rows, w, c0, c1):
    if rows.dtype != types.int16:
        return lambda rows, w, c0, c1: rows

    def widen(rows, w, c0, c1):
        for i in range(rows.shape[0]):
            widen_run(rows[i][c0:c1].view(np.uint16), w[i][c0:c1], True)
        return w
    return widen


def float32_amaxes(ms, rows):
    """Tile amaxes of rows' patterns as float32 bit patterns, in place (int16 bfloat16 bits: shifted up 16).
    Jitted code only."""
    raise NotImplementedError("float32_amaxes is compiled into jitted callers only")


@overload(float32_amaxes, inline="always")
def _float32_amaxes_impl(ms, rows):
    if rows.dtype != types.int16:
        return lambda ms, rows: None

    def shift(ms, rows):
        for j in range(ms.size):
            ms[j] = ms[j] << np.uint32(16)
    return shift


# Tile loops: each row of a tile is a contiguous run of tc elements. The element loops are functions of their own
# (_run_*): inlined into the tile loop by hand they measured slower.
@njit(cache=True, inline="always")
def _run_amax(v, n):
    m = np.uint32(0)
    for j in range(n):
        a = np.uint32(magnitude(v[j]))
        m = a if a > m else m
    return m


@njit(cache=True)
def _row_amax(v, ms, tc, tmp):
    """ms[t] = max of |bits| over v[t*tc:(t+1)*tc] (NaN/Inf magnitudes are above every finite one), t < ms.size.
    Tiles of 16 and 32 (NVFP4, MX) take a pass of 4-element maxima over the row into tmp, then one over groups
    of 4 or 8: two branch-free loops that LLVM vectorizes (a reduction per tile measured ~4x slower)."""
    n = ms.size
    g = tc // 4
    if tc % 4 != 0 or (g != 4 and g != 8):
        for t in range(n):
            ms[t] = _run_amax(v[t * tc:(t + 1) * tc], tc)
        return
    for j in range(n * g):
        tmp[j] = max(max(magnitude(v[4 * j]), magnitude(v[4 * j + 1])),
                     max(magnitude(v[4 * j + 2]), magnitude(v[4 * j + 3])))
    if g == 4:
        for t in range(n):
            ms[t] = max(max(tmp[4 * t], tmp[4 * t + 1]), max(tmp[4 * t + 2], tmp[4 * t + 3]))
    else:
        for t in range(n):
            ms[t] = max(max(max(tmp[8 * t], tmp[8 * t + 1]), max(tmp[8 * t + 2], tmp[8 * t + 3])),
                        max(max(tmp[8 * t + 4], tmp[8 * t + 5]), max(tmp[8 * t + 6], tmp[8 * t + 7])))


def tile_row(xin, b, r0, tr, w, bf16):
    """Rows r0 .. r0+tr-1 of xin[b] (B, R, C) as float32 bit patterns (uint32, C contiguous): a view of uint32
    input, or 16-bit float input (uint16: bfloat16 if bf16, else float16) widened into w (tr, C). Jitted code
    only: a tile row widened in cache costs no memory traffic, unlike widening the whole input first."""
    raise NotImplementedError("tile_row is compiled into jitted callers only")


@overload(tile_row, inline="always")
def _tile_row_impl(xin, b, r0, tr, w, bf16):
    if xin.dtype == types.uint32 or xin.dtype == types.int16:  # int16: bfloat16, read as such (see magnitude)
        return lambda xin, b, r0, tr, w, bf16: xin[b, r0:r0 + tr]

    def widen(xin, b, r0, tr, w, bf16):
        for i in range(tr):
            widen_run(xin[b, r0 + i], w[i], bf16)
        return w
    return widen


def source_rows(xin, b, r0, tr, w, bf16, rht, rht_bf16, o16):
    """tile_row, or with rht >= 0 the RHT16 te model of those rows (kernels.hadamard.te_rows, row sign mask rht:
    the forward transform) as float32 bit patterns in w (tr, C), rounded to bfloat16 first if rht_bf16 (o16: an
    empty uint16 array, so that te_rows writes them widened). Transformed a tile row at a time, the rows stay in
    cache for the ladders, where a transformed tensor would be written out and read back. int16 (bfloat16 read
    natively) input is never transformed: the caller passes 16-bit input to a transform as uint16. Jitted code
    only."""
    raise NotImplementedError("source_rows is compiled into jitted callers only")


@overload(source_rows, inline="always")
def _source_rows_impl(xin, b, r0, tr, w, bf16, rht, rht_bf16, o16):
    if xin.dtype == types.int16:
        return lambda xin, b, r0, tr, w, bf16, rht, rht_bf16, o16: tile_row(xin, b, r0, tr, w, bf16)

    def rows(xin, b, r0, tr, w, bf16, rht, rht_bf16, o16):
        if rht < 0:
            return tile_row(xin, b, r0, tr, w, bf16)
        for i in range(tr):
            te_rows(xin[b, r0 + i], bf16, np.uint32(rht), np.uint32(0), rht_bf16, w[i].view(np.float32), o16)
        return w[:tr]
    return rows


@njit(cache=True, inline="always")
def _tiles_amax(rows, o, tc, ms, mr, tmp):
    """ms[tj] = max of |bits| over the tiles of a tile row from column o on (rows: its rows' bit patterns; mr,
    tmp: scratch). Row by row from 1-D slices: a column slice of rows is strided, and an index offset the
    compiler cannot prove non-negative keeps a wraparound test per element; either way the loops do not
    vectorize (measured 3-4x slower)."""
    _row_amax(rows[0][o:], ms, tc, tmp)
    for i in range(1, rows.shape[0]):
        _row_amax(rows[i][o:], mr, tc, tmp)
        for tj in range(ms.size):
            ms[tj] = max(ms[tj], mr[tj])


@njit(cache=True, inline="always")
def _run_scaled(v, out, n, k, q):
    for j in range(n):
        out[j] = encode_bits32_scaled(np.int64(v[j]), k, q)


@njit(cache=True, inline="always")
def _tile_scaled(rows, crow, c0, tc, k, q):
    for i in range(rows.shape[0]):
        _run_scaled(rows[i, c0:c0 + tc], crow[i, c0:c0 + tc], tc, k, q)


@njit(cache=True, inline="always")
def _run_f32(v, out, n, op, a1, a2, q):
    """Encode the bits of _f32_op(x, op, a1, a2) for the float32 x of each bit pattern of the run (the op test
    hoisted out of the loop)."""
    if op == 0:
        for j in range(n):
            out[j] = encode_bits32(np.int64(f32_as_u32(_f32_op(u32_as_f32(v[j]), 0, a1, a2))), q)
    elif op == 1:
        for j in range(n):
            out[j] = encode_bits32(np.int64(f32_as_u32(_f32_op(u32_as_f32(v[j]), 1, a1, a2))), q)
    else:
        for j in range(n):
            out[j] = encode_bits32(np.int64(f32_as_u32(_f32_op(u32_as_f32(v[j]), 2, a1, a2))), q)


@njit(cache=True, inline="always")
def _tile_f32(rows, crow, c0, tc, op, a1, a2, q):
    for i in range(rows.shape[0]):
        _run_f32(rows[i, c0:c0 + tc], crow[i, c0:c0 + tc], tc, op, a1, a2, q)


# Ladders. For a format with at most LADDER + 1 codes on each side (E2M1: 8), the element code of a tile is a
# step function of |x|: the number of thresholds |x| reaches gives the magnitude code o + i, and the sign bit
# maps it to the negative code as encode_bits32 does (((mag ^ nx) + na) & nm). The thresholds of each scale
# code are found by searching the tile's own encoder (_form_code, the proven path) over float32 magnitudes and
# checked at both sides of every step for both signs; a scale code whose encoder is not such a step function
# (a NaN overflow code, thresholds that differ by sign) keeps the encoder. Negative magnitudes below a threshold
# zt (the row's last entry) take the code of -0 where that is not the sign-mapped +0 (a policy for -0, and
# float32 expressions that underflow to -0).
# Per element this is LADDER integer compares and a few bit operations, all vectorizable.
LADDER = 8
_A_MAX = 0x7F7FFFFF  # the largest finite float32 magnitude pattern
_NEVER = 0xFFFFFFFF  # a threshold that no finite magnitude reaches


@njit(cache=True)  # not inlined: the ladder search calls it from many sites (one copy keeps the compile short)
def _form_code(b, exact, k, op, a1, a2, q):
    """The code _run_scaled (exact) or _run_f32 gives the float32 with bits b (0 <= b < 2^32)."""
    if exact:
        return encode_bits32_scaled(b, k, q)
    return encode_bits32(np.int64(f32_as_u32(_f32_op(u32_as_f32(np.uint32(b)), op, a1, a2))), q)


@njit(cache=True, inline="always")
def _ladder_code(b, t, o, nx, na, nm):
    """The code of bits b (uint32) on ladder t (LADDER thresholds and zt, uint32) with the constants of
    ladder_consts: the formula of _run_ladder, one element."""
    a = b & np.uint32(0x7FFFFFFF)
    i = np.uint32(0)
    for j in range(LADDER):
        i += np.uint32(a >= t[j])
    mask = np.uint32(0) - ((b >> np.uint32(31)) & np.uint32(a >= t[LADDER]))
    return np.int64((((o + i) ^ (nx & mask)) + (na & mask)) & nm)


@njit(cache=True)
def ladder_base(q):
    """(m, P, o) for the element format and policies q at scale 1: the finite positive float32 magnitudes take
    the codes o, o + 1, ..., o + m - 1 in order, code o + i from bits P[i] up (P[0] = 0). m = 0 where the
    codes are not such a run of at most LADDER + 1 (then no ladders)."""
    P = np.zeros(LADDER + 1, np.int64)
    o = _form_code(np.int64(0), True, 0, 0, np.float32(1), np.float32(1), q)
    m = 1
    lo = np.int64(0)
    while True:
        cur = _form_code(lo, True, 0, 0, np.float32(1), np.float32(1), q)
        if _form_code(np.int64(_A_MAX), True, 0, 0, np.float32(1), np.float32(1), q) == cur:
            break
        hi = np.int64(_A_MAX)  # code(lo) == cur != code(hi): the first change lies in (lo, hi]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _form_code(mid, True, 0, 0, np.float32(1), np.float32(1), q) == cur:
                lo = mid
            else:
                hi = mid
        if m > LADDER or _form_code(hi, True, 0, 0, np.float32(1), np.float32(1), q) != o + m:
            return 0, P, o
        P[m] = hi
        m += 1
        lo = hi
    return m, P, o


@njit(cache=True)
def _rank(b, o, m, exact, k, op, a1, a2, q):
    """i where bits b take the positive code o + i (0 <= i < m), else -1."""
    i = _form_code(b, exact, k, op, a1, a2, q) - o
    return i if 0 <= i < m else -1


@njit(cache=True)
def _first_at_least(i, g, o, m, exact, k, op, a1, a2, q):
    """The smallest finite magnitude pattern whose rank is >= i (ranks are monotone in the magnitude), searched
    outwards from the guess g; _NEVER if none; -1 if a code off the ladder turns up."""
    r = _rank(g, o, m, exact, k, op, a1, a2, q)
    if r < 0:
        return np.int64(-1)
    step = np.int64(1)
    if r >= i:
        hi = g
        lo = np.int64(-1)
        while hi - step >= 0:
            r = _rank(hi - step, o, m, exact, k, op, a1, a2, q)
            if r < 0:
                return np.int64(-1)
            if r < i:
                lo = hi - step
                break
            hi -= step
            step *= 2
    else:
        lo = g
        hi = np.int64(-1)
        while hi < 0:
            nxt = min(lo + step, _A_MAX)
            r = _rank(nxt, o, m, exact, k, op, a1, a2, q)
            if r < 0:
                return np.int64(-1)
            if r >= i:
                hi = nxt
            elif nxt == _A_MAX:
                return np.int64(_NEVER)
            else:
                lo = nxt
                step *= 2
    while hi - lo > 1:  # rank(lo) < i <= rank(hi), lo = -1 standing for "below 0"
        mid = (lo + hi) // 2
        r = _rank(mid, o, m, exact, k, op, a1, a2, q)
        if r < 0:
            return np.int64(-1)
        if r >= i:
            hi = mid
        else:
            lo = mid
    return hi


@njit(cache=True, inline="always")
def ladder_consts(o, q):
    """(o, nx, na, nm) as uint32 for _run_ladder: the first magnitude code and encode_bits32's sign mapping."""
    return np.uint32(o), np.uint32(q[7] & 0xFFFFFFFF), np.uint32(q[8] & 0xFFFFFFFF), np.uint32(q[9] & 0xFFFFFFFF)


@njit(cache=True)
def _ladder(t, m, P, o, exact, k, op, a1, a2, q):
    """Fill t with the thresholds and zt of one scale code's encoder (form exact, k, op, a1, a2); True when the
    ladder gives that encoder's code for every finite float32 of either sign (checked at both sides of each step
    and of zt, the steps being monotone)."""
    # the guess for step i: base magnitude P[i] carried through the form (x·2^k, or the inverse float32 op)
    if exact:
        f = 2.0 ** k
    elif op == 0:
        f = np.float64(a1) * np.float64(a2)
    elif op == 1:
        f = np.float64(a1) / np.float64(a2)
    else:
        f = 1.0 / (np.float64(a1) * np.float64(a2))
    if not (f > 0.0 and f < np.inf):
        return False
    for j in range(LADDER):
        t[j] = _NEVER
    for i in range(1, m):
        gv = _f32_of_bits(P[i]) * f
        g = np.int64(_A_MAX) if gv >= 3.4028234663852886e38 else np.int64(f32_as_u32(np.float32(gv)))
        x = _first_at_least(i, g, o, m, exact, k, op, a1, a2, q)
        if x < 0:
            return False
        t[i - 1] = x
    # zt: where the code of -0 gives way to the sign-mapped +0 (searched below the first step)
    o32, nx, na, nm = ladder_consts(o, q)
    zneg = _form_code(np.int64(0x80000000), exact, k, op, a1, a2, q)
    lo, hi = np.int64(0), np.int64(_A_MAX) + 1 if t[0] == _NEVER else np.int64(t[0])
    if zneg == (((o32 ^ nx) + na) & nm):
        hi = 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _form_code(mid | 0x80000000, exact, k, op, a1, a2, q) != zneg:
            hi = mid
        else:
            lo = mid
    t[LADDER] = hi
    for sgn in (0, 0x80000000):
        for j in range(-1, LADDER):
            pts = (np.int64(0), np.int64(_A_MAX)) if j < 0 else (np.int64(t[j]) - 1, np.int64(t[j]))
            for p in pts:
                if 0 <= p <= _A_MAX:
                    b = p | sgn
                    if _ladder_code(np.uint32(b), t, o32, nx, na, nm) != _form_code(b, exact, k, op, a1, a2, q):
                        return False
    return True


# The loops of _run_ladder by what a ladder needs: SHORT leaves out the eighth threshold (no such step: a format
# of at most 8 magnitude codes, as E2M1) and zt (every negative magnitude sign-mapped); NO_T8 leaves out the eighth
# threshold only; FULL takes both. E2M1_ARITH: no ladder, e2m1_rne_code (see "E2M1 by arithmetic").
SHORT, NO_T8, FULL, E2M1_ARITH = 0, 1, 2, 3


@njit(cache=True, inline="always")
def ladder_shape(t):
    """The smallest loop of _run_ladder that gives ladder t's codes (SHORT, NO_T8 or FULL)."""
    if t[LADDER - 1] != _NEVER:
        return FULL
    return NO_T8 if t[LADDER] != 0 else SHORT


@njit(cache=True, inline="always")
def _run_ladder(v, out, j0, n, t, o, nx, na, nm, shape):
    """Codes of v[j0:j0+n] into out[j0:j0+n] on ladder t (LADDER thresholds, zt). Written as selects, which LLVM
    turns into masked byte adds (fewer instructions than summing the compares as integers). Indexed from j0:
    slices made per tile (bounds, alias checks) measured ~10% of a 16-element tile. shape (a constant at the call
    site, at least ladder_shape(t)): the compares it leaves out each cost a broadcast and a compare per vector on
    one port (without both, 16-element tiles ~20% faster on a Xeon)."""
    t0, t1, t2, t3, t4, t5, t6, t7, zt = t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8]
    one = np.uint32(1)
    for j in range(n):
        b = v[j0 + j]
        a = magnitude(b)
        i = o
        i = i + one if a >= t0 else i
        i = i + one if a >= t1 else i
        i = i + one if a >= t2 else i
        i = i + one if a >= t3 else i
        i = i + one if a >= t4 else i
        i = i + one if a >= t5 else i
        i = i + one if a >= t6 else i
        if shape == FULL:
            i = i + one if a >= t7 else i
        neg = negative(b) and (shape == SHORT or a >= zt)
        out[j0 + j] = np.uint8(((i ^ nx) + na) & nm) if neg else np.uint8(i & nm)


@njit(cache=True, inline="always")
def _table_code(m, pow2, ptab, rule, embits, zero_sub, rc):
    """(code, ok) for a tile with finite amax bits m whose scale code is a table entry: power-of-two rules read
    ptab by the binade the rule picks (ok on a normal amax), ratio rules take rc, the code their cross-tile
    loop computed (ok unless a zero amax is replaced)."""
    if pow2:
        ex = m >> 23
        if rule == RULE_FLOOR:
            return ptab[ex], ex != 0
        if rule == RULE_CEIL:
            return ptab[ex + np.int64((m & 0x7FFFFF) != 0)], ex != 0
        return ptab[(m + (np.int64(1) << (22 - embits))) >> 23], ex != 0
    return rc, not (m == 0 and zero_sub == 1)


# Table codes by amax bits. A tile whose scale code is a table entry and has a ladder gets that code from two
# lookups by h = m >> 16 (m: the amax bits): b1[h] if m >= bt[h] else b0[h]; -1 sends the tile to the tile loop.
# Each code's amaxes form one interval of bit patterns (the scale quantity is a monotone function of the amax:
# power-of-two binades, or float32 operations with positive constants, which IEEE rounding keeps monotone; the
# scale encoder rounds onto an ordered grid), so the table is built by walking these intervals; a bucket of 2^16
# patterns that holds more than one change of code is left to the tile loop.
_NB = 1 << 15


@njit(cache=True, inline="always")
def _bucket_code(m, b0, b1, bt):
    """Both entries loaded, then selected: a load under the condition compiled to a branch, mispredicted about
    as often as tiles fall on either side of a bucket's threshold (te-nvfp4 fp32 4096^2: ~2 ms of ~9)."""
    h = m >> 16
    lo, hi = b0[h], b1[h]
    return hi if m >= bt[h] else lo


@njit(cache=True, error_model="numpy")
def _bucket_tables(m0, pow2, ptab, rule, embits, sop, c1, c2, qs, inf_code, lok, b0, b1, bt):
    """Fill b0, b1, bt (size _NB) for finite amax bits m >= m0 (below: -1) from the table code (_table_code's
    for power-of-two rules, _ratio_code's for ratio rules) mapped to -1 where it has no ladder."""
    b0[:] = -1
    b1[:] = -1
    bt[:] = 0
    cnt = np.zeros(_NB, np.int64)
    p = np.int64(m0)
    run = np.int64(1)
    while p <= _A_MAX:
        c = _code_of_amax(p, pow2, ptab, rule, embits, sop, c1, c2, qs, inf_code)
        # the last pattern with code c: first where the previous interval's length puts it (binades repeat),
        # else an exponential search and a bisection (the codes' intervals are ordered)
        lo, step = p, np.int64(1)
        hi = np.int64(_A_MAX) + 1
        g = p + run
        if g <= _A_MAX and _code_of_amax(g - 1, pow2, ptab, rule, embits, sop, c1, c2, qs, inf_code) == c \
                and _code_of_amax(g, pow2, ptab, rule, embits, sop, c1, c2, qs, inf_code) != c:
            lo, hi = g - 1, g
        while hi - lo > 1 and lo + step <= _A_MAX:
            if _code_of_amax(lo + step, pow2, ptab, rule, embits, sop, c1, c2, qs, inf_code) != c:
                hi = lo + step
                break
            lo += step
            step *= 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _code_of_amax(mid, pow2, ptab, rule, embits, sop, c1, c2, qs, inf_code) == c:
                lo = mid
            else:
                hi = mid
        v = c if 0 <= c < lok.size and lok[c] else -1
        for h in range(p >> 16, (lo >> 16) + 1):
            cnt[h] += 1
            if cnt[h] == 1:
                b0[h], b1[h], bt[h] = v, v, 0
            elif cnt[h] == 2:
                b1[h], bt[h] = v, p
            else:
                b0[h], b1[h], bt[h] = -1, -1, 0
        run = lo + 1 - p
        p = lo + 1
    for h in range(_NB):
        if (h << 16) < m0:  # a bucket reaching below m0: the tile loop
            b0[h], b1[h], bt[h] = -1, -1, 0


@njit(cache=True, inline="always")
def _coded_tiles(ms, tl, scode, b0, b1, bt):
    """tl[tj] = the ladder code of each tile of a tile row by the bucket tables (-1: left to the tile loop), also
    written as its scale code (the tile loop overwrites the others). Branch-free. Returns the number of -1s."""
    left = 0
    for tj in range(ms.size):
        m = ms[tj]
        c = _bucket_code(m, b0, b1, bt)
        tl[tj] = c
        scode[tj] = c
        left += c < 0
    return left


@njit(cache=True, inline="always")
def _ladder_tiles(rows, crow, c0, tc, tl, lad, o, nx, na, nm, shape, nxt, n0, npf):
    line = 64 // nxt.itemsize
    for i in range(rows.shape[0]):
        v = rows[i][c0:]
        out = crow[i][c0:]
        pn = nxt[i][n0:]
        for tj in range(tl.size):
            if tj < npf:
                for e in range(0, tc, line):
                    prefetch(pn, tj * tc + e)
            c = tl[tj]
            if c >= 0:
                if tc == 32:
                    _run_ladder(v, out, tj * 32, 32, lad[c], o, nx, na, nm, shape)
                elif tc == 16:
                    _run_ladder(v, out, tj * 16, 16, lad[c], o, nx, na, nm, shape)
                else:
                    _run_ladder(v, out, tj * tc, tc, lad[c], o, nx, na, nm, shape)


@njit(cache=True)
def _ladder_rows(rows, crow, c0, tc, tl, lad, o, nx, na, nm, shape, nxt, n0, npf):
    """The element codes of the tiles tj of one tile row (from column c0 on) with tl[tj] >= 0 (their scale code)
    by their ladders (shape: the largest ladder_shape of the ladders in lad that a tile can take). A function of
    its own: inside the tile loop the per-tile scalar work around it measured more than the elements. nxt: the
    rows of the strip that follows (its npf tiles from column n0), prefetched a tile at a time so that their DRAM
    reads overlap these ladders (te-nvfp4 fp32 16384^2 kernel 115 -> 84-90 ms, ocp-mxfp4 91 -> 66-72 ms on a
    2-core Xeon)."""
    wide_vectors()
    if shape == SHORT:
        _ladder_tiles(rows, crow, c0, tc, tl, lad, o, nx, na, nm, SHORT, nxt, n0, npf)
    elif shape == NO_T8:
        _ladder_tiles(rows, crow, c0, tc, tl, lad, o, nx, na, nm, NO_T8, nxt, n0, npf)
    else:
        _ladder_tiles(rows, crow, c0, tc, tl, lad, o, nx, na, nm, FULL, nxt, n0, npf)


# E2M1 by arithmetic. Where the element format is E2M1 rounded to nearest even with saturation (q matches
# e2m1_fast_q) and every laddered scale code's element value is the float32 product (x · a1) · a2, the code is
# computed from the product in 32-bit lanes, with one broadcast per tile instead of a ladder's eight thresholds
# (te-nvfp4 fp32 16384^2 with the tensor amax given, 2-core Zen 4: 145 -> 107 ms). tests/exhaustive proves
# e2m1_rne_code equal to the integer reference for every float32 bit pattern but NaN, which a product of finite
# operands never is.
@njit(cache=True, inline="always")
def e2m1_rne_code(v, zn):
    """The E2M1 code of float32 v (not NaN) rounded to nearest even, saturating at ±6 (±Inf included). -0 itself
    takes zn (the -0 policy's code); other negatives set the sign bit (8 for those that round to zero, as
    encode_bits32 maps them). Below 1 (E2M1's subnormal binade, quantum 1/2) the float32 sum with 2^22 rounds |v|
    to a multiple of 1/2 in the low mantissa bits; from 1 up the float32 bits are rounded to one mantissa bit by
    an integer add, and the exponent and mantissa fields then read as the code plus 252 (E2M1 bias 1 against
    float32's 127, shifted by one mantissa bit)."""
    a = min(abs(v), np.float32(6.0))
    ab = f32_as_u32(a)
    sub = np.uint32(f32_as_u32(a + np.float32(4194304.0)) - np.uint32(0x4A800000))
    up = np.uint32(ab + np.uint32(0x1FFFFF) + (shr32(ab, 22) & np.uint32(1)))
    c = sub if a < np.float32(1.0) else np.uint32(shr32(up, 22) - np.uint32(252))
    b = f32_as_u32(v)
    c = (c | np.uint32(8)) if b >= np.uint32(0x80000000) else c
    return np.uint8(np.uint32(zn) if b == np.uint32(0x80000000) else c)


@njit(cache=True, inline="always")
def e2m1_fast_q(q):
    """Whether e2m1_rne_code gives encode_bits32(., q)'s codes: E2M1 (signed, 7 the largest magnitude code, 8 the
    sign bit), rounding to nearest even, overflow and ±Inf saturating to ±6, +0 code 0 and a -0 code of 0 or 8,
    no E8M0 quirk. The NaN codes do not matter: no NaN reaches it."""
    (mb, emin, bias, lim_pos, lim_neg, ovf_pos, ovf_neg, nx, na, nm, unsigned, neg_abs, neg_code, z_pos, z_neg,
     nan_pos, nan_neg, inf_pos, inf_neg, e8m0_sub, m_half, k_one, m_odd, k_pos, k_neg, k_odd) = q
    fmt = mb == 1 and emin == 0 and bias == 1 and lim_pos == 7 and lim_neg == 7 and nx == 0 and na == 8 \
        and nm == 0xFF and unsigned == 0 and neg_abs == 0
    policy = ovf_pos == 7 and ovf_neg == 7 and inf_pos == 7 and inf_neg == 15 and z_pos == 0 \
        and (z_neg == 0 or z_neg == 8) and e8m0_sub == 0
    rne = m_half == -1 and k_one == 0 and m_odd == -1 and k_pos == 0 and k_neg == 0 and k_odd == 0
    return fmt and policy and rne


@njit(cache=True, inline="always")
def _run_e2m1(v, out, j0, n, a1, a2, zn):
    for j in range(n):
        out[j0 + j] = e2m1_rne_code((as_float32(v[j0 + j]) * a1) * a2, zn)


@njit(cache=True)
def _e2m1_rows(rows, crow, c0, tc, tl, ta1, ta2, zn, nxt, n0, npf):
    """_ladder_rows for shape E2M1_ARITH: the tiles tj with tl[tj] >= 0 (scale code c) take e2m1_rne_code of
    (x · ta1[c]) · ta2[c] with -0 code zn, and the next strip is prefetched the same way. A loop of its own:
    as a fourth branch of _ladder_tiles both loops measured ~1.7x slower (Zen 4)."""
    wide_vectors()
    line = 64 // nxt.itemsize
    for i in range(rows.shape[0]):
        v = rows[i][c0:]
        out = crow[i][c0:]
        pn = nxt[i][n0:]
        for tj in range(tl.size):
            if tj < npf:
                for e in range(0, tc, line):
                    prefetch(pn, tj * tc + e)
            c = tl[tj]
            if c >= 0:
                if tc == 16:
                    _run_e2m1(v, out, tj * 16, 16, ta1[c], ta2[c], zn)
                elif tc == 32:
                    _run_e2m1(v, out, tj * 32, 32, ta1[c], ta2[c], zn)
                else:
                    _run_e2m1(v, out, tj * tc, tc, ta1[c], ta2[c], zn)


@njit(cache=True, error_model="numpy")
def _f32_form(ee, sa, r, d):
    """The float32 expression of an element as (op, a1, a2) for _run_f32, and whether it is safe: every
    operand finite and nonzero, so that a finite x gives no NaN (the generic loop owns NaN signs)."""
    s32 = np.float32(sa)
    d32 = np.float32(d)
    one = np.float32(1.0)
    if ee == EE_DIV:
        op, a1, a2 = 1, s32, one
    elif ee == EE_JAX:
        op, a1, a2 = 0, d32, s32
    elif ee == EE_PAPER:
        op, a1, a2 = 1, d32, s32
    elif ee == EE_JAX_RCP:
        op, a1, a2 = 1, d32, one / s32
    elif ee == EE_RCP_RCP:
        op, a1, a2 = 2, one / d32, one / s32
    else:
        op, a1, a2 = 2, np.float32(r), one
    ok = np.float64(s32) == sa and np.float64(d32) == d and np.float64(np.float32(r)) == r
    for a in (a1, a2):
        ok = ok and a != 0.0 and abs(a) < np.inf
    return op, a1, a2, ok


@njit(cache=True, inline="always")
def _f32_op(v, op, a1, a2):
    if op == 0:
        return (v / a1) / a2
    if op == 1:
        return (v / a1) * a2
    return (v * a1) * a2


@njit(cache=True, error_model="numpy")
def _scale_f32_form(ip, fp):
    """(op, c1, c2) when a ratio rule's scale quantity of a finite amax is _f32_op(amax, op, c1, c2) in float32
    (compute type float32 without flushing, float32-exact constants, no floor, bit-field exponent, a scale
    format), else op = -1: then scale_quantity does it."""
    m, g, d = fp[FP_M], fp[FP_G], fp[FP_D]
    m32, g32, d32 = np.float32(m), np.float32(g), np.float32(d)
    one = np.float32(1.0)
    op, c1, c2 = -1, one, one
    if ip[IP_RULE] != RULE_RATIO or ip[IP_T] != T_F32 or ip[IP_FLOOR_ON] != 0 or ip[IP_EXP] != EXP_BITS \
            or ip[IP_SCALE_FP32] != 0 or np.float64(m32) != m or np.float64(g32) != g or np.float64(d32) != d \
            or m32 == 0.0 or d32 == 0.0 or abs(d32) == np.inf:
        return op, c1, c2
    se = ip[IP_SEXPR]
    if se == SE_DIV:
        op, c1 = 1, m32
    elif se == SE_MUL_RCP:
        op, c1 = 2, one / m32
    elif se == SE_MUL_GRCP:
        op, c1 = 2, g32 * (one / m32)
    elif se == SE_DIV_DIV_D:
        op, c1, c2 = 0, m32, d32
    elif se == SE_DIV_D_DIV:
        op, c1, c2 = 0, d32, m32
    elif se == SE_DIV_D_MUL_RCP:
        op, c1, c2 = 1, d32, one / m32
    elif se == SE_RCP_D_RCP:
        op, c1, c2 = 2, one / d32, one / m32
    return op, c1, c2


@njit(cache=True, inline="always")
def _ratio_code(m, op, c1, c2, qs, inf_code):
    """Scale code of the finite amax bits m under a ratio rule in float32: the quantity _f32_op(amax, op, c1, c2)
    in float32, encoded from its bits; an infinite quantity takes inf_code when it is a code (>= 0)."""
    q32 = _f32_op(np.float32(_f32_of_bits(m)), op, c1, c2)
    c = encode_bits32(np.int64(f32_as_u32(q32)), qs)
    return inf_code if (q32 == np.inf and inf_code >= 0) else c


@njit(cache=True)  # out of line: the table walk calls it from three sites
def _code_of_amax(m, pow2, ptab, rule, embits, sop, c1, c2, qs, inf_code):
    """The table code of a tile with finite amax bits m (power-of-two rules: normal m)."""
    if pow2:
        return _table_code(m, True, ptab, rule, embits, 0, -1)[0]
    return _ratio_code(m, sop, c1, c2, qs, inf_code)


@njit(cache=True, error_model="numpy")
def _element_form(code, s, ip, fp):
    """(ok, k, op, a1, a2): how the elements of a tile with scale code/value (code, s) are encoded. The exact
    expression with denominator 2^k: encode_bits32_scaled with k; a float32 expression: _run_f32 with (op, a1,
    a2). ok is False where the generic loop must do it (NaN scale, exact division, unsafe operands)."""
    sa, r, exact_div, den, num_g = tile_factors(code, s, ip, fp)
    k = np.int64((f64_as_u64(den) >> 52) & 0x7FF) - 1023
    op, a1, a2, ok = _f32_form(ip[IP_EEXPR], sa, r, fp[FP_D])
    if ip[IP_EEXPR] == EE_EXACT:
        ok = not exact_div and -K_RANGE <= k <= K_RANGE
    return ok and s == s, k, op, a1, a2


@njit(cache=True, parallel=True, error_model="numpy")
def tables(ip, fp, efp, epol, sfp, spol, stab):
    """The tables of quantize_tiles_f32 and sr_tiles_f32 for one plan: the element form and the ladder of each
    scale code, and the amax bucket tables of the table codes (_bucket_tables). Made once per quantize call and
    passed to each chunk's kernel (per chunk they took ~7% of te-nvfp4 at fp32 16384^2). Arrays only, the
    scalars in typed arrays (lc: uint32 ladder constants, ic: int64 rule/flags, sc: float32 constants), so that
    the tuple keeps its types through Python; unpack() gives the named values."""
    ee = ip[IP_EEXPR]
    q = bits32_params(efp, epol)
    qs = bits32_params(sfp, spol)
    # the element form of each scale code, once (codes are at most 8 bits; fp32 scales compute it per tile)
    tok = np.zeros(256, np.bool_)
    tk = np.zeros(256, np.int64)
    top = np.zeros(256, np.int64)
    ta1 = np.zeros(256, np.float32)
    ta2 = np.zeros(256, np.float32)
    for c in range(min(256, stab.size)):
        tok[c], tk[c], top[c], ta1[c], ta2[c] = _element_form(c, stab[c], ip, fp)
    # the ladder of each scale code, where the element format has one
    m, P, o = ladder_base(q)
    lad = np.empty((256, LADDER + 1), np.uint32)
    lok = np.zeros(256, np.bool_)
    if m > 0:
        for c in prange(min(256, stab.size)):
            if tok[c]:
                lok[c] = _ladder(lad[c], m, P, o, ee == EE_EXACT, tk[c], top[c], ta1[c], ta2[c], q)
    shape = SHORT
    for c in range(min(256, stab.size)):
        if lok[c]:
            shape = max(shape, ladder_shape(lad[c]))
    lo32, lnx, lna, lnm = ladder_consts(o, q)
    arith = ee != EE_EXACT and e2m1_fast_q(q)
    for c in range(min(256, stab.size)):
        if lok[c] and top[c] != 2:
            arith = False
    if arith:
        shape = E2M1_ARITH
    # power-of-two rules on a normal amax: the scale code depends only on the binade that the rule picks
    # (FLOOR: the amax's; CEIL: the next one unless the amax is a power of two; EVEN: the binade of the amax
    # rounded to mbits + 1 significant bits, ties away), so it is scale_code of that binade's power of two
    rule = ip[IP_RULE]
    pow2 = rule <= RULE_EVEN and ip[IP_EXP] == EXP_BITS and ip[IP_SCALE_FP32] == 0
    ptab = np.zeros(257, np.int64)
    if pow2:
        for ex in range(1, 257):
            ptab[ex] = scale_code(2.0 ** (ex - 127), ip, fp, sfp, spol)[0]
    sop, sc1, sc2 = _scale_f32_form(ip, fp)
    tb0 = np.empty(_NB, np.int64)
    tb1 = np.empty(_NB, np.int64)
    tbt = np.empty(_NB, np.int64)
    tabled = pow2 or (sop >= 0 and sc1 > 0 and sc2 > 0)  # positive constants: a monotone quantity
    if tabled:
        m0 = 0x800000 if pow2 else np.int64(ip[IP_ZERO_SUB] == 1)
        _bucket_tables(m0, pow2, ptab, rule, ip[IP_EMBITS], sop, sc1, sc2, qs, ip[IP_SCALE_INF], lok, tb0, tb1,
                       tbt)
    return (q, qs, tok, tk, top, ta1, ta2, lad, lok, ptab, tb0, tb1, tbt, np.array([lo32, lnx, lna, lnm], np.uint32),
            np.array([rule, pow2, sop, tabled, shape, q[14]], np.int64), np.array([sc1, sc2], np.float32))


@njit(cache=True, inline="always")
def unpack(T):
    """(q, qs, tok, tk, top, ta1, ta2, lad, lok, lo32, lnx, lna, lnm, rule, pow2, ptab, sop, sc1, sc2, tabled, tb0,
    tb1, tbt, shape, zn) from the tuple of tables() (zn: the -0 code of shape E2M1_ARITH)."""
    q, qs, tok, tk, top, ta1, ta2, lad, lok, ptab, tb0, tb1, tbt, lc, ic, sc = T
    return (q, qs, tok, tk, top, ta1, ta2, lad, lok, lc[0], lc[1], lc[2], lc[3], ic[0], ic[1] != 0, ptab, ic[2],
            sc[0], sc[1], ic[3] != 0, tb0, tb1, tbt, ic[4], ic[5])


@njit(cache=True, parallel=True, error_model="numpy")
def quantize_tiles_f32(xin, bf16, codes, scode, sval, slow, ip, fp, sfp, spol, stab, T, rht, rht_bf16):
    """Quantize the (B, R, C) floats whose bit patterns are xin (uint32: float32; int16: bfloat16, whose amax and
    ladder loops read the 16-bit patterns; uint16: float16, or bfloat16 if bf16, widened a tile row at a time;
    R, C multiples of the tile) where no special case arises; set
    slow[b, ti, tj] = 1 for the other tiles (their outputs are then undefined: the caller reruns them through
    quantize_tiles). Outputs as quantize_tiles, except that sval is left unwritten for tiles that take a ladder
    (their scale has a code: its value is stab[code]). The tiles' amaxes are computed here, not kept from the
    tensor-amax pass: that pass also brings the row into cache before the ladders read it (with kept amaxes the
    ladder loop took the cache misses: te-nvfp4 fp32 4096^2 23 vs 10 ms on a Xeon, a small gain on Zen 4).
    T: tables() of the plan (ip, fp, the element and scale formats and policies, stab). rht, rht_bf16: quantize
    the RHT16 te model of xin instead (see source_rows)."""
    B, R, C = xin.shape
    tr = ip[IP_TR]
    tc = ip[IP_TC]
    ntr = R // tr
    ntc = C // tc
    ee = ip[IP_EEXPR]
    (q, qs, tok, tk, top, ta1, ta2, lad, lok, lo32, lnx, lna, lnm, rule, pow2, ptab, sop, sc1, sc2, tabled, tb0, tb1,
     tbt, shape, zn) = unpack(T)
    lad_n = native_ladders(lad, xin)
    # tasks (tile rows) in 64 chunks: the scratch arrays are made once per chunk. A task runs in strips of at
    # most 256 KiB of bits, so that the ladders find in L2 what the amax pass brought in (te-nvfp4-2d fp32
    # 16384^2: a 16-row task is 1 MiB)
    spt = max(1, 65536 // (tr * tc))
    ntask = B * ntr
    nch = min(ntask, 64)
    for ch in prange(nch):
        wide_vectors()
        msw = np.empty(ntc, np.uint32)
        mr = np.empty(ntc if tr > 1 else 0, np.uint32)
        tmp = np.empty(C // 4, np.uint32)
        tl = np.empty(ntc, np.int64)
        w = np.empty((tr if xin.itemsize == 2 or rht >= 0 else 0, C), np.uint32)
        o16 = np.empty(0, np.uint16)
        hi = (ch + 1) * ntask // nch
        for task in range(ch * ntask // nch, hi):
            b = task // ntr
            ti = task % ntr
            r0 = ti * tr
            rows = source_rows(xin, b, r0, tr, w, bf16, rht, rht_bf16, o16)
            crow = codes[b, r0:r0 + tr]
            for s0 in range(0, ntc, spt):
                s1 = min(ntc, s0 + spt)
                # the amaxes of the strip's tiles, then the codes of the tiles whose scale code is a table entry
                # with a ladder (branch-free); the tile loop does the others
                ms = msw[:s1 - s0]
                tls = tl[:s1 - s0]
                _tiles_amax(rows, s0 * tc, tc, ms, mr[:(s1 - s0) if tr > 1 else 0], tmp)
                float32_amaxes(ms, rows)
                left = s1 - s0
                if tabled:
                    left = _coded_tiles(ms, tls, scode[b, ti][s0:s1], tb0, tb1, tbt)
                else:
                    tls[:] = -1
                r32 = float32_rows(rows, w, s0 * tc, s1 * tc if left else s0 * tc)  # for the tile loop
                for tj in range(s1 - s0 if left else 0):
                    if tls[tj] != -1:
                        continue
                    ta = s0 + tj
                    c0 = ta * tc
                    m = ms[tj]
                    if m >= 0x7F800000:
                        slow[b, ti, ta] = 1
                        continue
                    code, ok = _table_code(m, pow2, ptab, rule, ip[IP_EMBITS], ip[IP_ZERO_SUB],
                                           _ratio_code(m, sop, sc1, sc2, qs, ip[IP_SCALE_INF]) if sop >= 0 else -1)
                    if (pow2 or sop >= 0) and ok:
                        v = np.nan
                        if code < 0:  # a raise sentinel of the scale format's policies
                            slow[b, ti, ta] = 1
                            continue
                    else:
                        a = _f32_of_bits(m)
                        if a == 0.0 and ip[IP_ZERO_SUB] == 1:
                            a = fp[FP_ZERO_AMAX]
                        code, v = scale_quantity(a, ip, fp, spol)
                    if code == SC_ENCODE:
                        v32 = np.float32(v)
                        if np.float64(v32) == v:
                            code = encode_bits32(np.int64(f32_as_u32(v32)), qs)
                        else:
                            code = encode_one(v, sfp, spol)
                        if code < 0:
                            slow[b, ti, ta] = 1
                            continue
                    s = v if code == -1 else stab[code]
                    if s != s:
                        slow[b, ti, ta] = 1
                        continue
                    scode[b, ti, ta] = code
                    sval[b, ti, ta] = s
                    if code >= 0 and lok[code]:
                        tls[tj] = code
                        continue
                    if code >= 0:
                        ok, k, op, a1, a2 = tok[code], tk[code], top[code], ta1[code], ta2[code]
                    else:
                        ok, k, op, a1, a2 = _element_form(code, s, ip, fp)
                    if not ok:
                        slow[b, ti, ta] = 1
                    elif ee == EE_EXACT:
                        _tile_scaled(r32, crow, c0, tc, k, q)
                    else:
                        _tile_f32(r32, crow, c0, tc, op, a1, a2, q)
                # prefetch what comes next: the task's next strip, or the next task's first one
                nt = task if s1 < ntc or task + 1 == hi else task + 1
                nr = (nt % ntr) * tr
                n1 = s1 if s1 < ntc else 0
                nxt, npf = xin[nt // ntr, nr:nr + tr], min(ntc, n1 + spt) - n1
                if shape == E2M1_ARITH:
                    _e2m1_rows(rows, crow, s0 * tc, tc, tls, ta1, ta2, zn, nxt, n1 * tc, npf)
                else:
                    _ladder_rows(rows, crow, s0 * tc, tc, tls, lad_n, lo32, lnx, lna, lnm, shape, nxt, n1 * tc, npf)


@njit(cache=True, inline="always")
def _sr_run(v, rv, out, exact, k, op, a1, a2, width, q, q32):
    """stochastic-ptx codes of a run's element values (x · 2^-k, or the float32 expression (op, a1, a2)) with
    the run's random integers rv (one loop per form, as _run_f32); q32 = int32_params(q)."""
    n = v.size
    if exact:
        for j in range(n):
            out[j] = sr_code_scaled(np.int64(v[j]), np.int64(rv[j]), width, k, q)
    elif op == 0:
        for j in range(n):
            out[j] = _ptx32_code(f32_as_u32(_f32_op(u32_as_f32(v[j]), 0, a1, a2)), rv[j], width, q32)
    elif op == 1:
        for j in range(n):
            out[j] = _ptx32_code(f32_as_u32(_f32_op(u32_as_f32(v[j]), 1, a1, a2)), rv[j], width, q32)
    else:
        for j in range(n):
            out[j] = _ptx32_code(f32_as_u32(_f32_op(u32_as_f32(v[j]), 2, a1, a2)), rv[j], width, q32)


@njit(cache=True, parallel=True, error_model="numpy")
def sr_tiles_f32(xin, bf16, rb, width, codes, scode, sval, slow, ip, fp, T):
    """Element codes by stochastic-ptx with per-element random integers rb (B, R, C; width <= 32 bits) for the
    tiles that quantize_tiles_f32 coded (slow == 0), from the scale codes it wrote (scode; sval for fp32
    scales). The element value is the one the deterministic loop rounds (x · 2^-k exactly, or the float32
    expression), so that only the rounding differs: sr_code_scaled, or _ptx32_code on the float32 value. A tile
    whose element form this loop cannot take gets slow = 1 (the caller reruns it through the generic loop). The
    element policies must give no raise sentinel, no E8M0 quirk and no negative='abs' (the caller checks)."""
    B, R, C = xin.shape
    tr = ip[IP_TR]
    tc = ip[IP_TC]
    ntr = R // tr
    ntc = C // tc
    exact = ip[IP_EEXPR] == EE_EXACT
    q, tok, tk, top, ta1, ta2 = T[0], T[2], T[3], T[4], T[5], T[6]
    q32 = int32_params(q)
    ntask = B * ntr
    nch = min(ntask, 64)
    for ch in prange(nch):
        wide_vectors()
        w = np.empty((tr if xin.itemsize == 2 else 0, C), np.uint32)
        for task in range(ch * ntask // nch, (ch + 1) * ntask // nch):
            b = task // ntr
            ti = task % ntr
            r0 = ti * tr
            rows = tile_row(xin, b, r0, tr, w, bf16)
            for tj in range(ntc):
                if slow[b, ti, tj]:
                    continue
                code = scode[b, ti, tj]
                if code >= 0:
                    ok, k, op, a1, a2 = tok[code], tk[code], top[code], ta1[code], ta2[code]
                else:
                    ok, k, op, a1, a2 = _element_form(code, sval[b, ti, tj], ip, fp)
                if not ok:
                    slow[b, ti, tj] = 1
                    continue
                c0 = tj * tc
                for i in range(tr):
                    _sr_run(rows[i, c0:c0 + tc], rb[b, r0 + i, c0:c0 + tc], codes[b, r0 + i, c0:c0 + tc], exact,
                            k, op, a1, a2, width, q, q32)


@njit(cache=True, parallel=True)
def max_magnitude_bits(xb):
    """The largest magnitude bit pattern (sign bit cleared) of flat float32 (uint32) or float16/bfloat16 (uint16)
    bit patterns: the amax of a tensor without NaN/Inf, in its own format."""
    n = xb.size
    nchunk = 64
    part = np.zeros(nchunk, np.int64)
    step = (n + nchunk - 1) // nchunk
    for c in prange(nchunk):
        wide_vectors()
        lo = min(c * step, n)
        part[c] = np.int64(_run_amax(xb[lo:min(lo + step, n)], min(lo + step, n) - lo))
    return part.max()
