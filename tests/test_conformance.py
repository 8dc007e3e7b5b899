"""Tests for the conformance generator (fp4ref.conformance): decisions, families, refusal of degenerate families,
and the writers.

Independent references: a Fraction-only classifier written here (the generator's runs in float64), the exact
rational encoder fp4ref.exact.cast.exact_encode for expected codes (the generator uses the fast path checked
against the integer reference), np.load / safetensors.numpy.load for the binary files and a line parser for the
text files.
"""
from __future__ import annotations

import io
import json
import pathlib
from fractions import Fraction
from functools import lru_cache

import ml_dtypes
import numpy as np
import pytest

from safetensors import safe_open

from fp4ref import formats as F
from fp4ref.io import read_tensor
from fp4ref.conformance import decisions as D
from fp4ref.conformance import writers as W
from fp4ref.conformance.cast_cases import MODE_TOKENS, CastTarget, build_vector
from fp4ref.conformance.catalogue import DegenerateFamily, Vector, check_family, families
from fp4ref.conformance.inputs import bits_of, next_down, next_up
from fp4ref.exact.cast import exact_encode

BF16 = np.dtype(ml_dtypes.bfloat16)


@pytest.fixture(scope="module")
def small_vectors():
    """A few cast vectors covering a 4-bit, a 6-bit, an 8-bit, an integer and the E8M0 format, four dtypes."""
    ts = [CastTarget("e2m1", "f32"), CastTarget("e2m1", "bf16"), CastTarget("e3m2", "f16"),
          CastTarget("int4-m8", "f64"), CastTarget("e8m0", "f32", modes=("nearest-even", "toward-positive")),
          CastTarget("e2m1", "f32", "nan-zero", (("nan", "zero"),), families=("specials", "overflow")),
          CastTarget("ue4m3", "f32", modes=("nearest-even",))]
    return [build_vector(t, 1) for t in ts]


# --- decisions -------------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _magnitudes(fmt, positive: bool) -> list:
    vals = [fmt.exact_value(c) for c in range(fmt.n_codes)]
    return sorted({abs(v) for v in vals if v is not None and (v == 0 or (v > 0) == positive)})


def _fraction_classes(v: float, up: float, dn: float, fmt) -> set[str]:
    """The geometry decisions of one finite nonzero input, with Fractions only (no float64 midpoints)."""
    pos = _magnitudes(fmt, v > 0)
    top = pos[-1]
    if fmt.kind == "int":
        beyond = top + Fraction(1, 1 << fmt.frac_bits)
    else:
        e = 0
        while Fraction(2) ** (e + 1) <= top:
            e += 1
        while Fraction(2) ** e > top:
            e -= 1
        beyond = top + Fraction(2) ** (e - fmt.mbits)
    pts = pos + [beyond]
    a = Fraction(abs(v))
    a_in, a_out = (Fraction(abs(dn)), Fraction(abs(up)) if np.isfinite(up) else Fraction(2) ** 3000) if v > 0 \
        else (Fraction(abs(up)), Fraction(abs(dn)) if np.isfinite(dn) else Fraction(2) ** 3000)
    out = set()
    if a > top:
        out.add("above-max")
    if a == (top + beyond) / 2:
        out.add("tie-overflow")
    if a >= beyond:
        out.add("far-overflow")
    if a < next(p for p in pos if p > 0):
        out.add("underflow")
    if a in pts and a <= top:
        out.add("exact")
    elif a < beyond:
        lo = max((p for p in pts if p < a), default=None)
        hi = min(p for p in pts if p > a)
        if a <= top:
            out.add("inexact")
        if lo is not None:
            mid = (lo + hi) / 2
            if a == mid and a <= top:
                out.add("tie")
            if a != mid and a < mid <= a_out:
                out.add("near-tie-below")
            if a != mid and a_in <= mid < a:
                out.add("near-tie-above")
            if a != mid and (a_in <= lo or a_out >= hi):
                out.add("near-exact")
        elif a_out >= hi:
            out.add("near-exact")
    return out


_GEOMETRY = {"exact", "tie", "near-tie-below", "near-tie-above", "near-exact", "inexact", "underflow",
             "above-max", "tie-overflow", "far-overflow"}


