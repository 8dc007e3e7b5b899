"""The level matrix: which targets each level generates.

Level 1 is small and committed (vectors/, about 9 MB): every cast family on every element format from float32
under every rounding mode (scale formats under the four modes scale hardware and libraries use), bf16/f16/f64
inputs under nearest-even, every policy variant on the families it changes; a scale and a block vector for every
registered recipe; stochastic rounding for E2M1 under every variant and for FP6/FP8 under the PTX rule; packing.
Level 2 is generated on demand (hundreds of MB): every format from every input dtype under every mode with
65536 random cases and every 16-bit input pattern, every recipe from float32 and bfloat16 with every one-spike
position, 4096 random blocks and three tie scales, every SR variant with full sweeps of r.
"""
from __future__ import annotations

from fp4ref import recipes as _recipes

from .block_cases import RecipeTarget
from .cast_cases import ALL_MODES, CastTarget
from .packing_cases import PackingTarget
from .sr_cases import SrTarget

__all__ = ["LEVELS", "CAST_FORMATS", "cast_targets", "targets"]

LEVELS = (1, 2)

# Element formats of the cast vectors (e4m3-scale/e5m2-scale are e4m3/e5m2 bit for bit and are left out).
CAST_FORMATS = ("e2m1", "e2m3", "e3m2", "e4m3", "e5m2", "e1m2", "int4", "int4-m8", "mxint8", "mxint8-m2", "e8m0",
                "ue4m3", "ue5m3-61440", "ue5m3-114688", "ue5m3-122880")

# Level 1's other input dtypes (nearest-even): the formats kernels quantize from bf16/f16 activations, and the
# float64 double-rounding probes (semantics D-18).
_L1_DTYPES = {"bf16": ("e2m1", "e2m3", "e3m2", "e4m3", "e5m2", "e8m0", "mxint8"),
              "f16": ("e2m1", "e4m3", "e5m2"),
              "f64": ("e2m1", "e2m3", "e3m2", "e4m3", "e5m2", "e8m0", "mxint8")}

# Policy variants: (format, tag, policies). Each vector holds the families a policy can change.
_SUB4_6 = ("e2m1", "e2m3", "e3m2")
POLICY_VARIANTS = tuple(
    [(f, f"nan-{p}", (("nan", p),)) for f in _SUB4_6 for p in ("signed-max", "zero", "ml_dtypes", "torchao")]
    + [("e2m1", "nan-xla", (("nan", "xla"),))]
    + [(f, "negzero-positive", (("neg_zero", "positive"),)) for f in _SUB4_6]
    + [("e4m3", "overflow-nan", (("overflow", "nan"),)), ("e4m3", "nan-canonical", (("nan", "canonical"),)),
       ("e5m2", "overflow-inf", (("overflow", "inf"),)), ("e5m2", "overflow-nan", (("overflow", "nan"),)),
       ("e5m2", "nan-canonical", (("nan", "canonical"),)),
       ("e4m3", "nan-ones", (("nan", "ones"),)), ("e4m3", "nan-gfloat", (("nan", "gfloat"),)),
       ("e5m2", "nan-ones", (("nan", "ones"),)), ("e5m2", "nan-gfloat", (("nan", "gfloat"),)),
       ("e8m0", "negative-abs", (("negative", "abs"),)),
       ("e8m0", "zero-min", (("zero", "min"),)), ("e8m0", "overflow-nan", (("overflow", "nan"),)),
       ("e8m0", "subnormal-up", (("e8m0_subnormal", "up"),)),
       ("ue4m3", "overflow-nan", (("overflow", "nan"),)), ("ue5m3-61440", "overflow-inf", (("overflow", "inf"),))])
_VARIANT_FAMILIES = ("overflow", "underflow", "specials")


# Scale formats: level 1 uses the modes scale hardware and libraries implement (PTX cvt .rz/.rp for ue8m0x2,
# gfloat's ties-to-even, ml_dtypes' ties-away); level 2 uses all seven.
SCALE_FORMATS = ("e8m0", "ue4m3", "ue5m3-61440", "ue5m3-114688", "ue5m3-122880")
SCALE_MODES_L1 = ("nearest-even", "nearest-away", "toward-zero", "toward-positive")


