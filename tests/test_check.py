"""fp4ref.check: every mismatch class is decided by re-encoding, counts add up, readings, streaming, CLI exits.

The vendor bytes here come from real implementations where one is at hand (ml_dtypes, captured vendor files),
and otherwise from fp4ref run with the one option that the class names (the classifier is then asked to find that
option again). The counts of ties and overflows are computed independently, from the format's value table.
"""
import json
import math
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from click.testing import CliRunner

import fp4ref
from fp4ref import packing
from fp4ref.check import CLASSES, CheckInputError, TensorRef, check_cast, check_quantized, values_to_codes
from fp4ref.cli.check import check_cmd
from fp4ref.quantize import dequantize, quantize

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(Path(__file__).parent / "vendors"))
import _common  # noqa: E402  (the capture schema's loader)

E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6])


def _ties_e2m1(x):
    """Exact midpoints between neighbouring E2M1 magnitudes (independent of fp4ref)."""
    mids = (E2M1[:-1] + E2M1[1:]) / 2
    return np.isin(np.abs(x.astype(np.float64)), mids)


def _grid_inputs():
    """Every E2M1 value, midpoint and their float32 neighbours, both signs."""
    mids = (E2M1[:-1] + E2M1[1:]) / 2
    pts = np.concatenate([E2M1, mids, [7.0, 12.0]]).astype(np.float32)
    pts = np.concatenate([pts, np.nextafter(pts, np.float32(np.inf)), np.nextafter(pts, np.float32(0))])
    return np.concatenate([pts, -pts]).reshape(6, -1)


# --- element casts ---------------------------------------------------------------------------------------------
def test_cast_match_reports_zero_mismatches_and_exit_fields():
    x = _grid_inputs()
    r = check_cast(x, fp4ref.encode(x, "e2m1"), "e2m1")
    d = r.to_dict()
    assert r.match and d["match"] is True and d["mismatches"] == 0 and d["compared"] == x.size and d["classes"] == {}


def test_ties_away_vendor_is_all_tie_direction_and_count_equals_exact_ties_that_rne_rounds_down():
    x = _grid_inputs()
    vendor = fp4ref.encode(x, "e2m1", "nearest-away")
    r = check_cast(x, vendor, "e2m1")
    # RNE and ties-away differ exactly on the ties whose even neighbour is the lower one: 0.25, 1.25, 2.5, 5
    lower_even = np.isin(np.abs(x), [0.25, 1.25, 2.5, 5.0])
    assert r.mismatches == int(lower_even.sum()) > 0
    assert r.classes == {"tie_direction": r.mismatches}
    assert r.hints["tie_direction"][0][:2] == ("rounding=nearest-away", r.mismatches)
    assert all(_ties_e2m1(np.array([m.input])).all() for m in r.examples)


def test_toward_zero_vendor_off_ties_is_other_with_the_reproducing_mode_as_hint():
    x = np.array([[0.3, 0.8, 1.3, 1.8, 2.7, 3.7, 5.5, 0.1]], np.float32)
    r = check_cast(x, fp4ref.encode(x, "e2m1", "toward-zero"), "e2m1")
    assert set(r.classes) == {"other"} and any(a == "rounding=toward-zero" for a, *_ in r.hints["other"])


def test_ml_dtypes_float64_cast_is_diagnosed_as_double_rounding_and_its_nan_bytes_as_nan_policy():
    # ml_dtypes up to 0.6 cast float64 through float32 (semantics.md D-18): 1.25 + 2^-40 becomes the tie 1.25 → 1.0.
    # That path is spelled out, so the dump is the same under ml_dtypes 0.7 (which rounds float64 once)
    x = np.array([[1.25 + 2.0 ** -40, 2.5 + 2.0 ** -30, -5.0 - 2.0 ** -35, 0.75, math.nan, -math.nan, 3.0, 0.25]])
    vendor = x.astype(np.float32).astype(ml_dtypes.float4_e2m1fn).view(np.uint8)
    r = check_cast(x, vendor, "e2m1")
    assert r.classes == {"nan_policy": 2, "double_rounding": 3}
    assert any(a == "input rounded to float32 first" and n == 3 for a, n, _ in r.hints["double_rounding"])
    assert ("nan=ml_dtypes", 2, 2) in r.hints["nan_policy"]


