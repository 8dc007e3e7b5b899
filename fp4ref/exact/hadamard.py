"""Exact reference of the block Walsh–Hadamard transform (slow; for tests and explanations).

Shares no code with fp4ref.hadamard. Entries come from the definition H[i, j] = (-1)^popcount(i & j) (no
butterfly), sums are exact Fractions, and the one rounding is a binary search over the output format's bit
patterns (positive IEEE patterns are ordered like their values) with exact comparisons. With n = 2 * 4^j the
value is w / sqrt(2) for a rational w, compared with a rational c through w^2 vs 2 c^2 (it is never a tie).
"""
from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np

__all__ = ["hadamard_entry", "transform", "round_bits", "decode_bits", "FORMATS"]

# dtype name -> (unsigned bit-pattern dtype, total bits, stored mantissa bits)
FORMATS = {"float32": (np.uint32, 32, 23), "bfloat16": (np.uint16, 16, 7), "float16": (np.uint16, 16, 10)}
_DTYPES = {"float32": np.dtype(np.float32), "bfloat16": np.dtype(ml_dtypes.bfloat16),
           "float16": np.dtype(np.float16)}


def hadamard_entry(i: int, j: int) -> int:
    """Sylvester Hadamard entry: +1 or -1 = (-1)^popcount(i & j)."""
    return -1 if bin(i & j).count("1") % 2 else 1


def decode_bits(bits: int, fmt: str) -> float:
    udt = FORMATS[fmt][0]
    return float(np.array([bits], dtype=udt).view(_DTYPES[fmt])[0])


def _max_finite_pattern(fmt: str) -> int:
    udt = FORMATS[fmt][0]
    inf = np.array([np.inf], dtype=_DTYPES[fmt]).view(udt)[0]
    return int(inf) - 1


def _at_least(w: Fraction, irrational: bool, c: Fraction) -> bool:
    """|w| (or |w| / sqrt 2) >= c for c >= 0."""
    if irrational:
        return w * w >= 2 * c * c
    return abs(w) >= c


def round_bits(w: Fraction, irrational: bool, fmt: str) -> int:
    """Bits of the round-to-nearest-even of v = w (or w / sqrt 2) in fmt; v == 0 gives +0."""
    nbits = FORMATS[fmt][1]
    sign = (1 << (nbits - 1)) if w < 0 else 0
    if w == 0:
        return 0
    top = _max_finite_pattern(fmt)
    val = lambda pat: Fraction(decode_bits(pat, fmt))  # noqa: E731
    hi_val, lo_val = val(top), val(top - 1)
    if _at_least(w, irrational, hi_val + (hi_val - lo_val) / 2):
        return sign | (top + 1)  # IEEE: at or beyond max + ulp/2 rounds to infinity
    lo, hi = 0, top  # invariant: val(lo) <= |v| (val(0) = 0), and the answer is <= hi
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _at_least(w, irrational, val(mid)):
            lo = mid
        else:
            hi = mid - 1
    P = lo
    if P == top:
        return sign | P
    a, b = val(P), val(P + 1)
    m = (a + b) / 2
    above = _at_least(w, irrational, m)
    if not irrational and abs(w) == m:
        return sign | (P if P % 2 == 0 else P + 1)
    return sign | (P + 1 if above else P)


def _block(xs: list[float], signs: list[int], inverse: bool, k: int, fmt: str) -> list[int]:
    n = 1 << k
    nbits = FORMATS[fmt][1]
    sbit = 1 << (nbits - 1)
    inf = _max_finite_pattern(fmt) + 1
    nan = inf | (1 << (FORMATS[fmt][2] - 1))  # canonical quiet NaN
    out = []
    for j in range(n):
        coef = [hadamard_entry(i, j) * (signs[j] if inverse else signs[i]) for i in range(n)]
        if any(x != x for x in xs):
            out.append(nan)
            continue
        infs = {(x > 0) == (c > 0) for x, c in zip(xs, coef) if x in (float("inf"), float("-inf"))}
        if len(infs) == 2:
            out.append(nan)
            continue
        if infs:
            out.append(inf | (0 if infs.pop() else sbit))
            continue
        if all(x == 0 for x in xs):
            neg = [(np.copysign(1.0, x) < 0) != (c < 0) for x, c in zip(xs, coef)]
            out.append(sbit if all(neg) else 0)
            continue
        s = sum((c * Fraction(x) for x, c in zip(xs, coef)), Fraction(0))
        out.append(round_bits(s / 2 ** (k // 2), k % 2 == 1, fmt))
    return out


def transform(x, size: int, axis: int = -1, signs=None, inverse: bool = False, out_dtype="float32") -> np.ndarray:
    """y = B x per block of `size` elements along `axis`, B = diag(s) H / sqrt(n) (forward: signs first, then
    H) or H diag(s) / sqrt(n) (inverse), each output rounded once to out_dtype from its exact value.

    signs: None, a vector of `size` entries +-1 shared by all blocks, or one row per block, shape
    (blocks, size), blocks numbered in C order of the blocked shape (x.shape with x.shape[axis] replaced by
    x.shape[axis] // size). Specials follow IEEE sums (NaN if any NaN or Inf terms of both signs; +-Inf; an
    exact zero is -0 only when every term is -0).
    """
    fmt = np.dtype(out_dtype).name
    if fmt not in FORMATS:
        raise ValueError(f"out_dtype {out_dtype!r}: allowed float32, bfloat16, float16")
    x = np.asarray(x)
    axis %= x.ndim
    k = size.bit_length() - 1
    blocked = x.shape[:axis] + (x.shape[axis] // size,) + x.shape[axis + 1:]
    res = np.empty(x.shape, dtype=FORMATS[fmt][0])
    for b, index in enumerate(np.ndindex(*blocked)):
        sel = index[:axis] + (slice(index[axis] * size, (index[axis] + 1) * size),) + index[axis + 1:]
        if signs is None:
            srow = [1] * size
        elif np.shape(signs) == (size,):
            srow = [int(v) for v in signs]
        else:
            srow = [int(v) for v in signs[b]]
        res[sel] = _block([float(v) for v in x[sel].astype(np.float64)], srow, inverse, k, fmt)
    return res.view(_DTYPES[fmt])
