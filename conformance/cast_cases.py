"""Element-cast families and vectors: one vector per (element format, input dtype, policy set).

A cast vector holds the inputs of all its families in one array ``x`` (the family of each case in
``family``, its decision bitmask in ``decisions``) and one expected code array per rounding mode
(``expected_<mode>``, mode tokens in :data:`MODE_TOKENS`). Expected codes come from :func:`fp4ref.encode` and
are checked, case by case, against the integer reference :func:`fp4ref.exact.cast.bits_encode_array` (exact
significand arithmetic, no code shared with the fast path); a disagreement stops the generator.

Builders: ``build(fmt, dt, level, name) -> (inputs in dt, target decisions) | None`` where None means the family
does not apply to that format and dtype (nothing of it is representable, or it concerns another dtype).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

import fp4ref
from fp4ref import formats as _formats
from fp4ref.exact.cast import bits_encode_f64_array, bits_params

from . import decisions as D
from .catalogue import Family, Vector, check_family, register
from .inputs import DTYPE_NAMES, bits_of, dtype_of, exact_in, finfo, from_bits, next_down, next_up, \
    philox_words, unique_stable, wide

__all__ = ["CastTarget", "MODE_TOKENS", "TOKEN_MODES", "build_vector", "cast_families"]

# rounding mode → the token used in file keys and hex lines (PTX / IEEE abbreviations)
MODE_TOKENS = {"nearest-even": "rne", "nearest-away": "rna", "nearest-zero": "rnz", "toward-zero": "rz",
               "toward-positive": "ru", "toward-negative": "rd", "odd": "ro"}
TOKEN_MODES = {v: k for k, v in MODE_TOKENS.items()}
ALL_MODES = tuple(MODE_TOKENS)


@dataclass(frozen=True)
class CastTarget:
    """fmt: element format; dtype: input dtype tag (f64/f32/f16/bf16); tag: policy-set name ('' = defaults);
    policies: encode() policy keywords; modes: rounding modes; families: family names (None = all that apply)."""
    fmt: str
    dtype: str
    tag: str = ""
    policies: tuple = ()
    modes: tuple = ALL_MODES
    families: tuple | None = None

    @property
    def name(self) -> str:
        return f"cast/{self.fmt}-{self.dtype}" + (f"-{self.tag}" if self.tag else "")


# --- building blocks -------------------------------------------------------------------------------------------
def _f64(fracs) -> np.ndarray:
    return np.array([float(f) for f in fracs], np.float64)


def _signed(fmt, mags_fn) -> np.ndarray:
    """mags_fn(grid, beyond) → Fraction magnitudes; applied to the positive grid and (negated) the negative one."""
    out = []
    for neg in (False, True):
        g = D.grid(fmt, negative=neg)
        if g is None:
            continue
        vals = _f64(mags_fn(*g))
        out.append(-vals if neg else vals)
    return np.concatenate(out) if out else np.zeros(0)


def _midpoints(grid, beyond):
    pts = list(grid) + [beyond]
    return [(a + b) / 2 for a, b in zip(pts, pts[1:])]


def _bracket(values: np.ndarray, dt: np.dtype) -> np.ndarray:
    """For each finite float64 value: the nearest input-dtype values strictly below and strictly above it (of the
    same sign, finite). Exact values give their two ulp neighbours."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v) & (v != 0)]
    with np.errstate(over="ignore"):
        c = v.astype(dt)
    cw = c.astype(np.float64)
    ok = np.isfinite(cw)
    v, c, cw = v[ok], c[ok], cw[ok]
    lo = np.where(cw < v, c, next_down(c))
    hi = np.where(cw > v, c, next_up(c))
    both = np.stack([lo, hi], axis=1).reshape(-1)
    w = both.astype(np.float64)
    sign_ok = (np.repeat(v, 2) * w) > 0
    return both[sign_ok & np.isfinite(w)]


def _join(dt, *parts) -> np.ndarray:
    arrs = [np.asarray(p, dt) if not (isinstance(p, np.ndarray) and p.dtype == dt) else p for p in parts]
    arrs = [a.reshape(-1) for a in arrs if np.asarray(a).size]
    if not arrs:
        return np.zeros(0, dt)
    return unique_stable(np.concatenate(arrs))


# --- the families ----------------------------------------------------------------------------------------------
def _codes(fmt, dt, level, name):
    vals = _signed(fmt, lambda g, b: [v for v in g if v != 0])
    return exact_in(vals, dt), ("exact",)


