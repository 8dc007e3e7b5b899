"""Rounding modes and the policies for values a format cannot hold: names → ids.

The names are the public contract; aliases are accepted on input and never printed. Each policy's default and
its source is documented in :func:`fp4ref.cast.encode`.
"""
from __future__ import annotations

from .formats import Format

# Deterministic modes. Ids are what the Numba kernels receive.
NEAREST_EVEN, NEAREST_AWAY, NEAREST_ZERO, TOWARD_ZERO, TOWARD_POSITIVE, TOWARD_NEGATIVE, ODD = range(7)

MODES = {
    "nearest-even": NEAREST_EVEN,       # IEEE 754 roundTiesToEven; OCP MX and PTX .rn
    "nearest-away": NEAREST_AWAY,       # IEEE 754 roundTiesToAway; microxcaling's default "nearest"
    "nearest-zero": NEAREST_ZERO,       # ties toward zero (Quartet forward pass)
    "toward-zero": TOWARD_ZERO,         # IEEE roundTowardZero; PTX .rz
    "toward-positive": TOWARD_POSITIVE, # IEEE roundTowardPositive; PTX .rp
    "toward-negative": TOWARD_NEGATIVE, # IEEE roundTowardNegative; PTX .rm
    "odd": ODD,                         # round to odd (sticky LSB), the double-rounding-safe intermediate mode
}
MODE_ALIASES = {
    "rne": "nearest-even", "rn": "nearest-even", "even": "nearest-even", "nearest_even": "nearest-even",
    "rna": "nearest-away", "away": "nearest-away", "nearest_away": "nearest-away",
    "rnz": "nearest-zero", "nearest_zero": "nearest-zero",
    "rz": "toward-zero", "rtz": "toward-zero", "truncate": "toward-zero", "toward_zero": "toward-zero",
    "ru": "toward-positive", "rp": "toward-positive", "ceil": "toward-positive", "up": "toward-positive",
    "toward_positive": "toward-positive",
    "rd": "toward-negative", "rm": "toward-negative", "floor": "toward-negative", "down": "toward-negative",
    "toward_negative": "toward-negative",
    "round-to-odd": "odd", "ro": "odd",
}
MODE_NAMES = {v: k for k, v in MODES.items()}

# Overflow of a finite input beyond the format's max.
OVERFLOW = {"saturate": 0, "nan": 1, "inf": 2}
OVF_SATURATE, OVF_NAN, OVF_INF = 0, 1, 2
OVERFLOW_ALIASES = {"satfinite": "saturate", "sat": "saturate", "clip": "saturate"}

# NaN input into a format WITHOUT a NaN code (semantics.md D-4): the code each vendor produces.
NAN_POLICIES_NO_NAN = ("max", "signed-max", "zero", "ml_dtypes", "torchao", "xla", "raise")
# NaN input into a format WITH a NaN code: which NaN code, and whether the sign is kept.
NAN_POLICIES_WITH_NAN = ("nan", "ones", "canonical", "gfloat", "raise")
NAN_ALIASES = {"ptx": "max", "positive-max": "max", "triton": "signed-max", "te": "zero", "te-reference": "zero",
               "ml-dtypes": "ml_dtypes", "jax": "xla", "torch": "ones"}

NEG_ZERO = ("keep", "positive")
NEGATIVE = ("nan", "abs", "raise")
ZERO = ("nan", "min", "raise")
E8M0_SUBNORMAL = ("round", "up")


def _lookup(value, table, aliases, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, one of: {', '.join(table)}")
    key = value.lower()
    key = aliases.get(key, key)
    if key not in table:
        raise ValueError(f"unknown {what} {value!r}; valid values: {', '.join(table)}")
    return key


def mode_name(rounding: str) -> str:
    """Canonical name of a deterministic rounding mode (accepts aliases)."""
    return _lookup(rounding, MODES, MODE_ALIASES, "rounding")


def mode_id(rounding: str) -> int:
    return MODES[mode_name(rounding)]


def overflow_name(overflow: str, fmt: Format) -> str:
    name = _lookup(overflow, OVERFLOW, OVERFLOW_ALIASES, "overflow")
    if name == "nan" and not fmt.has_nan:
        raise ValueError(f"overflow='nan' needs a NaN code; {fmt.name} has none (valid: saturate"
                         + (", inf)" if fmt.has_inf else ")"))
    if name == "inf" and not fmt.has_inf:
        raise ValueError(f"overflow='inf' needs an Inf code; {fmt.name} has none (valid: saturate"
                         + (", nan)" if fmt.has_nan else ")"))
    return name


def default_nan(fmt: Format) -> str:
    """Default NaN policy: the format's NaN where it has one (OCP MX v1.0 §5.3.2), else +max as PTX cvt
    `.satfinite` produces for .e2m1x2/.e2m3x2/.e3m2x2 (PTX ISA, cvt: "NaN → positive MAX_NORM")."""
    return "nan" if fmt.has_nan else "max"


def nan_name(nan: str | None, fmt: Format) -> str:
    if nan is None:
        return default_nan(fmt)
    table = NAN_POLICIES_WITH_NAN if fmt.has_nan else NAN_POLICIES_NO_NAN
    return _lookup(nan, table, NAN_ALIASES, f"nan policy for {fmt.name}")


def neg_zero_name(neg_zero: str) -> str:
    return _lookup(neg_zero, NEG_ZERO, {}, "neg_zero")


def negative_name(negative: str | None, fmt: Format) -> str:
    if negative is None:
        return "nan" if fmt.has_nan else "raise"
    name = _lookup(negative, NEGATIVE, {}, f"negative policy for {fmt.name}")
    if name == "nan" and not fmt.has_nan:
        raise ValueError(f"negative='nan' needs a NaN code; {fmt.name} has none (valid: raise)")
    return name


def e8m0_subnormal_name(value: str, fmt: Format) -> str:
    name = _lookup(value, E8M0_SUBNORMAL, {}, "e8m0_subnormal")
    if name == "up" and (fmt.subnormals or fmt.kind != "float" or fmt.mbits != 0):
        raise ValueError(f"e8m0_subnormal='up' applies to e8m0-like formats (no mantissa, no subnormals), "
                         f"not {fmt.name} (valid: round)")
    return name


def zero_name(zero: str | None, fmt: Format) -> str:
    if zero is None:
        return "nan" if fmt.has_nan else "min"
    name = _lookup(zero, ZERO, {}, f"zero policy for {fmt.name}")
    if name == "nan" and not fmt.has_nan:
        raise ValueError(f"zero='nan' needs a NaN code; {fmt.name} has none (valid: min, raise)")
    return name
