"""Block quantization: ``quantize(x, recipe, axis=-1, **overrides) -> QuantizedTensor`` and ``dequantize(q)``.

The pipeline (every step an option of :class:`fp4ref.recipes.Recipe`, defaults OCP MX v1.0 MXFP4):

    x ─(transform)─► tiles (fp4ref.blocks) ─► amax ─► scale rule (fp4ref.scaling) ─► scale code
      ─► element value (the recipe's float expression) ─► element rounding (fp4ref.cast) ─► codes

The result carries unpacked uint8 element ``codes`` (x's shape), ``scales`` (uint8 scale codes in the block
grid's linear layout; float32 values for ``scale_fmt="fp32"``), ``global_scale`` (float32 or None) with its
``global_scale_convention``, and the full option set (``recipe``), so that it can be saved, reloaded and
explained.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from typing import Callable, NamedTuple

import ml_dtypes
import numpy as np

from . import blocks as _blocks
from . import cast as _cast
from . import formats as _formats
from . import rounding as _R
from . import scaling as _S
from .kernels import quantize as K
from .kernels import dequantize as KD
from .kernels import quantize_bits as KB
from .kernels.cast import P_E8M0_SUB, P_MODE, P_NAN_NEG, P_NAN_POS, bit_patterns, bits32_params

__all__ = ["QuantizedTensor", "quantize", "dequantize", "quantize_rows", "tensor_amax", "resolve"]

_BF16 = np.dtype(ml_dtypes.bfloat16)
_INPUT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.float16), _BF16)
_CHUNK = 1 << 24  # elements per kernel call: bounded memory for memory-mapped inputs
# quantize holds a recipe's transformed tensor whole up to this many bytes: one transform pass, where transforming
# chunk by chunk (see _row_transform) transforms twice, for the tensor amax and for the codes (te-nvfp4-rht fp32
# 16384^2, 1 GiB: 376 vs 451 ms on a 2-core Xeon). Larger ones go chunk by chunk in bounded memory. The RHT16 te
# model with float32 output goes chunk by chunk at any size: its quantize kernel transforms tile row by tile row.
_WHOLE_TRANSFORM = 1 << 30


# --- the result ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class QuantizedTensor:
    """A block-quantized tensor.

    codes: uint8 element codes, unpacked, x's shape (4/6-bit codes in the low bits: S·2^(bits-1) + E·2^m + M).
    scales: uint8 scale codes (or float32 scale values for scale_fmt "fp32"), the block grid's shape, C order.
        With scale_role "decode" a block's value is code × scale; with "encode" it is code / scale.
    global_scale: the tensor scale (float32; float64 for a float64 input's "amax" convention) or None.
    global_scale_convention: "encode" (x was multiplied by it: dequantize divides), "decode" (dequantize
        multiplies), "divisor" (x was divided by it: dequantize multiplies), "amax" (same as divisor: the
        simulator's g) or None.
    recipe: the complete options that produced it (a :class:`fp4ref.recipes.Recipe`).
    axis: the blocked axis (normalized), shape/dtype: the input's.
    """
    codes: np.ndarray
    scales: np.ndarray
    global_scale: np.floating | None
    global_scale_convention: str | None
    recipe: object
    axis: int
    shape: tuple
    dtype: str

    @property
    def options(self) -> dict:
        """The recipe's options as a plain dict (JSON-serializable)."""
        return self.recipe.to_dict()

    def meta(self) -> dict:
        return {"recipe": self.recipe.to_dict(), "axis": self.axis, "shape": list(self.shape), "dtype": self.dtype,
                "global_scale_convention": self.global_scale_convention, "fp4ref_schema": 1}

    def save(self, path) -> None:
        """Write an .npz: codes, scales, global_scale (if any) and meta (JSON)."""
        arrays = {"codes": self.codes, "scales": self.scales, "meta": np.str_(json.dumps(self.meta()))}
        if self.global_scale is not None:
            arrays["global_scale"] = np.asarray([self.global_scale])
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path) -> "QuantizedTensor":
        from .recipes import Recipe
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            gs = z["global_scale"][0] if "global_scale" in z.files else None
            return cls(codes=z["codes"], scales=z["scales"], global_scale=gs,
                       global_scale_convention=meta["global_scale_convention"],
                       recipe=Recipe.from_dict(meta["recipe"]), axis=int(meta["axis"]),
                       shape=tuple(meta["shape"]), dtype=meta["dtype"])


# --- option resolution -----------------------------------------------------------------------------------------
def _choice(value, allowed, name):
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(map(str, allowed))}")
    return value


def _thresholds(fmt, pol_mode: int):
    """Exclusive thresholds (positive side, negative side) of a 4-bit float format for a deterministic mode,
    or None where the fast encoder does not apply."""
    if fmt.kind != "float" or fmt.bits != 4 or fmt.has_nan or pol_mode == _R.ODD:
        return None
    mags = sorted(float(fmt.values[c]) for c in range(fmt.max_code + 1))
    codes = list(range(fmt.max_code + 1))  # magnitude codes are monotone in value
    out = []
    for neg in (False, True):
        th = []
        for k in range(len(mags) - 1):
            lo, hi = mags[k], mags[k + 1]
            mode = pol_mode
            if mode in (_R.TOWARD_POSITIVE, _R.TOWARD_NEGATIVE):
                up = (mode == _R.TOWARD_POSITIVE) != neg
                t, incl = (lo, False) if up else (hi, True)
            elif mode == _R.TOWARD_ZERO:
                t, incl = hi, True
            else:
                t = (lo + hi) / 2
                if mode == _R.NEAREST_EVEN:
                    incl = codes[k + 1] % 2 == 0
                else:
                    incl = mode == _R.NEAREST_AWAY
            th.append(np.nextafter(t, -np.inf) if incl else t)
        out.append(np.array(th, np.float64))
    return out[0], out[1]