@pytest.mark.parametrize("fmt,x,vendor,cls", [
    ("e4m3", [math.nan], [0xFF], "nan_encoding"),           # both NaN, other sign bit
    ("e4m3", [500.0], [0x7F], "saturation_vs_nan"),         # ml_dtypes-style overflow to NaN vs satfinite 448
    ("e5m2", [math.inf], [0x7C], "saturation_vs_nan"),      # +Inf kept vs saturated
    ("e2m1", [-0.0], [0x0], "signed_zero"),                 # TE reference flushes -0.0 to +0
    ("e2m1", [math.nan], [0x0], "nan_policy"),              # TE reference NaN → +0
])
def test_input_decided_classes(fmt, x, vendor, cls):
    r = check_cast(np.array(x, np.float32), np.array(vendor, np.uint8), fmt)
    assert r.classes == {cls: 1}


def test_nan_policy_hint_names_the_policy_that_reproduces():
    r = check_cast(np.array([math.nan, -math.nan], np.float32), np.array([0x0, 0x0], np.uint8), "e2m1")
    assert r.classes == {"nan_policy": 2} and ("nan=zero", 2, 2) in r.hints["nan_policy"]


def test_swapped_nibbles_are_nibble_order_and_the_other_reading_is_noted():
    x = np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32) * 3
    codes = fp4ref.encode(x, "e2m1")
    packed_high = packing.pack_fp4(codes, "high")
    r = check_cast(x, packed_high, "e2m1")            # read as low nibble first
    assert r.mismatches > 0 and r.classes == {"nibble_order": r.mismatches}
    assert any("nibble_order=high" in n for n in r.notes)
    assert check_cast(x, packed_high, "e2m1", nibble_order="high").match


def test_stochastic_rounding_with_other_lane_map_is_sr_lane_mapping():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((8, 64)) * 2).astype(np.float32)
    words = rng.integers(0, 2 ** 32, (8, 16), dtype=np.uint64).astype(np.uint32)
    vendor = fp4ref.encode(x, "e2m1", "stochastic-ptx", rbits=words, lanes="ptx-isa")
    r = check_cast(x, vendor, "e2m1", "stochastic-ptx", rbits=words, lanes="te")
    assert r.mismatches > 0 and r.classes == {"sr_lane_mapping": r.mismatches}
    assert check_cast(x, vendor, "e2m1", "stochastic-ptx", rbits=words, lanes="ptx-isa").match


def test_values_mode_compares_decoded_values_and_classifies_the_same():
    x = _grid_inputs()
    vendor_vals = fp4ref.decode(fp4ref.encode(x, "e2m1", "nearest-away"), "e2m1")
    r = check_cast(x, fmt="e2m1", values=vendor_vals)
    assert r.classes == {"tie_direction": r.mismatches} and r.mismatches > 0


def test_values_to_codes_is_exact_and_marks_values_off_the_grid():
    c = values_to_codes(np.array([0.5, -0.0, 6.0, 0.7, math.nan]), "e2m1")
    assert c.tolist() == [0x1, 0x8, 0x7, 0xFFFF, 0xFFFF]
    assert values_to_codes(np.array([-math.nan, math.inf]), "e5m2").tolist() == [0xFE, 0x7C]


def test_codes_outside_the_format_are_mismatches_not_errors():
    x = np.array([[1.0, math.inf]], np.float32)
    r = check_cast(x, np.array([[0x2, 0xFF]], np.uint8), "e2m1")      # a vendor value outside E2M1 (Inf)
    assert r.classes == {"saturation_vs_nan": 1} and r.examples[0].got["bits"] is None


def test_chunked_streaming_gives_the_same_report_as_one_piece(tmp_path):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((300, 64)) * 4).astype(np.float32)
    vendor = fp4ref.encode(x, "e2m1", "nearest-away")
    vendor[7, 3] ^= 0x8
    whole = check_cast(x, vendor, "e2m1")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "c.npy", packing.pack_fp4(vendor))
    seen = []
    chunked = check_cast(TensorRef(str(tmp_path / "x.npy")), TensorRef(str(tmp_path / "c.npy")), "e2m1",
                         chunk_bytes=64 * 64 * 4, progress=lambda d, t: seen.append((d, t)))
    assert chunked.to_dict() == whole.to_dict() and len(seen) == 5 and seen[-1] == (300, 300)


