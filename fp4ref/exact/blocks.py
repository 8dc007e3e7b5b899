"""Exact reference of one block's quantization, in rational arithmetic (``fractions``).

Independent of the fast path (fp4ref.quantize / fp4ref.kernels.quantize): it reads a recipe's option *names*
and computes every step from its definition. Finite values are Fractions; ±0, ±Inf and NaN are Python floats so
that signs survive. A float expression step ``fl_T(a op b)`` is the exact result rounded once, to nearest even,
into T (float32, bfloat16, float16 or float64; overflow to ±Inf, gradual underflow). Element and scale codes
come from the format's exact value grid (:func:`encode`, deferring specials and overflow to
:func:`fp4ref.exact.cast.exact_encode`). Slow; used by tests and ``fp4ref explain``.
"""
from __future__ import annotations

import bisect
import math
from fractions import Fraction
from functools import lru_cache

from .. import formats as _formats
from .cast import exact_encode

__all__ = ["fl", "tensor_scale", "quantize_block"]

_TYPES = {"float32": (24, -126, 127), "bfloat16": (8, -126, 127), "float16": (11, -14, 15),
          "float64": (53, -1022, 1023)}
FLT_MAX = Fraction(2) ** 128 - Fraction(2) ** 104
NAN = float("nan")


def _is_num(v) -> bool:
    """A finite nonzero value (a Fraction); zeros, infinities and NaN are floats."""
    return isinstance(v, Fraction)


def _n(v):
    """Normalize: a Fraction zero becomes +0.0 (the float that carries a zero's sign)."""
    return 0.0 if isinstance(v, Fraction) and v == 0 else v


def _sign(v) -> int:
    if _is_num(v):
        return -1 if v < 0 else 1
    return -1 if math.copysign(1.0, v) < 0 else 1


def _zero(sign) -> float:
    return -0.0 if sign < 0 else 0.0


def _exp2_floor(a: Fraction) -> int:
    """floor(log2(a)) of a positive Fraction, exactly."""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    return e


def _exp2_ceil(a: Fraction) -> int:
    e = _exp2_floor(a)
    return e if Fraction(2) ** e == a else e + 1


def fl(v, t: str | None, flush: bool = False):
    """v rounded to nearest even into float type t (None: exact); ±Inf on overflow."""
    v = _n(v)
    if t is None or not _is_num(v):
        return v
    p, emin, emax = _TYPES[t]
    a = abs(v)
    e = max(_exp2_floor(a), emin)
    q = a / Fraction(2) ** (e - p + 1)
    n = math.floor(q)
    f = q - n
    if f > Fraction(1, 2) or (f == Fraction(1, 2) and n % 2 == 1):
        n += 1
    r = n * Fraction(2) ** (e - p + 1)
    if r == 0:
        return _zero(_sign(v))
    if r >= Fraction(2) ** (emax + 1):
        return math.copysign(math.inf, _sign(v))
    if flush and r < Fraction(2) ** emin:
        return _zero(_sign(v))
    return r if v > 0 else -r


def _daz(v, t, flush):
    if flush and _is_num(v) and abs(v) < Fraction(2) ** _TYPES[t][1]:
        return _zero(_sign(v))
    return v


def mul(a, b):
    a, b = _n(a), _n(b)
    if not _is_num(a) or not _is_num(b):
        fa, fb = (float(a) if _is_num(a) else a), (float(b) if _is_num(b) else b)
        if math.isnan(fa) or math.isnan(fb):
            return NAN
        if math.isinf(fa) or math.isinf(fb):
            if fa == 0 or fb == 0:
                return NAN
            return math.copysign(math.inf, _sign(a) * _sign(b))
        return _zero(_sign(a) * _sign(b))
    return a * b


