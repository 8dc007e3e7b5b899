"""Two references for element encode, sharing no code with the fast path (fp4ref.cast / kernels.cast).

1. :func:`exact_encode`: rational arithmetic. Every finite code's value comes from the bit fields as a Fraction;
   the input's exact value is placed between its two neighbours and the mode picks one. Slow; the ground truth.
2. :func:`bits_encode`: integer arithmetic on the input's exact significand (float32 or float64 bit fields),
   the two candidate values mapped back to codes by table search. Numba, fast enough for all 2^32 float32 inputs.

Both implement the semantics documented in :func:`fp4ref.cast.encode` from the policy *names*.
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from bisect import bisect_right

import numpy as np
from numba import njit

from .. import formats as _formats
from .. import rounding as R

_OVF = -100   # sentinel: the next grid value beyond the format's max
_NIL = -101   # sentinel: zero in a format without zero (E8M0)
_ABS = -102   # negative policy "abs"


@lru_cache(maxsize=None)
def _policy_codes(fmt, nan, neg_zero, negative, zero, overflow):
    """Codes for the special inputs, resolved from the policy names (raise → None; "abs" → "abs")."""
    nan = R.nan_name(nan, fmt)
    sb = fmt.sign_bit
    nans = [c for c in range(fmt.n_codes) if fmt.exact_value(c) is None and not np.isinf(fmt.values[c])]
    top = max(nans) if nans else None
    if nan == "raise":
        nan_codes = (None, None)
    elif fmt.has_nan:
        nan_codes = {"nan": (fmt.nan_code, fmt.nan_code | sb), "ones": (top & ~sb, top),
                     "canonical": (top & ~sb, top & ~sb), "gfloat": (top, top)}[nan]
    else:
        hand = {"e2m1": 0x3, "e2m3": 0xC, "e3m2": 0xE}  # torchao's NaN bit trick, worked by hand
        nan_codes = {"max": (fmt.max_code, fmt.max_code), "signed-max": (fmt.max_code, fmt.max_code | sb),
                     "zero": (0, 0), "ml_dtypes": (sb, 0), "xla": (sb, sb),
                     "torchao": (hand.get(fmt.name), None if fmt.name not in hand else hand[fmt.name] | sb)}[nan]
    negz = sb if (R.neg_zero_name(neg_zero) == "keep" and fmt.kind == "float") else 0
    neg = None
    if not fmt.signed:
        neg = {"nan": fmt.nan_code, "abs": "abs", "raise": None}[R.negative_name(negative, fmt)]
    zc = 0
    if not fmt.has_zero:
        zc = {"nan": fmt.nan_code, "min": 0, "raise": None}[R.zero_name(zero, fmt)]
    return nan_codes, negz, neg, zc, R.overflow_name(overflow, fmt)


@lru_cache(maxsize=None)
def _grid(fmt):
    """Sorted (value, code) of every finite value, with the overflow sentinel(s) beyond ±max."""
    pts = []
    for c in range(fmt.n_codes):
        v = fmt.exact_value(c)
        if v is not None and not (v == 0 and c != 0):  # one zero on the grid; -0 is the sign applied after
            pts.append((v, c))
    vals = [v for v, _ in pts]
    top = max(vals)
    if fmt.kind == "int":
        step = Fraction(1, 1 << fmt.frac_bits)
        pts.append((top + step, _OVF))
        pts.append((min(vals) - step, _OVF))
    else:
        # the next value on the top binade's grid (the overflow threshold of IEEE 754 §7.4)
        e_field = fmt.max_code >> fmt.mbits
        exp = (1 - fmt.bias) if (e_field == 0 and fmt.subnormals) else e_field - fmt.bias
        ulp = Fraction(2) ** (exp - fmt.mbits)
        pts.append((top + ulp, _OVF))
        if fmt.signed:
            pts.append((-(top + ulp), _OVF))
    if not fmt.has_zero:
        pts.append((Fraction(0), _NIL))
    return tuple(sorted(pts, key=lambda p: p[0]))


def _parity(fmt, code):
    if code == _OVF:
        return (fmt.max_code + 1) & 1
    if code == _NIL:
        return 0
    return code & 1


def exact_encode(x, fmt, rounding="nearest-even", overflow="saturate", nan=None, neg_zero="keep", negative=None,
                 zero=None, e8m0_subnormal="round"):
    """Code of one value (a float, or a Fraction for values no float holds); None where a policy raises."""
    fmt = _formats.get(fmt)
    mode = R.mode_name(rounding)
    (nan_p, nan_n), negz, neg_code, zero_code, ovf = _policy_codes(fmt, nan, neg_zero, negative, zero, overflow)
    if neg_code == "abs" and not isinstance(x, Fraction) and x == x and x < 0:
        x = -float(x)
    if R.e8m0_subnormal_name(e8m0_subnormal, fmt) == "up" and not isinstance(x, Fraction) and \
            2.0 ** -127 < float(x) < 2.0 ** -126:
        return 1
    if not isinstance(x, Fraction):
        x = float(x)
        if x != x:
            return nan_n if np.copysign(1.0, x) < 0 else nan_p
        if x == 0:
            if not fmt.has_zero:
                return zero_code
            return negz if np.copysign(1.0, x) < 0 else 0
        if x < 0 and not fmt.signed:
            return neg_code
        if x in (float("inf"), float("-inf")):
            sign = 1 if x > 0 else -1
            return _overflow(fmt, sign, ovf, "nearest-even", inf_input=True)
        x = Fraction(x)
    elif x == 0:
        return 0 if fmt.has_zero else zero_code
    elif x < 0 and not fmt.signed:
        return neg_code
    sign = 1 if x > 0 else -1
    grid = _grid(fmt)
    vals = [v for v, _ in grid]
    sentinels = [v for v, c in grid if c == _OVF]
    if x >= max(sentinels) or (x < 0 and x <= min(sentinels)):
        return _overflow(fmt, sign, ovf, mode)
    lo_i = bisect_right(vals, x) - 1
    if vals[lo_i] == x:
        chosen = grid[lo_i][1]
    else:
        (lo, lo_c), (hi, hi_c) = grid[lo_i], grid[lo_i + 1]
        toward0 = (hi, hi_c) if sign < 0 else (lo, lo_c)
        away = (lo, lo_c) if sign < 0 else (hi, hi_c)
        if mode.startswith("nearest"):
            dlo, dhi = x - lo, hi - x
            if dlo != dhi:
                chosen = lo_c if dlo < dhi else hi_c
            elif mode == "nearest-even":
                chosen = lo_c if _parity(fmt, lo_c) == 0 else hi_c
            elif mode == "nearest-away":
                chosen = away[1]
            else:
                chosen = toward0[1]
        elif mode == "toward-zero":
            chosen = toward0[1]
        elif mode == "toward-positive":
            chosen = hi_c
        elif mode == "toward-negative":
            chosen = lo_c
        else:  # odd
            chosen = lo_c if _parity(fmt, lo_c) == 1 else hi_c
        if chosen == 0 and fmt.kind == "float" and sign < 0 and fmt.signed:
            chosen = fmt.sign_bit  # a negative value rounded to zero is -0
    if chosen == _OVF:
        return _overflow(fmt, sign, ovf, mode)
    if chosen == _NIL:
        return 0  # below E8M0's min: the min (there is no zero)
    return chosen


def exact_neighbours(x: Fraction, fmt):
    """((lo, code), (hi, code), tie) around finite x; code None marks the overflow grid point beyond max."""
    fmt = _formats.get(fmt)
    grid = [(v, None if c == _OVF else (0 if c == _NIL else c)) for v, c in _grid(fmt)]
    lower = [p for p in grid if p[0] <= x]
    upper = [p for p in grid if p[0] >= x]
    lo = lower[-1] if lower else None
    hi = upper[0] if upper else None
    tie = lo is not None and hi is not None and lo != hi and x - lo[0] == hi[0] - x
    return lo, hi, tie


def _overflow(fmt, sign, ovf, mode, inf_input=False):
    toward0 = mode == "toward-zero" or (mode == "toward-positive" and sign < 0) or \
        (mode == "toward-negative" and sign > 0)
    if fmt.kind == "int":
        if sign > 0:
            return fmt.max_code
        n = (1 << (fmt.bits - 1)) if fmt.int_min_used else fmt.max_code
        return (1 << fmt.bits) - n
    if ovf == "saturate" or (toward0 and not inf_input):
        mag = fmt.max_code
    elif ovf == "inf":
        mag = fmt.inf_code
    else:
        mag = fmt.nan_code
    return mag | (fmt.sign_bit if sign < 0 else 0)


# --- integer reference on the exact significand (Numba) -------------------------------------------------------

@lru_cache(maxsize=None)
def bits_tables(fmt):
    """Code of every grid point n * 2^qe the reference can produce, as (qe0, pos[qe-qe0, n], neg[qe-qe0, n]).

    Built by matching exact values against the Fraction decode of every code: _OVF beyond max, _NIL for a zero
    the format lacks.
    """
    pos, neg = {}, {}
    for c in range(fmt.n_codes):
        v = fmt.exact_value(c)
        if v is None:
            continue
        if v > 0 or (v == 0 and not (fmt.kind == "float" and c & fmt.sign_bit)):
            pos[v] = c
        if v < 0 or (v == 0 and fmt.signed and (fmt.kind == "int" or c & fmt.sign_bit)):
            neg[-v] = c
    if fmt.kind == "int":
        qes = [-fmt.frac_bits]
        nmax = (1 << (fmt.bits - 1)) + 1
    else:
        top = max(pos)
        qe_top = max(e for e in range(-300, 300) if Fraction(2) ** e <= top) - fmt.mbits
        qes = list(range(fmt.emin - fmt.mbits, qe_top + 1))
        nmax = 1 << (fmt.mbits + 1)
    tabs = []
    for d in (pos, neg):
        t = np.full((len(qes), nmax + 1), _OVF, np.int64)
        for i, qe in enumerate(qes):
            for n in range(nmax + 1):
                v = n * Fraction(2) ** qe
                if v in d:
                    t[i, n] = d[v]
                elif v == 0:
                    t[i, n] = _NIL
        t.setflags(write=False)
        tabs.append(t)
    return qes[0], tabs[0], tabs[1]


def bits_params(fmt, rounding="nearest-even", overflow="saturate", nan=None, neg_zero="keep", negative=None,
                zero=None, e8m0_subnormal="round"):
    """The integer reference's own parameter vector and tables (independent of fp4ref.cast.cast_params)."""
    fmt = _formats.get(fmt)
    (nan_p, nan_n), negz, neg_code, zero_code, ovf = _policy_codes(fmt, nan, neg_zero, negative, zero, overflow)
    none = -1
    qe0, tpos, tneg = bits_tables(fmt)
    q = np.array([
        R.mode_id(rounding), 1 if fmt.kind == "int" else 0, fmt.mbits, fmt.emin, fmt.frac_bits,
        int(fmt.signed), int(fmt.has_zero), fmt.max_code, fmt.sign_bit,
        none if nan_p is None else nan_p, none if nan_n is None else nan_n, negz,
        none if neg_code is None else (_ABS if neg_code == "abs" else neg_code),
        none if zero_code is None else zero_code,
        {"saturate": 0, "nan": 1, "inf": 2}[ovf], -1 if fmt.nan_code is None else fmt.nan_code,
        -1 if fmt.inf_code is None else fmt.inf_code, (fmt.max_code + 1) & 1,
        (1 << fmt.bits) - ((1 << (fmt.bits - 1)) if fmt.int_min_used else fmt.max_code) if fmt.kind == "int" else 0,
        qe0, int(R.e8m0_subnormal_name(e8m0_subnormal, fmt) == "up"),
    ], np.int64)
    return q, tpos, tneg


