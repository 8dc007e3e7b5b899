"""Scale rules and tensor (global) scale conventions: the names, what each computes, and where it comes from.

A block's scale is computed from its amax ``a`` (the largest |x| of the block, or another statistic for
``quest``) and then stored as a code of the scale format. ``m`` is the element format's largest finite value
and ``emax`` the exponent of its top binade (OCP MX v1.0 "emax_elem": E2M1 2, E2M3 2, E3M2 4, E4M3 8, E5M2 15,
MXINT8 0).

Scale rules (``scale_rule``):

- ``floor``  OCP MX v1.0 §6.3 Algorithm 1: ``X = 2^(floor(log2 a) − emax)``; a scale of 2^(top of the binade)
  means elements in (m, 2^(emax+1)) after scaling saturate to m (semantics.md D-1).
- ``ceil``   torchao CEIL: ``X = 2^(ceil(log2 a) − emax)``.
- ``even``   torchao EVEN: ``a`` is first rounded to (element mantissa bits + 1) significant bits, ties away from
  zero (torchao adds half an element ulp to the float32 bit pattern and truncates), then ``floor``.
- ``rceil``  ``X = ceil_pow2(a / m)``: the ratio rounded toward +∞ into E8M0 (TransformerEngine MXFP8 via PTX
  ``cvt.rp.satfinite.ue8m0x2.f32``, JAX mxfp8, cuBLAS, torchao RCEIL). The float operations that form the
  ratio are ``scale_expr``.
- ``nvfp4``  ``X = round(a / m)`` into the scale format (UE4M3 for NVFP4), nearest-even by default, with the
  tensor scale folded in as ``scale_expr`` says (TransformerEngine ``compute_decoding_scaling_factor``).
- ``ratio``  the same computation as ``rceil``/``nvfp4`` with an explicit ``scale_rounding``.
- ``paper``  the FP4 design-space simulator's rule (MrHuff/mfu-fp4-training,
  ``quantization/ExMy.py::ExMy_new.scale_by_format_max``): the rounded quantity is the ENCODE scale
  ``R = m' / a · g`` with ``m' = 2^emax`` for scale formats without mantissa bits (E8M0: 4 for E2M1) and
  ``m' = m`` otherwise (6 for E2M1); a zero block uses a = 1 (``zero_amax=1.0``); R is rounded with
  ``scale_rounding`` (toward +∞ in the simulator's default config) and clamped below to the scale format's
  smallest positive value; elements are multiplied by R (``scale_role="encode"``).
- ``quest``  Quartet's forward QuEST rule (IST-DASLab/Quartet ``src/models/quantization/quantizers/
  mxfp4_triton.py``, ``quest=True``): on contiguous blocks of 32, ``σ = sqrt(mean(x²) − mean(x)²)`` in float32
  (pairwise tree sums), ``X = 2^floor(log2(gs·σ + 1e-8))`` with ``gs = 2.92247856/6``; elements ``x / X``.

Exponents (``exponent``) of the power-of-two rules come from the float's bit fields (``bits``, exact; D-2);
``log2-f32`` takes floor/ceil of a correctly rounded float32 ``log2`` instead, which is what code calling
``torch.log2``/``np.log2`` on float32 gets just above/below powers of two (torchao 0.18 RCEIL fallback, gfloat
``compute_scale_amax``, microxcaling); ``log2-input`` rounds the log2 to the input's dtype (bfloat16 inputs in
microxcaling, float64 blocks in gfloat).

Tensor scale conventions (``tensor_scale``), with ``smax`` the scale format's max and ``M = smax·m`` (2688 for
NVFP4):

- ``nvfp4-encode``      TransformerEngine CUDA ``compute_global_encode_scaling_factor_FP4``:
  ``G = fminf(fl32(M / amax), FLT_MAX)``; ``G = 1`` when amax == 0 or G == 0 (amax = Inf); a NaN amax gives
  FLT_MAX (fminf drops the NaN). ``D = fl32(1 / G)``. Stored: G ("encode": multiply x by it).
- ``nvfp4-encode-ref``  TransformerEngine's PyTorch reference (``reference_nvfp4.py``):
  ``G = min(fl32(M / amax), FLT_MAX)`` (amax 0 → FLT_MAX, NaN stays NaN), G == 0 → 1. ``D = fl32(1 / G)``.
- ``nvfp4-decode``      torchao ``per_tensor_amax_to_scale``: ``D = fl32(amax / M)``. Stored: D ("decode":
  multiply the dequantized value by it).
- ``divisor``           JAX ``BlockScaleConfig.global_scale``: x is divided by ``D = global_scale`` first.
- ``amax``              the simulator's tensor scaling: ``D = g`` = the largest block amax (after the zero-block
  substitution), in the input dtype; x is divided by it.

``global_scale`` overrides the computed factor (a calibrated value); ``global_amax`` replaces the tensor's amax
in the formula.
"""
from __future__ import annotations