def div(a, b):
    a, b = _n(a), _n(b)
    if not _is_num(a) or not _is_num(b):
        fa, fb = (float(a) if _is_num(a) else a), (float(b) if _is_num(b) else b)
        if math.isnan(fa) or math.isnan(fb):
            return NAN
        if math.isinf(fa):
            return NAN if math.isinf(fb) else math.copysign(math.inf, _sign(a) * _sign(b))
        if math.isinf(fb):
            return _zero(_sign(a) * _sign(b))
        if fb == 0:
            return NAN if fa == 0 else math.copysign(math.inf, _sign(a) * _sign(b))
        return _zero(_sign(a) * _sign(b))
    return a / b


def _val(v):
    """A float input as the reference's number (Fraction, or a float for ±0/±Inf/NaN)."""
    v = float(v)
    if v == 0 or math.isinf(v) or math.isnan(v):
        return v
    return Fraction(v)


def _max(fmt):
    return Fraction(fmt.max)


def tensor_scale(kind, amax, *, elem, scale_fmt, global_scale=None):
    """(G, D) of a tensor-scale convention, from its definition in float32 (fp4ref.scaling)."""
    if kind is None:
        return Fraction(1), Fraction(1)
    if global_scale is not None:
        gs = _val(global_scale)
        return (gs, fl(div(Fraction(1), gs), "float32")) if kind.startswith("nvfp4-encode") else (Fraction(1), gs)
    a = _val(amax)
    M = fl(_max(_formats.get(scale_fmt)) * _max(_formats.get(elem)), "float32")
    if kind in ("nvfp4-encode", "nvfp4-encode-ref"):
        G = fl(div(M, a), "float32")
        if kind == "nvfp4-encode":
            if not _is_num(G) and math.isnan(G):
                G = FLT_MAX
            elif not _is_num(G) and G > 0:
                G = FLT_MAX
            if (not _is_num(a) and a == 0) or (not _is_num(G) and G == 0):
                G = Fraction(1)
        else:
            if not _is_num(G) and not math.isnan(G) and G > 0:
                G = FLT_MAX
            if not _is_num(G) and G == 0:
                G = Fraction(1)
        return G, fl(div(Fraction(1), G), "float32")
    if kind == "nvfp4-decode":
        return Fraction(1), fl(div(a, M), "float32")
    if kind == "amax":
        return Fraction(1), a
    raise ValueError(kind)


def _pow2_exponent(a, rule, recipe, elem, tin):
    """Exponent e of a power-of-two rule for a finite positive amax (before subtracting emax)."""
    if rule == "even":
        m = elem.mbits
        e0 = _exp2_floor(a)
        ulp = Fraction(2) ** (e0 - m)
        r = (a / ulp + Fraction(1, 2)).__floor__() * ulp  # ties away: round half up on the magnitude
        if recipe.arith == "float32" and r > FLT_MAX:
            return 128
        a = r
    if recipe.exponent != "bits":
        lg = fl(Fraction(math.log2(float(a))), tin)
        return math.ceil(lg) if rule == "ceil" else math.floor(lg)
    return _exp2_ceil(a) if rule == "ceil" else _exp2_floor(a)


@lru_cache(maxsize=None)
def _grid(name):
    """Sorted finite values of a format with their codes (exact, from the bit fields)."""
    f = _formats.get(name)
    pts = sorted((v, c) for c in range(f.n_codes) if (v := f.exact_value(c)) is not None)
    return [v for v, _ in pts], [c for _, c in pts]


