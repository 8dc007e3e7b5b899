"""The float32 bit-pattern quantize loop (kernels/quantize_bits.py) gives the generic loop's bytes.

Three layers. The element encoder with a power-of-two shift, ``encode_bits32_scaled(b, k)``, is compared with the
float64 encoder on x·2^-k (exact in float64 for every k it takes) for every format, rounding mode and overflow
policy. The whole loop is compared, recipe by recipe, with the generic loop that it stands in for (the one the
exact-reference tests in test_quantize.py prove), on inputs that put tiles on every branch: NaN/Inf tiles, zero
tiles, subnormal amaxes, amaxes at and just below powers of two, scales that underflow or overflow. The ladders
(thresholds found by searching a tile's encoder, for 4-bit formats) are compared with that encoder around every
threshold and on edge/random patterns, for every 4-bit format, mode, overflow and -0 policy, power-of-two shift
and float32 expression; tests/exhaustive sweeps them against the integer reference on all 2^32 inputs.
"""
import importlib

import ml_dtypes
import numpy as np
import pytest
from numba import njit, prange

import fp4ref
from fp4ref import formats, recipes
from fp4ref.cast import cast_params
from fp4ref.kernels.cast import bits32_params, encode_one
from fp4ref.kernels import quantize_bits as KB
from fp4ref.kernels import stochastic as KS_
from fp4ref.kernels.quantize_bits import K_RANGE, encode_bits32_scaled
from fp4ref.exact.cast import bits_encode, bits_params, split_f32
from fp4ref.kernels.bits import u32_as_f32

Q = importlib.import_module("fp4ref.quantize")  # the module (fp4ref.quantize is the function)

MODES = ["nearest-even", "nearest-away", "nearest-zero", "toward-zero", "toward-positive", "toward-negative", "odd"]


@njit  # no cache: it inlines the kernel under test, and Numba's cache does not see edits to inlined code
def _scaled_pairs(bits, xs, ks, fp, pol):
    q = bits32_params(fp, pol)
    bad = 0
    first = (-1, -1, -1, -1)
    for i in range(bits.size):
        b = np.int64(bits[i])
        x = xs[i]
        for k in ks:
            c = encode_bits32_scaled(b, k, q)
            ref = encode_one(x * 2.0 ** -np.float64(k), fp, pol)
            if c != ref:
                if bad == 0:
                    first = (i, k, c, ref)
                bad += 1
    return bad, first


def _patterns(seed):
    """Finite float32 bit patterns: every exponent field with edge mantissas (0, 1, half, all ones and the
    round-to-nearest boundaries of up to 8 kept bits), plus random ones; both signs."""
    rng = np.random.default_rng(seed)
    man = [0, 1, 0x400000, 0x7FFFFF, 0x3FFFFF, 0x400001]
    for keep in range(0, 9):
        h = 1 << (22 - keep)
        man += [h, h - 1, h + 1, 3 * h, 3 * h - 1, 3 * h + 1]
    man = np.array(sorted(set(m & 0x7FFFFF for m in man)), np.uint32)
    ex = np.arange(0, 255, dtype=np.uint32)
    grid = ((ex[:, None] << 23) | man[None, :]).reshape(-1)
    rand = rng.integers(0, 0x7F800000, 4000, dtype=np.uint32)
    pos = np.concatenate([grid, rand])
    return np.concatenate([pos, pos | np.uint32(0x80000000)])


KS = np.array(sorted(set(list(range(-K_RANGE, K_RANGE + 1, 11)) + list(range(-160, 161)))), np.int64)


@njit  # no cache, as _scaled_pairs
def _sr_scaled_pairs(bits, xs, ks, rs, width, fp, pol):
    """sr_code_scaled against the float64 stochastic-ptx loop on x·2^-k (exact in float64), same integers."""
    q = bits32_params(fp, pol)
    prm = KS_.sr_params(fp, pol)
    bad = 0
    first = (-1, -1, -1, -1, -1)
    for i in range(bits.size):
        for k in ks:
            for rr in rs:
                c = KB.sr_code_scaled(np.int64(bits[i]), rr, width, k, q)
                ref = KS_.sr_encode_one(xs[i] * 2.0 ** -np.float64(k), rr, prm, KS_.V_PTX, width, 53)
                if c != ref:
                    if bad == 0:
                        first = (i, k, rr, c, ref)
                    bad += 1
    return bad, first