import numpy as np

from . import formats as _formats

__all__ = ["SCALE_RULES", "SCALE_EXPRS", "ELEM_EXPRS", "TENSOR_SCALES", "TensorScale", "tensor_scale",
           "rule_defaults"]

SCALE_RULES = ("floor", "ceil", "even", "rceil", "nvfp4", "ratio", "paper", "quest")
EXPONENTS = ("bits", "log2-f32", "log2-input")

# The float operations that form a ratio rule's quantity; m = element max, G/D = tensor encode/decode factor,
# each step rounded into the compute type (``arith``). "exact" rounds once from the exact value a·G/(m·D).
SCALE_EXPRS = {
    "exact": "a·G/(m·D) exactly (one rounding into the scale format)",
    "amax/m": "fl(a / m)  (JAX mxfp8/nvfp4, torchao nvfp4 single level, torchao 0.18 RCEIL)",
    "amax*(1/m)": "fl(a · fl(1/m))  (TransformerEngine MXFP8 max_norm_rcp, torchao RCEIL on main)",
    "amax*(G*(1/m))": "fl(a · fl(G · fl(1/m)))  (TransformerEngine NVFP4, kernel and reference)",
    "(amax/m)/D": "fl(fl(a / m) / D)  (torchao nvfp4 two level)",
    "(amax/D)/m": "fl(fl(a / D) / m)  (JAX nvfp4 as written: x is divided by the global scale first)",
    "(m/amax)*D": "fl(fl(m' / a) · D)  (the simulator's encode scale, 'paper' rule only)",
    "(amax/D)*(1/m)": "fl(fl(a / D) · fl(1/m))  (JAX nvfp4 on XLA CPU, which turns the division by the constant "
                      "m into a multiplication by its reciprocal)",
    "(amax*(1/D))*(1/m)": "fl(fl(a · fl(1/D)) · fl(1/m))  (every division a reciprocal multiplication)",
}
# The float operations that scale one element before rounding; s = the block's decoded scale.
ELEM_EXPRS = {
    "exact": "x·G/(s·D) exactly (x·s/D for encode-role scales); one rounding into the element format",
    "x/s": "fl(x / s)  (JAX mxfp8, torchao 0.18 FLOOR/CEIL/EVEN)",
    "x*(1/s)": "fl(x · fl(1/s))  (TransformerEngine MXFP8 exp2f_rcp, torchao RCEIL, torchao nvfp4 single level)",
    "x*(1/(s*D))": "fl(x · min(fl(1 / fl(s·D)), FLT_MAX))  (TransformerEngine NVFP4)",
    "x*((1/D)/s)": "fl(x · fl(fl(1/D) / s))  (torchao nvfp4 two level)",
    "(x/D)/s": "fl(fl(x / D) / s)  (JAX nvfp4)",
    "(x/D)*s": "fl(fl(x / D) · s) with s the encode scale  (the simulator)",
    "(x/D)*(1/s)": "fl(fl(x / D) · fl(1/s))  (JAX nvfp4 on XLA CPU: division by the broadcast scale becomes a "
                   "reciprocal multiplication)",
    "(x*(1/D))*(1/s)": "fl(fl(x · fl(1/D)) · fl(1/s))  (every division a reciprocal multiplication)",
}
ARITH = ("float32", "input")
TENSOR_SCALES = ("nvfp4-encode", "nvfp4-encode-ref", "nvfp4-decode", "divisor", "amax")
CONVENTION = {"nvfp4-encode": "encode", "nvfp4-encode-ref": "encode", "nvfp4-decode": "decode",
              "divisor": "divisor", "amax": "amax"}