def encode(v, fmt, rounding="nearest-even", overflow="saturate", nan=None, neg_zero="keep", zero=None):
    """Code of v (a Fraction, or ±0/±Inf/NaN as floats) rounded once into fmt.

    Finite nonzero values are placed between their two neighbours on the exact grid here; zeros, infinities,
    NaN and values beyond ±max take the policies of :func:`fp4ref.exact.cast.exact_encode`, which this defers
    to for them (the two references are checked against each other in tests).
    """
    f = _formats.get(fmt)
    if not _is_num(v):
        return exact_encode(v, f, rounding, overflow, nan, neg_zero, None, zero)
    vals, codes = _grid(f.name)
    if v > vals[-1] or v < vals[0] or (v < 0 and not f.signed):
        return exact_encode(v, f, rounding, overflow, nan, neg_zero, None, zero)
    i = bisect.bisect_left(vals, v)
    if vals[i] == v:
        return codes[i]
    lo, hi = i - 1, i
    dlo, dhi = v - vals[lo], vals[hi] - v
    toward0, away = (hi, lo) if v < 0 else (lo, hi)
    mode = rounding
    if mode == "toward-zero":
        k = toward0
    elif mode == "toward-positive":
        k = hi
    elif mode == "toward-negative":
        k = lo
    elif dlo != dhi:
        k = lo if dlo < dhi else hi
    elif mode == "nearest-even":
        k = lo if codes[lo] % 2 == 0 else hi
    elif mode == "nearest-away":
        k = away
    elif mode == "nearest-zero":
        k = toward0
    else:
        return exact_encode(v, f, rounding, overflow, nan, neg_zero, None, zero)
    if vals[k] == 0:
        # ±0 share the value 0 in the grid: a value rounded to zero keeps its sign (float formats)
        return f.sign_bit if (v < 0 and f.kind == "float" and f.signed) else 0
    return codes[k]


def _special_code(name, sf):
    return {"nan": sf.nan_code, "max": sf.max_code, "min": 0}[name]


