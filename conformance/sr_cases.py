"""Stochastic-rounding families and vectors: one vector per (element format, SR variant, random-bit width).

A case is an input x and its random integer r (0 <= r < 2^w, the element's ``rbits``); the expected code is
:func:`fp4ref.encode` with ``rounding=<variant>, rbits=r, rbits_width=w`` (tests/test_conformance.py checks
the committed cases against the Fraction reference :func:`fp4ref.exact.stochastic.exact_sr_encode`, which
writes each variant from its source with every float rounding explicit). The families sweep r over every value 0..2^w-1 for inputs whose
discarded fraction sits at the decisions: a carry inside a binade, a carry into the next binade, next to and
beyond the format's max, in the subnormal range. Level 1 sweeps every r (w = 8) for the first input of the carry
and at-max families and takes, for the other inputs and for w = 16, every r around the carry threshold, both
ends and a stride of 2^w/64; level 2 sweeps every r of every input at w = 8 and of the first carry and at-max
inputs at w = 16.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

import fp4ref
from fp4ref import formats as _formats

from . import decisions as D
from .catalogue import Family, Vector, check_family, register
from .inputs import DTYPE_NAMES, dtype_of, exact_in

__all__ = ["SrTarget", "build_sr_vector", "SR_DECISION_DOC", "SR_DECISIONS"]

SR_DECISION_DOC = {
    "sr-toward": "the result is the neighbour toward zero",
    "sr-away": "the result is the neighbour away from zero",
    "sr-flip": "r is at the threshold: r - 1 or r + 1 gives the other neighbour for the same x",
    "sr-sub-bits": "x's discarded fraction has bits below 2^-w (variants differ in what they do with them)",
    "sr-binade-carry": "the away neighbour is in the next binade (the carry changes the exponent)",
    "sr-overflow": "the away neighbour is past the format's max (overflow policy on a carry)",
    "sr-max": "the away neighbour is the format's max",
    "sr-subnormal": "x is below the format's min normal",
    "sr-underflow": "the toward-zero neighbour is zero",
    "exact-input": "x is a value of the format: never rounded, whatever r",
    "special": "NaN, ±Inf or ±0 (the deterministic policies apply)",
}
SR_DECISIONS = tuple(SR_DECISION_DOC)
_SBIT = {n: 1 << i for i, n in enumerate(SR_DECISIONS)}


@dataclass(frozen=True)
class SrTarget:
    fmt: str
    variant: str
    width: int
    dtype: str = "f32"

    @property
    def name(self) -> str:
        return f"sr/{self.fmt}-{self.variant.removeprefix('stochastic-')}-w{self.width}-{self.dtype}"


def _rs(width: int, f: Fraction, level: int, full: bool) -> list[int]:
    """The r values swept for a discarded fraction f: all of them where ``full`` and w <= 8 (level 1) or
    w <= 16 (level 2); else both ends, every r within 3 of the carry threshold 2^w - floor(f * 2^w) and of
    floor(f * 2^w), and 64 evenly spaced."""
    n = 1 << width
    if full and width <= (8 if level == 1 else 16):
        return list(range(n))
    pts = {0, 1, 2, n - 3, n - 2, n - 1}
    # the carry threshold (away iff r >= 2^w - f 2^w) and the comparison threshold (away iff r < f 2^w)
    for t in (n - int(f * n), int(f * n)):
        pts |= {r for r in range(t - 3, t + 4) if 0 <= r < n}
    pts |= {i * (n // 64) for i in range(64)}
    return sorted(pts)


def _grid(fmt):
    g, beyond = D.grid(fmt)
    return list(g), beyond


def _inputs(fam: str, fmt, width: int, dt):
    """(x as Fractions, discarded fraction f as Fraction) of the family's inputs."""
    g, beyond = _grid(fmt)
    pos = [v for v in g if v > 0]
    one = Fraction(1)
    k = g.index(one) if one in g else len(g) // 2
    lo, hi = g[k], g[k + 1]
    q = hi - lo
    w2 = Fraction(1, 1 << width)
    if fam == "carry":
        fs = [w2, Fraction(1, 2), 1 - w2, Fraction(1, 2) + w2 / 2, Fraction(5, 16) + w2 / 8]
        xs = [lo + f * q for f in fs] + [-(lo + Fraction(1, 2) * q)]
    elif fam == "binade-carry":
        # the last interval of 1.0's binade: its away neighbour is 2.0
        two = next(v for v in g if v >= 2)
        below = g[g.index(two) - 1]
        qq = two - below
        xs = [below + Fraction(3, 4) * qq, -(below + Fraction(1, 4) * qq)]
    elif fam == "at-max":
        top = g[-1]
        below = g[-2]
        xs = [below + Fraction(1, 2) * (top - below), top + Fraction(1, 2) * (beyond - top),
              top + Fraction(1, 4) * (beyond - top)]
    elif fam == "subnormal":
        sm = pos[0]
        # the last: just below a quarter of the smallest value, where a float32 fma of r/2^w lands on a
        # rounding boundary (TransformerEngine's fallback differs from the carry rule there)
        below = float(np.nextafter(np.array(float(sm / 4), dt), np.array(0.0, dt))) if dt.itemsize in (4, 8) \
            else float(sm / 4)
        xs = [sm * Fraction(1, 2), sm * Fraction(3, 2), -sm * Fraction(1, 4), Fraction(below)]
    else:
        raise AssertionError(fam)
    out = []
    for x in xs:
        v = exact_in([float(x)], dt)
        if v.size and Fraction(float(v[0])) == x:
            out.append(x)
    return out