def _ties(fmt, dt, level, name):
    x = exact_in(_signed(fmt, _midpoints), dt)
    g, beyond = D.grid(fmt)
    targets = ["tie"]
    # the two end midpoints are targets where the input dtype holds them
    if exact_in([float((g[-1] + beyond) / 2)], dt).size:
        targets.append("tie-overflow")
    if fmt.has_zero and exact_in([float(g[1] / 2)], dt).size:
        targets.append("underflow")  # the midpoint between 0 and the smallest value
    return x, tuple(targets)


def _near_ties(fmt, dt, level, name):
    return _bracket(_signed(fmt, _midpoints), dt), ("near-tie-below", "near-tie-above")


def _near_values(fmt, dt, level, name):
    return _bracket(_signed(fmt, lambda g, b: [v for v in g if v != 0]), dt), ("near-exact",)


def _overflow(fmt, dt, level, name):
    def mags(g, beyond):
        top = g[-1]
        # the value below max anchors the family (unsigned formats would otherwise give max everywhere)
        return [g[-2], top, (top + beyond) / 2, beyond, 2 * beyond] + [top * 2 ** k for k in (2, 4, 8, 16, 64, 128)]
    vals = _signed(fmt, mags)
    big = float(finfo(dt).max)
    vals = np.concatenate([vals, [big, -big] if fmt.signed else [big]])
    x = _join(dt, exact_in(vals, dt), _bracket(_signed(fmt, lambda g, b: [g[-1], b, (g[-1] + b) / 2]), dt))
    g, beyond = D.grid(fmt)
    if not (np.abs(wide(x)) > float(g[-1])).any():
        return None  # the input dtype cannot exceed the format's range (float16 into E8M0)
    targets = ["above-max"]
    if exact_in([float((g[-1] + beyond) / 2)], dt).size:
        targets.append("tie-overflow")
    if exact_in([float(beyond)], dt).size:
        targets.append("far-overflow")
    return x, tuple(targets)


def _underflow(fmt, dt, level, name):
    fi = finfo(dt)
    smallest = next(v for v in D.grid(fmt)[0] if v > 0)
    tiny = float(fi.smallest_subnormal)
    mags = np.array([float(smallest * f) for f in (Fraction(1, 2), Fraction(1, 4), Fraction(3, 4),
                                                     Fraction(5, 8), Fraction(1, 1024))]
                    + [tiny, 3 * tiny, 1025 * tiny, float(fi.smallest_normal), float(fi.smallest_normal) / 2])
    mags = mags[mags < float(smallest)]
    # the smallest value and twice it anchor the region: the outputs are not all one code even where every
    # value below the smallest gives the same code (E8M0 has no zero; round-to-odd gives the smallest)
    mags = np.concatenate([mags, [float(smallest), float(2 * smallest)]])
    edges = np.array([float(smallest / 2), float(smallest)])
    parts = [exact_in(mags, dt), _bracket(edges, dt)]
    if fmt.signed:
        parts += [exact_in(-mags, dt), _bracket(-edges, dt)]
    x = _join(dt, *parts)
    cls = D.classify_cast(x, fmt)
    if not (cls & D.bit("underflow")).any():
        return None  # nothing below the format's smallest value fits the input dtype (float16 into E8M0)
    targets = ["underflow", "input-subnormal"]
    if fmt.kind == "float" and fmt.subnormals:
        targets.append("subnormal-output")
    return x, tuple(targets)


def _specials(fmt, dt, level, name):
    w = dt.itemsize * 8
    m = {16: (10 if dt == np.float16 else 7), 32: 23, 64: 52}[w]
    e_all = ((1 << (w - 1 - m)) - 1) << m
    sign = 1 << (w - 1)
    pats = [0, sign, e_all, sign | e_all,                       # ±0, ±Inf
            e_all | (1 << (m - 1)), sign | e_all | (1 << (m - 1)),  # ±quiet NaN
            e_all | 1, sign | e_all | ((1 << m) - 1),           # +signaling NaN (payload 1), -NaN (all ones)
            e_all | (1 << (m - 1)) | 0x5]                       # quiet NaN with a payload
    x = from_bits(np.array(pats, np.uint64).astype(bits_of(np.zeros(1, dt)).dtype), dt)
    # a finite anchor: under policies that send every special to one code the family still has two outputs
    x = _join(dt, x, np.array([1.0], dt))
    targets = ["zero", "neg-zero", "nan", "inf"]
    if not fmt.signed:
        neg_policy = None
        try:
            neg_policy = fp4ref.rounding.negative_name(None, fmt)
        except ValueError:
            pass
        if neg_policy == "nan":
            top = float(D.grid(fmt)[0][-1])
            negs = exact_in(np.array([-1.0, -top, -float(D.grid(fmt)[0][1] or 1), -3.0]), dt)
            x = _join(dt, x, negs)
            targets.append("negative")
        else:
            # negative inputs raise by default here (no NaN code): keep only the non-negative specials
            x = x[~np.signbit(wide(x)) | np.isnan(wide(x))]
            targets.remove("neg-zero")
    return x, tuple(targets)