def test_float64_decision_classifier_agrees_with_fraction_arithmetic(small_vectors):
    for v in small_vectors:
        fmt = F.get(v.options["format"])
        x = v.arrays["x"]
        with np.errstate(invalid="ignore"):
            w = x.astype(np.float64)
        fin = np.flatnonzero(np.isfinite(w) & (w != 0) & ((w > 0) | fmt.signed))
        up, dn = next_up(x[fin]).astype(np.float64), next_down(x[fin]).astype(np.float64)
        masks = v.arrays["decisions"][fin]
        for j, i in enumerate(fin):
            got = {n for n in D.mask_names(int(masks[j])) if n in _GEOMETRY}
            assert got == _fraction_classes(float(w[i]), up[j], dn[j], fmt), (v.name, x[i])


def test_specials_are_classified_by_their_bits():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1.0], np.float32)
    names = [D.mask_names(int(m)) for m in D.classify_cast(x, "e8m0")]
    assert names[:5] == [["zero"], ["neg-zero"], ["inf"], ["inf", "negative"], ["nan"]]
    assert names[5] == ["negative"]


def test_double_rounding_bit_marks_exactly_the_float32_tie_traps():
    # 1.25 + 2^-40: float32 rounds it to the tie 1.25 (→ 1.0 under RNE); its exact value rounds to 1.5 (D-18)
    x = np.array([1.25 + 2.0 ** -40, 1.25 - 2.0 ** -40, 1.75 + 2.0 ** -40, 1.0 + 2.0 ** -40], np.float64)
    m = D.classify_cast(x, "e2m1") & D.bit("double-rounding")
    assert [bool(b) for b in m] == [True, False, False, False]


# --- expected outputs ------------------------------------------------------------------------------------------
def _assert_fraction_reference(v, step: int = 1):
    pol = v.options["policies"]
    with np.errstate(invalid="ignore"):
        x = v.arrays["x"].astype(np.float64)
    for tok in v.options["modes"]:
        mode = v.options["mode_names"][tok]
        exp = v.arrays[f"expected_{tok}"]
        ref = [exact_encode(float(t), v.options["format"], mode, **pol) for t in x[::step]]
        assert [int(c) for c in exp[::step]] == ref, (v.name, tok)


def test_expected_codes_equal_the_fraction_reference(small_vectors):
    # every case of the 4/6-bit and integer vectors; every 13th case of the 8-bit ones (all: the exhaustive run)
    for v in small_vectors:
        _assert_fraction_reference(v, 1 if F.get(v.options["format"]).bits < 8 else 13)


@pytest.mark.exhaustive
def test_committed_cast_vectors_equal_the_fraction_reference_on_every_case():
    from fp4ref.conformance.check import load_npz
    root = pathlib.Path(__file__).parent.parent / "vectors"
    m = json.loads((root / "MANIFEST.json").read_text())
    for rel, e in m["files"].items():
        if e["format"] == "npz" and rel.startswith("cast/"):
            arrays, meta = load_npz(root / rel)
            v = Vector(meta["vector"], "cast", meta["options"], tuple(meta["families"]), arrays, {})
            _assert_fraction_reference(v)


def test_every_family_reaches_its_targets_and_has_two_codes(small_vectors):
    for v in small_vectors:
        for fam, c in v.coverage.items():
            assert set(c["targets"]) <= set(c["reached"]), (v.name, fam)
            k = v.families.index(fam)
            sel = v.arrays["family"] == k
            for tok in v.options["modes"]:
                assert len(set(v.arrays[f"expected_{tok}"][sel].tolist())) > 1, (v.name, fam, tok)


def test_random_family_is_a_fixed_philox_draw():
    a = build_vector(CastTarget("e2m1", "f32", families=("random",), modes=("nearest-even",)), 1)
    b = build_vector(CastTarget("e2m1", "f32", families=("random",), modes=("nearest-even",)), 1)
    assert bits_of(a.arrays["x"]).tolist() == bits_of(b.arrays["x"]).tolist()
    assert a.arrays["x"].size >= 100


def test_bfloat16_neighbours_are_bfloat16_ulps():
    x = np.array([1.0, -1.0, 0.0], BF16)
    assert next_up(x).astype(np.float32).tolist() == [1.0 + 2.0 ** -7, -(1.0 - 2.0 ** -8), 2.0 ** -133]
    assert next_down(x).astype(np.float32).tolist() == [1.0 - 2.0 ** -8, -(1.0 + 2.0 ** -7), -(2.0 ** -133)]


# --- refusal of degenerate families ----------------------------------------------------------------------------
def test_generator_refuses_a_family_with_one_output_code():
    with pytest.raises(DegenerateFamily, match="only code 0"):
        check_family("cast/x", "zeros", {"rne": np.zeros(5, np.uint8)}, {"tie": 5}, ("tie",))


