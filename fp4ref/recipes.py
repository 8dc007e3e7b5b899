"""Named quantization recipes: one frozen record each, citing the implementation it reproduces.

A recipe is DATA: the complete option set of the pipeline (:mod:`fp4ref.quantize`). Every field is an option
``fp4ref.quantize(x, recipe, **overrides)`` accepts; the defaults are OCP MX v1.0 MXFP4. Each recipe's
``proof`` names the captured vendor outputs (tests/data/vendor_*.npz, tests/test_recipes_vendors.py) that its
codes and scales are compared with byte for byte; ``notes`` says what could not be run.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

__all__ = ["Recipe", "get", "names", "all_recipes", "register", "table"]

_OCP = "OCP Microscaling Formats (MX) v1.0 §6.3 Algorithm 1"


@dataclass(frozen=True)
class Recipe:
    """The options of the block-quantization pipeline (defaults: OCP MX v1.0 MXFP4).

    Formats
      elem           element format name (fp4ref.formats), e.g. e2m1, e2m3, e3m2, e4m3, e5m2, mxint8.
      scale_fmt      e8m0, ue4m3, ue5m3-61440/-114688/-122880, e4m3-scale, e5m2-scale, or "fp32" (unquantized
                     float32 scale, for exact-scale studies).
    Blocks (fp4ref.blocks)
      blocks         "1d" (along axis) | "2d" (tiles over the last two axes) | "flat" (contiguous memory).
      block          block length, or (rows, cols) for "2d".
      tile_scales    "2d" scale storage: "grid" (one per tile) | "rows" (repeated per row, TransformerEngine).
      pad, pad_amax  None: ragged lengths are an error; else the pad value and whether it enters the amax
                     ("include" | "exclude").
    Scale (fp4ref.scaling)
      scale_rule     floor | ceil | even | rceil | nvfp4 | ratio | paper | quest.
      exponent       "bits" (exact, from bit fields) | "log2-f32" (floor/ceil of a float32 log2).
      scale_rounding rounding of a ratio quantity into the scale format (None: the rule's own).
      scale_expr     the float expression forming the ratio quantity (fp4ref.scaling.SCALE_EXPRS).
      scale_overflow "nan" | "saturate": a scale beyond the format's max (E8M0: 0xFF vs satfinite 0xFE).
      scale_nan      code for a NaN quantity: "nan" (format NaN, 0xFF) | "max" | "min" (0x00).
      scale_inf      code for an infinite quantity: "nan" | "max" | "exponent-field" (float32 Inf read as 2^128).
      scale_floor    None | a value | "min-positive": the quantity is clamped below before rounding.
      zero_amax      None, or the amax an all-zero block uses instead (the simulator: 1.0).
      amax_nan       "propagate" (a NaN makes the amax NaN) | "ignore" (fmaxf in CUDA kernels).
      scale_role     "decode" (value = code × scale) | "encode" (value = code / scale; the simulator).
      e8m0_arith     how float element arithmetic sees E8M0 codes: "exact" | "bits-min-normal" (0x00 → 2^-126,
                     0xFF → +Inf: torchao 0.18 FLOOR/CEIL/EVEN) | "bits-inf" (0xFF → +Inf: JAX) |
                     "rcp0-one" (reciprocal of 0x00 is 1.0: torchao 0.18 RCEIL).
    Tensor scale
      tensor_scale   None | nvfp4-encode | nvfp4-encode-ref | nvfp4-decode | divisor | amax.
      global_scale   an explicit tensor scale (stored convention), e.g. JAX's default 1.0.
    Elements (fp4ref.cast)
      elem_expr      the float expression scaling one element (fp4ref.scaling.ELEM_EXPRS).
      arith          compute type of the float expressions: "float32" | "input" (the input's dtype).
      subnormals     "keep" | "flush": the float expressions read subnormal operands as zero and flush
                     subnormal results (DAZ/FTZ, as XLA's CPU backend runs).
      rounding, overflow, nan, neg_zero   element rounding and policies, as fp4ref.cast.encode; ``nan`` may
                     also be an explicit (code for +NaN, code for -NaN) pair.
      nan_sign       sign of a NaN the element arithmetic produces: "canonical" (+, CUDA) | "x86" (an input
                     NaN keeps its sign; an invalid operation such as Inf/Inf gives the negative default NaN).
      nan_block      None, or the one code every element of a block with a NaN scale gets (e.g. the element
                     NaN code: "the whole block is NaN"; torchao nvfp4: 0x4, its bit trick on PyTorch's E4M3 NaN).
      zero_code      None, or the code every element whose scaled value is ±0 gets (Quartet: 0x8, its sign is
                     "−1 unless v > 0").
      transform      None | ("hadamard", size, signs or None, out_dtype, mode): fp4ref.hadamard.hadamard along the
                     blocked axis (out_dtype "input" keeps x's dtype), applied before the amax.
    Provenance: name, summary, source, proof, notes.
    """
    name: str = "custom"
    elem: str = "e2m1"
    scale_fmt: str = "e8m0"
    blocks: str = "1d"
    block: object = 32
    tile_scales: str = "grid"
    pad: float | None = None
    pad_amax: str = "include"
    scale_rule: str = "floor"
    exponent: str = "bits"
    scale_rounding: str | None = None
    scale_expr: str = "exact"
    scale_overflow: str = "nan"
    scale_nan: str = "nan"
    scale_inf: str = "nan"
    scale_floor: object = None
    zero_amax: float | None = None
    amax_nan: str = "propagate"
    scale_role: str = "decode"
    e8m0_arith: str = "exact"
    tensor_scale: str | None = None
    global_scale: float | None = None
    elem_expr: str = "exact"
    arith: str = "float32"
    subnormals: str = "keep"
    rounding: str = "nearest-even"
    overflow: str = "saturate"
    nan: str | None = None
    neg_zero: str = "keep"
    nan_sign: str = "canonical"
    nan_block: int | None = None
    zero_code: int | None = None
    transform: tuple | None = None
    summary: str = ""
    source: str = ""
    proof: str = ""
    notes: str = ""

    _PROVENANCE = ("summary", "source", "proof", "notes")

    def to_dict(self) -> dict:
        d = asdict(self)
        if isinstance(d["block"], tuple):
            d["block"] = list(d["block"])
        if d["transform"] is not None:
            d["transform"] = [list(v) if isinstance(v, tuple) else v for v in d["transform"]]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        d = dict(d)
        if isinstance(d.get("block"), list):
            d["block"] = tuple(d["block"])
        if d.get("transform") is not None:
            d["transform"] = tuple(tuple(v) if isinstance(v, list) else v for v in d["transform"])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def options(self) -> dict:
        """The pipeline options alone (no provenance)."""
        return {k: v for k, v in self.to_dict().items() if k not in self._PROVENANCE and k != "name"}


_REGISTRY: dict[str, Recipe] = {}


def register(r: Recipe) -> Recipe:
    if r.name in _REGISTRY:
        raise ValueError(f"recipe {r.name!r} already registered")
    _REGISTRY[r.name] = r
    return r


def get(name) -> Recipe:
    """A recipe by name (a Recipe passes through)."""
    if isinstance(name, Recipe):
        return name
    if not isinstance(name, str):
        raise TypeError(f"recipe must be a name or a Recipe, got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; valid recipes: {', '.join(names())}") from None


def names() -> list[str]:
    return list(_REGISTRY)


def all_recipes() -> list[Recipe]:
    return list(_REGISTRY.values())


def table() -> str:
    """One line per recipe: name, formats, block, scale rule, summary (for ``fp4ref recipes``)."""
    rows = []
    for r in _REGISTRY.values():
        blk = "x".join(map(str, r.block)) if isinstance(r.block, tuple) else str(r.block)
        ts = f" +{r.tensor_scale}" if r.tensor_scale else ""
        rows.append((r.name, f"{r.elem}/{r.scale_fmt}", f"{r.blocks}:{blk}", r.scale_rule + ts, r.summary))
    w = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(f"{a:<{w[0]}}  {b:<{w[1]}}  {c:<{w[2]}}  {d:<{w[3]}}  {e}" for a, b, c, d, e in rows)


# --- OCP MX v1.0 -----------------------------------------------------------------------------------------------
_ocp = Recipe(name="ocp-mxfp4", elem="e2m1", summary="OCP MXFP4: E2M1, E8M0, 32, FLOOR, RNE, saturate",
              source=_OCP + " (scale 2^(floor(log2 amax) - emax_elem), elements x/X rounded RNE, saturating; "
                     "shared exponent below -127 clamps to 2^-127, above 127 gives NaN as microxcaling)")
register(_ocp)
for _n, _e in (("ocp-mxfp6-e2m3", "e2m3"), ("ocp-mxfp6-e3m2", "e3m2"), ("ocp-mxfp8-e4m3", "e4m3"),
               ("ocp-mxfp8-e5m2", "e5m2"), ("ocp-mxint8", "mxint8")):
    register(replace(_ocp, name=_n, elem=_e, summary=f"OCP {_n[4:].upper()}: {_e.upper()}, E8M0, 32, FLOOR, RNE, "
                     "saturate"))

# --- torchao 0.18.0 (torchao/prototype/mx_formats, eager PyTorch) ------------------------------------------------
_TAO = "torchao 0.18.0 torchao/prototype/mx_formats/mx_tensor.py::to_mx (eager)"
_tao_pow2 = Recipe(
    name="torchao-mxfp4-floor", elem="e2m1", scale_rule="floor", scale_inf="exponent-field",
    e8m0_arith="bits-min-normal", elem_expr="x/s", nan="torchao", nan_sign="x86",
    summary="torchao to_mx FLOOR (0.18, eager): bit-field exponent, x / fp32(scale bits)",
    source=_TAO + ": exponent field of the float32 amax minus emax, clamp [-127, 128], NaN amax → 0xFF "
           "(an Inf amax reads as 2^128); data / float32(scale << 23) with the scale clamped to 2^-126 "
           "(0x00 → 2^-126, 0xFF → +Inf); f32_to_f4_unpacked (RNE, saturating, NaN → ±1.5). Operation order: "
           "a = amax(|x|) (NaN propagates); e = field(a) - 127 - emax; X = float32 bits; q = fl32(x / X).")
register(_tao_pow2)
register(replace(_tao_pow2, name="torchao-mxfp4-ceil", scale_rule="ceil",
                 summary="torchao to_mx CEIL (0.18, eager): exponent field + (mantissa != 0)",
                 source=_tao_pow2.source.replace("exponent field of", "exponent field (+1 when the mantissa is "
                                                                     "nonzero) of")))
register(replace(_tao_pow2, name="torchao-mxfp4-even", scale_rule="even",
                 summary="torchao to_mx EVEN (0.18, eager): amax rounded at the element's mantissa, then floor",
                 source=_tao_pow2.source.replace("exponent field of the float32 amax",
                                                 "exponent field of the float32 amax after adding half an element "
                                                 "ulp to its bits (an overflow to Inf reads as 2^128)")))
register(Recipe(
    name="torchao-mxfp4-rceil", elem="e2m1", scale_rule="rceil", exponent="log2-f32", scale_expr="amax/m",
    scale_overflow="saturate", scale_inf="max", e8m0_arith="rcp0-one", elem_expr="x*(1/s)", nan="torchao",
    nan_sign="x86",
    summary="torchao to_mx RCEIL (0.18, eager fallback): ceil(float32 log2(amax / 6))",
    source=_TAO + "::_to_mx_rceil eager fallback (not the SM100 cvt.rp path): d = fl32(amax / max_pos); "
           "code = clamp(ceil(log2_f32(d)), -127, 127) + 127, NaN → 0xFF, Inf → 0xFE; reciprocal "
           "exp2(127 - code) with 0x00 → 1.0, 0xFE → 2^-127, 0xFF → NaN; q = fl32(x · rcp); clamp ±max; cast."))
# PyTorch's float8 casts keep the NaN's sign and set every mantissa bit (E5M2 NaN 0x7F/0xFF, not ml_dtypes' 0x7E)
_TORCH_NAN = {"e2m3": "torchao", "e3m2": "torchao", "e4m3": "nan", "e5m2": (0x7F, 0xFF)}
for _n, _e in (("mxfp6-e2m3", "e2m3"), ("mxfp6-e3m2", "e3m2"), ("mxfp8-e4m3", "e4m3"), ("mxfp8-e5m2", "e5m2")):
    _nan = _TORCH_NAN[_e]
    register(replace(get("torchao-mxfp4-floor"), name=f"torchao-{_n}-floor", elem=_e, nan=_nan,
                     summary=f"torchao to_mx FLOOR (0.18, eager), {_e.upper()} elements"))
    register(replace(get("torchao-mxfp4-rceil"), name=f"torchao-{_n}-rceil", elem=_e, nan=_nan,
                     summary=f"torchao to_mx RCEIL (0.18, eager fallback), {_e.upper()} elements"))

_TAO_NV = "torchao 0.18.0 torchao/prototype/mx_formats/nvfp4_tensor.py::nvfp4_quantize (eager)"
register(Recipe(
    name="torchao-nvfp4", elem="e2m1", scale_fmt="ue4m3", block=16, scale_rule="nvfp4", scale_expr="(amax/m)/D",
    scale_overflow="saturate", scale_inf="max", scale_floor=2.0 ** -6, tensor_scale="nvfp4-decode",
    elem_expr="x*((1/D)/s)", nan="torchao", nan_sign="x86", nan_block=0x4,
    summary="torchao nvfp4_quantize with per_tensor_amax_to_scale (decode global amax/2688)",
    source=_TAO_NV + ": D = fl32(amax_t / 2688); s = e4m3(clamp(fl32(fl32(amax / 6) / D), 2^-6, 448)); "
           "r = fl32(fl32(1 / D) / s); q = clamp(fl32(x · r), ±6); f32_to_f4_unpacked. A NaN block scale "
           "(E4M3 0x7F, which PyTorch widens to the float32 NaN 0x7FF00000) makes every element of the block that "
           "NaN, which torchao's bit trick turns into code 0x4 (nan_block=0x4).",
    notes="A NaN tensor amax makes the per-tensor scale a negative NaN in PyTorch (scales 0xFF, elements 0xC); "
          "NaN payloads and signs of that path are not modeled (fp4ref gives 0x7F and 0x4)."))
register(replace(get("torchao-nvfp4"), name="torchao-nvfp4-nopts", scale_expr="amax/m", tensor_scale=None,
                 elem_expr="x*(1/s)",
                 summary="torchao nvfp4_quantize single level (per_tensor_scale=None)",
                 source=_TAO_NV + ": s = e4m3(clamp(fl32(amax / 6), 2^-6, 448)); q = clamp(fl32(x · fl32(1/s)), "
                        "±6); f32_to_f4_unpacked."))

# --- TransformerEngine -----------------------------------------------------------------------------------------
_TE_REF = ("NVIDIA/TransformerEngine d0067d0 transformer_engine/pytorch/custom_recipes/reference_nvfp4.py "
           "(NVFP4QuantizerRef)")
register(Recipe(
    name="te-nvfp4", elem="e2m1", scale_fmt="ue4m3", block=16, scale_rule="nvfp4", scale_expr="amax*(G*(1/m))",
    scale_overflow="saturate", scale_inf="max", tensor_scale="nvfp4-encode-ref", elem_expr="x*(1/(s*D))",
    nan="zero", neg_zero="positive",
    summary="TransformerEngine NVFP4 1x16 (PyTorch reference semantics; E4M3 scale, encode global 2688/amax)",
    source=_TE_REF + ": G = min(fl32(2688 / amax_t), FLT_MAX), G == 0 → 1; D = fl32(1 / G); "
           "s = e4m3(clamp(min(fl32(amax · fl32(G · fl32(1/6))), FLT_MAX), ±448)); "
           "r = min(fl32(1 / fl32(s · D)), FLT_MAX); q = clamp(fl32(x · r), ±6); cast_to_fp4x2 (RNE, NaN → 0, "
           "-0.0 → 0). The CUDA kernels (transformer_engine/common/cast/nvfp4/) use the same float32 order but "
           "amax 0 → G = 1.0 and fmaxf amaxes that skip NaN (tensor_scale='nvfp4-encode', amax_nan='ignore').",
    notes="The CUDA NVFP4 kernels need Blackwell (cvt.rn.satfinite.e2m1x2.f32); the device here is an H100, so "
          "only the PyTorch reference was run."))
register(replace(get("te-nvfp4"), name="te-nvfp4-2d", blocks="2d", block=(16, 16), tile_scales="rows",
                 summary="TransformerEngine NVFP4 16x16 weight tiles (scales repeated per row as TE stores them)"))
# TE's wgrad (columnwise) operands: RHT16 with the fixed sign mask 0xD7E8, in the input dtype (semantics.md D-20)
_TE_SIGNS = (1, 1, 1, -1, 1, -1, -1, -1, -1, -1, -1, 1, -1, 1, -1, -1)
register(replace(get("te-nvfp4"), name="te-nvfp4-rht", transform=("hadamard", 16, _TE_SIGNS, "input", "te"),
                 summary="TransformerEngine NVFP4 1x16 of RHT16(x) (the columnwise/wgrad path; amax after the RHT)"))
register(Recipe(
    name="te-mxfp8", elem="e4m3", scale_rule="rceil", scale_expr="amax*(1/m)", scale_overflow="saturate",
    scale_inf="max", amax_nan="ignore", elem_expr="x*(1/s)",
    summary="TransformerEngine MXFP8: RCEIL via cvt.rp.satfinite.ue8m0x2.f32, x * exp2f_rcp(code)",
    source="NVIDIA/TransformerEngine d0067d0 transformer_engine/common/cast/mxfp8/quantize_mxfp8.cuh: "
           "amax by fmaxf (NaN skipped); code = cvt.rp.satfinite.ue8m0x2.f32(fl32(amax · fl32(1/448))) "
           "(Inf → 0xFE, NaN → 0xFF); q = fl32(x · 2^(127 - code)); E4M3 RNE satfinite.",
    notes="Not run: TE's CUDA extension was not available to the captures; the recipe follows the kernel source."))

# --- JAX -------------------------------------------------------------------------------------------------------
_JAX = "jax 0.10.2 jax/_src/cudnn/scaled_matmul_stablehlo.py::quantize with jax.nn.get_scaled_dot_general_config"
_XLA = ("Recorded on XLA's GPU backend (H100, jax 0.11.2), where the float32 divisions of the nvfp4 path are "
        "computed as multiplications by float32 reciprocals (the division by the constant 6 and by the broadcast "
        "scale alike). XLA's CPU backend (jaxlib 0.10.2) gives the same bytes with subnormals='flush' (DAZ/FTZ) "
        "and nan_sign='x86', except that its float32 reduce-max skipped NaN in 2 of 3 mxfp8 NaN blocks (not "
        "modeled; XLA documents max as NaN-propagating, as the GPU and CPU-bfloat16 runs behave).")
register(Recipe(
    name="jax-mxfp8", elem="e4m3", scale_rule="rceil", scale_expr="amax/m", arith="input",
    scale_overflow="saturate", scale_nan="min", scale_inf="nan", e8m0_arith="bits-inf", elem_expr="x/s",
    summary="JAX mxfp8 config: ceil of amax/448 in the input dtype, x / scale, clip, cast",
    source=_JAX + "('mxfp8'): d = fl_T(amax / 448) in x's dtype T; cast_to_e8m0_with_rounding_up (bit ceil; "
           "0xFE does not round up; NaN wraps to 0x00; Inf → 0xFF); q = fl_T(x / e8m0_to_dtype(code)) "
           "(0xFF → +Inf); clip ±448; astype float8_e4m3fn. " + _XLA))
register(Recipe(
    name="jax-nvfp4", elem="e2m1", scale_fmt="ue4m3", block=16, scale_rule="nvfp4",
    scale_expr="(amax*(1/D))*(1/m)", nan=(0x8, 0x8),
    scale_overflow="saturate", scale_inf="max", tensor_scale="divisor", global_scale=1.0,
    elem_expr="(x*(1/D))*(1/s)",
    summary="JAX nvfp4 config (global_scale 1.0): x / gs, clip(amax/6, 0, 448) → E4M3, x / scale",
    source=_JAX + "('nvfp4'): x' = fl32(x · fl32(1 / global_scale)); s = e4m3(clip(fl32(amax(x') · fl32(1/6)), "
           "0, 448)); q = clip(fl32(x' · fl32(1 / s)), ±6) (a zero block gives 0·Inf = NaN); astype "
           "float4_e2m1fn (XLA: every NaN → 0x8). " + _XLA))

# --- the FP4 design-space simulator ----------------------------------------------------------------------------
_SIM = ("MrHuff/mfu-fp4-training 1f7b1b1 low_bits_training/experiments/mxfp4/quantization/ "
        "(dimensionQuantisationClass.MXFPscalingModule, ExMy.ExMy_new, customTorchQuantiser.round_ndarray; "
        "gfloat 0.5.2)")
_paper = Recipe(
    name="paper-e8m0", elem="e2m1", scale_fmt="e8m0", block=32, scale_rule="paper", scale_expr="(m/amax)*D",
    scale_rounding="toward-positive", scale_overflow="saturate", scale_inf="max", scale_floor="min-positive",
    zero_amax=1.0,
    scale_role="encode", elem_expr="(x/D)*s", arith="input",
    summary="FP4 simulator: E8M0 encode scale 4/amax rounded up, no tensor scaling",
    source=_SIM + ": amax (0 → 1); R = round_up(fl_T(4 / amax)) into E8M0 (saturating; clipped to 2^-127); "
           "q = clamp(fl_T(x · R), ±6) rounded RNE; dequant q / R. T = the input dtype.")
register(_paper)
register(replace(_paper, name="paper-e8m0-ts", tensor_scale="amax",
                 summary="FP4 simulator: E8M0 encode scale with tensor scaling (g = largest block amax)",
                 source=_SIM + ": g = max of the block amaxes (zero blocks count as 1); R = round_up(fl_T(fl_T(4 / "
                        "amax) · g)); q = clamp(fl_T(fl_T(x / g) · R), ±6); dequant q / R · g."))
register(replace(_paper, name="paper-e4m3", scale_fmt="e4m3-scale", block=16,
                 summary="FP4 simulator: signed-E4M3 encode scale 6/amax rounded up, no tensor scaling",
                 source=_SIM + ": R = round_up(fl_T(6 / amax)) into OCP E4M3 (saturating; clipped to 2^-9)."))
register(replace(get("paper-e4m3"), name="paper-e4m3-ts", tensor_scale="amax",
                 summary="FP4 simulator: signed-E4M3 encode scale with tensor scaling"))
register(replace(_paper, name="paper-ue5m3", scale_fmt="ue5m3-61440", block=16,
                 summary="FP4 simulator rule with the paper's UE5M3 scale (6/amax rounded up), no tensor scaling",
                 notes="The simulator has no UE5M3 (its ExMy_new maps 5 exponent bits to E5M2); this recipe applies "
                       "its rule to UE5M3 as arXiv 2609.02846 defines it and is proven against exact arithmetic "
                       "only."))
register(replace(get("paper-ue5m3"), name="paper-ue5m3-ts", tensor_scale="amax",
                 summary="FP4 simulator rule with UE5M3 scale and tensor scaling"))

# --- Quartet ---------------------------------------------------------------------------------------------------
register(Recipe(
    name="quartet-fwd", elem="e2m1", blocks="flat", block=32, scale_rule="quest", rounding="nearest-zero",
    zero_code=0x8, elem_expr="x/s", transform=("hadamard", 32, None, "float32", "exact"),
    summary="Quartet forward (QuEST): Hadamard 32, 2^floor(log2(0.487·std + 1e-8)) scale, ties toward zero",
    source="IST-DASLab/Quartet 00ccd38 src/models/quantization/quantizers/mxfp4_triton.py (quest=True): groups of "
           "32 contiguous values of x·H32 (H32 Sylvester, scaled by fl32(32^-0.5)); std = sqrt(fl32(Σx²/32) − "
           "fl32(Σx/32)²) in float32 (pairwise sums); X = 2^floor(log2(fl32(fl32(0.48707976·std) + 1e-8))); "
           "q = x / X; |q| > 5, 3.5, 2.5, 1.75, 1.25, 0.75, 0.25 → 6, 4, 3, 2, 1.5, 1, 0.5, 0 (ties toward zero, "
           "saturating); sign −1 unless q > 0 (zeros become −0).",
    notes="The Hadamard product runs on Triton tl.dot (TF32 for float32 inputs, not reproducible bit for bit); "
          "the vendor test starts from the kernel's transformed values (transform=None)."))
register(Recipe(
    name="te-mxfp4-ref", elem="e2m1", scale_rule="rceil", exponent="log2-f32", scale_expr="amax/m",
    scale_overflow="saturate", scale_inf="max", elem_expr="x*(1/s)", nan="zero", neg_zero="positive",
    summary="TransformerEngine reference MXFP4 (pow_2_scales): 2^ceil(float32 log2(amax/6)), 1x32",
    source=_TE_REF + " with pow_2_scales=True: decode = 2^clamp(ceil(log2_f32(fl32(amax / 6))), -127, 127) "
           "(cast_to_e8; NaN → NaN scale, Inf → 2^127); encode = fl32(1 / decode); q = clamp(fl32(x · encode), ±6); "
           "cast_to_fp4x2 (RNE, NaN → 0, ±0 → 0).",
    notes="NVFP4QuantizerRef.quantize() raises UnboundLocalError for pow_2_scales at d0067d0; captured through "
          "_quantize_blockwise_reference."))

# --- what each recipe was proven against (tests/test_recipes_vendors.py, tests/test_quantize.py) ---------------
_EXACT = "the exact rational block reference (fp4ref.exact.blocks) under hypothesis and on edge blocks"
_PROOFS = {
    "ocp-mxfp4": "gfloat 0.5.2 quantize_block (float32 and float64 blocks) and microxcaling 7bc4195 (fp4, nearest "
                 "and even, float32/bfloat16): scales byte-equal and elements byte-equal, under the overrides "
                 "that name their deviations (float log2, Inf/overflow clipping; microxcaling's element "
                 "misroundings listed); " + _EXACT,
}
for _n in ("ocp-mxfp6-e2m3", "ocp-mxfp6-e3m2", "ocp-mxfp8-e4m3", "ocp-mxfp8-e5m2", "ocp-mxint8"):
    _PROOFS[_n] = _PROOFS["ocp-mxfp4"].replace("(fp4,", "(same element format,")
for _r in all_recipes():
    if _r.name.startswith("torchao-"):
        _PROOFS[_r.name] = ("torchao 0.18.0 on CPU (torch 2.13.0): mx_suite or nvfp4_suite/random/specials, float32 "
                            "and bfloat16, every code and scale byte-equal (NaN payloads of a NaN tensor amax "
                            "excepted); " + _EXACT)
_PROOFS.update({
    "te-nvfp4": "TransformerEngine d0067d0 NVFP4QuantizerRef (1x16) on nvfp4_suite/random/specials, float32 and "
                "bfloat16: codes, scales and global scale byte-equal (a NaN tensor amax: NaN scales, sign not "
                "modeled); " + _EXACT,
    "te-nvfp4-2d": "TransformerEngine d0067d0 NVFP4QuantizerRef (16x16), as te-nvfp4; " + _EXACT,
    "te-nvfp4-rht": "TransformerEngine d0067d0 NVFP4QuantizerRef with_rht columnwise output, from x (suite, "
                    "random) and from the reference's RHT output (all sets); " + _EXACT,
    "te-mxfp4-ref": "TransformerEngine d0067d0 _quantize_blockwise_reference(pow_2_scales=True), float32 and "
                    "bfloat16 mx_suite; " + _EXACT,
    "te-mxfp8": "not run (TE's CUDA extension was not built); " + _EXACT,
    "jax-mxfp8": "jax 0.11.2 on the H100 (XLA GPU), float32 and bfloat16 mx_suite, byte-equal; jax 0.10.2 XLA CPU "
                 "byte-equal with subnormals='flush', nan_sign='x86' except 3 NaN blocks (named test); " + _EXACT,
    "jax-nvfp4": "jax 0.11.2 on the H100 and jaxlib 0.10.2 on CPU, default and amax/2688 global scales, "
                 "nvfp4_suite/random/specials, float32 and bfloat16, byte-equal; " + _EXACT,
    "paper-e8m0": "MrHuff/mfu-fp4-training 1f7b1b1 on CPU, mx_suite float32/bfloat16, TowardPositive and "
                  "TiesToEven, byte-equal; " + _EXACT,
    "paper-e8m0-ts": "the simulator with use_tensor_scaling=True, nvfp4_random, byte-equal; " + _EXACT,
    "paper-e4m3": "the simulator's E4M3 rule is exercised only with tensor scaling in the captures; " + _EXACT,
    "paper-e4m3-ts": "the simulator (E4M3, tensor scaling, TowardPositive and TiesToEven), nvfp4_suite/random, "
                     "byte-equal; " + _EXACT,
    "paper-ue5m3": "not run (the simulator has no UE5M3); " + _EXACT,
    "paper-ue5m3-ts": "not run (the simulator has no UE5M3); " + _EXACT,
    "quartet-fwd": "IST-DASLab/Quartet 00ccd38 Triton kernel on the H100 (quest=True), mx_suite and nvfp4_random, "
                   "float32 and bfloat16, from the kernel's transformed values: byte-equal; " + _EXACT,
})
for _n, _p in _PROOFS.items():
    _REGISTRY[_n] = replace(_REGISTRY[_n], proof=_p)