@njit(cache=True)
def _bitlen(v):
    n = 0
    while v:
        v >>= 1
        n += 1
    return n


@njit(cache=True)
def _lookup(t, qi, n, ovf_parity):
    """(code, parity) of grid point n * 2^(qe0 + qi)."""
    if qi >= t.shape[0] or n >= t.shape[1]:
        return _OVF, ovf_parity
    c = t[qi, n]
    if c == _OVF:
        return c, ovf_parity
    if c == _NIL:
        return c, 0
    return c, c & 1


@njit(cache=True)
def bits_encode(neg, is_nan, is_inf, sig, ex, q, tpos, tneg, lg=None):
    """Code of (-1)^neg * sig * 2^ex (sig > 0 integer, or a special), -1 where a policy raises.

    lg, if given, is floor(log2(sig * 2^ex)) (known from a normal input's exponent field).
    """
    mode, is_int, mbits, emin, frac_bits = q[0], q[1], q[2], q[3], q[4]
    signed, has_zero, max_code, sign_bit = q[5], q[6], q[7], q[8]
    ovf = q[14]
    if is_nan:
        return q[10] if neg else q[9]
    if sig == 0:
        if has_zero == 0:
            return q[13]
        return q[11] if neg else 0
    if neg and signed == 0:
        if q[12] != _ABS:
            return q[12]
        neg = False
    t = tneg if neg else tpos
    if not is_inf:
        if lg is None:
            lg = ex + _bitlen(sig) - 1
        if q[20] == 1 and lg == -127 and (sig & (sig - 1)) != 0:
            return 1
        if is_int == 1:
            qe = -frac_bits
        else:
            qe = max(lg, emin) - mbits
        shift = qe - ex
        if lg - qe > 60:
            lo_c, lo_p, hi_c, hi_p = _OVF, q[17], _OVF, q[17]
            cmp, inexact = 1, True
        else:
            if shift <= 0:
                n, cmp, inexact = sig << (-shift), -1, False
            elif shift >= 63:
                n, cmp, inexact = 0, -1, True
            else:
                n = sig >> shift
                rem = sig - (n << shift)
                half = np.int64(1) << (shift - 1)
                cmp = -1 if rem < half else (0 if rem == half else 1)
                inexact = rem != 0
            lo_c, lo_p = _lookup(t, qe - q[19], n, q[17])
            hi_c, hi_p = _lookup(t, qe - q[19], n + 1, q[17])
        if not inexact:
            c = lo_c
        elif mode <= 2 and cmp != 0:
            c = lo_c if cmp < 0 else hi_c
        elif mode == 0:
            c = lo_c if lo_p == 0 else hi_c
        elif mode == 1:
            c = hi_c
        elif mode == 2 or mode == 3:
            c = lo_c
        elif mode == 4:
            c = lo_c if neg else hi_c
        elif mode == 5:
            c = hi_c if neg else lo_c
        else:
            c = lo_c if lo_p == 1 else hi_c
        if c == _NIL:
            return 0
        if c != _OVF:
            return c
        toward0 = mode == 3 or (mode == 4 and neg) or (mode == 5 and not neg)
    else:
        toward0 = False
    # overflow (or an infinite input)
    if is_int == 1:
        return q[18] if neg else max_code
    if ovf == 0 or toward0:
        m = max_code
    elif ovf == 2:
        m = q[16]
    else:
        m = q[15]
    return (m | sign_bit) if neg else m