def test_generator_refuses_a_family_that_never_reaches_its_target():
    with pytest.raises(DegenerateFamily, match="never reaches tie"):
        check_family("cast/x", "no-ties", {"rne": np.arange(5, dtype=np.uint8)}, {"exact": 5}, ("tie",))


def test_e8m0_specials_under_overflow_nan_keep_a_finite_anchor():
    # every special gives 0xFF here; the family's 1.0 anchor keeps it from being refused as one code
    v = build_vector(CastTarget("e8m0", "f32", "overflow-nan", (("overflow", "nan"),), families=("specials",),
                                modes=("nearest-even",)), 1)
    assert sorted(set(v.arrays["expected_rne"].tolist())) == [0x7F, 0xFF]


def test_every_family_documents_targets_that_are_decision_names():
    for f in families("cast"):
        assert f.decisions and set(f.decisions) <= set(D.CAST_DECISIONS), f.name


# --- writers ---------------------------------------------------------------------------------------------------
def test_npz_bytes_are_stable_and_load_with_numpy(small_vectors):
    v = small_vectors[1]  # bfloat16 inputs: stored as uint16 bits in .npz
    a, b = W.npz_bytes(v, "0.0"), W.npz_bytes(v, "0.0")
    assert a == b
    with np.load(io.BytesIO(a), allow_pickle=False) as z:
        meta = json.loads(z["meta"].item())
        assert meta["vector"] == v.name and meta["options"] == v.options
        assert (z["x"] == bits_of(v.arrays["x"])).all() and z["x"].dtype == np.uint16
        for k, arr in v.arrays.items():
            if k != "x":
                assert (z[k] == arr).all() and z[k].dtype == arr.dtype


def test_safetensors_holds_the_same_arrays_with_bf16(small_vectors, tmp_path):
    v = small_vectors[1]
    p = tmp_path / "v.safetensors"
    p.write_bytes(W.safetensors_bytes(v, "0.0"))
    x = read_tensor(f"{p}:x")
    assert x.dtype == BF16 and (bits_of(x) == bits_of(v.arrays["x"])).all()
    for k, arr in v.arrays.items():
        if k != "x":
            got = read_tensor(f"{p}:{k}")
            assert got.dtype == arr.dtype and (got == arr).all()
    with safe_open(p, "np") as f:
        assert json.loads(f.metadata()["fp4ref"])["vector"] == v.name


def test_hex_lines_parse_back_to_the_arrays(small_vectors):
    for v in small_vectors:
        lines = [ln.split() for ln in W.hex_text(v, "0.0").splitlines() if not ln.startswith("#")]
        n = v.arrays["x"].size
        assert len(lines) == n * len(v.options["modes"])
        for j, tok in enumerate(v.options["modes"]):
            chunk = lines[j * n:(j + 1) * n]
            assert [int(c[0], 16) for c in chunk] == bits_of(v.arrays["x"]).tolist()
            assert {c[1] for c in chunk} == {tok}
            assert [int(c[2], 16) for c in chunk] == v.arrays[f"expected_{tok}"].tolist()


def test_memh_words_are_input_then_each_modes_code(small_vectors):
    v = small_vectors[0]
    (text,) = W.memh_texts(v, "0.0").values()
    words = [ln for ln in text.splitlines() if ln and not ln.startswith("//")]
    modes = v.options["modes"]
    assert all(len(w) == 8 + 2 * len(modes) and w[8] == "_" for w in words)
    want = []
    for i, b in enumerate(bits_of(v.arrays["x"])):
        word = int(b)
        for tok in modes:
            word = (word << 4) | int(v.arrays[f"expected_{tok}"][i])
        want.append(word)
    assert [int(w.replace("_", ""), 16) for w in words] == want


def test_mode_tokens_are_the_seven_deterministic_modes():
    from fp4ref import rounding as R
    assert set(MODE_TOKENS) == set(R.MODES)


# --- scale, block and stochastic-rounding vectors -----------------------------------------------------------------
@pytest.fixture(scope="module")
def recipe_vectors():
    from fp4ref.conformance.block_cases import RecipeTarget, build_block_vector, build_scale_vector
    return {"scale": build_scale_vector(RecipeTarget("scale", "ocp-mxfp4"), 1),
            "block4": build_block_vector(RecipeTarget("block", "ocp-mxfp4"), 1),
            "block8": build_block_vector(RecipeTarget("block", "ocp-mxfp8-e4m3"), 1),
            "nv": build_block_vector(RecipeTarget("block", "te-nvfp4"), 1)}