@pytest.mark.parametrize("fmt", [n for n in formats.names() if formats.get(n).has_zero])  # SR formats
def test_scaled_stochastic_carry_rule_equals_the_float64_loop_on_the_exact_product(fmt):
    bits = _patterns(hash(fmt) & 0xFFFF)[::4]
    xs = bits.view(np.float32).astype(np.float64)
    f = formats.get(fmt)
    rng = np.random.default_rng(3)
    for width in (1, 8, 16, 23, 32):
        rs = np.unique(np.concatenate([[0, (1 << width) - 1, 1 << (width - 1)],
                                       rng.integers(0, 1 << width, 3, dtype=np.int64)])).astype(np.int64)
        for ovf in ["saturate"] + (["nan"] if f.has_nan else []) + (["inf"] if f.has_inf else []):
            fp, pol = cast_params(f, "nearest-even", ovf)
            bad, first = _sr_scaled_pairs(bits, xs, KS[::7], rs, width, fp, pol)
            assert bad == 0, f"{fmt} width {width} {ovf}: {bad} differ, first (i, k, r, ours, ref) = {first}"


@pytest.mark.parametrize("fmt", formats.names())
@pytest.mark.parametrize("mode", MODES)
def test_scaled_bit_field_encode_equals_float64_encode_of_the_exact_product(fmt, mode):
    bits = _patterns(hash((fmt, mode)) & 0xFFFF)
    f = formats.get(fmt)
    overflows = ["saturate"] + (["nan"] if f.has_nan else []) + (["inf"] if f.has_inf else [])
    if mode != "nearest-even":
        bits = bits[::3]
    xs = bits.view(np.float32).astype(np.float64)
    for ovf in overflows:
        fp, pol = cast_params(f, mode, ovf)
        ks = KS if mode == "nearest-even" else KS[::5]
        bad, first = _scaled_pairs(bits, xs, ks, fp, pol)
        assert bad == 0, f"{fmt} {mode} {ovf}: {bad} mismatches, first (index, k, ours, ref) = {first}"