def _random_values(fmt, dt, n, name):
    """n values with a random sign, an exponent uniform over the format's range widened by two binades each
    side, and random mantissa bits of the input dtype (Philox words of the family name)."""
    g = D.grid(fmt)[0]
    lo_e = int(np.floor(np.log2(float(next(v for v in g if v > 0))))) - 2
    hi_e = int(np.floor(np.log2(float(g[-1])))) + 2
    w = dt.itemsize * 8
    mbits = {2: 10 if dt == np.float16 else 7, 4: 23, 8: 52}[dt.itemsize]
    ebits = w - 1 - mbits
    bias = (1 << (ebits - 1)) - 1
    words = philox_words(name, 3 * n).astype(np.uint64).reshape(n, 3)
    e = lo_e + (words[:, 0] % np.uint64(hi_e - lo_e + 1)).astype(np.int64)
    mant = ((words[:, 1] << np.uint64(32)) | words[:, 2]) & np.uint64((1 << mbits) - 1)
    s = (words[:, 0] >> np.uint64(31)) & np.uint64(1) if fmt.signed else np.zeros(n, np.uint64)
    be = e + bias
    ok = (be >= 1) & (be < (1 << ebits) - 1)
    bits = (s << np.uint64(w - 1)) | (be.astype(np.uint64) << np.uint64(mbits)) | mant
    return from_bits(bits[ok].astype(bits_of(np.zeros(1, dt)).dtype), dt)


def _random(fmt, dt, level, name):
    n = 128 if level == 1 else 65536
    return unique_stable(_random_values(fmt, dt, n, name)), ("inexact",)


def _double_rounding(fmt, dt, level, name):
    if dt != np.float64:
        return None
    mids = _signed(fmt, _midpoints)
    mids = mids[mids != 0]
    vals = np.concatenate([mids * (1 + 2.0 ** -40), mids * (1 - 2.0 ** -40)])
    return exact_in(vals, dt), ("double-rounding",)


def _exhaustive16(fmt, dt, level, name):
    if dt.itemsize != 2:
        return None
    return from_bits(np.arange(1 << 16, dtype=np.uint16), dt), ("exact", "inexact", "tie", "nan", "inf")


_FAMS = [
    ("codes", ("exact",), _codes, "every finite nonzero value of the format, both signs", (1, 2)),
    ("ties", ("tie", "tie-overflow", "underflow"), _ties,
     "every midpoint between adjacent values, both signs, including 0..min and max..(first value past max)",
     (1, 2)),
    ("near-ties", ("near-tie-below", "near-tie-above"), _near_ties,
     "the input-dtype values just below and just above every midpoint", (1, 2)),
    ("near-values", ("near-exact",), _near_values, "the input-dtype neighbours of every format value", (1, 2)),
    ("overflow", ("above-max", "tie-overflow", "far-overflow"), _overflow,
     "max, the overflow threshold and the first value past max with their neighbours, powers of two past max, "
     "the input dtype's max", (1, 2)),
    ("underflow", ("underflow", "input-subnormal", "subnormal-output"), _underflow,
     "below the smallest value: half and quarter of it with neighbours, input-dtype subnormals and min normal",
     (1, 2)),
    ("specials", ("zero", "neg-zero", "nan", "inf", "negative"), _specials,
     "±0, ±Inf, quiet/signaling NaNs of both signs with payloads; negative values for unsigned formats", (1, 2)),
    ("random", ("inexact",), _random,
     "Philox-drawn values: random sign, exponent over the format's range ± 2 binades, random input mantissa "
     "(128 at level 1, 65536 at level 2)", (1, 2)),
    ("double-rounding", ("double-rounding",), _double_rounding,
     "float64 inputs within 2^-40 relative of a midpoint: a cast through float32 lands on the tie", (1, 2)),
    ("exhaustive-16bit", ("exact", "inexact", "tie", "nan", "inf"), _exhaustive16,
     "every bit pattern of a 16-bit input dtype (float16, bfloat16)", (2,)),
]
for _n, _d, _b, _doc, _lv in _FAMS:
    register(Family(kind="cast", name=_n, decisions=_d, doc=_doc, build=_b, levels=_lv))


def cast_families(level: int):
    from .catalogue import families
    return [f for f in families("cast") if level in f.levels]