def test_bad_shapes_and_options_are_input_errors():
    x = np.zeros((2, 8), np.float32)
    with pytest.raises(CheckInputError, match="fits neither"):
        check_cast(x, np.zeros((2, 5), np.uint8), "e2m1")
    with pytest.raises(CheckInputError, match="unknown rounding"):
        check_cast(x, np.zeros((2, 8), np.uint8), "e2m1", "nearest-up")
    with pytest.raises(CheckInputError, match="exactly one"):
        check_cast(x, None, "e2m1")


# --- block quantization ----------------------------------------------------------------------------------------
def _blocks(seed=3, shape=(16, 128), scale=4.0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale * np.exp2(rng.integers(-3, 4, (shape[0], 1)))
    n = min(32, shape[1])
    x[0, :n] = ([7.0, 6.5, 0.25, 1.25] * 8)[:n]      # amax 7: FLOOR and RCEIL scales differ
    return x.astype(dtype)


def test_rceil_vendor_checked_against_floor_is_scale_binade_reproduced_by_a_scale_rule():
    x = _blocks()
    v = quantize(x, "ocp-mxfp4", scale_rule="rceil", scale_expr="amax/m")
    r = check_quantized(x, v.codes, v.scales, "ocp-mxfp4")
    assert r.scale_mismatches > 0 and r.classes == {"scale_binade": r.mismatches}
    assert all(("scale_rule=" in a) for a, *_ in r.hints["scale_binade"])
    ex = [m for m in r.examples if m.kind == "code"][0]
    assert ex.block["expected_scale"]["code"] != ex.block["got_scale"]["code"]


def test_ties_away_elements_are_tie_direction_inside_blocks():
    x = _blocks()
    v = quantize(x, "ocp-mxfp4", rounding="nearest-away")
    r = check_quantized(x, v.codes, v.scales, "ocp-mxfp4")
    assert r.code_mismatches > 0 and r.classes == {"tie_direction": r.mismatches}


def test_float64_input_quantized_from_float32_is_double_rounding():
    x = _blocks(dtype=np.float64)
    x[1, :8] = [1.25 + 2.0 ** -40, 2.5 + 2.0 ** -35, 5.0 + 2.0 ** -30, 0.25 + 2.0 ** -45, 4.0, 3.0, 2.0, 1.0]
    v = quantize(x.astype(np.float32), "ocp-mxfp4")
    r = check_quantized(x, v.codes, v.scales, "ocp-mxfp4")
    assert r.mismatches >= 4 and r.classes == {"double_rounding": r.mismatches}


def test_nvfp4_scale_clamped_at_2_pow_minus_6_is_scale_floor():
    x = _blocks(shape=(4, 64))
    x[2] *= 1e-5                                  # tiny blocks: E4M3 scales below 2^-6
    v = quantize(x, "te-nvfp4", scale_floor=2.0 ** -6)
    r = check_quantized(x, v.codes, v.scales, "te-nvfp4", global_scale=v.global_scale)
    assert r.scale_mismatches > 0 and r.classes == {"scale_floor": r.mismatches}


def test_inverted_global_scale_is_global_scale_convention():
    x = _blocks(shape=(4, 64))
    q = quantize(x, "te-nvfp4")
    inv = np.float32(1) / np.float32(q.global_scale)
    r = check_quantized(x, q.codes, q.scales, "te-nvfp4", global_scale=inv)
    assert r.classes == {"global_scale_convention": 1} and not r.global_scale["match"]
    decode = np.float32(np.abs(x).max()) / np.float32(2688)       # torchao's convention: amax / 2688
    r = check_quantized(x, q.codes, q.scales, "te-nvfp4", global_scale=decode)
    assert r.classes == {"global_scale_convention": 1}


def test_unrelated_global_scale_is_other_and_the_rest_is_checked_under_it():
    x = _blocks(shape=(4, 64))
    v = quantize(x, "te-nvfp4", global_scale=300.0)
    r = check_quantized(x, v.codes, v.scales, "te-nvfp4", global_scale=300.0)
    assert r.classes == {"other": 1} and r.code_mismatches == 0 and any("vendor's global scale" in n
                                                                         for n in r.notes)


def test_swizzled_scales_read_as_linear_are_scale_layout():
    x = _blocks(shape=(128, 256))
    q = quantize(x, "ocp-mxfp4")
    swz = packing.swizzle_scales(q.scales)        # 128 x 8 scales: the swizzled buffer has the same size
    r = check_quantized(x, q.codes, swz, "ocp-mxfp4")
    assert r.scale_mismatches > 0 and r.classes == {"scale_layout": r.mismatches}
    assert check_quantized(x, q.codes, swz, "ocp-mxfp4", scale_layout="swizzled").match


def test_nan_in_a_block_encoded_by_another_policy_is_nan_policy_for_the_whole_block():
    x = _blocks(shape=(4, 64))
    x[3, 5] = np.nan                              # the block's scale is NaN, so are all its elements
    v = quantize(x, "ocp-mxfp4", nan="zero")
    r = check_quantized(x, v.codes, v.scales, "ocp-mxfp4")
    assert r.classes == {"nan_policy": 32} and ("nan=zero", 32, 32) in r.hints["nan_policy"]


def test_nan_in_the_tensor_amax_makes_every_mismatch_nan_policy():
    x = _blocks(shape=(4, 64))
    x[3, 5] = np.nan                              # TE's reference: the NaN reaches the global scale
    v = quantize(x, "te-nvfp4", nan="max")
    r = check_quantized(x, v.codes, v.scales, "te-nvfp4", global_scale=v.global_scale)
    assert r.mismatches > 0 and r.classes == {"nan_policy": r.mismatches}


def test_rht_exact_accumulation_vendor_against_te_model_is_accumulation_order():
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((8, 64)) * np.exp2(rng.integers(-20, 20, (8, 64)))).astype(np.float32)
    rec = fp4ref.recipes.get("te-nvfp4-rht")
    exact = rec.transform[:4] + ("exact",)
    v = quantize(x, rec, transform=exact)
    r = check_quantized(x, v.codes, v.scales, rec, global_scale=v.global_scale)
    if r.mismatches:                              # the two models differ only where fp32 accumulation is ambiguous
        assert set(r.classes) == {"accumulation_order"}


