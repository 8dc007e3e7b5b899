"""The decisions a cast makes, and which of them each case reaches, computed with exact rational arithmetic.

A decision is a property of an input relative to the element format's grid that an implementation must get
right, whatever the rounding mode: "this input is an exact tie", "this input is one input ulp below a
midpoint", "this input lies above max but below the overflow threshold". Each case of a cast vector carries a
bitmask of the decisions it reaches (the ``decisions`` array of every vector file; bit ``i`` is
``CAST_DECISIONS[i]``). The classification places the exact input value on the format's grid built from the
code bit fields (:meth:`fp4ref.formats.Format.exact_value`); it shares no code with the encoder that computes
the expected outputs, so "the family reaches its decision" is established independently of what the family
tests.
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np

from fp4ref import formats as _formats
from fp4ref.exact.cast import bits_encode_array

from .inputs import finfo, next_down, next_up, wide as _wide

__all__ = ["CAST_DECISIONS", "DECISION_DOC", "classify_cast", "mask_names", "bit", "grid", "BLOCK_DECISIONS",
           "BLOCK_DECISION_DOC", "block_bit", "block_mask_names", "amax_bits", "scale_bits", "quotient_bits"]

# name → what reaching it means (order = bit index; append only, never reorder: files store the bits)
DECISION_DOC = {
    "exact": "the input is a finite nonzero value of the format (the cast must return its code)",
    "tie": "the input is exactly halfway between two adjacent finite values (nearest-even/away/zero differ)",
    "near-tie-below": "the input is one input ulp (or less) below a midpoint: every nearest mode rounds down",
    "near-tie-above": "the input is one input ulp (or less) above a midpoint: every nearest mode rounds up",
    "near-exact": "the input is one input ulp (or less) off a format value: directed modes step to the neighbour",
    "inexact": "the input lies strictly between two adjacent format values",
    "subnormal-output": "0 < |x| < the format's min normal: the result is subnormal or zero",
    "underflow": "0 < |x| < the smallest positive value (E8M0: below 2^-127): zero or min is the decision",
    "above-max": "max < |x| (finite): saturate, or round to the overflow code, depending on mode and policy",
    "tie-overflow": "|x| is exactly halfway between max and the next value of the top binade (the IEEE "
                    "overflow threshold of nearest modes)",
    "far-overflow": "|x| is at or beyond the first value past max: every mode overflows unless saturating",
    "zero": "the input is +0",
    "neg-zero": "the input is -0 (neg_zero policy)",
    "nan": "the input is a NaN (nan policy; sign and payload vary)",
    "inf": "the input is +Inf or -Inf (overflow policy)",
    "negative": "a negative nonzero input into an unsigned format (negative policy)",
    "input-subnormal": "the input is a subnormal of its own dtype (implementations that flush inputs differ)",
    "double-rounding": "a float64 input whose nearest-even result differs from that of its float32 rounding "
                       "(casts that go through float32 first, as ml_dtypes: semantics D-18)",
}
CAST_DECISIONS = tuple(DECISION_DOC)
_BIT = {name: 1 << i for i, name in enumerate(CAST_DECISIONS)}


def bit(name: str) -> int:
    return _BIT[name]


def mask_names(mask: int) -> list[str]:
    return [n for n in CAST_DECISIONS if mask & _BIT[n]]


@lru_cache(maxsize=None)
def _grids(fmt_name: str):
    """Sorted magnitudes reachable for positive and for negative inputs, each with the first value past max
    (the top binade's next step; for integer formats one more step)."""
    fmt = _formats.get(fmt_name)
    pos, neg = set(), set()
    for c in range(fmt.n_codes):
        v = fmt.exact_value(c)
        if v is None:
            continue
        (neg if v < 0 else pos).add(abs(v))
        if v == 0 and fmt.signed:
            neg.add(Fraction(0))
    out = []
    for mags in (pos, neg):
        if not mags:
            out.append(None)
            continue
        g = sorted(mags)
        top = g[-1]
        if fmt.kind == "int":
            beyond = top + Fraction(1, 1 << fmt.frac_bits)
        else:
            e = top.numerator.bit_length() - top.denominator.bit_length()
            if Fraction(2) ** e > top:
                e -= 1
            beyond = top + Fraction(2) ** (e - fmt.mbits)
        out.append((tuple(g), beyond, next(v for v in g if v > 0)))
    return tuple(out)


def grid(fmt, negative: bool = False):
    """(sorted magnitudes a positive/negative input can round to, the first magnitude past max), or None for
    the negative side of an unsigned format. Magnitudes are Fractions; zero is included where the format has it."""
    g = _grids(_formats.get(fmt).name)[1 if negative else 0]
    return None if g is None else (g[0], g[1])


@lru_cache(maxsize=None)
def _float_grid(fmt_name: str, negative: bool):
    """The grid as float64 (magnitudes, with the first value past max appended) and its midpoints.

    Every magnitude, midpoint and threshold of the registered formats is a dyadic rational of a few bits inside
    float64's range, so float64 holds them exactly and float64 comparisons with the (float64-exact) inputs are
    exact comparisons; this is asserted against the Fractions here rather than assumed.
    """
    g = grid(fmt_name, negative)
    if g is None:
        return None
    pts = list(g[0]) + [g[1]]
    mids = [(p + q) / 2 for p, q in zip(pts, pts[1:])]
    fp, fm = np.array([float(p) for p in pts]), np.array([float(m) for m in mids])
    if any(Fraction(float(p)) != p for p in pts + mids):
        raise AssertionError(f"{fmt_name}: a grid value or midpoint is not exact in float64")
    return fp, fm


def classify_cast(x: np.ndarray, fmt) -> np.ndarray:
    """Decision bitmask (uint32) of every element of ``x`` (any float dtype) as an input to ``fmt``."""
    fmt = _formats.get(fmt)
    x = np.ascontiguousarray(x).reshape(-1)
    v = _wide(x)
    out = np.zeros(x.size, np.uint32)
    nan, inf = np.isnan(v), np.isinf(v)
    neg = np.signbit(v)
    out[nan] |= _BIT["nan"]
    out[inf] |= _BIT["inf"]
    out[(v == 0) & ~neg] |= _BIT["zero"]
    out[(v == 0) & neg] |= _BIT["neg-zero"]
    fin = np.isfinite(v) & (v != 0)
    out[fin & (np.abs(v) < float(finfo(x.dtype).smallest_normal))] |= _BIT["input-subnormal"]
    if not fmt.signed:
        out[neg & ~nan & (v != 0)] |= _BIT["negative"]
        fin &= ~neg
    if x.dtype == np.float64:
        out[_double_rounds(v, fmt)] |= _BIT["double-rounding"]
    up, dn = np.zeros_like(v), np.zeros_like(v)
    if fin.any():
        with np.errstate(over="ignore"):
            up[fin] = next_up(x[fin]).astype(np.float64)
            dn[fin] = next_down(x[fin]).astype(np.float64)
    for side in (False, True):
        sel = fin & (neg == side)
        if not sel.any():
            continue
        pts, mids = _float_grid(fmt.name, side)
        idx = np.flatnonzero(sel)
        a = np.abs(v[idx])
        # the input-dtype neighbours of |x| toward zero (a_in) and away from zero (a_out; Inf past the max)
        a_in = np.abs(dn[idx] if not side else up[idx])
        a_out = np.abs(up[idx] if not side else dn[idx])
        m = np.zeros(idx.size, np.uint32)
        top, beyond = pts[-2], pts[-1]
        smallest = pts[pts > 0][0]
        if fmt.kind == "float" and fmt.subnormals:
            m[a < 2.0 ** fmt.emin] |= _BIT["subnormal-output"]
        m[a < smallest] |= _BIT["underflow"]
        m[a > top] |= _BIT["above-max"]
        m[a == mids[-1]] |= _BIT["tie-overflow"]
        m[a >= beyond] |= _BIT["far-overflow"]
        k = np.searchsorted(pts, a, side="left")
        inside = a < beyond
        kk = np.minimum(k, pts.size - 1)
        exact = inside & (pts[kk] == a)
        m[exact & (a <= top)] |= _BIT["exact"]
        between = inside & ~exact
        hi = pts[kk]
        lo = np.where(k > 0, pts[np.maximum(k - 1, 0)], -1.0)  # -1: no lower value (E8M0 below 2^-127)
        has_lo = between & (lo >= 0)
        mid = np.where(has_lo, (np.maximum(lo, 0) + hi) / 2, -1.0)
        m[between & (a <= top)] |= _BIT["inexact"]
        m[has_lo & (a == mid) & (a <= top)] |= _BIT["tie"]
        off = between & (a != mid)
        m[off & has_lo & (a < mid) & (a_out >= mid)] |= _BIT["near-tie-below"]
        m[off & has_lo & (a > mid) & (a_in <= mid)] |= _BIT["near-tie-above"]
        m[off & (((a_in <= lo) & has_lo) | (a_out >= hi))] |= _BIT["near-exact"]
        out[idx] |= m
    return out


def _double_rounds(v: np.ndarray, fmt) -> np.ndarray:
    """Where nearest-even of float64 v differs from nearest-even of its float32 rounding (integer reference)."""
    with np.errstate(over="ignore", invalid="ignore"):
        v32 = v.astype(np.float32)
    fine = np.isfinite(v) & ~((v < 0) & (not fmt.signed)) & (v != 0)
    differs = np.zeros(v.size, bool)
    if fine.any():
        a, b = v[fine], v32[fine]
        differs[fine] = (b.astype(np.float64) != a) & (bits_encode_array(a, fmt) != bits_encode_array(b, fmt))
    return differs


# --- block quantization ----------------------------------------------------------------------------------------
# Decisions of one block (bit i = BLOCK_DECISIONS[i]); the elem-* bits look at the exact quotient of each element
# by its block's decoded scale (and the tensor scale), i.e. the value the element rounding starts from in exact
# arithmetic; recipes whose float32 expression order rounds that quotient first are exactly where they matter.
BLOCK_DECISION_DOC = {
    "amax-pow2": "the block amax is a power of two (FLOOR/CEIL/RCEIL change scale there)",
    "amax-below-pow2": "the block amax is the input dtype's largest value below a power of two (float32 log2 "
                       "rounds it up: D-2)",
    "amax-max-multiple": "the block amax is the element max times a power of two (the RCEIL threshold)",
    "amax-near-max-multiple": "the block amax is one input ulp from the element max times a power of two "
                              "(float32 amax/max rounds onto the threshold: D-21)",
    "amax-subnormal": "the block amax is a subnormal of the input dtype",
    "zero-block": "every element is ±0 (scale of a zero amax)",
    "neg-zero": "the block holds -0 (neg_zero policy inside blocks)",
    "nan-block": "the block holds a NaN (NaN scale, whole block NaN: D-17)",
    "inf-block": "the block holds ±Inf and no NaN",
    "spike": "exactly one nonzero element in the block",
    "scale-min": "the scale code is the scale format's smallest positive value (clamped below: E8M0 2^-127)",
    "scale-zero": "the scale code decodes to zero (UE4M3 0x00: D-11)",
    "scale-subnormal": "the scale code is a subnormal of the scale format",
    "scale-min-normal": "the scale code is the scale format's smallest normal (torchao's 2^-6 floor: D-11)",
    "scale-max": "the scale code is the scale format's largest finite value (saturated)",
    "scale-nan": "the scale code is NaN (E8M0 0xFF)",
    "elem-exact": "an element's exact quotient is a value of the element format",
    "elem-tie": "an element's exact quotient is a midpoint of the element format",
    "elem-inexact": "an element's exact quotient lies between two element values",
    "elem-saturate": "an element's exact quotient exceeds the element max (FLOOR's top binade: D-1)",
    "elem-underflow": "an element's exact quotient is below the element format's smallest positive value",
    "elem-subnormal": "an element's exact quotient is below the element format's min normal",
    "padded": "the block extends past the end of the row (pad option)",
    "tile-2d": "the block is a 2-D tile",
    "transformed": "the block is quantized after a Hadamard transform (decisions on the transform's output)",
}
BLOCK_DECISIONS = tuple(BLOCK_DECISION_DOC)
_BBIT = {name: 1 << i for i, name in enumerate(BLOCK_DECISIONS)}


def block_bit(name: str) -> int:
    return _BBIT[name]


def block_mask_names(mask: int) -> list[str]:
    return [n for n in BLOCK_DECISIONS if mask & _BBIT[n]]


def _is_pow2(a: np.ndarray) -> np.ndarray:
    m, _ = np.frexp(a)
    return (a > 0) & (m == 0.5)


def amax_bits(amax: np.ndarray, dt: np.dtype, elem) -> np.ndarray:
    """amax-* bits of block amaxes (float64 values that the input dtype ``dt`` holds)."""
    elem = _formats.get(elem)
    a = np.asarray(amax, np.float64)
    out = np.zeros(a.shape, np.uint32)
    fin = np.isfinite(a) & (a > 0)
    af = np.where(fin, a, 1.0)
    out[fin & _is_pow2(af)] |= _BBIT["amax-pow2"]
    up = next_up(af.astype(dt)).astype(np.float64)
    out[fin & _is_pow2(up) & ~_is_pow2(af)] |= _BBIT["amax-below-pow2"]
    top = float(elem.max)
    ratio = af / top  # exact when af is top times a power of two (top has few bits)
    mult = fin & _is_pow2(ratio) & (ratio * top == af)
    out[mult] |= _BBIT["amax-max-multiple"]
    dn = next_down(af.astype(dt)).astype(np.float64)
    near = np.zeros(a.shape, bool)
    for nb in (up, dn):
        r = nb / top
        near |= _is_pow2(r) & (r * top == nb)
    out[fin & near & ~mult] |= _BBIT["amax-near-max-multiple"]
    out[fin & (a < float(finfo(dt).smallest_normal))] |= _BBIT["amax-subnormal"]
    return out


def scale_bits(codes: np.ndarray, scale_fmt: str) -> np.ndarray:
    """scale-* bits of scale codes (uint8 codes of ``scale_fmt``; float32 scale values for 'fp32')."""
    codes = np.asarray(codes)
    out = np.zeros(codes.shape, np.uint32)
    if scale_fmt == "fp32":
        out[codes == 0] |= _BBIT["scale-zero"]
        out[np.isnan(codes)] |= _BBIT["scale-nan"]
        return out
    f = _formats.get(scale_fmt)
    vals = f.values[codes.astype(np.int64)]
    pos = f.values[(f.values > 0) & np.isfinite(f.values)]
    out[vals == pos.min()] |= _BBIT["scale-min"]
    out[vals == 0] |= _BBIT["scale-zero"]
    if f.subnormals and f.kind == "float":
        out[(vals > 0) & (vals < 2.0 ** f.emin)] |= _BBIT["scale-subnormal"]
        out[vals == 2.0 ** f.emin] |= _BBIT["scale-min-normal"]
    out[vals == pos.max()] |= _BBIT["scale-max"]
    out[np.isnan(vals)] |= _BBIT["scale-nan"]
    return out


def quotient_bits(q: np.ndarray, exact: np.ndarray, elem) -> np.ndarray:
    """elem-* bits of quotients: ``q`` their float64 roundings, ``exact`` where that rounding is exact (only
    those can be grid values or midpoints, which are float64 numbers)."""
    elem = _formats.get(elem)
    q = np.asarray(q, np.float64)
    out = np.zeros(q.shape, np.uint32)
    pts, mids = _float_grid(elem.name, False)
    a = np.abs(q)
    fin = np.isfinite(a) & (a > 0)
    top = pts[-2]
    smallest = pts[pts > 0][0]
    on_grid = fin & exact & np.isin(a, pts[:-1])
    out[on_grid] |= _BBIT["elem-exact"]
    tie = fin & exact & np.isin(a, mids[:-1])
    out[tie] |= _BBIT["elem-tie"]
    out[fin & ~on_grid & (a <= top)] |= _BBIT["elem-inexact"]
    out[fin & (a > top)] |= _BBIT["elem-saturate"]
    out[fin & (a < smallest)] |= _BBIT["elem-underflow"]
    if elem.kind == "float" and elem.subnormals:
        out[fin & (a < 2.0 ** elem.emin)] |= _BBIT["elem-subnormal"]
    return out