def _frac(x: Fraction, fmt) -> Fraction:
    """The discarded fraction of |x| between its two grid neighbours (0 on the grid)."""
    a = abs(x)
    g, beyond = _grid(fmt)
    pts = g + [beyond]
    for lo, hi in zip(pts, pts[1:]):
        if lo <= a < hi:
            return (a - lo) / (hi - lo)
    return Fraction(0)


_SR_FAMS = [
    ("carry", ("sr-toward", "sr-away", "sr-flip"),
     "inputs inside the binade of 1.0 at discarded fractions 2^-w, 1/2, 1 - 2^-w and two with bits below 2^-w; "
     "every r (sampled around the threshold for w > 8 at level 1)"),
    ("binade-carry", ("sr-binade-carry", "sr-flip"), "inputs in the last interval below 2.0: a carry into the next "
                                                     "binade"),
    ("at-max", ("sr-max", "sr-overflow"), "inputs just below max and between max and the first value past it"),
    ("subnormal", ("sr-subnormal", "sr-underflow"), "inputs below the smallest subnormal and between it and twice it"),
    ("specials", ("special", "exact-input"), "NaN, ±Inf, ±0 and format values with r = 0 and r = 2^w - 1"),
]
for _n, _d, _doc in _SR_FAMS:
    register(Family(kind="sr", name=_n, decisions=_d, doc=_doc, build=_inputs))


def _specials(fmt, width, dt):
    g, _ = _grid(fmt)
    vals = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, float(g[-1]), -float(g[1])], np.float64)
    xs = vals.astype(dt)
    rs = [0, (1 << width) - 1]
    return np.repeat(xs, len(rs)), np.tile(np.array(rs, np.uint64), xs.size)


def _classify(x: np.ndarray, r: np.ndarray, codes: np.ndarray, fmt, width) -> np.ndarray:
    """Decision bits of every case: the input's neighbours and flags once per distinct input (Fractions), the
    chosen neighbour per case (the grid values are float64 numbers, so comparing decoded values is exact)."""
    fmt = _formats.get(fmt)
    g, beyond = _grid(fmt)
    pts = g + [beyond]
    xv = x.astype(np.float64)
    vals = np.abs(fmt.values[codes.astype(np.int64)])
    out = np.zeros(x.size, np.uint32)
    uniq, inv = np.unique(x.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[x.dtype.itemsize]), return_inverse=True)
    for u in range(uniq.size):
        sel = inv == u
        v = float(xv[np.flatnonzero(sel)[0]])
        if not np.isfinite(v) or v == 0:
            out[sel] = _SBIT["special"]
            continue
        a = Fraction(abs(v))
        if a in g:
            out[sel] = _SBIT["exact-input"]
            continue
        lo = max(p for p in pts if p < a)
        hi = min(p for p in pts if p > a)
        m = 0
        if hi == beyond:
            m |= _SBIT["sr-overflow"]
        elif hi == g[-1]:
            m |= _SBIT["sr-max"]
        if lo > 0 and hi != beyond and (hi.numerator.bit_length() - hi.denominator.bit_length()) != \
                (lo.numerator.bit_length() - lo.denominator.bit_length()):
            m |= _SBIT["sr-binade-carry"]
        if fmt.kind == "float" and fmt.subnormals and a < Fraction(2) ** fmt.emin:
            m |= _SBIT["sr-subnormal"]
        if lo == 0:
            m |= _SBIT["sr-underflow"]
        if (((a - lo) / (hi - lo)) * (1 << width)).denominator != 1:
            m |= _SBIT["sr-sub-bits"]
        out[sel] = m
        out[sel & (vals == float(lo))] |= _SBIT["sr-toward"]
        out[sel & (vals == float(hi))] |= _SBIT["sr-away"]
    # flips: consecutive r of the same x with different codes
    flip = (xv[1:] == xv[:-1]) & (r[1:] == r[:-1] + 1) & (codes[1:] != codes[:-1])
    out[1:][flip] |= _SBIT["sr-flip"]
    out[:-1][flip] |= _SBIT["sr-flip"]
    return out


