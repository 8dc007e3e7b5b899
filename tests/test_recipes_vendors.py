"""Every named recipe against the bytes the real implementation produced (tests/data/vendor_*.npz).

The captures (schema and provenance: tests/vendors/_common.py, tests/data/VENDORS.md) hold the input ``x``, the
vendor's unpacked element codes and linear scale codes. A code of 0xFF in a 4/6-bit format marks a value the
vendor produced outside the format (a NaN element): those positions are checked to lie in blocks fp4ref also
marks NaN. Where a vendor behaves in a way a recipe deliberately does not follow, a named test states exactly
which blocks differ and which option reproduces them. A missing capture file skips its case with its name.
"""
from __future__ import annotations

import glob
import json
import pathlib
import re

import ml_dtypes
import numpy as np
import pytest

from fp4ref import formats, recipes
from fp4ref.quantize import quantize

DATA = pathlib.Path(__file__).parent / "data"


def load(name):
    path = DATA / name
    if not path.exists():
        pytest.skip(f"vendor capture {name} is absent (regenerate with tests/vendors/capture_*.py)")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    if meta.get("x_dtype") == "bfloat16":
        arrays["x"] = arrays["x"].view(ml_dtypes.bfloat16)
    return arrays, meta


def files(pattern):
    found = sorted(pathlib.Path(p).name for p in glob.glob(str(DATA / pattern)))
    return found or [pattern]  # an absent family still produces one (skipped) case


def _nan_scale(codes, fmt):
    f = formats.get(fmt)
    return np.isin(codes, [c for c in range(f.n_codes) if np.isnan(f.values[c])])


