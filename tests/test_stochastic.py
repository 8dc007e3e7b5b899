"""Stochastic rounding: every variant's promised probability over all random values (exact Fractions), the fast
path against the exact Fraction reference, gfloat 0.5.2 (captured and live), TransformerEngine's E2M1 fallback
and its Philox words (captured on an H100), lane maps, extremes, errors and the CLI."""
import json
import math
from fractions import Fraction
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fp4ref
from fp4ref import formats as F
from fp4ref import stochastic as S
from fp4ref.exact.stochastic import exact_sr_encode
from fp4ref.random import philox4x32_10_many

DATA = Path(__file__).parent / "data"
SR_FORMATS = [f for f in F.all_formats() if f.has_zero and (f.kind == "int" or f.subnormals)]
FAST_BITS = {"": 53, "-float32": 24, "-float16": 11, "-bfloat16": 8}
GFLOAT_NAMES = {"Stochastic": "stochastic-gfloat", "StochasticOdd": "stochastic-gfloat-odd",
                "StochasticFast": "stochastic-gfloat-fast", "StochasticFastest": "stochastic-gfloat-fastest"}
GFLOAT_FMT = {"int8": "mxint8-m2"}
DTYPES = {"float64": np.float64, "float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def _variants(fmt):
    return [v for v in S.VARIANTS if v != "stochastic-te" or fmt.name == "e2m1"]


def _sum_bits(variant):
    for suffix, p in sorted(FAST_BITS.items(), key=lambda kv: -len(kv[0])):
        if variant.startswith("stochastic-gfloat-fast") and variant.endswith(suffix):
            return p
    return None


def _half_even(y: Fraction, odd: bool) -> int:
    fl = math.floor(y)
    if y - fl != Fraction(1, 2):
        return fl + (1 if y - fl > Fraction(1, 2) else 0)
    return fl + (1 if (fl % 2 == 1) != odd else 0)


def _promised_count(variant, f: Fraction, w: int, hq: Fraction) -> int:
    """How many of the 2**w random values round n + f away, as the variant's docstring promises."""
    y = f * 2 ** w
    if variant == "stochastic-ptx":
        return math.floor(y)
    if variant == "stochastic-exact":
        return int(y)
    if variant == "stochastic-gfloat":
        return _half_even(y, odd=False)
    if variant == "stochastic-gfloat-odd":
        return _half_even(y, odd=True)
    if variant == "stochastic-te":
        return min(math.floor(256 * (f + hq)), 256)
    p = _sum_bits(variant)
    extra = Fraction(2) ** (w - p - 1)
    if "fastest" in variant:
        return min(math.floor(y + extra), 2 ** w)
    return min(math.floor(y + Fraction(1, 2) + extra), 2 ** w)


def _te_hq(hi: Fraction, q: Fraction) -> Fraction:
    """Half the float32 spacing just below hi, in units of q."""
    k = math.floor(math.log2(hi))
    while Fraction(2) ** k > hi:
        k -= 1
    while Fraction(2) ** (k + 1) <= hi:
        k += 1
    below = Fraction(2) ** (k - 24 - (1 if hi == Fraction(2) ** k else 0))
    return below / q


def _grid_points(fmt):
    """(n, q) pairs: the lowest, middle and top n of every binade (the subnormal interval included, and the
    binade beyond max whose upper neighbour overflows)."""
    if fmt.kind == "int":
        q = Fraction(1, 2 ** fmt.frac_bits)
        top = round(fmt.max / float(q))
        return [(n, q) for n in (0, 1, top // 2, top - 1, top)]
    one = 2 ** fmt.mbits
    pts = []
    for e in range(fmt.emin, fmt.emax + 2):
        q = Fraction(2) ** (e - fmt.mbits)
        ns = (0, one // 2, one - 1) if e == fmt.emin else ()
        pts += [(n, q) for n in ns + (one, one + one // 2, 2 * one - 1)]
    return pts


FRACTIONS = [Fraction(k, 16) for k in (0, 1, 5, 8, 11, 15)] + [Fraction(0x5555, 2 ** 16),
                                                             Fraction(2 ** 20 - 1, 2 ** 20), Fraction(1, 2 ** 30)]


@pytest.mark.parametrize("fmt", SR_FORMATS, ids=lambda f: f.name)
def test_mean_over_all_random_values_equals_each_variants_promise_in_every_binade(fmt):
    w = 4
    for variant in _variants(fmt):
        width = 8 if variant == "stochastic-te" else w
        xs, meta = [], []
        for n, q in _grid_points(fmt):
            for f in FRACTIONS:
                if variant == "stochastic-exact" and (f * 2 ** width).denominator != 1:
                    continue
                v = (n + f) * q
                if variant == "stochastic-te" and (v >= 8 or np.float32(float(v)) != float(v)):
                    continue
                for sign in ((1, -1) if fmt.signed else (1,)):
                    xs.append(float(sign * v))
                    meta.append((sign, n, q, f))
        if not xs:
            continue
        dt = np.float32 if variant == "stochastic-te" else np.float64
        x = np.repeat(np.array(xs, dt), 2 ** width)
        r = np.tile(np.arange(2 ** width, dtype=np.uint64), len(xs))
        codes = fp4ref.encode(x, fmt, variant, rbits=r, rbits_width=width).reshape(len(xs), -1)
        for (sign, n, q, f), row in zip(meta, codes):
            top = Fraction(fmt.max_neg if sign < 0 else fmt.max)
            lo, hi = n * q, (n + 1) * q
            lo_eff, hi_eff = min(lo, top), min(hi, top)   # saturate (the default overflow policy)
            vals, counts = np.unique(row, return_counts=True)
            got = {abs(Fraction(float(fmt.values[c]))): int(k) for c, k in zip(vals, counts)}
            assert set(got) <= {lo_eff, hi_eff}, (variant, fmt.name, sign, n, q, f, got)
            count = _promised_count(variant, f, width, _te_hq(hi, q) if variant == "stochastic-te" else 0)
            if f == 0:
                count = 0
            mean = sign * sum((v * k for v, k in got.items()), Fraction(0)) / 2 ** width
            want = sign * (lo_eff + (hi_eff - lo_eff) * Fraction(count, 2 ** width))
            assert mean == want, (variant, fmt.name, sign, n, q, f, mean, want)


def test_te_and_ptx_promises_with_their_default_eight_bits():
    x = np.array([0.3, 0.7, 1.1, 1.7, 2.9, 3.3, 4.5, 5.9], np.float32)
    X = np.repeat(x, 256)
    R = np.tile(np.arange(256, dtype=np.uint8), x.size)
    for variant in ("stochastic-ptx", "stochastic-te"):
        codes = fp4ref.encode(X, "e2m1", variant, rbits=R).reshape(x.size, 256)
        for xi, row in zip(x, codes):
            # 8 random bits against 22 discarded ones: the mean is the input truncated to 8 bits of fraction
            mean = sum(Fraction(float(F.E2M1.values[c])) for c in row) / 256
            q = Fraction(1, 2) if xi < 2 else (Fraction(1) if xi < 4 else Fraction(2))
            assert mean == math.floor(Fraction(float(xi)) / q * 256) * q / 256, (variant, xi)


# --- the fast path against the exact Fraction reference -------------------------------------------------------

def _width_for(variant, dtype):
    if variant == "stochastic-te":
        return 8
    if variant == "stochastic-exact":
        return 62
    bits = min(ml_dtypes.finfo(dtype).nmant + 1, _sum_bits(variant) or 53)
    return min(9, bits - 1)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(SR_FORMATS), st.sampled_from(list(S.VARIANTS)), st.sampled_from([np.float64, np.float32]),
       st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=12),
       st.integers(0, 2 ** 62 - 1))
def test_fast_path_equals_exact_reference_on_random_inputs_and_bits(fmt, variant, dtype, xs, seed):
    if variant == "stochastic-te":
        fmt, dtype = F.E2M1, np.float32
    x = np.array(xs, dtype)
    if not fmt.signed:
        x = np.abs(x)
    w = _width_for(variant, dtype)
    r = np.random.default_rng(seed).integers(0, 2 ** w, x.shape, dtype=np.uint64)
    want = [exact_sr_encode(float(v), fmt, variant, int(ri), w) for v, ri in zip(x, r)]
    if None in want:
        with pytest.raises(fp4ref.CastError):
            fp4ref.encode(x, fmt, variant, rbits=r, rbits_width=w)
        return
    got = fp4ref.encode(x, fmt, variant, rbits=r, rbits_width=w)
    assert got.tolist() == want


def _fine_fraction_inputs(fmt, dtype, w):
    """Values in the first subnormal interval whose fraction lies just below k / 2**(w+1): where the gfloat fast
    variants' rounded sum, and TE's float32 fma, decide."""
    q = float(fmt.min_subnormal if fmt.kind == "float" else 2.0 ** -fmt.frac_bits)
    out = []
    for k in (1, 2, 3, 5, 2 ** (w + 1) - 1):
        b = np.array([k / 2 ** (w + 1)], dtype)
        below = (b.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[b.itemsize]) - 1).view(dtype)[0]
        out.append(float(below) * q)
    return np.array(out, dtype)


@pytest.mark.parametrize("variant", [v for v in S.VARIANTS if "fast" in v])
def test_gfloat_fast_variants_sum_precision_decides_fine_fractions_as_the_reference(variant):
    for fmt in (F.E2M1, F.E4M3, F.get("mxint8-m2")):
        for dtype in (np.float64, np.float32, np.float16):
            w = min(6, ml_dtypes.finfo(dtype).nmant, _sum_bits(variant) - 1)
            x = np.repeat(_fine_fraction_inputs(fmt, dtype, w), 2 ** w)
            r = np.tile(np.arange(2 ** w, dtype=np.uint64), x.size // 2 ** w)
            got = fp4ref.encode(x, fmt, variant, rbits=r, rbits_width=w)
            want = [exact_sr_encode(float(v), fmt, variant, int(ri), w) for v, ri in zip(x, r)]
            assert got.tolist() == want, (fmt.name, dtype)


def test_te_fallback_differs_from_the_carry_rule_only_through_its_float32_fma():
    x = np.float32(np.nextafter(np.float32(1 / 512), np.float32(0)))   # a + 255/512 rounds up to 0.5 in float32
    te = fp4ref.encode(np.array([x]), "e2m1", "stochastic-te", rbits=np.array([255], np.uint8))
    ptx = fp4ref.encode(np.array([x]), "e2m1", "stochastic-ptx", rbits=np.array([255], np.uint8))
    assert (te[0], ptx[0]) == (0x1, 0x0)
    assert exact_sr_encode(float(x), "e2m1", "stochastic-te", 255, 8) == 0x1


# --- vendors ----------------------------------------------------------------------------------------------------

def test_gfloat_capture_matches_every_case_numpy_and_torch():
    d = np.load(DATA / "gfloat_sr.npz")
    meta = json.loads(str(d["meta"]))
    assert meta["gfloat"] == "0.5.2"
    checked = 0
    for k in d.files:
        if not k.startswith("codes/"):
            continue
        _, lib, fname, dname, mode, n = k.split("/")
        x = d[f"x/{fname}/{dname}"].astype(DTYPES[dname])
        r = d[f"r/{fname}/{dname}/{n}"]
        fmt = F.get(GFLOAT_FMT.get(fname, fname))
        variant = GFLOAT_NAMES[mode] + ("" if lib == "numpy" else "-" + dname)
        got = fp4ref.encode(np.ascontiguousarray(np.broadcast_to(x[:, None], r.shape)), fmt, variant, rbits=r,
                            rbits_width=int(n), nan="gfloat" if fmt.has_nan else "max")
        assert np.array_equal(got, d[k]), k
        checked += d[k].size
    assert checked > 200_000


def test_gfloat_round_fixtures_of_every_format_match():
    paths = sorted(DATA.glob("vendor_gfloat_round_*_Stochastic*_sr*.npz"))
    assert paths
    for p in paths:
        d = np.load(p)
        meta = json.loads(str(d["meta"]))
        fmt = F.get(GFLOAT_FMT.get(meta["elem_format"], meta["elem_format"]))
        ok = d["raised"] == 0
        x = np.where(ok, d["x"], 0).astype(d["x"].dtype)
        got = fp4ref.encode(x, fmt, GFLOAT_NAMES[meta["rounding"]], rbits=d["srbits"].astype(np.uint64),
                            rbits_width=meta["srnumbits"], nan="gfloat" if fmt.has_nan else "max")
        assert np.array_equal(got[ok], d["codes"][ok]), p.name


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_gfloat_live_on_random_inputs_when_installed(lib):
    gfloat = pytest.importorskip("gfloat")
    from gfloat import RoundMode
    from gfloat import formats as gf
    rng = np.random.default_rng(7)
    for fname, fmt in (("e2m1", "e2m1"), ("e4m3", "e4m3"), ("e5m2", "e5m2"), ("int8", "mxint8-m2")):
        fi = getattr(gf, f"format_info_ocp_{fname}")
        x = (rng.standard_normal(3000) * fi.max / 4).astype(np.float32)
        x[::7] *= 2.0 ** -12
        for mode, name in GFLOAT_NAMES.items():
            n = 8
            r = rng.integers(0, 2 ** n, x.shape)
            if lib == "numpy":
                out = gfloat.round_ndarray(fi, x, getattr(RoundMode, mode), True, srbits=r, srnumbits=n)
            else:
                torch = pytest.importorskip("torch")
                if "Fast" not in mode:
                    continue
                out = gfloat.round_ndarray(fi, torch.from_numpy(x), getattr(RoundMode, mode), True,
                                           srbits=torch.from_numpy(r), srnumbits=n).numpy()
                name += "-float32"
            want = np.asarray(gfloat.encode_ndarray(fi, np.asarray(out, np.float64))).astype(np.uint8)
            got = fp4ref.encode(x, fmt, name, rbits=r.astype(np.uint64), rbits_width=n)
            assert np.array_equal(got, want), (fname, mode)


def test_te_fallback_capture_matches_stochastic_te_for_every_random_byte():
    d = np.load(DATA / "te_sr_fallback.npz")
    assert json.loads(str(d["meta"]))["te_commit"].startswith("d0067d0")
    sx, out = d["sweep_x"], d["sweep_out"]
    assert all(np.array_equal((out >> (4 * k)) & 0xF, out & 0xF) for k in range(4))
    X = np.repeat(sx, 256)
    R = np.tile(np.arange(256, dtype=np.uint8), sx.size)
    got = fp4ref.encode(X, "e2m1", "stochastic-te", rbits=R).reshape(sx.size, 256)
    assert np.array_equal(got, out & 0xF)
    ptx = fp4ref.encode(X, "e2m1", "stochastic-ptx", rbits=R).reshape(sx.size, 256)
    differ = np.abs(sx[(ptx != got).any(axis=1)])
    assert differ.size and (differ < 0.5).all()   # only the float32 fma below 0.5 separates them


def _pack(codes):
    c = codes.astype(np.uint16)
    return c[:, 0] | (c[:, 1] << 4) | (c[:, 2] << 8) | (c[:, 3] << 12)


def test_te_fallback_lane_map_is_byte_k_to_element_k_and_the_isa_reading_swaps_lanes_1_and_2():
    d = np.load(DATA / "te_sr_fallback.npz")
    x, w, out = d["lane_x"], d["lane_words"][:, None], d["lane_out"]
    te = fp4ref.encode(x, "e2m1", "stochastic-te", rbits=w, lanes="te-e2m1x4")
    assert np.array_equal(_pack(te), out)
    isa = fp4ref.encode(x, "e2m1", "stochastic-te", rbits=w, lanes="ptx-isa-e2m1x4")
    assert not np.array_equal(_pack(isa), out)
    swapped = ((w & 0xFF0000FF) | ((w & 0x0000FF00) << 8) | ((w & 0x00FF0000) >> 8)).astype(np.uint32)
    assert np.array_equal(_pack(fp4ref.encode(x, "e2m1", "stochastic-te", rbits=swapped,
                                              lanes="ptx-isa-e2m1x4")), out)


def test_te_thread_words_are_block_offset_philox_streams_and_philoxbits_replays_them():
    d = np.load(DATA / "te_sr_fallback.npz")
    pw = d["philox_words"]
    threads, count = pw.shape[1:]
    rng = np.random.default_rng(3)
    for c, (seed, offset) in enumerate(zip(d["philox_seed"], d["philox_offset"])):
        seed, offset = int(seed), int(offset)
        assert np.array_equal(philox4x32_10_many(seed, np.arange(threads), offset, count, offset_unit="block"),
                              pw[c])
        x = (rng.standard_normal((threads, 4 * count)) * 2).astype(np.float32)
        bits = S.PhiloxBits(seed, offset, np.arange(threads, dtype=np.uint64), "block")
        via_philox = fp4ref.encode(x, "e2m1", "stochastic-te", rbits=bits, lanes="te-e2m1x4")
        via_words = fp4ref.encode(x, "e2m1", "stochastic-te", rbits=pw[c], lanes="te-e2m1x4")
        assert np.array_equal(via_philox, via_words)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # float32: the bit-field path; float64: the other
@pytest.mark.parametrize("lanes", [None, "te-e2m1x4", "sm100-probe-e2m1x4"])
@pytest.mark.parametrize("offset,unit", [(0, "word"), (5, "word"), (2 ** 40 + 3, "word"), (7, "block")])
def test_philox_bits_equal_the_explicit_words_of_fp4ref_random(lanes, offset, unit, dtype):
    x = (np.random.default_rng(1).standard_normal((3, 40)) * 3).astype(dtype)
    subs = np.array([0, 9, 2 ** 63], np.uint64)
    g = 1 if lanes is None else 4
    words = philox4x32_10_many(123, subs, offset, 40 // g, offset_unit=unit)
    explicit = words & 0xFF if lanes is None else words
    a = fp4ref.encode(x, "e2m1", "stochastic-ptx", rbits=S.PhiloxBits(123, offset, subs, unit), lanes=lanes,
                      rbits_width=8 if lanes is None else None)
    b = fp4ref.encode(x, "e2m1", "stochastic-ptx", rbits=explicit, lanes=lanes, rbits_width=8 if lanes is None
                      else None)
    assert np.array_equal(a, b)


# --- lane maps --------------------------------------------------------------------------------------------------

def test_lane_maps_read_the_bits_their_sources_give():
    one_hot = np.array([[1 << b] for b in range(32)], np.uint32)
    for name, m in S.LANE_MAPS.items():
        lanes = S.unpack_words(one_hot, name)           # (32, G)
        for k, bits in enumerate(m.lanes):
            for pos, phys in enumerate(bits):
                assert lanes[phys, k] == 1 << (m.width - 1 - pos), (name, k, phys)
    te = S.unpack_words(np.array([0x44332211], np.uint32), "te-e2m1x4")
    isa = S.unpack_words(np.array([0x44332211], np.uint32), "ptx-isa-e2m1x4")
    assert te.tolist() == [0x11, 0x22, 0x33, 0x44] and isa.tolist() == [0x11, 0x33, 0x22, 0x44]
    probe = S.unpack_words(np.array([0x44332211], np.uint32), "sm100-probe-e2m1x4")
    rev8 = lambda v: int(f"{v:08b}"[::-1], 2)  # noqa: E731
    assert probe.tolist() == [0x3311, (rev8(0x11) << 8) | rev8(0x33), 0x4422, (rev8(0x22) << 8) | rev8(0x44)]
    for name in ("sm100-probe-e2m1x4", "sm100-probe-f8x4"):   # every bit feeds two lanes, once reversed
        m = S.LANE_MAPS[name]
        assert sorted(b for lane in m.lanes for b in lane) == sorted(list(range(32)) * 2)
        assert m.lanes[1] == m.lanes[0][::-1] and m.lanes[3] == m.lanes[2][::-1]


# --- extremes ---------------------------------------------------------------------------------------------------

def test_all_zero_bits_truncate_and_all_one_bits_round_away_under_the_carry_rule():
    rng = np.random.default_rng(5)
    for fmt in (F.E2M1, F.E2M3, F.E3M2, F.E4M3, F.E5M2, F.get("mxint8")):
        x = (rng.standard_normal(2000) * fmt.max / 3).astype(np.float32)
        w = 16
        zero = fp4ref.encode(x, fmt, "stochastic-ptx", rbits=np.zeros(x.shape, np.uint16), rbits_width=w)
        assert np.array_equal(zero, fp4ref.encode(x, fmt, "toward-zero"))
        ones = fp4ref.encode(x, fmt, "stochastic-ptx", rbits=np.full(x.shape, 2 ** w - 1, np.uint16), rbits_width=w)
        away = np.where(x < 0, fp4ref.encode(x, fmt, "toward-negative"), fp4ref.encode(x, fmt, "toward-positive"))
        lo = fp4ref.decode(zero, fmt, np.float64)
        step = np.abs(fp4ref.decode(away, fmt, np.float64) - lo)
        tiny = np.abs(x.astype(np.float64) - lo) < step * 2.0 ** -w   # fraction below 2**-w: stays down
        assert np.array_equal(ones[~tiny], away[~tiny]) and np.array_equal(ones[tiny], zero[tiny])


@pytest.mark.parametrize("variant", ["stochastic-ptx", "stochastic-gfloat", "stochastic-gfloat-fastest"])
def test_carries_into_the_next_binade_and_into_overflow(variant):
    top = np.full(1, 255, np.uint64)
    def enc(v, fmt, **kw):
        return int(fp4ref.encode(np.array([v]), fmt, variant, rbits=top, rbits_width=8, **kw)[0])

    assert enc(15.5, "e4m3") == 0x58 and F.E4M3.values[0x58] == 16.0     # 15 + 1/2 carries to 16 = 2^4
    assert enc(1.75, "e2m1") == 0x4                                       # 1.5 + 1/2 ulp carries to 2
    assert enc(0.75, "e2m1") == 0x2                                       # subnormal 0.5 carries to normal 1
    assert enc(460.0, "e4m3") == 0x7E                                     # 480 saturates to 448
    assert enc(460.0, "e4m3", overflow="nan") == 0x7F
    assert enc(-60000.0, "e5m2", overflow="inf") == 0xFC
    assert enc(7.0, "e2m1") == 0x7 and enc(1e30, "e2m1") == 0x7
    zero = np.zeros(1, np.uint64)
    assert int(fp4ref.encode(np.array([460.0]), "e4m3", variant, rbits=zero, rbits_width=8,
                             overflow="nan")[0]) == 0x7E                  # toward zero stays finite


@pytest.mark.parametrize("variant", list(S.VARIANTS))
def test_specials_follow_the_same_policies_as_the_deterministic_cast(variant):
    x = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, -1e-30], np.float32)
    fmts = ["e2m1"] if variant == "stochastic-te" else ["e2m1", "e4m3", "e5m2", "e3m2"]
    w = 8 if variant in ("stochastic-te", "stochastic-ptx") else 7
    r = np.full(x.shape, 100, np.uint64)
    for fmt in fmts:
        for kw in ({}, {"nan": "zero" if not F.get(fmt).has_nan else "canonical", "neg_zero": "positive"}):
            got = fp4ref.encode(x[:6], fmt, variant, rbits=r[:6], rbits_width=w, **kw)
            assert np.array_equal(got, fp4ref.encode(x[:6], fmt, **kw)), (fmt, kw)
        if variant != "stochastic-exact":   # (whose 7 bits cannot round 1e-30 with its exact probability)
            # a negative value rounded to zero keeps its sign, whatever neg_zero says
            assert fp4ref.encode(x[6:], fmt, variant, rbits=r[6:], rbits_width=w, neg_zero="positive")[0] == \
                F.get(fmt).sign_bit


def test_fastest_is_biased_toward_zero_and_the_carry_rule_truncates():
    x = np.float64(1.175)                     # n + f = 2.35 quanta of 0.5: P(away) = floor(0.35 * 16) / 16 < 0.35
    X = np.full(16, x)
    R = np.arange(16, dtype=np.uint64)
    for variant in ("stochastic-gfloat-fastest", "stochastic-ptx"):
        mean = fp4ref.decode(fp4ref.encode(X, "e2m1", variant, rbits=R, rbits_width=4), "e2m1", np.float64).mean()
        assert mean < x


# --- errors -----------------------------------------------------------------------------------------------------

def test_bad_random_bits_and_options_are_errors_that_name_the_argument():
    x = np.array([0.3, 1.2], np.float32)
    cases = [
        (dict(rounding="stochastic-ptx"), "needs rbits"),
        (dict(rounding="stochastic-ptx", rbits=np.array([1, 2, 3], np.uint8)), "shape"),
        (dict(rounding="stochastic-ptx", rbits=np.array([1, 256], np.uint16)), "outside \\[0, 2\\*\\*8\\)"),
        (dict(rounding="stochastic-ptx", rbits=np.array([1, -1])), "outside"),
        (dict(rounding="stochastic-ptx", rbits=np.array([0.5, 1.0])), "unsigned integer"),
        (dict(rounding="stochastic-gfloat", rbits=np.array([1, 2], np.uint8)), "needs rbits_width"),
        (dict(rounding="stochastic-gfloat-fast", rbits=np.array([1, 2], np.uint8), rbits_width=24),
         "at most 23"),
        (dict(rounding="stochastic-te", rbits=np.array([1, 2], np.uint8), rbits_width=16), "8 random bits"),
        (dict(rounding="stochastic-ptx", rbits=np.array([1, 2], np.uint8), rbits_width=0), "rbits_width must"),
        (dict(rounding="stochastic-ptx", rbits=np.array([1], np.uint32), lanes="te"), "packs 4 elements"),
        (dict(rounding="stochastic-ptx", rbits=np.array([1], np.uint32), lanes="nope"), "unknown lanes"),
        (dict(rounding="stochastic-ptx", rbits=np.array([1], np.uint32), lanes="ptx-isa-bf16x2",
              rbits_width=8), "conflicts"),
        (dict(rounding="stochastic-nope", rbits=np.array([1, 2], np.uint8)), "unknown stochastic rounding"),
        (dict(rounding="stochastic-ptx", rbits=S.PhiloxBits(1, 0, np.arange(3))), "leading axes"),
        (dict(rounding="stochastic-ptx", rbits=S.PhiloxBits(1, offset_unit="bytes")), "offset_unit"),
    ]
    for kw, msg in cases:
        with pytest.raises((ValueError, TypeError), match=msg):
            fp4ref.encode(x, "e2m1", **kw)
    with pytest.raises(ValueError, match="not e2m1"):
        fp4ref.encode(x, "e4m3", "stochastic-te", rbits=np.array([1, 2], np.uint8))
    with pytest.raises(ValueError, match="e8m0"):
        fp4ref.encode(x, "e8m0", "stochastic-ptx", rbits=np.array([1, 2], np.uint8), rbits_width=8)
    with pytest.raises(ValueError, match="not a float32 value"):
        fp4ref.encode(np.array([0.1]), "e2m1", "stochastic-te", rbits=np.array([1], np.uint8))
    with pytest.raises(fp4ref.CastError, match="rbits_width=4"):
        fp4ref.encode(np.array([0.3]), "e2m1", "stochastic-exact", rbits=np.array([1], np.uint8), rbits_width=4)
    with pytest.raises(fp4ref.CastError, match="nan='raise'"):
        fp4ref.encode(np.array([1.0, np.nan]), "e2m1", "stochastic-ptx", rbits=S.PhiloxBits(5), nan="raise")


# --- CLI --------------------------------------------------------------------------------------------------------

def test_cli_encode_takes_bits_words_with_lanes_and_philox():
    from click.testing import CliRunner
    from fp4ref.cli.main import main
    run = lambda *a: CliRunner().invoke(main, ["encode", "-f", "e2m1", *a])  # noqa: E731
    r = run("--rounding", "stochastic-ptx", "--rbits", "0x80,0x7f", "1.25", "1.25")
    assert r.exit_code == 0 and [ln.split("→ ")[1][:3] for ln in r.output.splitlines()] == ["0x3", "0x2"]
    r = run("--rounding", "stochastic-te", "--dtype", "float32", "--lanes", "te", "--rbits", "0x00FF7F80",
            "1.25", "1.25", "1.25", "1.25")
    assert r.exit_code == 0 and [ln.split("→ ")[1][:3] for ln in r.output.splitlines()] == \
        ["0x3", "0x2", "0x3", "0x2"]
    r = run("--rounding", "stochastic-ptx", "--seed", "7", "--lanes", "te", "0.3", "0.3", "0.3", "0.3")
    words = philox4x32_10_many(7, np.array([0]), 0, 1)
    want = fp4ref.encode(np.full((1, 4), 0.3), "e2m1", "stochastic-ptx", rbits=words, lanes="te")[0]
    assert r.exit_code == 0 and [int(ln.split("→ ")[1][:3], 16) for ln in r.output.splitlines()] == want.tolist()
    r = run("--rounding", "stochastic-gfloat", "--rbits", "1", "1.25")
    assert r.exit_code != 0 and "rbits_width" in r.output


def _f32_patterns(seed):
    """float32 bit patterns: every exponent field with edge mantissas (bits just below and at every cut of up
    to 8 kept bits), random ones, and the specials; both signs."""
    rng = np.random.default_rng(seed)
    man = {0, 1, 0x7FFFFF, 0x400000}
    for keep in range(9):
        h = 1 << (22 - keep)
        man |= {h, h - 1, h + 1, (h << 1) - 1}
    man = np.array(sorted(m & 0x7FFFFF for m in man), np.uint32)
    grid = ((np.arange(256, dtype=np.uint32)[:, None] << 23) | man[None, :]).reshape(-1)
    pos = np.concatenate([grid, rng.integers(0, 0x80000000, 20000, dtype=np.uint32)])
    return np.concatenate([pos, pos | np.uint32(0x80000000)])


@pytest.mark.parametrize("fmt", [n for n in F.names() if F.get(n).has_zero])  # SR formats have a zero
def test_float32_bit_field_carry_rule_equals_the_float64_carry_rule(fmt):
    from fp4ref.cast import cast_params
    from fp4ref.kernels import stochastic as KS
    f = F.get(fmt)
    bits = _f32_patterns(len(fmt))
    rng = np.random.default_rng(1)
    for width in (1, 3, 8, 13, 16, 23, 24, 25, 31, 32):
        r = rng.integers(0, 1 << width, bits.size, dtype=np.uint64)
        r[:64] = (1 << width) - 1
        r[64:128] = 0
        for ovf in ["saturate"] + (["nan"] if f.has_nan else []) + (["inf"] if f.has_inf else []):
            fp, pol = cast_params(f, "nearest-even", ovf)
            ours = np.empty(bits.size, np.uint8)
            ref = np.empty(bits.size, np.uint8)
            e1 = KS.encode_ptx_bits32(bits, False, r, ours, fp, pol, width)
            e2 = KS.encode_bits(bits.view(np.float32), r, ref, fp, pol, KS.V_PTX, width, 53)
            assert (e1 > 0) == (e2 > 0)  # encode_ptx_bits32 tells only whether some code is a sentinel
            bad = np.nonzero(ours != ref)[0]
            assert bad.size == 0, (f"{fmt} width {width} {ovf}: {bad.size} differ, e.g. bits 0x{bits[bad[0]]:08X} "
                                   f"r {r[bad[0]]}: {ours[bad[0]]} vs {ref[bad[0]]}")


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("fmt", ["e2m1", "e4m3", "e5m2"])
def test_16bit_inputs_on_the_bit_field_path_equal_the_float64_loop_for_every_pattern(fmt, dtype):
    # float16/bfloat16 reach the float32 bit-field code as 16-bit patterns widened per element; float64 inputs of
    # the same values take the float64 loop
    x = np.arange(1 << 16, dtype=np.uint16).view(dtype)
    x = x[~np.isnan(x.astype(np.float32))].reshape(-1, 2)
    r = np.random.default_rng(5).integers(0, 256, x.shape, dtype=np.uint8)
    for rbits in (r, S.PhiloxBits(11, 3, np.arange(x.shape[0], dtype=np.uint64))):
        got = fp4ref.encode(x, fmt, "stochastic-ptx", rbits=rbits, overflow="saturate", rbits_width=8)
        want = fp4ref.encode(x.astype(np.float64), fmt, "stochastic-ptx", rbits=rbits, overflow="saturate",
                             rbits_width=8)
        np.testing.assert_array_equal(got, want)
