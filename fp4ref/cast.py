"""Element casts: ``encode`` (values → codes) and ``decode`` (codes → exact values)."""
from __future__ import annotations

import ml_dtypes
import numpy as np

from . import formats as _formats
from . import rounding as R
from .formats import Format
from .kernels import cast as K

__all__ = ["encode", "decode", "cast_params", "as_float_array", "CastError"]


class CastError(ValueError):
    """An input that a policy set to 'raise' refuses (NaN, negative into an unsigned format, zero into E8M0)."""


_ML_FLOATS = {np.dtype(t) for t in (ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2,
                                    ml_dtypes.float8_e8m0fnu, ml_dtypes.float4_e2m1fn, ml_dtypes.float6_e2m3fn,
                                    ml_dtypes.float6_e3m2fn)}
_BF16 = np.dtype(ml_dtypes.bfloat16)
ALLOWED_INPUT = "float64, float32, float16, bfloat16 (ml_dtypes) or an ml_dtypes float8/float6/float4 type"


def as_float_array(x, name: str = "x") -> np.ndarray:
    """x as an array of a float type whose every value float64 holds exactly; anything else is an error."""
    if isinstance(x, (bool, int, np.integer)) and not isinstance(x, np.floating):
        raise TypeError(f"{name} is an integer ({x!r}); allowed: {ALLOWED_INPUT}")
    a = np.asarray(x)
    dt = a.dtype
    if dt in (np.float64, np.float32, np.float16) or dt in _ML_FLOATS:
        return a
    raise TypeError(f"{name} has dtype {dt}; allowed: {ALLOWED_INPUT}")


def as_float32(a: np.ndarray) -> np.ndarray:
    """a as a C-contiguous float32 array of the same shape and exact values (a: float32, float16, bfloat16 or
    an ml_dtypes float8/6/4 type). float16/bfloat16 widen in a parallel kernel (kernels/cast.py widen16)."""
    if a.dtype == np.float32:
        return np.ascontiguousarray(a)
    if a.dtype == np.float16 or a.dtype == _BF16:
        u, bf16 = K.bit_patterns(np.ascontiguousarray(a))
        out = np.empty(a.shape, np.uint32)
        K.widen16(u.reshape(-1), out.reshape(-1), bf16)
        return out.view(np.float32)
    return np.ascontiguousarray(a, dtype=np.float32)


def _kernel_input(a: np.ndarray) -> np.ndarray:
    """A flat contiguous float64/float32/float16/bfloat16 array with the same exact values (float8/6/4 widen)."""
    keep = a.dtype in (np.float64, np.float32, np.float16) or a.dtype == _BF16
    return (np.ascontiguousarray(a) if keep else as_float32(a)).reshape(-1)


def _nan_codes(fmt: Format, policy: str) -> tuple[int, int]:
    """(code for +NaN, code for -NaN) under a NaN policy (semantics.md D-4 for formats without NaN)."""
    sb = fmt.sign_bit
    if policy == "raise":
        return K.ERR_NAN, K.ERR_NAN
    ones = (1 << (fmt.bits - (1 if fmt.signed else 0))) - 1 if fmt.code_limit is None else fmt.code_limit
    if policy == "nan":
        return fmt.nan_code, fmt.nan_code | sb
    if policy == "ones":  # torch: sign kept, every magnitude bit set (E5M2 0x7F/0xFF rather than 0x7E)
        return ones, ones | sb
    if policy == "canonical":  # PTX canonical NaN, XLA on GPU: +NaN with every magnitude bit set
        return ones, ones
    if policy == "gfloat":  # gfloat encode_ndarray: the all-ones code (sign set) for either sign
        return ones | sb, ones | sb
    if policy == "max":
        return fmt.max_code, fmt.max_code
    if policy == "signed-max":
        return fmt.max_code, fmt.max_code | sb
    if policy == "zero":
        return 0, 0
    if policy == "xla":  # XLA's float4_e2m1fn cast: -0 for either sign
        return sb, sb
    if policy == "ml_dtypes":
        # ml_dtypes 0.5-0.7 float4/float6 casts: +NaN → -0 (sign bit alone), -NaN → +0.
        if fmt.kind != "float" or not fmt.signed:
            raise ValueError(f"nan='ml_dtypes' is defined for ml_dtypes' float4/float6 types, not {fmt.name}")
        return sb, 0
    if policy == "torchao":
        code = _torchao_nan_code(fmt)
        return code, code | sb
    raise AssertionError(policy)