def _ocp_floor_reference(x: np.ndarray, elem: str) -> tuple[list, list]:
    """OCP MX v1.0 §6.3 in exact arithmetic, one row = one block of 32: (scale codes, element codes)."""
    fmt = F.get(elem)
    scales, codes = [], []
    for row in x.astype(np.float64):
        if np.isnan(row).any():
            scales.append(0xFF)
            codes.append(None)
            continue
        amax = float(np.max(np.abs(row)))
        if amax == 0:
            e = -127
        elif np.isinf(amax):
            scales.append(0xFF)
            codes.append(None)
            continue
        else:
            e = int(np.frexp(amax)[1]) - 1 - fmt.emax   # floor(log2 amax) from the exponent, exactly
        if e > 127:
            scales.append(0xFF)
            codes.append(None)
            continue
        e = max(e, -127)
        scales.append(e + 127)
        codes.append([exact_encode(Fraction(float(v)) / Fraction(2) ** e if v != 0 else float(v), elem)
                      for v in row])
    return scales, codes


def test_ocp_block_vectors_equal_the_exact_floor_rule(recipe_vectors):
    for key, elem in (("block4", "e2m1"), ("block8", "e4m3")):
        v = recipe_vectors[key]
        for fam in v.families:
            if fam == "ragged":
                continue  # padded rows: checked through the hex round trip
            x = v.arrays[f"{fam}.x"]
            scales, codes = _ocp_floor_reference(x, elem)
            assert v.arrays[f"{fam}.scales"].reshape(-1).tolist() == scales, (key, fam)
            for row, want in zip(v.arrays[f"{fam}.codes"], codes):
                if want is not None:
                    assert row.tolist() == want, (key, fam)


def test_scale_vector_spikes_show_floors_top_binade_saturation(recipe_vectors):
    v = recipe_vectors["scale"]
    fam = v.arrays["family"]
    pow2 = fam == v.families.index("pow2")
    below = fam == v.families.index("below-pow2")
    normal = np.abs(v.arrays["amax"].astype(np.float64)) >= 2.0 ** -120
    # amax 2^k: scale 2^(k-2), spike 4 (code 6); the value below 2^k: scale 2^(k-3), spike saturates to 6 (D-1)
    assert set((v.arrays["code"][pow2 & normal] & 7).tolist()) == {6}
    assert set((v.arrays["code"][below & normal] & 7).tolist()) == {7}
    k = np.frexp(np.abs(v.arrays["amax"][pow2 & normal].astype(np.float64)))[1] - 1
    assert (v.arrays["scale"][pow2 & normal].astype(int) == k - 2 + 127).all()


def test_nvfp4_tiny_blocks_reach_the_bottom_of_ue4m3(recipe_vectors):
    c = recipe_vectors["nv"].coverage["tiny-blocks"]["reached"]
    assert c.get("scale-subnormal") and c.get("scale-zero")


def test_block_hex_lines_parse_back_to_the_arrays(recipe_vectors):
    v = recipe_vectors["block4"]
    text = W.hex_text(v, "0.0").splitlines()
    for fam in v.families:
        start = next(i for i, ln in enumerate(text) if ln.startswith(f"# family {fam}:"))
        rows = []
        for ln in text[start + 1:]:
            if ln.startswith("#"):
                if ln.startswith("# family"):
                    break
                continue
            rows.append(ln.split())
        x, codes = v.arrays[f"{fam}.x"], v.arrays[f"{fam}.codes"]
        scales = v.arrays[f"{fam}.scales"].reshape(-1)
        xb = bits_of(x)
        want = []
        for r in range(x.shape[0]):
            for c0 in range(0, x.shape[1], 32):
                want.append((xb[r, c0:c0 + 32].tolist(), codes[r, c0:c0 + 32].tolist()))
        assert len(rows) == len(want) == scales.size
        for (wx, wc), s, row in zip(want, scales, rows):
            assert [int(t, 16) for t in row[:len(wx)]] == wx
            assert int(row[-2], 16) == int(s)
            assert [int(ch, 16) for ch in row[-1]] == wc