def resolved_policies(fmt, policies: dict) -> dict:
    """Every policy that applies to ``fmt``, defaults written out (the names fp4ref.encode takes)."""
    R = fp4ref.rounding
    out = {"overflow": R.overflow_name(policies.get("overflow", "saturate"), fmt),
           "nan": R.nan_name(policies.get("nan"), fmt),
           "neg_zero": R.neg_zero_name(policies.get("neg_zero", "keep"))}
    if not fmt.signed:
        out["negative"] = R.negative_name(policies.get("negative"), fmt)
    if not fmt.has_zero:
        out["zero"] = R.zero_name(policies.get("zero"), fmt)
    if "e8m0_subnormal" in policies:
        out["e8m0_subnormal"] = policies["e8m0_subnormal"]
    return out


_REF_PARAMS: dict = {}


def _reference_codes(x, fmt, mode, policies) -> np.ndarray:
    """Codes from the integer reference (fp4ref.exact.cast.bits_encode). Its parameter vector starts with the
    mode id and its tables do not depend on the mode, so they are built once per format and policy set."""
    key = (fmt.name, tuple(sorted((k, str(v)) for k, v in policies.items())))
    if key not in _REF_PARAMS:
        _REF_PARAMS[key] = bits_params(fmt, "nearest-even", **policies)
    q, tpos, tneg = _REF_PARAMS[key]
    q = q.copy()
    q[0] = fp4ref.rounding.mode_id(mode)
    bits = np.ascontiguousarray(wide(x)).view(np.uint64)
    out = np.empty(bits.size, np.int64)
    bits_encode_f64_array(bits, out, q, tpos, tneg)
    return out


# --- the vector ------------------------------------------------------------------------------------------------
def build_vector(t: CastTarget, level: int) -> Vector:
    fmt = _formats.get(t.fmt)
    dt = dtype_of(t.dtype)
    policies = dict(t.policies)
    xs, fam_idx, fam_names, targets = [], [], [], {}
    for fam in cast_families(level):
        if t.families is not None and fam.name not in t.families:
            continue
        built = fam.build(fmt, dt, level, f"{t.name}/{fam.name}")
        if built is None:
            continue
        x, tg = built
        x = unique_stable(np.asarray(x, dt))
        if x.size == 0:
            continue
        targets[fam.name] = tg
        fam_idx.append(np.full(x.size, len(fam_names), np.uint8))
        fam_names.append(fam.name)
        xs.append(x)
    x = np.concatenate(xs)
    family = np.concatenate(fam_idx)
    masks = D.classify_cast(x, fmt)
    expected = {}
    for mode in t.modes:
        with np.errstate(invalid="ignore"):  # widening a signaling NaN is not an error here
            got = fp4ref.encode(x, fmt, mode, **policies)
            ref = _reference_codes(x, fmt, mode, policies)
        bad = np.flatnonzero(got.astype(np.int64) != ref)
        if bad.size:
            i = bad[0]
            raise AssertionError(f"{t.name} {mode}: fp4ref.encode gives {int(got[i]):#x} but the integer reference "
                                 f"gives {int(ref[i]):#x} for input {x[i]!r} (bits {int(bits_of(x[i:i + 1])[0]):#x})"
                                 f"; {bad.size} cases disagree")
        expected[mode] = got.astype(np.uint8)
    coverage = {}
    for k, fam in enumerate(fam_names):
        sel = family == k
        reached = {d: int(((masks[sel] & D.bit(d)) != 0).sum()) for d in D.CAST_DECISIONS}
        reached = {d: c for d, c in reached.items() if c}
        check_family(t.name, fam, {MODE_TOKENS[m]: e[sel] for m, e in expected.items()}, reached, targets[fam])
        coverage[fam] = {"cases": int(sel.sum()), "targets": list(targets[fam]), "reached": reached}
    arrays = {"x": x, "family": family, "decisions": masks}
    for mode in t.modes:
        arrays[f"expected_{MODE_TOKENS[mode]}"] = expected[mode]
    options = {"format": fmt.name, "format_bits": fmt.bits, "input_dtype": DTYPE_NAMES[t.dtype],
               "policies": {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(policies.items())},
               "resolved_policies": resolved_policies(fmt, policies),
               "modes": [MODE_TOKENS[m] for m in t.modes], "mode_names": {MODE_TOKENS[m]: m for m in t.modes}}
    legend = {"family": "index into families", "decisions": {"bits": list(D.CAST_DECISIONS)}}
    return Vector(name=t.name, kind="cast", options=options, families=tuple(fam_names), arrays=arrays,
                  coverage=coverage, legend=legend)