def adversarial(shape, seed):
    """Tiles of every kind: spread binades, NaN/Inf tiles, zero tiles, subnormal tiles, powers of two and just
    below them as amaxes, huge and tiny tiles (scale overflow/underflow)."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * np.exp2(rng.integers(-30, 30, shape))).astype(np.float32)
    flat = x.reshape(-1, 16)
    n = flat.shape[0]
    pick = rng.permutation(n)
    kinds = np.array_split(pick[: n // 2], 10)
    flat[kinds[0], rng.integers(0, 16, kinds[0].size)] = np.nan
    flat[kinds[1], rng.integers(0, 16, kinds[1].size)] = -np.inf
    flat[kinds[2]] = 0.0
    flat[kinds[3]] = (rng.standard_normal((kinds[3].size, 16)) * 2.0 ** -140).astype(np.float32)
    e = rng.integers(-126, 127, kinds[4].size)
    flat[kinds[4], 0] = np.exp2(e).astype(np.float32)
    flat[kinds[5], 0] = np.nextafter(np.exp2(e[: kinds[5].size]).astype(np.float32), np.float32(0))
    flat[kinds[6]] = (rng.standard_normal((kinds[6].size, 16)) * 2.0 ** 126).astype(np.float32)
    flat[kinds[7]] = np.float32(3.4028235e38) * np.sign(rng.standard_normal((kinds[7].size, 16))).astype(np.float32)
    flat[kinds[8]] = (rng.standard_normal((kinds[8].size, 16)) * 2.0 ** -120).astype(np.float32)
    flat[kinds[9], 3] = -0.0
    return x


def _generic(monkeypatch, fn):
    with monkeypatch.context() as m:
        m.setattr(Q, "_bits_path", lambda plan, dtype, shape: False)
        return fn()


def _assert_same(a, b):
    np.testing.assert_array_equal(a.codes, b.codes)
    np.testing.assert_array_equal(np.asarray(a.scales).view(np.uint8), np.asarray(b.scales).view(np.uint8))
    assert a.global_scale == b.global_scale or (np.isnan(a.global_scale) and np.isnan(b.global_scale))


DETERMINISTIC = [r.name for r in recipes.all_recipes() if not str(r.rounding).startswith("stochastic")]


@pytest.mark.parametrize("name", DETERMINISTIC)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_bit_pattern_loop_equals_the_generic_loop_for_every_recipe(monkeypatch, name, dtype):
    # 16-bit inputs: the bits loop widens them a tile row at a time, the generic loop the whole chunk first
    x = adversarial((64, 256), seed=len(name))
    if dtype != "float32":
        with np.errstate(over="ignore"):
            x = x.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float16)
    for axis in (-1, 0):
        try:
            fast = fp4ref.quantize(x, name, axis=axis)
        except ValueError as e:  # the recipe refuses this input or axis: the same for both loops
            with pytest.raises(ValueError, match=str(e)[:30].replace("(", r"\(").replace("[", r"\[")):
                _generic(monkeypatch, lambda: fp4ref.quantize(x, name, axis=axis))
            continue
        slow = _generic(monkeypatch, lambda: fp4ref.quantize(x, name, axis=axis))
        _assert_same(fast, slow)


@pytest.mark.parametrize("name", ["ocp-mxfp4", "te-nvfp4", "torchao-mxfp4-ceil", "torchao-mxfp4-even",
                                  "paper-e8m0", "paper-ue5m3-ts", "jax-nvfp4"])
def test_bit_pattern_loop_equals_the_generic_loop_on_clean_gaussian_tensors(monkeypatch, name):
    x = np.random.default_rng(7).standard_normal((256, 512)).astype(np.float32)
    _assert_same(fp4ref.quantize(x, name), _generic(monkeypatch, lambda: fp4ref.quantize(x, name)))


@pytest.mark.parametrize("blocks, block", [("1d", 4), ("1d", 8), ("1d", 12), ("1d", 64), ("2d", (2, 32)),
                                           ("2d", (4, 8)), ("2d", (3, 16))])
@pytest.mark.parametrize("name", ["ocp-mxfp4", "te-nvfp4"])
def test_bit_pattern_loop_equals_the_generic_loop_for_other_tile_shapes(monkeypatch, name, blocks, block):
    # the row amax has its own loops for widths 16 and 32 and a per-tile one otherwise; 2-D tiles combine rows
    x = adversarial((48, 192), seed=3)
    fast = fp4ref.quantize(x, name, blocks=blocks, block=block)
    _assert_same(fast, _generic(monkeypatch, lambda: fp4ref.quantize(x, name, blocks=blocks, block=block)))


@pytest.mark.parametrize("name, shape, dtype", [("te-nvfp4-2d", (32, 4096 + 3 * 16), "float32"),
                                                 ("te-nvfp4-2d", (32, 4096 + 3 * 16), "bfloat16"),
                                                 ("te-nvfp4", (3, 65536 + 16), "float32"),
                                                 ("ocp-mxfp4", (2, 65536 + 32), "float32")])
def test_bit_pattern_loop_equals_the_generic_loop_on_rows_wider_than_a_strip(monkeypatch, name, shape, dtype):
    # the bits loop takes a tile row in strips of at most 65536 elements: here several, the last one short;
    # Gaussian tiles take the ladders (with adversarial ones alone the tensor scale underflows most tiles)
    for x in (np.random.default_rng(5).standard_normal(shape).astype(np.float32), adversarial(shape, seed=5)):
        if dtype == "bfloat16":
            x = x.astype(ml_dtypes.bfloat16)
        _assert_same(fp4ref.quantize(x, name), _generic(monkeypatch, lambda: fp4ref.quantize(x, name)))


@pytest.mark.parametrize("name", ["ocp-mxfp4", "torchao-mxfp4-ceil", "torchao-nvfp4", "te-nvfp4", "te-nvfp4-2d",
                                  "jax-nvfp4"])
def test_bfloat16_ladders_on_16_bit_patterns_equal_the_float32_input_for_every_finite_bfloat16(name):
    # bfloat16 input runs the amax and ladder loops on its 16-bit patterns (thresholds rounded up to bfloat16);
    # the same values as float32 take the float32 ladders. Every finite pattern, shuffled into tiles five ways
    # so that each meets many scale codes and tensor scales. Recipes with float32 arithmetic whatever the input
    # (arith='input' computes in bfloat16: other values by design)
    p = np.arange(1 << 16, dtype=np.uint16)
    p = p[(p & 0x7F80) != 0x7F80]  # NaN and Inf leave the ladders
    ex = (p >> 7) & 0xFF
    # all patterns (most elements far below their tile's amax), then windows of 12 binades, where every tile's
    # elements spread over all the thresholds of its ladder
    for seed, sel in enumerate([p, p, p[(ex >= 117) & (ex < 129)], p[(ex >= 3) & (ex < 15)],
                                p[(ex >= 240) & (ex < 252)]]):
        q = np.random.default_rng(seed).permutation(np.resize(sel, max(sel.size, 1 << 16)))
        x = np.concatenate([q, q[: (-q.size) % 512]]).view(ml_dtypes.bfloat16).reshape(-1, 512)
        if seed == 1:
            x = x * ml_dtypes.bfloat16(2.0 ** -100)  # the tensor scale's other end
        _assert_same(fp4ref.quantize(x, name), fp4ref.quantize(x.astype(np.float32), name))


@njit  # no cache, as _scaled_pairs
def _ladder_vs_encoder(bits, exact, k, op, a1, a2, fp, pol):
    """Build the ladder of one tile form; where it is taken, (mismatches of the production ladder loop against
    the tile's encoder on bits and around every threshold, first mismatch). (-1, ...) where no ladder."""
    q = bits32_params(fp, pol)
    m, P, o = KB.ladder_base(q)
    t = np.empty(KB.LADDER + 1, np.uint32)
    if m == 0 or not KB._ladder(t, m, P, o, exact, k, op, a1, a2, q):
        return -1, np.int64(-1)
    near = np.empty((KB.LADDER + 1) * 81, np.uint32)
    n = 0
    for j in range(KB.LADDER + 1):
        for d in range(-40, 41):
            p = np.int64(t[j]) + d
            if 0 <= p <= 0x7F7FFFFF:
                near[n] = p
                n += 1
    pos = np.concatenate((bits & np.uint32(0x7FFFFFFF), near[:n]))
    xs = np.concatenate((pos, pos | np.uint32(0x80000000)))
    out = np.empty(xs.size, np.uint8)
    o32, nx, na, nm = KB.ladder_consts(o, q)
    bad = 0
    first = np.int64(-1)
    for shape in range(KB.ladder_shape(t), KB.FULL + 1):  # each loop that may take this ladder
        KB._run_ladder(xs, out, 0, xs.size, t, o32, nx, na, nm, shape)
        for i in range(xs.size):
            if xs[i] & 0x7FFFFFFF > 0x7F7FFFFF:
                continue
            if out[i] != KB._form_code(np.int64(xs[i]), exact, k, op, a1, a2, q):
                if bad == 0:
                    first = np.int64(xs[i])
                bad += 1
    return bad, first


FOUR_BIT = [n for n in formats.names() if formats.get(n).bits == 4]
LADDER_KS = [0, -2, -1, 3, -126, -127, -135, -149, -160, 100, 127, 130, 200]
# float32 expressions (op, a1, a2) as tile forms take them: division by a scale, a global scale, reciprocals,
# scales that make elements underflow or overflow in float32
LADDER_FORMS = [(1, 0.5, 1.0), (1, 1.5, 1.0), (1, 448.0 * 6.0 / 3.0e3, 1.0), (0, 0.375, 2.0 ** -20),
                (1, 2.0 ** -130, 3.0), (2, 352938.5, 1.0), (2, 2.0 ** 120, 1.0), (2, 1.0 / 3.0, 0.0078125),
                (1, 2.0 ** 100, 2.0 ** -20), (0, 2.0 ** -140, 0.75)]


@pytest.mark.parametrize("fmt", FOUR_BIT)
@pytest.mark.parametrize("mode", MODES)
def test_ladder_gives_the_tile_encoders_code_for_every_shift_and_float32_expression(fmt, mode):
    f = formats.get(fmt)
    bits = _patterns(hash((fmt, mode, "ladder")) & 0xFFFF)[::4]
    taken = 0
    for ovf in ["saturate"] + (["nan"] if f.has_nan else []) + (["inf"] if f.has_inf else []):
        for neg_zero in ("keep", "positive"):
            fp, pol = cast_params(f, mode, ovf, neg_zero=neg_zero)
            forms = [(True, k, 0, 1.0, 1.0) for k in LADDER_KS] + [(False, 0) + form for form in LADDER_FORMS]
            for exact, k, op, a1, a2 in forms:
                bad, first = _ladder_vs_encoder(bits, exact, np.int64(k), np.int64(op), np.float32(a1),
                                                np.float32(a2), fp, pol)
                assert bad <= 0, f"{ovf} {neg_zero} {(exact, k, op, a1, a2)}: {bad} mismatches, e.g. 0x{first:08X}"
                taken += bad == 0
    if fmt == "e2m1" and mode in ("nearest-even", "nearest-away", "toward-zero", "odd"):
        assert taken == 2 * (len(LADDER_KS) + len(LADDER_FORMS))  # E2M1's symmetric modes always get ladders


# E2M1 by arithmetic (e2m1_rne_code): against the integer reference here on edge and strided patterns, on every
# float32 in tests/exhaustive; e2m1_fast_q must accept only the policies it was proven for.
@njit(parallel=True)  # no cache, as _scaled_pairs
def e2m1_arith_mismatches(lo, hi, step, zn, q, tpos, tneg, first):
    """Mismatches of e2m1_rne_code against the integer reference on the float32 patterns lo, lo+step, ... < hi
    (NaN skipped: a product of finite operands is never NaN)."""
    bad = 0
    for i in prange((hi - lo + step - 1) // step):
        b = np.uint32(lo + i * step)
        neg, is_nan, is_inf, sig, ex, lg = split_f32(b)
        if is_nan:
            continue
        if KB.e2m1_rne_code(u32_as_f32(b), zn) != bits_encode(neg, is_nan, is_inf, sig, ex, q, tpos, tneg, lg):
            bad += 1
            first[0] = b
    return bad


@pytest.mark.parametrize("neg_zero, zn", [("keep", 8), ("positive", 0)])
def test_e2m1_arithmetic_code_equals_the_integer_reference_on_edge_and_strided_patterns(neg_zero, zn):
    q, tpos, tneg = bits_params("e2m1", "nearest-even", neg_zero=neg_zero)
    first = np.full(1, -1, np.int64)
    edges = _patterns(11)
    ref = np.array([bits_encode(*split_f32(np.uint32(b))[:5], q, tpos, tneg) for b in edges])
    got = np.array([KB.e2m1_rne_code(np.uint32(b).view(np.float32), zn) for b in edges])
    np.testing.assert_array_equal(got, ref)
    # every 4099th pattern and every pattern of the binades around E2M1's range (2^-3 .. 2^4), both signs
    for lo, hi, step in ((0, 1 << 32, 4099), (0x3E000000, 0x41800000, 1), (0xBE000000, 0xC1800000, 1)):
        bad = e2m1_arith_mismatches(lo, hi, step, zn, q, tpos, tneg, first)
        assert bad == 0, f"{bad} mismatches, e.g. float32 bits 0x{int(first[0]):08X}"


def test_e2m1_fast_q_accepts_only_nearest_even_saturating_e2m1_and_the_recipes_that_use_it():
    taken = set()
    for fmt in FOUR_BIT:
        for mode in MODES:
            for neg_zero in ("keep", "positive"):
                fp, pol = cast_params(fmt, mode, neg_zero=neg_zero)
                if KB.e2m1_fast_q(bits32_params(fp, pol)):
                    taken.add((fmt, mode, neg_zero))
    assert taken == {("e2m1", "nearest-even", "keep"), ("e2m1", "nearest-even", "positive")}
    arith = {name: bucket_plan(name, 1.0 if recipes.get(name).tensor_scale else None)[1][-2][4] == KB.E2M1_ARITH
             for name in ("te-nvfp4", "jax-nvfp4", "torchao-nvfp4", "ocp-mxfp4", "torchao-mxfp4-ceil")}
    # float32 products take it; the exact x·2^-k (OCP) and divisions by the scale (torchao MX) keep ladders
    assert arith == {"te-nvfp4": True, "jax-nvfp4": True, "torchao-nvfp4": True, "ocp-mxfp4": False,
                     "torchao-mxfp4-ceil": False}


# Amax bucket tables: the table code of a tile (scale code with a ladder, else -1) by two lookups on its amax bits
# against the scalar rule it stands for, on every bucket's edges and thresholds and on random patterns here, and
# on every 2^31 magnitude pattern in tests/exhaustive.
BUCKET_CASES = [("ocp-mxfp4", None), ("torchao-mxfp4-ceil", None), ("torchao-mxfp4-even", None),
                ("te-nvfp4", 1.0), ("te-nvfp4", 3.0517578e-05), ("te-nvfp4", 2.6e6), ("jax-nvfp4", 7.25)]


def bucket_plan(name, gamax):
    """The tables of the quantize loop for recipe name with tensor amax gamax (captured from a quantize call)."""
    seen = []
    orig = KB.quantize_tiles_f32

    def spy(*a):
        seen.append(a)
        return orig(*a)

    KB.quantize_tiles_f32 = spy
    try:
        kw = {} if gamax is None or name.startswith("paper") else {"global_amax": gamax}
        fp4ref.quantize(np.full((1, 64), np.float32(gamax or 1.0)), name, **kw)
    finally:
        KB.quantize_tiles_f32 = orig
    return seen[-1][6], seen[-1][11]


@njit(parallel=True)  # no cache, as _scaled_pairs
def bucket_mismatches(ms, ip, T):
    """(mismatches, first mismatching pattern) of the bucket lookup against _table_code/_ratio_code on ms."""
    (q, qs, tok, tk, top, ta1, ta2, lad, lok, lo32, lnx, lna, lnm, rule, pow2, ptab, sop, sc1, sc2, tabled, tb0,
     tb1, tbt, shape, zn) = KB.unpack(T)
    bad = 0
    first = np.int64(-1)
    for i in prange(ms.size):
        m = np.int64(ms[i])
        want = np.int64(-1)
        if m < 0x7F800000:
            c, ok = KB._table_code(m, pow2, ptab, rule, ip[KB.IP_EMBITS], ip[KB.IP_ZERO_SUB],
                                   KB._ratio_code(m, sop, sc1, sc2, qs, ip[KB.IP_SCALE_INF]) if sop >= 0 else -1)
            if ok and 0 <= c < lok.size and lok[c]:
                want = c
        if KB._bucket_code(m, tb0, tb1, tbt) != want:
            bad += 1
            first = m
    return bad, first


@pytest.mark.parametrize("name, gamax", BUCKET_CASES)
def test_amax_bucket_tables_give_the_scalar_table_code_at_every_bucket_edge_and_threshold(name, gamax):
    ip, T = bucket_plan(name, gamax)
    tabled, tb0, tbt = (KB.unpack(T)[i] for i in (19, 20, 22))
    assert tabled, "the recipe's scale codes are tabled"
    h = np.arange(1 << 15, dtype=np.int64) << 16
    edges = np.concatenate([h, h + 1, h + 0xFFFE, h + 0xFFFF, tbt - 1, tbt, tbt + 1])
    rnd = np.random.default_rng(5).integers(0, 1 << 31, 1 << 20)
    ms = np.concatenate([edges[(edges >= 0) & (edges < (1 << 31))], rnd]).astype(np.uint32)
    bad, first = bucket_mismatches(ms, ip, T)
    assert bad == 0, f"{bad} mismatches, first at amax bits {first:#x}"
    assert (tb0 >= 0).mean() > 0.5, "most buckets hold one ladder code"


# 512-bit vectors: only a code generation hint (results are the loops' own, proven above), but one that an llvmlite
# change could silently drop; this says when it does.
def test_wide_vectors_puts_the_512_bit_width_attribute_on_the_compiled_function():
    from fp4ref.kernels.bits import WIDE_ATTRIBUTE, wide_vectors

    @njit  # no cache: the IR is inspected
    def count_equal(a, b):
        wide_vectors()
        k = 0
        for i in range(a.size):
            k += a[i] == b[i]
        return k

    a = np.arange(100, dtype=np.uint8)
    assert count_equal(a, a) == 100
    ir = next(iter(count_equal.inspect_llvm().values()))
    assert WIDE_ATTRIBUTE in ir


def test_prefetch_emits_an_llvm_prefetch_and_changes_no_result():
    # a hint only: the loop's result is the same, and the call must reach the IR (an intrinsic that an llvmlite
    # update stopped emitting would silently cost the speed it was measured to give)
    from fp4ref.kernels.bits import prefetch

    @njit  # no cache: the IR is inspected
    def total(a):
        s = np.int64(0)
        for i in range(a.size):
            prefetch(a, min(i + 64, a.size - 1))
            s += a[i]
        return s

    a = np.arange(1000, dtype=np.uint32)
    assert total(a) == a.sum()
    ir = next(iter(total.inspect_llvm().values()))
    assert "@llvm.prefetch" in ir