def _torchao_nan_code(fmt: Format) -> int:
    """Magnitude code torchao's float32 → floatx bit arithmetic (`_f32_to_floatx_unpacked`) gives a quiet NaN.

    NaN fails every comparison there, so it takes the 'normal' path: re-bias the exponent, add the rounding
    magic number and the mantissa's odd bit, shift, and keep the low byte. For E2M1/E2M3/E3M2 that is 1.5.
    """
    if fmt.kind != "float" or not fmt.signed or fmt.bits > 8:
        raise ValueError(f"nan='torchao' is defined for torchao's sub-byte float formats, not {fmt.name}")
    qnan, shift = 0x7FC00000, 23 - fmt.mbits
    bias = (1 << (fmt.ebits - 1)) - 1
    added = ((bias - 127) << 23) + (1 << (shift - 1)) - 1 + ((qnan >> shift) & 1)
    return ((qnan + added) >> shift) & 0xFF & ~fmt.sign_bit


def cast_params(fmt, rounding="nearest-even", overflow="saturate", nan=None, neg_zero="keep", negative=None,
                zero=None, e8m0_subnormal="round") -> tuple[np.ndarray, np.ndarray]:
    """Validate a cast's options and resolve them into the (fp, pol) int64 arrays the Numba kernels take."""
    fmt = _formats.get(fmt)
    mode = R.mode_id(rounding)
    ovf = R.OVERFLOW[R.overflow_name(overflow, fmt)]
    nan_pos, nan_neg = _nan_codes(fmt, R.nan_name(nan, fmt))
    # Integer formats have no -0: their sign bit alone is the most negative code.
    keep = R.neg_zero_name(neg_zero) == "keep"
    neg_zero_code = fmt.sign_bit if (keep and fmt.kind == "float") else 0
    negative = R.negative_name(negative, fmt) if not fmt.signed else None
    neg_code = {"nan": fmt.nan_code, "abs": K.NEG_ABS, "raise": K.ERR_NEGATIVE, None: K.ERR_NEGATIVE}[negative]
    if fmt.has_zero:
        zero_code = 0
        if zero is not None:
            raise ValueError(f"zero= applies to formats without a zero (e8m0); {fmt.name} has one")
    else:
        zero_code = {"nan": fmt.nan_code, "min": 0, "raise": K.ERR_ZERO}[R.zero_name(zero, fmt)]
    # Infinite inputs: satfinite gives ±max, 'inf' gives ±Inf, 'nan' gives NaN (OCP MX v1.0 §5.3.2 / PTX cvt).
    if ovf == R.OVF_INF:
        inf_mag = fmt.inf_code
    elif ovf == R.OVF_NAN:
        inf_mag = fmt.nan_code
    else:
        inf_mag = fmt.max_code
    if fmt.kind == "int":
        inf_pos, inf_neg = fmt.max_code, (1 << fmt.bits) - int(round(fmt.max_neg * 2 ** fmt.frac_bits))
    else:
        inf_pos, inf_neg = inf_mag, inf_mag | fmt.sign_bit
    fp = np.zeros(K.F_LEN, np.int64)
    fp[K.F_KIND] = K.KIND_INT if fmt.kind == "int" else K.KIND_FLOAT
    fp[K.F_BITS] = fmt.bits
    fp[K.F_MBITS] = fmt.mbits
    fp[K.F_BIAS] = fmt.bias
    fp[K.F_EMIN] = fmt.emin
    fp[K.F_SIGNED] = int(fmt.signed)
    fp[K.F_HAS_ZERO] = int(fmt.has_zero)
    fp[K.F_MAX_CODE] = fmt.max_code
    fp[K.F_SIGN_BIT] = fmt.sign_bit
    fp[K.F_FRAC_BITS] = fmt.frac_bits
    fp[K.F_MAX_NEG] = int(round(fmt.max_neg * 2 ** fmt.frac_bits)) if fmt.kind == "int" else fmt.max_code
    fp[K.F_NAN_CODE] = -1 if fmt.nan_code is None else fmt.nan_code
    fp[K.F_INF_CODE] = -1 if fmt.inf_code is None else fmt.inf_code
    pol = np.zeros(K.P_LEN, np.int64)
    pol[K.P_MODE] = mode
    pol[K.P_OVF] = ovf
    pol[K.P_NAN_POS], pol[K.P_NAN_NEG] = nan_pos, nan_neg
    pol[K.P_NEG_ZERO_CODE] = neg_zero_code
    pol[K.P_NEGATIVE] = neg_code
    pol[K.P_ZERO] = zero_code
    pol[K.P_INF_POS], pol[K.P_INF_NEG] = inf_pos, inf_neg
    pol[K.P_E8M0_SUB] = int(R.e8m0_subnormal_name(e8m0_subnormal, fmt) == "up")
    return fp, pol


