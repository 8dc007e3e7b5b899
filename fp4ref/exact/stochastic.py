"""Exact reference of stochastic rounding (slow; Fractions), sharing no code with fp4ref.stochastic.

Each variant is written as its source states it, step by step, in rational arithmetic with each float rounding
of the source done explicitly: gfloat's round-half-even of delta * 2**n and its sum rounded to the input dtype,
TransformerEngine's fmaf rounded to float32 and its floor on the E2M1 grid, the PTX carry of random bits added to
the discarded fraction. The neighbours of x come from exact.cast's grid of every code's exact value.
"""
from __future__ import annotations

import math
from fractions import Fraction

from .. import formats as _formats
from .cast import exact_encode, exact_neighbours

__all__ = ["exact_sr_encode", "round_to_precision", "STOCHASTIC"]

# the precision suffixes of the gfloat fast variants: significand bits of the sum (none: float64)
_SUM_BITS = {"": 53, "-float32": 24, "-float16": 11, "-bfloat16": 8}
STOCHASTIC = ("stochastic-ptx", "stochastic-te", "stochastic-gfloat", "stochastic-gfloat-odd", "stochastic-exact") \
    + tuple(f"stochastic-gfloat-{v}{s}" for v in ("fast", "fastest") for s in _SUM_BITS)


def round_to_precision(v: Fraction, p: int) -> Fraction:
    """v >= 0 rounded to nearest (ties to even) with p significant bits (no exponent limits)."""
    if v == 0:
        return v
    k = v.numerator.bit_length() - v.denominator.bit_length()
    if Fraction(2) ** k > v:
        k -= 1
    ulp = Fraction(2) ** (k - p + 1)
    m = v / ulp
    fl = math.floor(m)
    rest = m - fl
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and fl % 2 == 1):
        fl += 1
    return fl * ulp


def _half_even(y: Fraction, odd_ties: bool = False) -> int:
    fl = math.floor(y)
    rest = y - fl
    if rest > Fraction(1, 2):
        return fl + 1
    if rest == Fraction(1, 2):
        return fl + 1 if (fl % 2 == 1) != odd_ties else fl
    return fl


def _te_magnitude(a: Fraction, r: int) -> Fraction:
    """stochastic_round_fp4_e2m1 on |x| = a (a float32 value), line by line."""
    u = Fraction(r & 0xFF, 256)
    step = Fraction(2) if a >= 4 else (Fraction(1) if a >= 2 else Fraction(1, 2))
    t = round_to_precision(a + u * step, 24)          # fmaf: one rounding to float32 (t >= 2**-9 or t == a)
    step_t = Fraction(2) if t >= 4 else (Fraction(1) if t >= 2 else Fraction(1, 2))
    return min(math.floor(t / step_t) * step_t, Fraction(6))


def _away(variant, frac: Fraction, r: int, width: int):
    """True/False, or None where stochastic-exact lacks random bits."""
    two_w = 2 ** width
    if variant == "stochastic-ptx":
        return frac + Fraction(r, two_w) >= 1
    if variant in ("stochastic-gfloat", "stochastic-gfloat-odd"):
        d = _half_even(frac * two_w, odd_ties=variant.endswith("odd"))
        return d + r >= two_w
    if variant.startswith("stochastic-gfloat-fast"):
        kind, _, suffix = variant[len("stochastic-gfloat-"):].partition("-")
        p = _SUM_BITS["-" + suffix if suffix else ""]
        c = Fraction(2 * r + 1, 2 * two_w) if kind == "fast" else Fraction(r, two_w)
        return round_to_precision(frac + c, p) >= 1
    if variant == "stochastic-exact":
        y = frac * two_w
        if y.denominator != 1:
            return None
        return r < y
    raise ValueError(f"unknown variant {variant!r}")


def exact_sr_encode(x, fmt, rounding, r: int, width: int, *, overflow="saturate", nan=None, neg_zero="keep",
                    negative=None, zero=None):
    """Code of one value (float or Fraction) under a stochastic variant (a name of :data:`STOCHASTIC`) with
    random integer r (0 <= r < 2**width); None where a policy raises or stochastic-exact lacks bits."""
    fmt = _formats.get(fmt)
    pol = dict(overflow=overflow, nan=nan, neg_zero=neg_zero, negative=negative, zero=zero)
    if not isinstance(x, Fraction):
        x = float(x)
        if x != x or x in (math.inf, -math.inf) or x == 0 or (x < 0 and not fmt.signed):
            return exact_encode(x, fmt, "nearest-even", **pol)
        x = Fraction(x)
    sign = 1 if x > 0 else -1
    lo, hi, _ = exact_neighbours(x, fmt)
    if lo is not None and lo[0] == x:
        return exact_encode(x, fmt, "nearest-even", **pol)
    if lo is None or hi is None or (lo[1] is None and hi[1] is None):
        return exact_encode(x, fmt, "nearest-even", **pol)   # beyond both overflow points: overflow
    toward0, away = (lo, hi) if sign > 0 else (hi, lo)
    if rounding == "stochastic-te":
        mag = _te_magnitude(abs(x), r)
        if mag not in (abs(toward0[0]), abs(away[0])) and mag != fmt.max:
            raise AssertionError(f"TE result {mag} is not a neighbour of {x}")
        chosen = (sign * mag, None)
        for v, c in (toward0, away):
            if v == sign * mag:
                chosen = (v, c)
    else:
        frac = abs(x - toward0[0]) / abs(away[0] - toward0[0])
        up = _away(rounding, frac, r, width)
        if up is None:
            return None
        chosen = away if up else toward0
    v, code = chosen
    if code is None:   # the grid point beyond max: the overflow policy
        return exact_encode(v, fmt, "nearest-even", **pol)
    if v == 0:
        return fmt.sign_bit if (sign < 0 and fmt.kind == "float") else 0
    return code