def compare(a, q, recipe, *, block_mask=None):
    """(element mismatches, scale mismatches) as boolean arrays; vendor 0xFF elements must be NaN blocks."""
    vc, vs = a["codes"], a["scales"]
    qs = np.asarray(q.scales).reshape(vs.shape)
    rec = recipes.get(recipe) if isinstance(recipe, str) else recipe
    outside = vc == 0xFF if formats.get(rec.elem).bits < 8 else np.zeros(vc.shape, bool)
    code_diff = (q.codes != vc) & ~outside
    scale_diff = qs != vs
    if block_mask is not None:
        code_diff &= ~block_mask["codes"]
        scale_diff &= ~block_mask["scales"]
    if outside.any():
        per_elem = np.broadcast_to(_nan_scale(qs, rec.scale_fmt)[..., None],
                                   (*qs.shape, vc.shape[-1] // qs.shape[-1])).reshape(vc.shape)
        assert per_elem[outside].all(), "vendor NaN elements outside blocks fp4ref marks NaN"
    return code_diff, scale_diff


def assert_same(a, q, recipe, block_mask=None):
    cd, sd = compare(a, q, recipe, block_mask=block_mask)
    assert not sd.any(), f"{int(sd.sum())} scale codes differ, first at {np.argwhere(sd)[:3].tolist()}"
    assert not cd.any(), f"{int(cd.sum())} element codes differ, first at {np.argwhere(cd)[:3].tolist()}"


def assert_global(a, q):
    if "global_scale" not in a:
        return
    v, o = np.float32(a["global_scale"].reshape(-1)[0]), np.float32(q.global_scale)
    assert (np.isnan(v) and np.isnan(o)) or v.view(np.uint32) == o.view(np.uint32), (v, o)


# --- torchao 0.18.0 ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", files("vendor_torchao_cpu_mx*_mx_suite_*.npz"))
def test_torchao_to_mx_recipes_reproduce_codes_and_scales(name):
    m = re.search(r"torchao_cpu_(mx\w+?)_(floor|ceil|even|rceil)_mx_suite", name)
    recipe = f"torchao-{m.group(1).replace('_', '-')}-{m.group(2)}"
    a, _ = load(name)
    assert_same(a, quantize(a["x"], recipe), recipe)


@pytest.mark.parametrize("name", [n for n in files("vendor_torchao_cpu_nvfp4_*.npz")
                                  if "pts_nvfp4_specials" not in n])
def test_torchao_nvfp4_recipes_reproduce_codes_scales_and_global_scale(name):
    recipe = "torchao-nvfp4" if "_pts_" in name else "torchao-nvfp4-nopts"
    a, _ = load(name)
    q = quantize(a["x"], recipe)
    assert_same(a, q, recipe)
    assert_global(a, q)


@pytest.mark.parametrize("dt", ["f32", "bf16"])
def test_torchao_nvfp4_nan_tensor_amax_gives_nan_everywhere_sign_not_modeled(dt):
    # pts = NaN: every block scale is NaN on both sides; PyTorch's NaN bit patterns on this path (negative
    # scales 0xFF; torchao's bit trick turns the NaN payloads into 0xC / 0xB elements) are not modeled.
    a, _ = load(f"vendor_torchao_cpu_nvfp4_pts_nvfp4_specials_{dt}.npz")
    q = quantize(a["x"], "torchao-nvfp4")
    assert np.isnan(q.global_scale) and np.isnan(a["global_scale"]).all()
    assert _nan_scale(q.scales, "ue4m3").all() and np.isin(a["scales"], [0x7F, 0xFF]).all()
    assert (q.codes == 0x4).all()


# --- TransformerEngine (PyTorch reference) -----------------------------------------------------------------------
@pytest.mark.parametrize("name", [n for n in files("vendor_te_ref_nvfp4_*d_*.npz") if "specials" not in n])
def test_te_nvfp4_recipes_reproduce_reference(name):
    recipe, ov = ("te-nvfp4-2d", {"tile_scales": "grid"}) if "_2d_" in name else ("te-nvfp4", {})
    a, _ = load(name)
    q = quantize(a["x"], recipe, **ov)
    assert_same(a, q, recipe)
    assert_global(a, q)


@pytest.mark.parametrize("name", files("vendor_te_ref_nvfp4_*d_nvfp4_specials_*.npz"))
def test_te_nvfp4_nan_tensor_amax_gives_nan_scales_and_zero_elements(name):
    # global amax NaN: every scale is an E4M3 NaN (TE's bytes carry the sign bit: 0xFF), every element 0x0
    recipe, ov = ("te-nvfp4-2d", {"tile_scales": "grid"}) if "_2d_" in name else ("te-nvfp4", {})
    a, _ = load(name)
    q = quantize(a["x"], recipe, **ov)
    assert np.isnan(q.global_scale)
    assert (q.scales == 0x7F).all() and np.isin(a["scales"], [0x7F, 0xFF]).all()
    assert (q.codes == a["codes"]).all()


@pytest.mark.parametrize("name", [n for n in files("vendor_te_ref_nvfp4_rht_*.npz") if "specials" not in n])
def test_te_nvfp4_rht_recipe_reproduces_reference_from_x(name):
    a, _ = load(name)
    q = quantize(a["x"], "te-nvfp4-rht")
    assert_same(a, q, "te-nvfp4-rht")
    assert_global(a, q)


@pytest.mark.parametrize("name", files("vendor_te_ref_nvfp4_rht_*.npz"))
def test_te_nvfp4_quantizes_the_references_rht_output_exactly(name):
    a, _ = load(name)
    q = quantize(a["rht_output"].astype(np.float32), "te-nvfp4")
    if "specials" in name:
        assert (q.codes == a["codes"]).all() and np.isin(a["scales"], [0x7F, 0xFF]).all()
    else:
        assert_same(a, q, "te-nvfp4")


@pytest.mark.parametrize("name", files("vendor_te_ref_mxfp4_pow2_*.npz"))
def test_te_mxfp4_reference_recipe(name):
    a, _ = load(name)
    assert_same(a, quantize(a["x"], "te-mxfp4-ref"), "te-mxfp4-ref")


# --- JAX -----------------------------------------------------------------------------------------------------------
def _jax_case(name):
    recipe = "jax-mxfp8" if "mxfp8" in name else "jax-nvfp4"
    ov = {}
    if "_cpu_" in name:
        ov.update(subnormals="flush", nan_sign="x86")
    return recipe, ov


@pytest.mark.parametrize("name", [n for n in files("vendor_jax_*_mxfp8_*.npz") + files("vendor_jax_*_nvfp4_*.npz")
                                  if n != "vendor_jax_cpu_mxfp8_mx_suite_f32.npz"])
def test_jax_recipes_reproduce_quantize(name):
    recipe, ov = _jax_case(name)
    a, _ = load(name)
    if "global_scale" in a:  # the call's global scale (the gsamax files computed it on the vendor side)
        ov["global_scale"] = float(a["global_scale"].reshape(-1)[0])
    assert_same(a, quantize(a["x"], recipe, **ov), recipe)


def test_jax_cpu_float32_mxfp8_max_skipped_nan_in_three_blocks():
    a, _ = load("vendor_jax_cpu_mxfp8_mx_suite_f32.npz")
    x = a["x"]
    nan_blocks = np.isnan(x.reshape(x.shape[0], -1, 32)).any(-1)
    mask = {"scales": nan_blocks, "codes": np.repeat(nan_blocks, 32, axis=-1)}
    q = quantize(x, "jax-mxfp8", subnormals="flush", nan_sign="x86")
    assert_same(a, q, "jax-mxfp8", block_mask=mask)
    assert (q.scales != a["scales"]).sum() == 3
    # the divergent blocks are exactly what a NaN-skipping max gives
    q2 = quantize(x, "jax-mxfp8", subnormals="flush", nan_sign="x86", amax_nan="ignore")
    assert_same(a, q2, "jax-mxfp8")


# --- the FP4 simulator ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", files("vendor_paper_sim_e*_b*.npz"))
def test_paper_recipes_reproduce_simulator(name):
    m = re.search(r"paper_sim_(e8m0|e4m3)_(rne|rtp)(_ts)?_b(\d+)", name)
    recipe = f"paper-{m.group(1)}" + ("-ts" if m.group(3) else "")
    ov = {"block": int(m.group(4))}
    if m.group(2) == "rne":
        ov["scale_rounding"] = "nearest-even"
    a, _ = load(name)
    q = quantize(a["x"], recipe, **ov)
    assert_same(a, q, recipe)
    if m.group(3):
        assert_global(a, q)


# --- Quartet -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", files("vendor_quartet_quest_*.npz"))
def test_quartet_fwd_reproduces_quest_from_the_kernels_hadamard_output(name):
    a, _ = load(name)
    q = quantize(a["had"], "quartet-fwd", transform=None)
    assert_same(a, q, "quartet-fwd")


# --- OCP recipes against the reference implementations -------------------------------------------------------------
_OCP = {"mxfp4_e2m1": "ocp-mxfp4", "mxfp6_e2m3": "ocp-mxfp6-e2m3", "mxfp6_e3m2": "ocp-mxfp6-e3m2",
        "mxfp8_e4m3": "ocp-mxfp8-e4m3", "mxfp8_e5m2": "ocp-mxfp8-e5m2", "mxint8": "ocp-mxint8"}
# gfloat 0.5.2: log2 in the block's dtype (D-2), an Inf amax clips to 2^127, the shared exponent clips at 127,
# MXINT8 uses -2.0
_GFLOAT = dict(scale_inf="max", scale_overflow="saturate")


def _gfloat_case(name):
    m = re.search(r"block_(mxfp4_e2m1|mxfp6_e2m3|mxfp6_e3m2|mxfp8_e4m3|mxfp8_e5m2|mxint8)_mx_suite_(f32|f64)", name)
    recipe = _OCP[m.group(1)]
    ov = dict(_GFLOAT, exponent="log2-input")
    if recipe == "ocp-mxint8":
        ov["elem"] = "mxint8-m2"
    if recipe in ("ocp-mxfp8-e4m3", "ocp-mxfp8-e5m2"):
        ov["nan"] = (0xFF, 0xFF)  # gfloat encodes every NaN as the all-ones byte
    return recipe, ov, m.group(2) == "f64"


@pytest.mark.parametrize("name", files("vendor_gfloat_block_*.npz"))
def test_ocp_recipes_reproduce_gfloat_with_its_log2_and_clipping(name):
    recipe, ov, f64 = _gfloat_case(name)
    a, _ = load(name)
    x = a["x"].astype(np.float64) if f64 else a["x"]
    ok = ~a["block_error"].astype(bool)  # gfloat raised on these (NaN into a format without NaN)
    mask = {"scales": ~ok, "codes": np.repeat(~ok, 32, axis=-1)}
    assert_same(a, quantize(x, recipe, **ov), recipe, block_mask=mask)


@pytest.mark.parametrize("name", [n for n in files("vendor_gfloat_block_*_f32.npz") if "mxint8" not in n])
def test_ocp_bit_field_exponent_differs_from_gfloat_only_where_float32_log2_rounds_up(name):
    # D-2: floor(log2(amax)) in float32 is one too large just below powers of two; OCP takes the bit field
    recipe, ov, _ = _gfloat_case(name)
    a, _ = load(name)
    x = a["x"]
    q_log = quantize(x, recipe, **ov)
    q_bits = quantize(x, recipe, **{**ov, "exponent": "bits"})
    differ = q_log.scales != q_bits.scales
    am = np.abs(x.astype(np.float64)).reshape(x.shape[0], -1, 32).max(-1)
    m, _ = np.frexp(am)
    assert differ.any()
    assert (m[differ] > 1 - 2.0 ** -20).all()  # amax within a few float32 ulps below 2^k
    assert (q_log.scales[differ] == q_bits.scales[differ] + 1).all()


_MX = {"fp4_e2m1": "ocp-mxfp4", "fp6_e2m3": "ocp-mxfp6-e2m3", "fp6_e3m2": "ocp-mxfp6-e3m2",
       "fp8_e4m3": "ocp-mxfp8-e4m3", "fp8_e5m2": "ocp-mxfp8-e5m2", "int8": "ocp-mxint8"}


@pytest.mark.parametrize("name", files("vendor_microxcaling_*.npz"))
def test_ocp_recipes_reproduce_microxcaling_scales_and_all_but_its_element_misroundings(name):
    # microxcaling (mx/mx_ops.py, PyTorch path): floor(log2(amax + 2^-126·[amax == 0])) in the input dtype, an
    # exponent above 127 → NaN, elements ties away ('nearest') or even, -0 → +0. Its float32 element rounding
    # floor(|v|·2^k + 0.5) rounds values a float32 ulp below a midpoint up, and rounded-to-zero negatives lose
    # their sign (VENDORS.md): those elements, and only those, may differ.
    m = re.search(r"microxcaling_(fp4_e2m1|fp6_e2m3|fp6_e3m2|fp8_e4m3|fp8_e5m2|int8)_(nearest|even)", name)
    recipe = _MX[m.group(1)]
    ov = dict(exponent="log2-input", zero_amax=2.0 ** -126, neg_zero="positive",
              rounding="nearest-away" if m.group(2) == "nearest" else "nearest-even")
    a, _ = load(name)
    q = quantize(a["x"], recipe, **ov)
    f = formats.get(recipes.get(recipe).elem)
    # blocks whose scale is NaN on both sides: the elements are NaN (microxcaling gives them x's sign)
    nan_blocks = np.repeat(_nan_scale(q.scales, "e8m0") & _nan_scale(a["scales"], "e8m0"), 32, axis=-1)
    if f.has_nan:
        assert np.isnan(f.values[a["codes"][nan_blocks]]).all() and np.isnan(f.values[q.codes[nan_blocks]]).all()
    cd, sd = compare(a, q, recipe, block_mask={"codes": nan_blocks, "scales": np.zeros(a["scales"].shape, bool)})
    assert not sd.any()
    if cd.any():
        ours, theirs = f.values[q.codes[cd]], f.values[a["codes"][cd]]
        lost_sign = (ours == 0) & (theirs == 0)
        # the scaled value sat on or at most one input ulp below the midpoint, and the vendor went away from 0
        ulp = 2.0 ** -7 if a["x"].dtype == ml_dtypes.bfloat16 else 2.0 ** -23
        s = formats.get("e8m0").values[np.repeat(q.scales, 32, axis=-1)[cd]]
        v = np.abs(a["x"].astype(np.float64)[cd]) / s
        mid = (np.abs(ours) + np.abs(theirs)) / 2
        near_mid = (np.abs(theirs) > np.abs(ours)) & (v <= mid) & (mid - v <= mid * ulp)
        assert (lost_sign | near_mid).all(), np.argwhere(cd)[~(lost_sign | near_mid)][:5].tolist()