def test_values_mode_for_blocks_finds_the_scale_rule():
    x = _blocks()
    v = quantize(x, "ocp-mxfp4", scale_rule="rceil", scale_expr="amax/m")
    vals = dequantize(v)
    r = check_quantized(x, recipe="ocp-mxfp4", values=vals)
    assert r.mismatches > 0 and set(r.classes) == {"scale_binade"}


@pytest.mark.parametrize("recipe,shape,axis", [("te-nvfp4-2d", (64, 48), -1), ("ocp-mxfp4", (64, 6), 0),
                                               ("ocp-mxfp4", (3, 5, 64), -1), ("quartet-fwd", (4, 64), -1)])
def test_layouts_chunked_equal_whole_and_examples_point_at_the_right_elements(recipe, shape, axis):
    x = _blocks(shape=shape if len(shape) == 2 else (15, 64)).reshape(shape)
    q = quantize(x, recipe, axis)
    codes = q.codes.copy()
    flat = np.ravel_multi_index((1, 2) + (3,) * (len(shape) - 2), shape)
    codes.reshape(-1)[flat] ^= 0x1
    kw = {"global_scale": q.global_scale} if q.global_scale is not None else {}
    whole = check_quantized(x, codes, q.scales, recipe, axis=axis, **kw)
    chunked = check_quantized(x, codes, q.scales, recipe, axis=axis, chunk_bytes=1, **kw)
    assert whole.to_dict() == chunked.to_dict()
    assert whole.code_mismatches == 1 and whole.examples[0].index == np.unravel_index(flat, shape)
    assert whole.examples[0].input == float(x.reshape(-1)[flat])


def test_report_json_schema_and_class_counts_add_up():
    x = _blocks()
    v = quantize(x, "ocp-mxfp4", scale_rule="rceil", scale_expr="amax/m", rounding="nearest-away")
    codes = v.codes.copy()
    codes[5, 9] ^= 0x3
    d = check_quantized(x, codes, v.scales, "ocp-mxfp4").to_dict()
    assert {"match", "compared", "mismatches", "classes"} <= set(d)
    assert d["match"] is False and d["compared"] == x.size and sum(d["classes"].values()) == d["mismatches"]
    assert set(d["classes"]) <= set(CLASSES) and all(c == c.lower() and " " not in c for c in CLASSES)
    json.dumps(d)


# --- captured vendors -------------------------------------------------------------------------------------------
def _load(name):
    return _common.load(DATA / f"vendor_{name}.npz")


def test_torchao_rceil_capture_against_ocp_floor_is_mostly_scale_binade():
    a, _ = _load("torchao_cpu_mxfp4_rceil_mx_suite_f32")
    r = check_quantized(a["x"], a["codes"], a["scales"], "ocp-mxfp4")
    assert r.classes["scale_binade"] > 0.8 * r.mismatches
    assert r.hints["scale_binade"][0][0] == "scale_rule=ceil, exponent=bits"
    assert check_quantized(a["x"], a["codes"], a["scales"], "torchao-mxfp4-rceil").match