def build_sr_vector(t: SrTarget, level: int) -> Vector:
    fmt = _formats.get(t.fmt)
    dt = dtype_of(t.dtype)
    xs, rs, fam_idx, names, targets = [], [], [], [], {}
    from .catalogue import families
    for fam in families("sr"):
        if level not in fam.levels:
            continue
        if fam.name == "specials":
            x, r = _specials(fmt, t.width, dt)
        else:
            pts = _inputs(fam.name, fmt, t.width, dt)
            if t.variant == "stochastic-exact":
                # exact probabilities need the fraction to fit the width (stochastic-exact refuses others)
                pts = [p for p in pts if (_frac(p, fmt) * (1 << t.width)).denominator == 1]
            # every r for the first input of the carry and at-max families ("at carries and at max"; level 2: for
            # every input when w = 8), a sample for the others
            first = fam.name in ("carry", "at-max")
            sweeps = [_rs(t.width, _frac(p, fmt), level, full=(j == 0 and first) or (level == 2 and t.width <= 8))
                      for j, p in enumerate(pts)]
            x = np.concatenate([np.full(len(rr), float(p)) for p, rr in zip(pts, sweeps)]) if pts else np.zeros(0)
            r = np.concatenate([np.array(rr, np.uint64) for rr in sweeps]) if pts else np.zeros(0, np.uint64)
            x = x.astype(dt)
        if x.size == 0:
            continue
        targets[fam.name] = dict((n, d) for n, d, _ in _SR_FAMS)[fam.name]
        fam_idx.append(np.full(x.size, len(names), np.uint8))
        names.append(fam.name)
        xs.append(x)
        rs.append(r)
    x = np.concatenate(xs)
    r = np.concatenate(rs).astype(np.uint32)
    family = np.concatenate(fam_idx)
    with np.errstate(invalid="ignore"):
        got = fp4ref.encode(x, fmt, t.variant, rbits=r, rbits_width=t.width)
    masks = _classify(x, r, got, fmt, t.width)
    coverage = {}
    for k, fam in enumerate(names):
        sel = family == k
        reached = {d: int(((masks[sel] & _SBIT[d]) != 0).sum()) for d in SR_DECISIONS}
        reached = {d: c for d, c in reached.items() if c}
        tg = tuple(d for d in targets[fam] if not (d == "sr-subnormal" and not fmt.subnormals))
        check_family(t.name, fam, {"expected": got[sel]}, reached, tg)
        coverage[fam] = {"cases": int(sel.sum()), "targets": list(tg), "reached": reached}
    arrays = {"x": x, "rbits": r, "family": family, "decisions": masks, "expected": got.astype(np.uint8)}
    options = {"format": fmt.name, "format_bits": fmt.bits, "input_dtype": DTYPE_NAMES[t.dtype],
               "rounding": t.variant, "rbits_width": t.width,
               "resolved_policies": {"overflow": "saturate", "nan": fp4ref.rounding.nan_name(None, fmt),
                                     "neg_zero": "keep"}}
    legend = {"family": "index into families", "decisions": {"bits": list(SR_DECISIONS)},
              "rbits": "the element's random integer r, 0 <= r < 2^rbits_width"}
    return Vector(name=t.name, kind="sr", options=options, families=tuple(names), arrays=arrays,
                  coverage=coverage, legend=legend)