def quantize_block(values, recipe, *, dtype="float32", G=Fraction(1), D=Fraction(1), pad_count=0):
    """(scale code or float32 scale value, element codes) of one block of input values.

    values: the block's inputs (floats of ``dtype``); pad_count: positions completed with ``recipe.pad``.
    G, D: the tensor encode/decode factors (from :func:`tensor_scale`).
    """
    r = recipe
    ef = _formats.get(r.elem)
    sf = None if r.scale_fmt == "fp32" else _formats.get(r.scale_fmt)
    rule = r.scale_rule
    t = dtype if r.arith == "input" else "float32"
    tin = "float32" if r.exponent == "log2-f32" else dtype
    flush = r.subnormals == "flush"
    xs = [_val(v) for v in values]

    def F(v):
        return fl(v, t, flush)

    # --- block statistic ------------------------------------------------------------------------------------
    if rule == "quest":
        a = _quest(xs)
    else:
        mags = [abs(v) if _is_num(v) else abs(v) for v in xs]
        if pad_count and r.pad is not None and r.pad_amax == "include":
            mags.append(abs(_val(r.pad)))
        if any(isinstance(m, float) and math.isnan(m) for m in mags):
            mags = [m for m in mags if not (isinstance(m, float) and math.isnan(m))] if r.amax_nan == "ignore" \
                else [NAN]
        a = max(mags, key=lambda m: float(m)) if mags else 0.0
        if isinstance(a, float) and math.isnan(a):
            a = NAN
        elif a == 0 and r.zero_amax is not None:
            a = _val(r.zero_amax)
        elif a == 0:
            a = 0.0
    # --- scale --------------------------------------------------------------------------------------------------
    srnd = r.scale_rounding or {"rceil": "toward-positive", "nvfp4": "nearest-even",
                                "paper": "toward-positive"}.get(rule, "nearest-even")
    zero = "min" if (sf is not None and not sf.has_zero) else None

    def enc_scale(q):
        if sf is None:
            return fl(q, "float32")
        return encode(q, sf.name, srnd, overflow=r.scale_overflow, zero=zero)

    if rule in ("floor", "ceil", "even", "quest"):
        if not _is_num(a) and math.isnan(a):
            code = _special_code(r.scale_nan, sf) if sf else NAN
        elif not _is_num(a) and math.isinf(a) and r.scale_inf != "exponent-field":
            code = _special_code(r.scale_inf, sf) if sf else math.inf
        else:
            if not _is_num(a) and math.isinf(a):
                e = 128
            elif not _is_num(a):     # zero
                e = None
            else:
                e = _pow2_exponent(a, "floor" if rule == "quest" else rule, r, ef, tin)
            emax = 0 if rule == "quest" else ef.emax
            val = Fraction(0) if e is None else Fraction(2) ** (e - emax)
            code = enc_scale(val) if (sf is None or val != 0) else encode(0.0, sf.name, "nearest-even", zero=zero)
    else:
        m = _max(ef)
        ex = r.scale_expr
        a = _daz(a, t, flush)
        if ex == "exact":
            if rule == "paper":
                pm = Fraction(2) ** ef.emax if (sf is not None and sf.mbits == 0) else m
                q = div(pm * D, a)
            else:
                q = div(mul(a, G), m * D)
        elif ex == "amax/m":
            q = F(div(a, m))
        elif ex == "amax*(1/m)":
            q = F(mul(a, F(div(Fraction(1), m))))
        elif ex == "amax*(G*(1/m))":
            q = F(mul(a, F(mul(G, F(div(Fraction(1), m))))))
        elif ex == "(amax/m)/D":
            q = F(div(F(div(a, m)), D))
        elif ex == "(amax/D)/m":
            q = F(div(F(div(a, D)), m))
        elif ex == "(amax/D)*(1/m)":
            q = F(mul(F(div(a, D)), F(div(Fraction(1), m))))
        elif ex == "(amax*(1/D))*(1/m)":
            q = F(mul(F(mul(a, F(div(Fraction(1), D)))), F(div(Fraction(1), m))))
        elif ex == "(m/amax)*D":
            pm = Fraction(2) ** ef.emax if (sf is not None and sf.mbits == 0) else m
            q = F(mul(F(div(pm, a)), D))
        else:
            raise ValueError(ex)
        if not _is_num(q) and math.isnan(q):
            code = _special_code(r.scale_nan, sf) if sf else NAN
        elif not _is_num(q) and math.isinf(q) and sf is not None:
            code = _special_code(r.scale_inf, sf)
        else:
            floor = r.scale_floor
            if floor == "min-positive":
                floor = min(Fraction(v) for v in sf.values if 0 < v < math.inf)
            if floor is not None and float(q) < float(floor):
                q = Fraction(floor)
            if r.exponent != "bits" and _is_num(q):
                lg = fl(Fraction(math.log2(float(q))), tin)
                q = Fraction(2) ** (math.ceil(lg) if srnd == "toward-positive" else math.floor(lg))
            code = enc_scale(q)
    # --- elements -------------------------------------------------------------------------------------------
    if sf is None:
        s = code
    else:
        v = sf.exact_value(code)
        s = NAN if v is None else _n(v)
    codes = []
    for x in xs:
        codes.append(_element(x, s, code, r, ef, G, D, t, flush))
    return code, codes