def test_microxcaling_nearest_capture_shows_ties_away_and_float_log2_scales():
    a, _ = _load("microxcaling_fp4_e2m1_nearest_mx_suite_f32")
    r = check_quantized(a["x"], a["codes"], a["scales"], "ocp-mxfp4")
    assert r.classes["tie_direction"] == 103 and r.hints["tie_direction"][0][0] == "rounding=nearest-away"
    assert r.classes["scale_binade"] == 5 and r.hints["scale_binade"][0][0] == "scale_rule=floor, exponent=log2-f32"


def test_torchao_nvfp4_capture_against_te_is_scale_floor_and_scale_expression_order():
    a, _ = _load("torchao_cpu_nvfp4_pts_nvfp4_suite_f32")
    r = check_quantized(a["x"], a["codes"], a["scales"], "te-nvfp4")
    assert r.classes == {"signed_zero": 58, "scale_floor": 425, "double_rounding": 75}
    assert r.hints["scale_floor"][0][0] == "scale_floor=2^-6" and r.hints["signed_zero"][0][0] == "neg_zero=keep"
    assert r.hints["double_rounding"][0][:2] == ("scale_expr=exact", 75)   # torchao's (amax/6)/D order, D-13


def test_jax_cpu_e2m1_cast_nan_bytes_are_nan_policy_reproduced_by_xla():
    a, _ = _load("jax_cpu_cast_e2m1_from_f32")
    r = check_cast(a["x"], a["codes"], "e2m1")
    assert r.classes == {"nan_policy": 2} and r.hints["nan_policy"][0][:2] == ("nan=xla", 2)
    assert check_cast(a["x"], a["codes"], "e2m1", nan="xla").match


def test_torch_cuda_e4m3_cast_overflows_to_nan():
    a, _ = _load("torch_cuda_cast_e4m3_from_f32")
    r = check_cast(a["x"], a["codes"], "e4m3")
    assert set(r.classes) == {"saturation_vs_nan"}
    assert check_cast(a["x"], a["codes"], "e4m3", overflow="nan").match


# --- the command line -------------------------------------------------------------------------------------------
def _cli(*args):
    return CliRunner().invoke(check_cmd, [str(a) for a in args])


def test_cli_exit_codes_and_json_report(tmp_path):
    x = _blocks(shape=(4, 64))
    q = quantize(x, "te-nvfp4")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "c.npy", packing.pack_fp4(q.codes))
    np.save(tmp_path / "s.npy", q.scales)
    base = ["--recipe", "te-nvfp4", "-i", tmp_path / "x.npy", "-c", tmp_path / "c.npy", "-s", tmp_path / "s.npy"]
    r = _cli(*base, "-g", repr(float(q.global_scale)), "--json", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "r.json").read_text())["match"] is True
    r = _cli(*base, "--nibble-order", "high", "--json", tmp_path / "r.json")
    assert r.exit_code == 1 and "nibble_order" in r.output
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["classes"] == {"nibble_order": d["mismatches"]}
    (tmp_path / "t.npy").write_bytes((tmp_path / "x.npy").read_bytes()[:-8])
    r = _cli("--recipe", "te-nvfp4", "-i", tmp_path / "t.npy", "-c", tmp_path / "c.npy", "-s", tmp_path / "s.npy")
    assert r.exit_code == 2 and "truncated" in r.output
    r = _cli(*base, "-o", "scale_rul=floor")
    assert r.exit_code == 2 and "unknown option" in r.output
    r = _cli("--format", "e2m1", "-i", tmp_path / "x.npy", "-c", tmp_path / "s.npy")
    assert r.exit_code == 2


def test_cli_bfloat16_bits_raw_codes_and_cast_mismatch(tmp_path):
    x = _grid_inputs().astype(ml_dtypes.bfloat16)
    np.save(tmp_path / "x.npy", x.view(np.uint16))
    fp4ref.encode(x, "e2m1", "nearest-away").tofile(tmp_path / "c.bin")
    r = _cli("--format", "e2m1", "-i", tmp_path / "x.npy", "--input-dtype", "bfloat16", "-c", tmp_path / "c.bin")
    assert r.exit_code == 1 and "tie_direction" in r.output and "reproduced by rounding=nearest-away" in r.output
    r = _cli("--format", "e2m1", "-i", tmp_path / "x.npy", "--input-dtype", "bfloat16", "-c", tmp_path / "c.bin",
             "--rounding", "nearest-away")
    assert r.exit_code == 0, r.output