_ERRORS = {K.ERR_NAN: ("nan", "a NaN input"), K.ERR_NEGATIVE: ("negative", "a negative input"),
           K.ERR_ZERO: ("zero", "a zero input")}


def encode(x, fmt, rounding="nearest-even", *, overflow="saturate", nan=None, neg_zero="keep", negative=None,
           zero=None, e8m0_subnormal="round", rbits=None, rbits_width=None, lanes=None) -> np.ndarray:
    """Round ``x`` once, from its exact value, into ``fmt`` and return the codes (uint8, shape of x).

    Parameters (defaults follow OCP MX v1.0 §5.3.2 and the PTX ISA ``cvt ... .satfinite``):

    - ``rounding``: ``nearest-even`` (default), ``nearest-away``, ``nearest-zero``, ``toward-zero``,
      ``toward-positive``, ``toward-negative``, ``odd``; or a ``stochastic-*`` variant with ``rbits``.
      Ties of E8M0 (no mantissa bits) are decided by the parity of the biased exponent under ``nearest-even``
      (gfloat); ml_dtypes' "every tie up" is ``nearest-away``.
    - ``overflow``: ``saturate`` (default: OCP/PTX satfinite, ±max), ``nan`` or ``inf`` where the format has
      those codes. Under ``nan``/``inf`` a mode that rounds toward zero for that sign still gives ±max
      (IEEE 754 §7.4). ±Inf inputs follow the same policy.
    - ``nan``: formats with a NaN code: ``nan`` (default: the format's quiet NaN, sign kept, as ml_dtypes;
      E5M2 0x7E/0xFE), ``ones`` (sign kept, all magnitude bits set, as torch: E5M2 0x7F/0xFF), ``canonical``
      (+NaN, all magnitude bits set: PTX canonical NaN, XLA on GPU), ``gfloat`` (the all-ones code with the sign
      bit, for either sign) or ``raise``; formats without (E2M1, E2M3, E3M2, E1M2, INT): ``max`` (default, +max
      as PTX cvt .satfinite), ``signed-max`` (Triton), ``zero`` (+0, TransformerEngine's reference),
      ``ml_dtypes`` (+NaN → -0, -NaN → +0), ``xla`` (-0 for either sign), ``torchao`` (its bit arithmetic on
      the canonical quiet NaN: ±1.5 for E2M1), or ``raise``.
    - ``neg_zero``: ``keep`` (default: -0.0 → the negative-zero code) or ``positive`` (-0.0 → +0, as
      TransformerEngine's reference ``cast_to_fp4x2``, whose sign test is ``x < 0``). Negative values that
      round to zero keep their sign either way.
    - ``negative`` (unsigned formats): ``nan`` (default where the format has NaN, as ml_dtypes and XLA),
      ``abs`` (the code of |x|, as torch's float8_e8m0fnu cast) or ``raise``. -0.0 gives +0 in unsigned formats
      that have a zero.
    - ``zero`` (formats without zero, E8M0): ``nan`` (default, as ml_dtypes), ``min`` (code 0x00 = 2^-127, as
      PTX ``cvt.rz.satfinite.ue8m0x2`` and bit-field scale paths) or ``raise``. Nonzero magnitudes below
      2^-127 give 2^-127 (no zero to round to; ml_dtypes does the same).
    - ``e8m0_subnormal`` (E8M0): ``round`` (default: the exact value is rounded like any other) or ``up``:
      inputs strictly between 2^-127 and 2^-126 give 2^-126, as ml_dtypes up to 0.6, torch and XLA casts do
      (observed: tests/data/VENDORS.md; ml_dtypes 0.7 rounds them).
    """
    if rounding is not None and isinstance(rounding, str) and rounding.lower().startswith("stochastic"):
        from . import stochastic
        return stochastic.encode_stochastic(x, fmt, rounding, rbits=rbits, rbits_width=rbits_width, lanes=lanes,
                                            overflow=overflow, nan=nan, neg_zero=neg_zero, negative=negative,
                                            zero=zero, e8m0_subnormal=e8m0_subnormal)
    if rbits is not None or rbits_width is not None or lanes is not None:
        raise ValueError(f"rbits/rbits_width/lanes apply only to stochastic rounding, not rounding={rounding!r}")
    a = as_float_array(x)
    fp, pol = cast_params(fmt, rounding, overflow, nan, neg_zero, negative, zero, e8m0_subnormal)
    flat = _kernel_input(a)
    out = np.empty(flat.size, np.uint8)
    if K.encode_array(flat, out, fp, pol):
        i, err = K.first_error(flat if flat.dtype == np.float64 else as_float32(flat), fp, pol)
        arg, what = _ERRORS[err]
        raise CastError(f"{what} at flat index {i} (value {flat[i]!r}) cannot be encoded in "
                        f"{_formats.get(fmt).name} with {arg}='raise'")
    return out.reshape(a.shape)