def _compute_type(arith: str, dtype: np.dtype) -> int:
    if arith == "float32":
        return K.T_F32
    return {np.dtype(np.float32): K.T_F32, _BF16: K.T_BF16, np.dtype(np.float16): K.T_F16,
            np.dtype(np.float64): K.T_F64}[dtype]


def _scale_special(value, sf, what, rule):
    if value == "nan":
        if sf.nan_code is None:
            raise ValueError(f"{what}='nan' needs a NaN code; scale format {sf.name} has none (valid: max, min)")
        return sf.nan_code
    if value == "max":
        return sf.max_code
    if value == "min":
        return 0
    if value == "exponent-field":
        if what != "scale_inf" or rule not in ("floor", "ceil", "even"):
            raise ValueError("scale_inf='exponent-field' applies to the floor/ceil/even rules only")
        return K.SC_EXPONENT_FIELD
    raise ValueError(f"unknown {what} {value!r}; valid: nan, max, min" + (", exponent-field" if what == "scale_inf"
                                                                          else ""))


@dataclass(frozen=True)
class _Plan:
    ip: np.ndarray
    fp: np.ndarray
    efp: np.ndarray
    epol: np.ndarray
    sfp: np.ndarray
    spol: np.ndarray
    stab: np.ndarray
    thp: np.ndarray
    thn: np.ndarray
    scale_fp32: bool