def test_cli_reads_npz_and_safetensors_keys_and_raw_input_with_dtype_and_shape(tmp_path):
    from fp4ref import io
    x = _blocks(shape=(8, 64))
    q = quantize(x, "ocp-mxfp4")
    io.write_tensors(tmp_path / "d.npz", {"x": x, "codes": q.codes, "scales": q.scales})
    io.write_tensors(tmp_path / "d.safetensors", {"x": x, "codes": packing.pack_fp4(q.codes), "scales": q.scales})
    x.tofile(tmp_path / "x.bin")
    for f in ("d.npz", "d.safetensors"):
        p = str(tmp_path / f)
        r = _cli("--recipe", "ocp-mxfp4", "-i", p + ":x", "-c", p + ":codes", "-s", p + ":scales")
        assert r.exit_code == 0, r.output
    p = str(tmp_path / "d.npz")
    r = _cli("--recipe", "ocp-mxfp4", "-i", tmp_path / "x.bin", "--dtype", "float32", "--shape", "8,64",
             "-c", p + ":codes", "-s", p + ":scales")
    assert r.exit_code == 0, r.output
    r = _cli("--recipe", "ocp-mxfp4", "-i", tmp_path / "x.bin", "--dtype", "float32", "--shape", "8,65",
             "-c", p + ":codes", "-s", p + ":scales")
    assert r.exit_code == 2 and "needs exactly" in r.output
    r = _cli("--recipe", "ocp-mxfp4", "-i", p + ":nope", "-c", p + ":codes", "-s", p + ":scales")
    assert r.exit_code == 2 and "no tensor 'nope'" in r.output


@pytest.mark.parametrize("name,recipe,kw,classes", [
    # JAX stores the decode scale amax/2688 (computed in bfloat16): TE's encode convention inverted
    ("jax_gpu_nvfp4_gsamax_nvfp4_random_bf16", "te-nvfp4", {}, {"global_scale_convention": 1}),
    ("jax_gpu_nvfp4_gsamax_nvfp4_random_bf16", "jax-nvfp4", {}, {}),
    # TE's MXFP4 reference takes ceil of a float32 log2 (RCEIL) where OCP floors
    ("te_ref_mxfp4_pow2_mx_suite_f32", "ocp-mxfp4", {},
     {"nan_policy": 94, "saturation_vs_nan": 66, "signed_zero": 133, "scale_binade": 2325}),
    ("te_ref_nvfp4_2d_nvfp4_suite_bf16", "te-nvfp4-2d", {"tile_scales": "grid"}, {}),
])
def test_block_captures_exact_or_diagnosed(name, recipe, kw, classes):
    a, _ = _load(name)
    r = check_quantized(a["x"], a["codes"], a["scales"], recipe, global_scale=a.get("global_scale"), **kw)
    assert r.classes == classes


@pytest.mark.parametrize("name,fmt,kw,classes", [
    ("gfloat_round_e4m3_Stochastic_sr8", "e4m3", dict(rounding="stochastic-gfloat", rbits_width=8, nan="gfloat"), {}),
    ("gfloat_round_e2m1_Stochastic_sr8", "e2m1", dict(rounding="stochastic-gfloat", rbits_width=8),
     {"nan_policy": 16}),                            # gfloat raises on NaN into E2M1 (marked 0xFF)
    ("triton_cuda_tools_mxfp_cast_e8m0_from_f32", "e8m0", dict(rounding="toward-zero", overflow="nan"), {}),
    ("torch_cpu_cast_e8m0_from_f32", "e8m0", {}, None),
])
def test_cast_captures_exact_or_diagnosed(name, fmt, kw, classes):
    a, _ = _load(name)
    rb = a.get("srbits")
    r = check_cast(a["x"], a["codes"], fmt, kw.pop("rounding", "nearest-even"), rbits=rb, **kw)
    if classes is None:      # torch's e8m0: ties up (nearest-away), negatives by magnitude: named by the hints
        assert r.hints["tie_direction"][0][:2] == ("rounding=nearest-away", 127)
        assert r.hints["other"][0][0] == "negative=abs"
    else:
        assert r.classes == classes