@njit(cache=True)
def split_f32(b):
    """(neg, is_nan, is_inf, sig, ex, lg) of float32 bits b: value = sig * 2^ex, lg = floor(log2 value)."""
    neg = (b >> 31) & 1 == 1
    e = np.int64((b >> 23) & 0xFF)
    m = np.int64(b & 0x7FFFFF)
    if e == 0xFF:
        return neg, m != 0, m == 0, np.int64(1), np.int64(0), np.int64(0)
    if e == 0:
        return neg, False, False, m, np.int64(-149), np.int64(-149) + _bitlen(m) - 1
    return neg, False, False, m | (1 << 23), e - 150, e - 127


@njit(cache=True)
def split_f64(b):
    neg = (b >> 63) & 1 == 1
    e = np.int64((b >> 52) & 0x7FF)
    m = np.int64(b & 0xFFFFFFFFFFFFF)
    if e == 0x7FF:
        return neg, m != 0, m == 0, np.int64(1), np.int64(0), np.int64(0)
    if e == 0:
        return neg, False, False, m, np.int64(-1074), np.int64(-1074) + _bitlen(m) - 1
    return neg, False, False, m | (np.int64(1) << 52), e - 1075, e - 1023


@njit(cache=True)
def bits_encode_f64_array(bits, out, q, tpos, tneg):
    for i in range(bits.size):
        neg, is_nan, is_inf, sig, ex, lg = split_f64(bits[i])
        out[i] = bits_encode(neg, is_nan, is_inf, sig, ex, q, tpos, tneg, lg)


def bits_encode_array(x, fmt, **policies) -> np.ndarray:
    """Integer-reference codes of an array (any float dtype; widened exactly to float64 first)."""
    x = np.asarray(x)
    q, tpos, tneg = bits_params(fmt, **policies)
    with np.errstate(invalid="ignore"):  # NaN payloads of bfloat16/float16 widen with a warning, exactly
        bits = np.ascontiguousarray(x.astype(np.float64)).reshape(-1).view(np.uint64)
    out = np.empty(bits.size, np.int64)
    bits_encode_f64_array(bits, out, q, tpos, tneg)
    return out.reshape(x.shape)