_FLT_MAX = np.float32(np.finfo(np.float32).max)


def rule_defaults(rule: str) -> str | None:
    """The scale rounding a rule implies (None: the rule yields an exact power of two)."""
    return {"rceil": "toward-positive", "nvfp4": "nearest-even", "paper": "toward-positive"}.get(rule)


class TensorScale:
    """Resolved tensor scale: G multiplies (encode), D divides (decode); ``stored`` is what a QuantizedTensor
    keeps, under ``convention``."""

    __slots__ = ("G", "D", "stored", "convention")

    def __init__(self, G: float, D: float, stored, convention):
        self.G, self.D, self.stored, self.convention = G, D, stored, convention

    def __repr__(self):
        return f"TensorScale(G={self.G!r}, D={self.D!r}, stored={self.stored!r}, convention={self.convention!r})"


def _f32(v) -> np.float32:
    return np.float32(v)


def tensor_scale(kind: str | None, amax: float, *, elem, scale_fmt, global_scale=None) -> TensorScale:
    """The tensor scale of convention ``kind`` for tensor amax ``amax`` (float32 arithmetic as each source).

    ``global_scale`` (a number) is taken as the stored factor itself instead of computing it from ``amax``.
    """
    if kind is None:
        if global_scale is not None:
            raise ValueError("global_scale given but tensor_scale is None; choose a tensor_scale convention "
                             f"({', '.join(TENSOR_SCALES)})")
        return TensorScale(1.0, 1.0, None, None)
    if kind not in TENSOR_SCALES:
        raise ValueError(f"unknown tensor_scale {kind!r}; valid: None, {', '.join(TENSOR_SCALES)}")
    conv = CONVENTION[kind]
    if kind == "divisor" and global_scale is None:
        raise ValueError("tensor_scale='divisor' needs global_scale= (JAX's BlockScaleConfig.global_scale; its "
                         "get_scaled_dot_general_config default is 1.0)")
    with np.errstate(all="ignore"):
        if conv == "encode":
            if global_scale is not None:
                G = _f32(global_scale)
            else:
                M = _f32(_f32(_formats.get(scale_fmt).max) * _f32(_formats.get(elem).max))
                G = _f32(M / _f32(amax))
                if kind == "nvfp4-encode":
                    G = G if G == G else _FLT_MAX        # fminf returns the non-NaN operand
                    G = min(G, _FLT_MAX)
                    if _f32(amax) == 0 or G == 0:
                        G = _f32(1.0)
                else:
                    G = _f32(np.minimum(G, _FLT_MAX))    # torch.min propagates NaN
                    if G == 0:
                        G = _f32(1.0)
            D = _f32(_f32(1.0) / G)
            return TensorScale(float(G), float(D), G, conv)
        if global_scale is not None:
            D = _f32(global_scale)
        elif kind == "nvfp4-decode":
            M = _f32(_f32(_formats.get(scale_fmt).max) * _f32(_formats.get(elem).max))
            D = _f32(_f32(amax) / M)
        else:  # amax: g itself, a value of the input dtype (float64 inputs keep a float64 g)
            D = _f32(amax) if float(_f32(amax)) == float(amax) or amax != amax else np.float64(amax)
        return TensorScale(1.0, float(D), D, conv)