def _element(x, s, code, r, ef, G, D, t, flush):
    if isinstance(s, float) and math.isnan(s) and r.nan_block is not None:
        return r.nan_block

    def F(v):
        return fl(v, t, flush)

    sa = s
    if r.e8m0_arith == "bits-min-normal":
        sa = Fraction(2) ** -126 if code == 0 else (math.inf if code == 255 else s)
    elif r.e8m0_arith == "bits-inf" and code == 255:
        sa = math.inf
    ee = r.elem_expr
    factor_nan = isinstance(sa, float) and math.isnan(sa)
    if ee == "exact":
        if r.scale_rule == "paper":
            q = div(mul(x, s), D)
        else:
            den = mul(s, D)
            # a zero scale (an all-zero block) keeps zeros as they are; other values go to ±Inf (saturate)
            zero_den, zero_x = not _is_num(den) and den == 0, not _is_num(x) and x == 0
            q = x if (zero_den and zero_x) else div(mul(x, G), den)
    else:
        xd, sd = _daz(x, t, flush), _daz(sa, t, flush)
        if ee == "x/s":
            q = F(div(xd, sd))
        elif ee == "x*(1/s)":
            rc = Fraction(1) if (r.e8m0_arith == "rcp0-one" and code == 0) else F(div(Fraction(1), sd))
            q = F(mul(xd, _daz(rc, t, flush)))
        elif ee == "x*(1/(s*D))":
            rc = fl(div(Fraction(1), fl(mul(s, D), "float32")), "float32")
            if not _is_num(rc) and not math.isnan(rc) and rc > 0:
                rc = FLT_MAX
            elif _is_num(rc) and rc > FLT_MAX:
                rc = FLT_MAX
            factor_nan = not _is_num(rc) and math.isnan(rc)
            q = F(mul(xd, rc))
        elif ee == "x*((1/D)/s)":
            rc = fl(div(fl(div(Fraction(1), D), "float32"), s), "float32")
            factor_nan = not _is_num(rc) and math.isnan(rc)
            q = F(mul(xd, rc))
        elif ee == "(x/D)/s":
            q = F(div(F(div(xd, D)), sd))
        elif ee == "(x/D)*(1/s)":
            q = F(mul(F(div(xd, D)), F(div(Fraction(1), sd))))
        elif ee == "(x*(1/D))*(1/s)":
            q = F(mul(F(mul(xd, F(div(Fraction(1), D)))), F(div(Fraction(1), sd))))
        elif ee == "(x/D)*s":
            q = F(mul(F(div(xd, D)), sd))
        else:
            raise ValueError(ee)
    if isinstance(q, float) and math.isnan(q):
        if r.nan_sign == "canonical" or factor_nan:
            q = NAN
        elif isinstance(x, float) and math.isnan(x):
            q = x
        else:
            q = -NAN
    elif r.zero_code is not None and not _is_num(q) and q == 0:
        return r.zero_code
    nan = r.nan
    if isinstance(nan, tuple):
        if isinstance(q, float) and math.isnan(q):
            return nan[1] if math.copysign(1.0, q) < 0 else nan[0]
        nan = None
    return encode(q, ef.name, r.rounding, overflow=r.overflow, nan=nan, neg_zero=r.neg_zero)


def _quest(xs):
    """QuEST statistic gs·std + 1e-8 in float32, pairwise sums (Quartet); NaN for blocks with NaN or Inf."""
    if any(not _is_num(v) and (math.isnan(v) or math.isinf(v)) for v in xs):
        return NAN

    def f32(v):
        """float32 rounding: a Fraction, ±Inf on overflow (a float, as float32 arithmetic gives), NaN kept; zeros
        as Fraction(0) (their sign is irrelevant here)."""
        if isinstance(v, float) and not math.isfinite(v):
            return v
        r = fl(Fraction(v), "float32")
        if not _is_num(r) and math.isinf(r):
            return r
        return r if _is_num(r) else Fraction(0)

    s = [v if _is_num(v) else Fraction(0) for v in xs]
    qd = [f32(v * v) for v in s]
    w = len(s)
    while w > 1:
        h = w // 2
        for j in range(h):
            s[j] = f32(s[j] + s[j + h])
            qd[j] = f32(qd[j] + qd[j + h])
        w = h
    n = len(xs)
    var = f32(f32(qd[0] / n) - f32(f32(s[0] / n) ** 2))  # Inf - Inf (both sums overflowed) is NaN
    if math.isnan(var) or var < 0:
        return NAN
    if math.isinf(var):
        return math.inf
    std = f32(Fraction(math.sqrt(float(var))))  # float64 sqrt of a float32 is correctly rounded there
    gs = f32(Fraction(2.92247856 / 6.0))
    return f32(f32(gs * std) + f32(Fraction(1e-8)))