# Level 1 variants of a format that differ from it only at one end (the extra negative code of MXINT8/INT4, the
# top of UE5M3's range) keep the families that reach that end.
_NARROW = {"mxint8-m2", "int4-m8", "ue5m3-114688", "ue5m3-122880"}
_NARROW_FAMILIES = ("codes", "ties", "overflow", "underflow", "specials")


def cast_targets(level: int) -> list[CastTarget]:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(map(str, LEVELS))}, got {level!r}")
    if level == 1:
        out = [CastTarget(f, "f32", modes=SCALE_MODES_L1 if f in SCALE_FORMATS else ALL_MODES,
                          families=_NARROW_FAMILIES if f in _NARROW else None)
               for f in CAST_FORMATS]
        for dt, fmts in _L1_DTYPES.items():
            out += [CastTarget(f, dt, modes=("nearest-even",)) for f in fmts]
        out += [CastTarget(f, "f32", tag, pol, families=_VARIANT_FAMILIES,
                           modes=SCALE_MODES_L1 if f in SCALE_FORMATS else ALL_MODES)
                for f, tag, pol in POLICY_VARIANTS]
    else:
        out = [CastTarget(f, "f32") for f in CAST_FORMATS]
        for dt in ("bf16", "f16", "f64"):
            out += [CastTarget(f, dt) for f in CAST_FORMATS]
        out += [CastTarget(f, dt, tag, pol, families=_VARIANT_FAMILIES)
                for dt in ("f32", "bf16") for f, tag, pol in POLICY_VARIANTS]
    return out


# Level 1's extra bfloat16 recipe vectors: TransformerEngine quantizes bf16 activations (its RHT path only then
# rounds the transform to bf16 as the kernels do, semantics D-20).
_L1_BF16_RECIPES = ("te-nvfp4", "te-nvfp4-rht", "te-mxfp8")


def _has_amax_scale(rec) -> bool:
    """Scale vectors sweep the block amax: recipes whose scale is not a function of the amax (QuEST) or of a
    transformed block (Hadamard) have none."""
    return rec.transform is None and rec.scale_rule != "quest"


def recipe_targets(level: int) -> list[RecipeTarget]:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(map(str, LEVELS))}, got {level!r}")
    out = []
    for rec in _recipes.all_recipes():
        if level == 2:
            dts = ["f32", "bf16"]
        elif rec.name == "te-nvfp4-rht":
            dts = ["bf16"]  # float32 inputs would keep the transform in float32, which TE never does
        else:
            dts = ["f32", "bf16"] if rec.name in _L1_BF16_RECIPES else ["f32"]
        for dt in dts:
            if _has_amax_scale(rec):
                out.append(RecipeTarget("scale", rec.name, dt))
            out.append(RecipeTarget("block", rec.name, dt))
    return out


# Stochastic rounding: E2M1 under every variant with 8 random bits (PTX cvt.rs .e2m1x4 and TransformerEngine's
# fallback use 8), the FP6/FP8 formats under the PTX carry rule with the ISA's 16 bits. Level 2: every variant
# for every format at 8 bits, and the PTX, gfloat and exact rules at 16.
_E2M1_VARIANTS = ("stochastic-ptx", "stochastic-te", "stochastic-gfloat", "stochastic-gfloat-odd",
                  "stochastic-gfloat-fast", "stochastic-gfloat-fastest", "stochastic-exact")
_SR_FORMATS = ("e2m1", "e2m3", "e3m2", "e4m3", "e5m2")
_ALL_VARIANTS = _E2M1_VARIANTS + ("stochastic-gfloat-fast-float32", "stochastic-gfloat-fastest-float32")


def sr_targets(level: int) -> list[SrTarget]:
    if level == 1:
        return [SrTarget("e2m1", v, 8) for v in _E2M1_VARIANTS] + \
            [SrTarget(f, "stochastic-ptx", 16) for f in _SR_FORMATS if f != "e2m1"]
    out = []
    for f in _SR_FORMATS:
        for v in _ALL_VARIANTS:
            if v == "stochastic-te" and f != "e2m1":
                continue
            out.append(SrTarget(f, v, 8))
        out += [SrTarget(f, v, 16) for v in ("stochastic-ptx", "stochastic-gfloat", "stochastic-exact")]
    return out


def targets(level: int) -> list:
    """Every target of a level, in generation order."""
    return list(cast_targets(level)) + recipe_targets(level) + sr_targets(level) + \
        [PackingTarget(w) for w in ("fp4", "fp6", "swizzle")]