def resolve(recipe, dtype, tile=(1, 32), ts: _S.TensorScale | None = None) -> _Plan:
    """Validate a recipe for an input dtype and tile shape and turn it into the kernel's parameter arrays."""
    r = recipe
    dtype = np.dtype(dtype)
    ef = _formats.get(r.elem)
    rule = _choice(r.scale_rule, _S.SCALE_RULES, "scale_rule")
    _choice(r.exponent, _S.EXPONENTS, "exponent")
    _choice(r.scale_expr, tuple(_S.SCALE_EXPRS), "scale_expr")
    _choice(r.elem_expr, tuple(_S.ELEM_EXPRS), "elem_expr")
    _choice(r.arith, _S.ARITH, "arith")
    _choice(r.amax_nan, ("propagate", "ignore"), "amax_nan")
    _choice(r.nan_sign, ("canonical", "x86"), "nan_sign")
    _choice(r.scale_role, ("decode", "encode"), "scale_role")
    _choice(r.e8m0_arith, ("exact", "bits-min-normal", "bits-inf", "rcp0-one"), "e8m0_arith")
    _choice(r.pad_amax, _blocks.PAD_AMAX, "pad_amax")
    scale_fp32 = r.scale_fmt == "fp32"
    sf = None if scale_fp32 else _formats.get(r.scale_fmt)
    if rule == "paper" and r.scale_role != "encode":
        raise ValueError("scale_rule='paper' rounds the encode scale: it needs scale_role='encode'")
    if rule != "paper" and r.scale_role == "encode":
        raise ValueError("scale_role='encode' is defined for scale_rule='paper' only")
    if rule == "paper" and r.scale_expr not in ("exact", "(m/amax)*D"):
        raise ValueError("scale_rule='paper' takes scale_expr 'exact' or '(m/amax)*D'")
    if rule != "paper" and r.scale_expr == "(m/amax)*D":
        raise ValueError("scale_expr='(m/amax)*D' belongs to scale_rule='paper'")
    if (r.elem_expr == "(x/D)*s") != (rule == "paper" and r.elem_expr != "exact"):
        raise ValueError("elem_expr='(x/D)*s' is the encode-scale expression of scale_rule='paper' (or use 'exact')")
    pow2 = rule in ("floor", "ceil", "even", "quest")
    if pow2 and r.scale_expr != "exact":
        raise ValueError(f"scale_rule={rule!r} computes a power of two from bit fields; scale_expr must be 'exact'")
    if rule == "quest" and r.blocks != "flat":
        raise ValueError("scale_rule='quest' is defined on contiguous blocks: blocks='flat'")
    srnd = r.scale_rounding if r.scale_rounding is not None else _S.rule_defaults(rule)
    if rule == "ratio" and r.scale_rounding is None:
        raise ValueError("scale_rule='ratio' needs scale_rounding= (e.g. 'toward-positive' for RCEIL)")
    if rule == "rceil" and srnd != "toward-positive":
        raise ValueError("scale_rule='rceil' rounds toward +inf; use scale_rule='ratio' for another rounding")
    if pow2 and r.scale_rounding is not None:
        raise ValueError(f"scale_rule={rule!r} yields exact powers of two; scale_rounding does not apply")
    if r.exponent != "bits" and not pow2:
        if scale_fp32 or sf.name != "e8m0" or srnd not in ("toward-positive", "toward-negative", "toward-zero"):
            raise ValueError("exponent='log2-*' with a ratio rule takes ceil/floor of a float log2: it needs "
                             "scale_fmt='e8m0' and a directed scale_rounding")
    if scale_fp32 and srnd not in (None, "nearest-even"):
        raise ValueError("scale_fmt='fp32' rounds scale quantities to nearest-even only")
    if r.arith == "float32" and dtype == np.float64 and (r.scale_expr != "exact" or r.elem_expr != "exact"):
        raise ValueError("float32 expressions (arith='float32') need a float32/bfloat16/float16 input; cast the "
                         "float64 input yourself or use arith='input'")
    if r.e8m0_arith != "exact" and (scale_fp32 or sf.name != "e8m0" or r.elem_expr == "exact"):
        raise ValueError("e8m0_arith quirks apply to E8M0 scales seen by a float elem_expr")
    if r.e8m0_arith == "rcp0-one" and r.elem_expr != "x*(1/s)":
        raise ValueError("e8m0_arith='rcp0-one' is a reciprocal quirk: it needs elem_expr='x*(1/s)'")
    uses_g = ("G" in r.scale_expr) or r.elem_expr == "x*(1/(s*D))"
    uses_d = ("D" in r.scale_expr) or ("D" in r.elem_expr)
    if (uses_g or uses_d) and r.tensor_scale is None and rule != "paper":
        raise ValueError(f"scale_expr={r.scale_expr!r} / elem_expr={r.elem_expr!r} use the tensor scale; set "
                         f"tensor_scale ({', '.join(_S.TENSOR_SCALES)})")
    ts = ts or _S.TensorScale(1.0, 1.0, None, None)
    t = _compute_type(r.arith, dtype)
    # exactness of x·G and a·G products in float64 (the exact expressions need them)
    if dtype == np.float64 and (r.scale_expr == "exact" or r.elem_expr == "exact"):
        g_pow2 = ts.G == 1.0 or (np.frexp(ts.G)[0] == 0.5)
        if not g_pow2 or rule == "paper":
            raise ValueError("exact expressions with a non-power-of-two encode factor need inputs of at most 24 "
                             "significant bits (float32/bfloat16/float16); got float64")
    # element rounding
    if isinstance(r.rounding, str) and r.rounding.lower().startswith("stochastic"):
        efp, epol = _cast.cast_params(ef, "nearest-even", r.overflow, r.nan, r.neg_zero)
        mode = None
    elif isinstance(r.nan, tuple):
        # explicit (+NaN code, -NaN code): vendors whose NaN bytes no named policy describes
        if len(r.nan) != 2 or not all(isinstance(c, int) and 0 <= c < ef.n_codes for c in r.nan):
            raise ValueError(f"nan=(pos, neg) takes two codes of {ef.name} (0..{ef.n_codes - 1}), got {r.nan!r}")
        efp, epol = _cast.cast_params(ef, r.rounding, r.overflow, None, r.neg_zero)
        epol[P_NAN_POS], epol[P_NAN_NEG] = r.nan
        mode = int(epol[P_MODE])
    else:
        efp, epol = _cast.cast_params(ef, r.rounding, r.overflow, r.nan, r.neg_zero)
        mode = int(epol[P_MODE])
    th = _thresholds(ef, mode) if mode is not None else None
    # scale encoding
    if scale_fp32:
        sfp, spol = _cast.cast_params("e8m0")
        stab = np.zeros(1, np.float64)
        s_nan = s_inf = -1
        if r.scale_nan != "nan" or r.scale_inf not in ("nan", "max"):
            raise ValueError("scale_fmt='fp32' keeps NaN/Inf scale quantities as they are (scale_nan='nan', "
                             "scale_inf='nan')")
    else:
        zero = "min" if not sf.has_zero else None
        sfp, spol = _cast.cast_params(sf, srnd or "nearest-even", r.scale_overflow, None, "keep", None, zero)
        stab = np.array(sf.values, np.float64)  # a fresh writable array: one kernel signature for all formats
        if sf.n_codes < 256:
            stab = np.concatenate([stab, np.full(256 - sf.n_codes, np.nan)])
        s_nan = _scale_special(r.scale_nan, sf, "scale_nan", rule)
        s_inf = _scale_special(r.scale_inf, sf, "scale_inf", rule)
    ip = np.zeros(K.IP_LEN, np.int64)
    fpv = np.zeros(K.FP_LEN, np.float64)
    ip[K.IP_RULE] = {"floor": K.RULE_FLOOR, "ceil": K.RULE_CEIL, "even": K.RULE_EVEN, "rceil": K.RULE_RATIO,
                     "nvfp4": K.RULE_RATIO, "ratio": K.RULE_RATIO, "paper": K.RULE_PAPER,
                     "quest": K.RULE_QUEST}[rule]
    ip[K.IP_EXP] = K.EXP_BITS if r.exponent == "bits" else K.EXP_LOG2
    ip[K.IP_TIN] = K.T_F32 if r.exponent == "log2-f32" else _compute_type("input", dtype)
    ip[K.IP_SEXPR] = list(_S.SCALE_EXPRS).index(r.scale_expr)
    ip[K.IP_EEXPR] = list(_S.ELEM_EXPRS).index(r.elem_expr)
    _choice(r.subnormals, ("keep", "flush"), "subnormals")
    ip[K.IP_T] = t | (K.T_FLUSH if r.subnormals == "flush" else 0)
    ip[K.IP_EMAX] = 0 if rule == "quest" else ef.emax
    ip[K.IP_EMBITS] = ef.mbits
    ip[K.IP_SCALE_FP32] = int(scale_fp32)
    ip[K.IP_SCALE_NAN] = s_nan
    ip[K.IP_SCALE_INF] = s_inf
    ip[K.IP_ZERO_SUB] = int(r.zero_amax is not None)
    ip[K.IP_AMAX_NAN] = int(r.amax_nan == "ignore")
    ip[K.IP_NAN_SIGN] = int(r.nan_sign == "x86")
    ip[K.IP_FAST] = int(th is not None)
    ip[K.IP_ADECODE] = {"exact": K.AD_EXACT, "bits-min-normal": K.AD_BITS_MIN_NORMAL, "bits-inf": K.AD_BITS_INF,
                        "rcp0-one": K.AD_RCP0_ONE}[r.e8m0_arith]
    ip[K.IP_TR], ip[K.IP_TC] = tile
    if r.zero_code is None:
        ip[K.IP_ZERO_CODE] = -1
    elif isinstance(r.zero_code, int) and 0 <= r.zero_code < ef.n_codes:
        ip[K.IP_ZERO_CODE] = r.zero_code
    else:
        raise ValueError(f"zero_code must be None or a code of {ef.name} (0..{ef.n_codes - 1}), got {r.zero_code!r}")
    if r.nan_block is None:
        ip[K.IP_NAN_BLOCK] = -1
    elif isinstance(r.nan_block, int) and 0 <= r.nan_block < ef.n_codes:
        ip[K.IP_NAN_BLOCK] = r.nan_block
    else:
        raise ValueError(f"nan_block must be None or a code of {ef.name} (0..{ef.n_codes - 1}), got {r.nan_block!r}")
    ip[K.IP_PAD] = K.PAD_NONE if r.pad is None else (K.PAD_INCLUDE if r.pad_amax == "include" else K.PAD_EXCLUDE)
    floor = r.scale_floor
    if floor == "min-positive":
        if scale_fp32:
            raise ValueError("scale_floor='min-positive' needs a scale format")
        floor = float(min(v for v in sf.values if 0 < v < np.inf))
    ip[K.IP_FLOOR_ON] = int(floor is not None)
    fpv[K.FP_FLOOR] = 0.0 if floor is None else float(floor)
    fpv[K.FP_M] = ef.max
    fpv[K.FP_G] = ts.G
    fpv[K.FP_D] = ts.D
    fpv[K.FP_ZERO_AMAX] = 0.0 if r.zero_amax is None else float(r.zero_amax)
    fpv[K.FP_PAD] = 0.0 if r.pad is None else float(r.pad)
    if rule == "paper":
        fpv[K.FP_PM] = float(2 ** ef.emax) if (sf is not None and sf.mbits == 0 and sf.kind == "float") \
            else float(ef.max)
    fpv[K.FP_QGS] = float(np.float32(2.92247856 / 6.0))
    fpv[K.FP_QEPS] = float(np.float32(1e-8))
    thp, thn = th if th is not None else (np.zeros(0), np.zeros(0))
    return _Plan(ip, fpv, efp, epol, sfp, spol, stab, thp, thn, scale_fp32)