def decode(codes, fmt, dtype=np.float32) -> np.ndarray:
    """Exact values of ``codes`` (NaN codes → NaN, never Inf; E8M0 0x00 → 2^-127, an fp32 subnormal).

    ``dtype``: float32 (default), float64, or float16/bfloat16 when every decoded value is exact there.
    """
    fmt = _formats.get(fmt)
    c = np.asarray(codes)
    if c.dtype.kind not in "ui":
        raise TypeError(f"codes must be an unsigned integer array (uint8), got dtype {c.dtype}")
    if c.size and (c.min() < 0 or c.max() >= fmt.n_codes):
        bad = c[(c < 0) | (c >= fmt.n_codes)].reshape(-1)[0]
        raise ValueError(f"codes contain {int(bad)}, outside {fmt.name}'s codes 0..{fmt.n_codes - 1}")
    dt = np.dtype(dtype)
    if dt not in (np.float64, np.float32, np.float16, np.dtype(ml_dtypes.bfloat16)):
        raise TypeError(f"dtype must be float32, float64, float16 or bfloat16, got {dt}")
    with np.errstate(over="ignore"):  # values too large for dt are refused just below
        table = fmt.values.astype(dt)
    if dt not in (np.float64, np.float32):
        exact = (table.astype(np.float64) == fmt.values) | np.isnan(fmt.values)
        used = np.unique(c)
        if not exact[used].all():
            bad = used[~exact[used]][0]
            raise ValueError(f"{fmt.name} code {int(bad)} = {fmt.values[bad]!r} is not exact in {dt}; "
                             "decode to float32")
    return table[c.astype(np.intp)]