@pytest.fixture(scope="module")
def sr_vectors():
    from fp4ref.conformance.sr_cases import SrTarget, build_sr_vector
    return [build_sr_vector(SrTarget("e2m1", v, 8), 1) for v in ("stochastic-ptx", "stochastic-te",
                                                                  "stochastic-gfloat", "stochastic-exact")] + \
        [build_sr_vector(SrTarget("e4m3", "stochastic-ptx", 16), 1)]


def test_sr_expected_codes_equal_the_fraction_reference(sr_vectors):
    from fp4ref.exact.stochastic import exact_sr_encode
    from fp4ref.conformance.sr_cases import SR_DECISIONS
    flip = 1 << SR_DECISIONS.index("sr-flip")
    for v in sr_vectors:
        x, r, e, m = v.arrays["x"], v.arrays["rbits"], v.arrays["expected"], v.arrays["decisions"]
        idx = sorted(set(range(0, x.size, 5)) | set(np.flatnonzero(m & flip).tolist()))
        with np.errstate(invalid="ignore"):
            for i in idx:
                want = exact_sr_encode(float(x[i]), v.options["format"], v.options["rounding"], int(r[i]),
                                       v.options["rbits_width"])
                assert int(e[i]) == want, (v.name, float(x[i]), int(r[i]))


def test_sr_full_sweep_flips_exactly_once_per_input_at_the_carry(sr_vectors):
    v = sr_vectors[0]  # PTX carry rule: away iff r >= 2^w - floor(f 2^w)
    sel = v.arrays["family"] == v.families.index("carry")
    x, r, e = v.arrays["x"][sel], v.arrays["rbits"][sel], v.arrays["expected"][sel]
    first = x == x[0]
    assert first.sum() == 256 and (r[first] == np.arange(256)).all()
    f = (Fraction(float(x[0])) - 1) / Fraction(1, 2)   # E2M1 spacing in [1, 2) is 1/2
    t = 256 - int(f * 256)
    assert (e[first][:t] == 2).all() and (e[first][t:] == 3).all()


def test_te_fallback_differs_from_the_carry_rule_where_its_fma_rounds(sr_vectors):
    ptx, te = sr_vectors[0], sr_vectors[1]
    d = np.flatnonzero(ptx.arrays["expected"] != te.arrays["expected"])
    assert d.size >= 1 and (np.abs(ptx.arrays["x"][d].astype(np.float64)) < 0.5).all()


# --- packing vectors ---------------------------------------------------------------------------------------------
def test_packing_vectors_equal_byte_arithmetic_and_the_swizzle_formula():
    from fp4ref.conformance.packing_cases import SWIZZLE_SHAPES, PackingTarget, build_packing_vector
    fp4 = build_packing_vector(PackingTarget("fp4"), 1).arrays
    a, b = fp4["fp4-pairs.codes"][:, 0].astype(int), fp4["fp4-pairs.codes"][:, 1].astype(int)
    assert fp4["fp4-pairs.packed_low"][:, 0].tolist() == (a + 16 * b).tolist()
    assert fp4["fp4-pairs.packed_high"][:, 0].tolist() == (16 * a + b).tolist()
    fp6 = build_packing_vector(PackingTarget("fp6"), 1).arrays
    for g, lsb, msb in zip(fp6["fp6-groups.codes"], fp6["fp6-groups.packed_lsb"], fp6["fp6-groups.packed_msb"]):
        word = sum(int(c) << (6 * i) for i, c in enumerate(g))              # element i at bits 6i..6i+5
        assert lsb.tolist() == [(word >> (8 * k)) & 0xFF for k in range(3)]
        bits = "".join(format(int(c), "06b") for c in g)                   # element 0 in the top six bits
        assert msb.tolist() == [int(bits[8 * k:8 * k + 8], 2) for k in range(3)]
    sw = build_packing_vector(PackingTarget("swizzle"), 1).arrays
    for rows, cols in SWIZZLE_SHAPES:
        s = sw[f"swizzle-shapes.scales_{rows}x{cols}"]
        buf = sw[f"swizzle-shapes.swizzled_{rows}x{cols}"]
        nc = -(-cols // 4)
        assert buf.size == -(-rows // 128) * nc * 512
        want = np.zeros(buf.size, np.uint8)
        for r in range(rows):
            for c in range(cols):   # semantics.md D-16
                off = ((r // 128) * nc + c // 4) * 512 + (r % 32) * 16 + ((r % 128) // 32) * 4 + c % 4
                assert sw[f"swizzle-shapes.offsets_{rows}x{cols}"][r, c] == off
                want[off] = s[r, c]
        assert (buf == want).all()