# --- helpers ---------------------------------------------------------------------------------------------------
def _as_input(x) -> np.ndarray:
    a = _cast.as_float_array(x)
    if a.dtype not in _INPUT_DTYPES:
        raise TypeError(f"x has dtype {a.dtype}; quantize takes float64, float32, float16 or bfloat16")
    return a


def _bits_input(v: np.ndarray) -> tuple[np.ndarray, bool]:
    """(bit patterns, bf16) of a float32/float16/bfloat16 (b, r, C) slice for the bit-pattern kernels, which widen
    16-bit floats a tile row at a time (contiguous; a copy only where the slice is not)."""
    return bit_patterns(np.ascontiguousarray(v))


def _kernel_chunk(v: np.ndarray) -> np.ndarray:
    """A contiguous float32/float64 copy-or-view of a (b, r, C) slice (narrow floats widen exactly)."""
    if v.dtype == np.float64:
        return np.ascontiguousarray(v)
    return _cast.as_float32(v)


def _row_chunks(geo: _blocks.Geometry):
    """(b, r0, r1) slices of the (B, R, C) view, tile-row aligned, about _CHUNK elements each."""
    B, R, C = geo.view
    tr = geo.tile[0]
    rows = max(tr, (_CHUNK // max(C, 1)) // tr * tr)
    for b in range(B):
        for r0 in range(0, R, rows):
            yield b, r0, min(R, r0 + rows)


def _amax(view, geo, plan, hint=None, xform=None) -> tuple[float, bool]:
    """(amax, NaN seen) of the tensor under the recipe's NaN and zero-block options. hint: the largest |x| of
    the tensor where already known (a transform found it), taken when finite and no option changes it. xform:
    see _row_transform (the amax is then that of the transformed chunks)."""
    m, nan = 0.0, False
    simple = plan.ip[K.IP_ZERO_SUB] == 0 and plan.ip[K.IP_PAD] != K.PAD_INCLUDE
    if simple and hint is not None and np.isfinite(hint):
        return hint, False
    for b, r0, r1 in _row_chunks(geo):
        v = view[b:b + 1, r0:r1, :]
        if xform is not None:
            h = xform.amax(v) if simple else None
            if h is not None and np.isfinite(h):
                m = max(m, h)
                continue
            v = xform.chunk(v)
        if simple and v.dtype != np.float64:
            # the largest magnitude bit pattern, 16-bit floats read as such (widening the chunk first cost more
            # than the pass); NaN/Inf, above every finite pattern, go to the generic loop
            a = _max_magnitude(v)
            if np.isfinite(a):
                m = max(m, a)
                continue
        cm, cn = K.tensor_amax(_kernel_chunk(v), plan.ip, plan.fp)
        m = max(m, cm)
        nan = nan or cn
    return m, nan


def _max_magnitude(v: np.ndarray) -> float:
    """The largest |x| of a float32/float16/bfloat16 slice by its bit patterns (magnitude patterns are ordered
    as their values; NaN and Inf come out as such)."""
    bits, _ = _bits_input(v)
    mb = KB.max_magnitude_bits(bits.reshape(-1))
    return float(np.array([mb], bits.dtype).view(v.dtype)[0])


def _apply_transform(a: np.ndarray, r, axis: int) -> tuple[np.ndarray, float | None]:
    """(the recipe's transform of a, the largest |output| where the transform found it on the way, or None)."""
    if r.transform is None:
        return a, None
    from . import hadamard as _H
    size, sg, out, mode = _transform_args(a, r)
    if r.blocks == "flat":
        y, amax = _H.transform_amax(a.reshape(-1, size), size, -1, sg, out_dtype=out, mode=mode)
        return y.reshape(a.shape), amax
    return _H.transform_amax(a, size, axis, sg, out_dtype=out, mode=mode)


def _transform_args(a: np.ndarray, r) -> tuple:
    """(size, signs array or None, output dtype, mode) of the recipe's transform of a."""
    kind, *args = r.transform
    if kind != "hadamard":
        raise ValueError(f"unknown transform {kind!r}; valid: ('hadamard', size, signs, out_dtype, mode) with "
                         "out_dtype 'float32', 'bfloat16', 'float16' or 'input' (x's dtype)")
    size, signs, out_dtype, mode = args
    out = a.dtype if out_dtype == "input" else \
        np.dtype({"float32": np.float32, "bfloat16": ml_dtypes.bfloat16, "float16": np.float16}[out_dtype])
    return size, None if signs is None else np.asarray(signs), out, mode


class _RowTransform(NamedTuple):
    """A recipe transform applied row chunk by row chunk of the (B, R, C) view (see _row_transform)."""
    dtype: np.dtype                 # the transformed dtype
    chunk: Callable                 # v -> the transform of the row chunk v, in one buffer that every chunk reuses
    amax: Callable                  # v -> the largest |output| of chunk(v) (NaN where one is NaN), or None
    rht: int                        # the RHT16 te model's sign mask: KB.quantize_tiles_f32 transforms; else -1


def _row_transform(a: np.ndarray, rec, axis: int, above: int = 0) -> _RowTransform | None:
    """A _RowTransform where the recipe's transform acts within the rows of the (B, R, C) view (blocks along the
    last axis, not flat, one sign vector) and would take more than ``above`` bytes transformed, or is the RHT16
    te model with float32 output: the transformed tensor is then never held whole (bounded memory for large
    inputs). The te model is transformed by the quantize kernel a tile row at a time, its amax found without
    writing the output. None elsewhere, and for stochastic rounding (whose random bits are laid out over the
    whole tensor): the whole tensor is transformed first."""
    if rec.transform is None or rec.transform[0] != "hadamard" or rec.blocks == "flat" or a.size == 0 \
            or (isinstance(rec.rounding, str) and rec.rounding.lower().startswith("stochastic")):
        return None
    if not -a.ndim <= axis < a.ndim or axis % a.ndim != a.ndim - 1:
        return None
    from . import hadamard as _H
    size, sg, out, mode = _transform_args(a, rec)
    if sg is not None and sg.ndim != 1:
        return None
    te = mode == "te" and size == 16 and a.dtype != np.float64 and out in (np.float32, _BF16) \
        and a.shape[-1] % 16 == 0
    # the te model goes row by row at any size for float32 outputs; bfloat16 ones, half the bytes to write and
    # read back, go whole up to `above` (te-nvfp4-rht 16384^2 on a 2-core Xeon: float32 280 vs 339 ms, bfloat16
    # 296 vs 250 ms)
    if a.size * out.itemsize <= above and not (te and out == np.float32):
        return None
    geo = _blocks.geometry(a.shape, axis, rec.blocks, rec.block, pad=rec.pad, tile_scales=rec.tile_scales)
    rows = max(r1 - r0 for _, r0, r1 in _row_chunks(geo))
    buffer = np.empty(rows * geo.view[2], np.uint32 if out == np.float32 else np.uint16)

    def chunk(v):
        return _H.transform_amax(v, size, -1, sg, out_dtype=out, mode=mode, buffer=buffer)[0]
    if not te:
        return _RowTransform(out, chunk, lambda v: None, -1)
    mask = _H.te_sign_mask(sg)
    return _RowTransform(out, chunk, lambda v: _H.te_amax(v, mask, out), mask)


def _bits_path(plan, dtype, shape) -> bool:
    """Whether the float32 bit-pattern loop (kernels/quantize_bits.py) applies to a chunk of this dtype and
    shape."""
    ip = plan.ip
    if dtype == np.float64 or ip[K.IP_RULE] == K.RULE_QUEST or plan.epol[P_E8M0_SUB] != 0 \
            or ip[K.IP_ZERO_CODE] >= 0 or not _no_raise_codes(plan):
        return False
    _, R, C = shape
    if R % ip[K.IP_TR] or C % ip[K.IP_TC]:
        return False  # partial tiles: the generic loop
    d = plan.fp[K.FP_D]
    return ip[K.IP_EEXPR] == K.EE_EXACT or (ip[K.IP_T] == K.T_F32 and float(np.float32(d)) == d)


def _no_raise_codes(plan) -> bool:
    """Whether every code a finite or infinite non-NaN element value can take is a code (no raise sentinel)."""
    (_, _, _, _, _, ovf_pos, ovf_neg, _, _, _, unsigned, neg_abs, neg_code, z_pos, z_neg, _, _, inf_pos, inf_neg,
     *_) = bits32_params(plan.efp, plan.epol)
    codes = [ovf_pos, ovf_neg, z_pos, z_neg, inf_pos, inf_neg] + ([neg_code] if unsigned and not neg_abs else [])
    return min(codes) >= 0


def _quantize_bits(v, cc, sc, sv, plan, tabs, sr=None, xform=None) -> None:
    """The bit-pattern loop on the float32/float16/bfloat16 chunk v, then the generic loop over the tiles it left
    (gathered, one call). tabs: KB.tables of the plan (made once per call). sr: (the chunk's random integers
    (1, r, C), width, recipe) for stochastic-ptx: the element codes are rounded with them, from the same element
    values (KB.sr_tiles_f32; gathered tiles through fp4ref.encode, as the generic stochastic path does).
    xform: a _RowTransform with an rht mask, v then the untransformed chunk: the kernel transforms it."""
    ip = plan.ip
    tr, tc = int(ip[K.IP_TR]), int(ip[K.IP_TC])
    slow = np.zeros(sc.shape, np.uint8)
    xin, bf16 = _bits_input(v)
    # bfloat16 as int16: the kernel's amax and ladder loops then read the 16-bit patterns without widening them
    # (not as a transform's input: the transformed rows are float32 patterns)
    xk = xin.view(np.int16) if bf16 and xform is None else xin
    rht, rht_bf16 = (-1, False) if xform is None else (xform.rht, xform.dtype == _BF16)
    KB.quantize_tiles_f32(xk, bf16, cc, sc, sv, slow, ip, plan.fp, plan.sfp, plan.spol, plan.stab, tabs, rht,
                          rht_bf16)
    if sr is not None:
        KB.sr_tiles_f32(xin, bf16, sr[0], sr[1], cc, sc, sv, slow, ip, plan.fp, tabs)
    if not slow.any():
        return
    if xform is not None:
        v = xform.chunk(v)
    ti, tj = np.nonzero(slow[0])
    rows = (ti * tr)[:, None, None] + np.arange(tr)[None, :, None]
    cols = (tj * tc)[:, None, None] + np.arange(tc)[None, None, :]
    xs = _kernel_chunk(v[0][rows, cols]).reshape(1, ti.size * tr, tc)
    cs = np.empty(xs.shape, np.uint8)
    vs = np.empty(xs.shape if sr is not None else (1, 1, 1), np.float64)
    scs = np.empty((1, ti.size, 1), np.int16)
    svs = np.empty((1, ti.size, 1), np.float64)
    K.quantize_tiles(xs, cs, vs, scs, svs, ip, plan.fp, plan.efp, plan.epol, plan.sfp, plan.spol, plan.stab,
                     plan.thp, plan.thn)
    if sr is not None:
        rc, width, rec = sr
        cs = _cast.encode(vs.reshape(-1), rec.elem, rec.rounding, overflow=rec.overflow, nan=rec.nan,
                          neg_zero=rec.neg_zero, rbits=rc[0][rows, cols].reshape(-1),
                          rbits_width=width).reshape(cs.shape)
    cc[0][rows, cols] = cs.reshape(ti.size, tr, tc)
    sc[0, ti, tj] = scs[0, :, 0]
    sv[0, ti, tj] = svs[0, :, 0]


def _ptx_width(rec, a) -> int:
    """The random bits per element that stochastic-ptx takes for the recipe's element format (the PTX width)."""
    from . import stochastic as _St
    return _St._width("stochastic-ptx", _formats.get(rec.elem), None, None, ml_dtypes.finfo(a.dtype).nmant + 1)


def _sr_bits(rec, plan, a, rbits, geo_view):
    """(per-element random integers in the (B, R, C) view, width) where stochastic rounding can take the
    bit-pattern loops (stochastic-ptx, explicit bits, the float32 bit-field conditions), else None."""
    from . import stochastic as _St
    if a.dtype == np.float64 or _St.variant_name(rec.rounding) != "stochastic-ptx":
        return None
    width = _ptx_width(rec, a)
    if not _St._ptx32(_St.K.V_PTX, a, width, plan.epol):
        return None
    return _St._element_bits(rbits, a.shape, width).reshape(geo_view), width


def _get_recipe(recipe, overrides):
    from . import recipes as _recipes
    rec = _recipes.get(recipe)
    if overrides:
        known = {f.name for f in fields(rec)}
        bad = sorted(set(overrides) - known)
        if bad:
            raise TypeError(f"unknown option(s) {', '.join(bad)}; options: {', '.join(sorted(known - {'name'}))}")
        rec = replace(rec, **overrides)
    return rec


def _philox_as_bits(rec, rbits, a):
    """PhiloxBits for stochastic-ptx as the explicit integers they give each element (fp4ref.stochastic
    .philox_integers), so that they take the bit-pattern loops (1-4 bytes per element, where the generic path
    holds float64 element values); anything else unchanged."""
    from . import stochastic as _St
    if not isinstance(rbits, _St.PhiloxBits) or a.dtype == np.float64 \
            or _St.variant_name(rec.rounding) != "stochastic-ptx":
        return rbits
    return _St.philox_integers(rbits, a.shape, _ptx_width(rec, a))


def _run(a: np.ndarray, rec, axis: int, global_amax=None, rbits=None, sr_chunks=True, hint=None,
         xform=None) -> QuantizedTensor:
    """Quantize a: already transformed by the recipe's transform (hint: the transform's amax, see _amax), or
    transformed here chunk by chunk by xform (see _row_transform)."""
    geo = _blocks.geometry(a.shape, axis, rec.blocks, rec.block, pad=rec.pad, tile_scales=rec.tile_scales)
    view = geo.view_of(a)
    dt = a.dtype if xform is None else xform.dtype
    plan0 = resolve(rec, dt, geo.tile)
    ts = _S.TensorScale(1.0, 1.0, None, None)
    if rec.tensor_scale is not None:
        if rec.global_scale is not None:
            amax = np.nan
        elif global_amax is not None:
            amax = float(global_amax)
        else:
            m, nan = _amax(view, geo, plan0, hint, xform)
            amax = np.nan if nan else m
        ts = _S.tensor_scale(rec.tensor_scale, amax, elem=rec.elem, scale_fmt=rec.scale_fmt,
                             global_scale=rec.global_scale)
    elif rec.global_scale is not None or global_amax is not None:
        raise ValueError("global_scale/global_amax given but the recipe has no tensor_scale")
    plan = resolve(rec, dt, geo.tile, ts)
    stochastic = isinstance(rec.rounding, str) and rec.rounding.lower().startswith("stochastic")
    if rbits is not None and not stochastic:
        raise ValueError(f"rbits= applies to stochastic rounding; recipe rounding is {rec.rounding!r}")
    rbits = _philox_as_bits(rec, rbits, a)
    B, R, C = geo.view
    codes = np.empty((B, R, C), np.uint8)
    # stochastic rounding with per-element bits where the kernel view is x's memory order: the element values
    # are rounded chunk by chunk (bounded memory); otherwise (Philox bits, a moved axis) as one array
    sr_chunks = sr_chunks and stochastic and isinstance(rbits, np.ndarray) and rbits.shape == a.shape \
        and not (geo.layout == "1d" and geo.axis != a.ndim - 1)
    vals = np.empty((B, R, C), np.float64) if stochastic and not sr_chunks else np.empty((1, 1, 1), np.float64)
    grid = geo.grid
    scode = np.empty(grid, np.int16)
    sval = np.empty(grid, np.float64)  # read back only for fp32 scales (a coded scale's value is stab[code])
    tr = geo.tile[0]
    srb = _sr_bits(rec, plan, a, rbits, geo.view) if sr_chunks else None
    tabs = None
    for b, r0, r1 in _row_chunks(geo):
        # the kernels write straight into the outputs: these slices are contiguous views
        v = view[b:b + 1, r0:r1, :]
        bits = _bits_path(plan, dt, v.shape)  # a transform keeps the shape
        fused = xform is not None and xform.rht >= 0 and bits
        if xform is not None and not fused:
            v = xform.chunk(v)
        cc = codes[b:b + 1, r0:r1]
        t0, t1 = r0 // tr, -(-r1 // tr)
        sc, sv = scode[b:b + 1, t0:t1], sval[b:b + 1, t0:t1]
        if (not stochastic or srb is not None) and bits:
            sr = None if srb is None else (srb[0][b:b + 1, r0:r1], srb[1], rec)
            if tabs is None:
                tabs = KB.tables(plan.ip, plan.fp, plan.efp, plan.epol, plan.sfp, plan.spol, plan.stab)
            _quantize_bits(v, cc, sc, sv, plan, tabs, sr, xform if fused else None)
            continue
        vc = np.empty(v.shape, np.float64) if sr_chunks else vals[b:b + 1, r0:r1] if stochastic else vals
        K.quantize_tiles(_kernel_chunk(v), cc, vc, sc, sv, plan.ip, plan.fp, plan.efp, plan.epol, plan.sfp,
                         plan.spol, plan.stab, plan.thp, plan.thn)
        if sr_chunks:
            lo, hi = (b * R + r0) * C, (b * R + r1) * C
            try:
                cc[...] = _cast.encode(vc.reshape(-1), rec.elem, rec.rounding, overflow=rec.overflow, nan=rec.nan,
                                       neg_zero=rec.neg_zero, rbits=rbits.reshape(-1)[lo:hi]).reshape(cc.shape)
            except _cast.CastError:
                # an error names the flat index of the element: say it for the whole tensor
                return _run(a, rec, axis, global_amax, rbits, sr_chunks=False, hint=hint)
    if stochastic and not sr_chunks:
        flat = geo.codes_from_view(vals)
        codes_x = _cast.encode(flat, rec.elem, rec.rounding, overflow=rec.overflow, nan=rec.nan,
                               neg_zero=rec.neg_zero, rbits=rbits)
    else:
        codes_x = geo.codes_from_view(codes)
    if plan.scale_fp32:
        scales = geo.scales_from_grid(sval.astype(np.float32))
    else:
        scales = geo.scales_from_grid(scode.astype(np.uint8))
    return QuantizedTensor(codes=codes_x, scales=scales, global_scale=ts.stored,
                           global_scale_convention=ts.convention, recipe=rec, axis=geo.axis, shape=a.shape,
                           dtype=str(dt))


# --- public API ------------------------------------------------------------------------------------------------
def quantize(x, recipe="ocp-mxfp4", axis: int = -1, *, global_amax=None, rbits=None, **overrides) -> QuantizedTensor:
    """Quantize ``x`` with a named recipe (or a :class:`fp4ref.recipes.Recipe`), options overridden by keyword.

    x: float64, float32, float16 or bfloat16 (ml_dtypes) array. axis: the blocked axis of 1-D blocks (2-D tiles
    take the last two axes; "flat" blocks ignore it). global_amax: a calibrated tensor amax for recipes with a
    tensor scale (default: x's own). rbits: explicit random bits for ``rounding="stochastic-*"`` (passed to
    :func:`fp4ref.cast.encode`). Every other keyword is an option of :class:`fp4ref.recipes.Recipe`.
    """
    rec = _get_recipe(recipe, overrides)
    a = _as_input(x)
    xform = _row_transform(a, rec, axis, above=_WHOLE_TRANSFORM)
    if xform is not None:
        return _run(a, rec, axis, global_amax=global_amax, rbits=rbits, xform=xform)
    a, hint = _apply_transform(a, rec, axis)
    return _run(a, rec, axis, global_amax=global_amax, rbits=rbits, hint=hint)


def quantize_rows(x, start: int, stop: int, recipe="ocp-mxfp4", *, global_amax=None, **overrides) -> QuantizedTensor:
    """Quantize rows ``start:stop`` of a 2-D ``x`` (e.g. a memory-mapped array), blocks along the last axis.

    The rows must be whole tile rows (multiples of the tile height for 2-D tiles). Recipes with a tensor scale
    need ``global_amax`` (the whole tensor's, e.g. from :func:`tensor_amax`), so that every chunk uses the same
    factor; the result equals the corresponding rows of ``quantize(x, ...)``.
    """
    rec = _get_recipe(recipe, overrides)
    if np.ndim(x) != 2:
        raise ValueError(f"quantize_rows takes a 2-D array, got {np.ndim(x)} dimensions")
    if rec.blocks == "flat":
        raise ValueError("quantize_rows: blocks='flat' crosses rows; quantize the whole array")
    tr = rec.block[0] if rec.blocks == "2d" else 1
    if not (0 <= start <= stop <= np.shape(x)[0]) or start % tr or (stop % tr and stop != np.shape(x)[0]):
        raise ValueError(f"rows {start}:{stop} must lie in 0:{np.shape(x)[0]} and align to tile rows of {tr}")
    if rec.tensor_scale is not None and global_amax is None and rec.global_scale is None:
        raise ValueError(f"recipe {rec.name!r} has a tensor scale ({rec.tensor_scale}); pass global_amax= "
                         "(fp4ref.tensor_amax(x, recipe)) so that every chunk uses the same factor")
    a, _ = _apply_transform(_as_input(x[start:stop]), rec, -1)
    return _run(a, rec, -1, global_amax=global_amax)


def tensor_amax(x, recipe="ocp-mxfp4", axis: int = -1, **overrides) -> float:
    """The tensor amax the recipe's tensor scale uses (its NaN and zero-block options applied), chunked."""
    rec = _get_recipe(recipe, overrides)
    a = _as_input(x)
    xform = _row_transform(a, rec, axis)
    hint = None
    if xform is None:
        a, hint = _apply_transform(a, rec, axis)
    geo = _blocks.geometry(a.shape, axis, rec.blocks, rec.block, pad=rec.pad, tile_scales=rec.tile_scales)
    m, nan = _amax(geo.view_of(a), geo, resolve(rec, a.dtype if xform is None else xform.dtype, geo.tile), hint,
                   xform)
    return float("nan") if nan else m


def dequantize(q: QuantizedTensor, dtype=np.float32) -> np.ndarray:
    """Values of a QuantizedTensor: element × scale (÷ scale for encode-role scales) × the tensor decode factor.

    Computed in float64 (exact, except the division by an encode-convention global scale or an encode-role
    scale) and rounded once to ``dtype`` (float32 default; float64, float16 or bfloat16).
    """
    dt, geo, grid = _dequantize_args(q, dtype)
    rec = q.recipe
    view = geo.view_of(np.asarray(q.codes))
    out = np.empty(view.shape, np.float32 if dt == np.float32 else np.float64)
    g = 1.0 if q.global_scale_convention is None else float(q.global_scale)
    gmode = {None: 0, "encode": 1}.get(q.global_scale_convention, 2)
    table = _cast.decode((np.arange(256) % _formats.get(rec.elem).n_codes).astype(np.uint8), rec.elem, np.float64)
    KD.dequantize_tiles(np.ascontiguousarray(view), np.ascontiguousarray(grid), table, geo.tile[0], geo.tile[1],
                        rec.scale_role == "encode", gmode, g, out)
    v = geo.codes_from_view(out)
    with np.errstate(over="ignore"):  # beyond a narrow dtype's range: ±Inf, as IEEE rounding gives
        return v if v.dtype == dt else v.astype(dt)


def dequantize_reference(q: QuantizedTensor, dtype=np.float32) -> np.ndarray:
    """dequantize in NumPy array operations, element by element as the docstring says (the tests' reference)."""
    dt, geo, grid = _dequantize_args(q, dtype)
    rec = q.recipe
    elem = _cast.decode(q.codes, rec.elem, np.float64)
    s = grid.reshape(-1)[geo.scale_index_of_elements()]
    with np.errstate(all="ignore"):
        v = elem / s if rec.scale_role == "encode" else elem * s
        if q.global_scale_convention == "encode":
            v = v / float(q.global_scale)
        elif q.global_scale_convention is not None:
            v = v * float(q.global_scale)
        return v.astype(dt)


def _dequantize_args(q: QuantizedTensor, dtype):
    dt = np.dtype(dtype)
    if dt not in _INPUT_DTYPES:
        raise TypeError(f"dtype must be float32, float64, float16 or bfloat16, got {dt}")
    rec = q.recipe
    geo = _blocks.geometry(q.shape, q.axis if rec.blocks != "flat" else -1, rec.blocks, rec.block, pad=rec.pad,
                           tile_scales=rec.tile_scales)
    return dt, geo, _scale_values(q, geo)


def _scale_values(q: QuantizedTensor, geo: _blocks.Geometry) -> np.ndarray:
    """The decoded scale of every block in the kernel grid order (B, nTR, nTC)."""
    rec = q.recipe
    sc = np.asarray(q.scales)
    if rec.scale_fmt == "fp32":
        vals = sc.astype(np.float64)
    else:
        vals = _cast.decode(sc, rec.scale_fmt, np.float64)
    B, nr, nc = geo.grid
    if geo.layout == "flat":
        return vals.reshape(B, nr, nc)
    if geo.layout == "2d":
        v = vals.reshape(B, -1, nc)
        if geo.tile_scales == "rows":
            v = v[:, :: geo.tile[0], :]
        return v
    moved = np.moveaxis(vals, geo.axis, -1)
    return np.ascontiguousarray(moved).reshape(B, nr, nc)
