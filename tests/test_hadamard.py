"""fp4ref.hadamard against exact arithmetic (fp4ref.exact.hadamard: Fractions, popcount entries, exact
comparisons), integer matrix identities, TransformerEngine's published sign vector, numpy/ml_dtypes float32
arithmetic for the TE model, and its own laws (inverse, axes, threads, errors)."""
from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fp4ref import hadamard as H
from fp4ref.exact import hadamard as E
from fp4ref.kernels import hadamard as K
from fp4ref.random import philox4x32_10

BF16 = ml_dtypes.bfloat16
OUTS = [np.float32, BF16, np.float16]
UINT = {2: np.uint16, 4: np.uint32}
# TE's hard-coded wgrad signs (transformer_engine/pytorch/tensor/nvfp4_tensor.py, get_wgrad_sign_vector)
TE_WGRAD_SIGNS = [1, 1, 1, -1, 1, -1, -1, -1, -1, -1, -1, 1, -1, 1, -1, -1]


def bits(a):
    a = np.asarray(a)
    return a.view(UINT[a.dtype.itemsize])


def assert_same_bits(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    bad = np.flatnonzero(bits(got).ravel() != bits(want).ravel())
    assert bad.size == 0, (f"{bad.size} outputs differ, first at {bad[:5]}: got "
                           f"{bits(got).ravel()[bad[:5]]}, exact {bits(want).ravel()[bad[:5]]}")


def check_exact(x, n, **kw):
    for od in OUTS:
        for inv in (False, True):
            assert_same_bits(H.hadamard(x, n, out_dtype=od, inverse=inv, **kw),
                             E.transform(x, n, out_dtype=od, inverse=inv, **kw))


# --- the matrix and the signs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2 ** k for k in range(1, 10)])
def test_hadamard_matrix_is_sylvester_and_H_times_H_is_n_identity_in_integers(n):
    h = H.hadamard_matrix(n)
    assert h.dtype == np.int8 and h.shape == (n, n)
    ref = np.array([[E.hadamard_entry(i, j) for j in range(n)] for i in range(n)])
    assert np.array_equal(h, ref)
    hh = h.astype(np.int64) @ h.astype(np.int64)
    assert np.array_equal(hh, n * np.eye(n, dtype=np.int64))
    assert np.array_equal(h, h.T)


@pytest.mark.parametrize("n", [2, 16, 128])
def test_rht_inverse_matrix_undoes_forward_in_integers(n):
    # (H D / sqrt n) (D H / sqrt n)... forward B = H D, inverse C = D H: C B = D H H D = n D D = n I
    s = H.sign_vector(n, seed=7)
    h = H.hadamard_matrix(n).astype(np.int64)
    d = np.diag(s.astype(np.int64))
    assert np.array_equal((d @ h) @ (h @ d), n * np.eye(n, dtype=np.int64))


def test_te_wgrad_mask_0xD7E8_decodes_to_te_sign_vector():
    s = H.sign_vector(16, mask=H.TE_WGRAD_SIGN_MASK)
    assert s.dtype == np.int8 and s.tolist() == TE_WGRAD_SIGNS
    # TE's get_sign_from_vector: mask |= (v == -1) << i
    assert sum(1 << i for i, v in enumerate(TE_WGRAD_SIGNS) if v == -1) == 0xD7E8


def test_mask_bit_i_set_means_element_i_negative():
    for i in range(16):
        s = H.sign_vector(16, mask=1 << i)
        assert s[i] == -1 and (np.delete(s, i) == 1).all()
    assert (H.sign_vector(64, mask=(1 << 64) - 1) == -1).all()


def test_seeded_signs_are_the_documented_philox_bits():
    n, blocks, call, seed = 64, 3, 2, 0x1234_5678_9ABC
    s = H.sign_vector(n, seed=seed, call=call, blocks=blocks)
    assert s.shape == (blocks, n)
    for b in range(blocks):
        words = philox4x32_10(seed, b, call * 2, 2)
        want = [-1 if (int(words[i // 32]) >> (i % 32)) & 1 else 1 for i in range(n)]
        assert s[b].tolist() == want
    assert H.sign_vector(n, seed=seed, call=call).tolist() == s[0].tolist()
    assert not np.array_equal(H.sign_vector(n, seed=seed, call=call + 1), s[0])


# --- exactness against Fractions -------------------------------------------------------------------------------

def _elements(dt):
    width = {"float64": 64, "float32": 32, "bfloat16": 32, "float16": 16}[dt]
    finite = st.floats(width=width, allow_nan=False, allow_infinity=False)
    special = st.sampled_from([np.inf, -np.inf, np.nan, 0.0, -0.0])
    return st.one_of(finite, finite, finite, finite, finite, finite, finite, special)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_exact_mode_equals_fraction_reference_on_drawn_inputs(data):
    n = data.draw(st.sampled_from([2, 4, 8, 16, 32]), label="n")
    dt = data.draw(st.sampled_from(["float64", "float32", "bfloat16", "float16"]), label="dtype")
    nblocks = data.draw(st.integers(1, 3), label="blocks")
    vals = data.draw(st.lists(_elements(dt), min_size=n * nblocks, max_size=n * nblocks), label="x")
    with np.errstate(over="ignore"):
        x = np.array(vals, dtype=np.float64 if dt == "float64" else np.float32).astype(np.dtype(
            BF16 if dt == "bfloat16" else dt)).reshape(nblocks, n)
    kind = data.draw(st.sampled_from(["none", "shared", "per-block"]), label="signs")
    signs = None if kind == "none" else H.sign_vector(
        n, seed=data.draw(st.integers(0, 2 ** 64 - 1)), blocks=None if kind == "shared" else nblocks)
    od = data.draw(st.sampled_from(OUTS), label="out")
    inv = data.draw(st.booleans(), label="inverse")
    assert_same_bits(H.hadamard(x, n, signs=signs, inverse=inv, out_dtype=od),
                     E.transform(x, n, signs=signs, inverse=inv, out_dtype=od))


@pytest.mark.parametrize("n", [2, 8, 16, 32])
@pytest.mark.parametrize("dt", [np.float32, np.float64, BF16, np.float16])
def test_exact_on_random_normal_blocks(n, dt):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((3, n)).astype(dt)
    check_exact(x, n, signs=H.sign_vector(n, seed=n))


@pytest.mark.parametrize("per_block", [False, True])
def test_rht16_float32_over_many_blocks_of_every_kind_matches_the_exact_reference(per_block):
    # the hot path runs 64 blocks side by side and hands the rest to the general block: plain blocks mixed with
    # NaN/Inf, all-zero, subnormal, wide-range blocks and blocks whose bfloat16 outputs are subnormal or zero,
    # over several work units and a partial last run
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((150, 16)) * np.exp2(rng.integers(-12, 12, (150, 1)))).astype(np.float32)
    x[5, 3], x[70, 0], x[71, 15], x[72] = np.nan, np.inf, -np.inf, 0.0
    x[73] = (rng.integers(-2 ** 10, 2 ** 10, 16) * 2.0 ** -149).astype(np.float32)
    x[74, :2] = [1e30, 1e-30]
    x[75] = np.float32(2.0 ** -125)
    x[76] = np.resize([2.0 ** -130, -(2.0 ** -130)], 16).astype(np.float32)
    x[77] = -0.0
    s = H.sign_vector(16, seed=4, blocks=150) if per_block else H.sign_vector(16, seed=4)
    for od in (np.float32, BF16):
        assert_same_bits(H.hadamard(x, 16, signs=s, out_dtype=od), E.transform(x, 16, signs=s, out_dtype=od))


@pytest.mark.parametrize("n", [4, 16, 32])
def test_exact_single_spike_and_alternating_signs(n):
    x = np.zeros((3, n), np.float32)
    x[0, n // 2 + 1] = 3.0
    x[1] = np.where(np.arange(n) % 2, -1.0, 1.0) * np.float32(1.1)
    x[2] = np.where(np.arange(n) % 2, -1.0, 1.0) * np.arange(1, n + 1, dtype=np.float32)
    check_exact(x, n)
    y = H.hadamard(x[:1], n)  # a spike spreads evenly: |y| = 3 / sqrt(n) everywhere
    assert np.all(np.abs(y.astype(np.float64)) == np.float32(3.0 / math.sqrt(n)))


@pytest.mark.parametrize("n", [2, 16, 32])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_exact_huge_dynamic_range_in_one_block(n, dt):
    # 1e30 and 1e-30 together need ~200 bits: the multi-limb path
    x = np.zeros((3, n), dt)
    x[0, 0], x[0, 1] = 1e30, 1e-30
    x[1, :] = np.resize([1e30, -1e-30, 7.0, 1e-25, -1e29], n)
    x[2, :] = np.resize([-3e-20, 1e30, 1e-30], n)
    check_exact(x, n)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_exact_huge_dynamic_range_in_a_256_block(dt):
    x = np.resize(np.array([1e30, -1e-30, 7.0, 1e-25, -1e29, 3e-3], dt), 256)
    s = H.sign_vector(256, seed=2)
    for od in (np.float32, BF16):
        assert_same_bits(H.hadamard(x, 256, signs=s, out_dtype=od), E.transform(x, 256, signs=s, out_dtype=od))


def test_exact_float64_extremes_and_subnormals():
    x = np.array([[1.7976931348623157e308] * 16,
                  [5e-324, -5e-324, 1e-310, 2.2250738585072014e-308] * 4,
                  [1e300, 1e-300, -1e300, 3.0] * 4])
    check_exact(x, 16)
    check_exact(x.reshape(-1, 8), 8)


def test_exact_float32_subnormal_inputs():
    rng = np.random.default_rng(3)
    x = (rng.integers(-2 ** 20, 2 ** 20, (4, 16)) * 2.0 ** -149).astype(np.float32)
    x[3, :4] = [1.0, 2.0 ** -149, -2.0 ** -140, 3.0]
    check_exact(x, 16)
    check_exact(x.reshape(-1, 32), 32)


def test_double_rounding_through_float32_is_avoided_in_the_float64_path():
    # y0 = 1 + 2^-8 + 2^-24: float32 rounding makes it 1 + 2^-8 (a bfloat16 tie, then 1.0); the exact value
    # is above the bfloat16 midpoint, so the once-rounded result is 1 + 2^-7
    x = np.zeros(16, np.float32)
    x[0], x[1] = 4 * (1 + 2.0 ** -8), 2.0 ** -22
    y = H.hadamard(x, 16, out_dtype=BF16)
    assert float(y[0]) == 1 + 2.0 ** -7
    assert float(np.float32(1 + 2.0 ** -8 + 2.0 ** -24).astype(BF16)) == 1.0


@pytest.mark.parametrize("offset", range(-4, 5))
def test_near_ties_power_of_four(offset):
    # output 0 = sum / 4 = midpoint + offset * tiny; the pairs cancel in output 0 and not elsewhere
    x = np.zeros((4, 16), np.float32)
    x[0, 0], x[0, 1] = 4 * (1 + 2.0 ** -8), offset * 2.0 ** -20           # bfloat16 midpoint, float64 path
    x[1, 0], x[1, 1] = 4.0, 2.0 ** -22 + offset * 2.0 ** -38              # float32 midpoint, float64 path
    x[2, 0], x[2, 1] = 4 * (1 + 2.0 ** -8), offset * 2.0 ** -60           # bfloat16 midpoint, limb path
    x[3, 0], x[3, 1] = 4.0, 2.0 ** -22 + offset * 2.0 ** -80 if offset else 2.0 ** -22
    x[3, 2] = offset * 2.0 ** -100                                       # float32 midpoint +- sticky bits
    x[:, 4], x[:, 5] = 0.375, -0.375
    check_exact(x, 16)
    y = H.hadamard(x, 16, out_dtype=BF16)
    assert float(y[0, 0]) == (1.0 if offset <= 0 else 1 + 2.0 ** -7)  # a tie goes to the even 1.0
    y32 = H.hadamard(x, 16)
    want = 1.0 if offset <= 0 else 1 + 2.0 ** -23
    assert float(y32[1, 0]) == want and float(y32[3, 0]) == want


def _split_f32(v: Fraction, pieces: int) -> list[float]:
    """float32 numbers summing exactly to v's first ~24 * pieces bits (the last one rounds)."""
    out = []
    for _ in range(pieces):
        f = float(np.float32(float(v)))
        out.append(f)
        v -= Fraction(f)
    return out


@pytest.mark.parametrize("fmt", ["bfloat16", "float32"])
@pytest.mark.parametrize("side", [-1, 1])
def test_near_ties_with_sqrt2_go_through_the_integer_fallback(fmt, side):
    # n = 8: y0 = (sum x) / (2 sqrt 2). Make sum x = 2 sqrt(2) * midpoint within ~2^-90 relative, above or below
    mid = Fraction(1) + (Fraction(1, 2 ** 8) if fmt == "bfloat16" else Fraction(1, 2 ** 24))
    a, b = mid.numerator, mid.denominator
    e = 88 - a.bit_length()  # r below has ~90 bits: four float32 pieces hold it exactly
    r = math.isqrt(8 * a * a * 4 ** e) + (1 if side > 0 else 0)        # floor/ceil of 2 sqrt 2 * a * 2^e
    target = Fraction(r, b * 2 ** e)
    x = np.zeros((1, 8), np.float32)
    x[0, :4] = _split_f32(target, 4)
    exact_sum = sum(Fraction(float(v)) for v in x[0])
    assert exact_sum == target
    assert (exact_sum ** 2 > 8 * mid ** 2) == (side > 0) and abs(exact_sum ** 2 / (8 * mid ** 2) - 1) < 2.0 ** -60
    flags = np.zeros(1, np.uint8)
    p, eb = (8, 8) if fmt == "bfloat16" else (24, 8)
    o = np.empty(8, np.uint16 if fmt == "bfloat16" else np.uint32)
    K.transform_exact(x.ravel(), 1, 8, 1, np.ones((1, 8)), 3, False, p, eb, 24, o, flags)
    assert flags[0] == 1, "the float64 estimate should not decide this one"
    od = BF16 if fmt == "bfloat16" else np.float32
    y = H.hadamard(x, 8, out_dtype=od)
    assert_same_bits(y, E.transform(x, 8, out_dtype=od))
    ulp = Fraction(1, 2 ** 7) if fmt == "bfloat16" else Fraction(1, 2 ** 23)
    assert Fraction(float(y[0, 0])) == (1 + ulp if side > 0 else 1)


def test_near_ties_with_sqrt2_float64_inputs():
    mid = Fraction(1) + Fraction(1, 2 ** 8)
    for extra in range(-3, 4):
        x = np.zeros((1, 2))
        x[0, 0] = float(mid * Fraction(math.isqrt(2 * 4 ** 60), 2 ** 60)) + extra * 2.0 ** -52
        check_exact(x, 2)


# --- specials, zeros, overflow ---------------------------------------------------------------------------------

def test_nan_anywhere_makes_the_whole_block_nan_and_leaves_other_blocks_alone():
    x = np.ones((2, 16), np.float32)
    x[0, 5] = np.nan
    for od, nan in ((np.float32, 0x7FC00000), (BF16, 0x7FC0), (np.float16, 0x7E00)):
        y = bits(H.hadamard(x, 16, out_dtype=od))
        assert (y[0] == nan).all()
        assert (y[1, 1:] == 0).all() and float(H.hadamard(x, 16, out_dtype=od)[1, 0]) == 4.0


def test_one_infinity_gives_infinities_signed_by_its_hadamard_row():
    x = np.full(16, 0.5, np.float32)
    x[3] = -np.inf
    s = H.sign_vector(16, mask=H.TE_WGRAD_SIGN_MASK)
    y = H.hadamard(x, 16, signs=s)
    h = H.hadamard_matrix(16)
    assert np.array_equal(y, -np.inf * s[3] * h[3])


def test_two_infinities_give_nan_where_their_terms_disagree_and_inf_elsewhere():
    h = H.hadamard_matrix(16)
    for v1, v2 in ((np.inf, np.inf), (np.inf, -np.inf)):
        x = np.zeros(16, np.float32)
        x[2], x[7] = v1, v2
        y = H.hadamard(x, 16)
        t1, t2 = v1 * h[2], v2 * h[7]
        want = np.where(t1 == t2, t1, np.nan)
        assert np.array_equal(y, want.astype(np.float32), equal_nan=True)
        assert 0 < np.isnan(y).sum() < 16


def test_zero_sign_is_negative_only_when_every_term_is_negative_zero():
    x = np.full(16, -0.0, np.float32)
    y = H.hadamard(x, 16)
    assert np.signbit(y[0]) and not np.signbit(y[1:]).any()
    h = H.hadamard_matrix(16)
    s = -h[3]  # signs chosen so that output 3 of a +0 block has only -0 terms
    y = H.hadamard(np.zeros(16, np.float32), 16, signs=s)
    assert list(np.flatnonzero(np.signbit(y))) == [3]
    # inverse terms are x_i H_ij s_j: all -0 only where H_ij is constant in i (j = 0) and s_0 = -1
    y = H.hadamard(np.zeros(16, np.float32), 16, signs=s, inverse=True)
    assert s[0] == -1 and list(np.flatnonzero(np.signbit(y))) == [0]
    # exact cancellation of nonzero terms is +0, whatever the output sign
    y = H.hadamard(np.array([1.0, 1.0], np.float32), 2, signs=[1, -1], inverse=True)
    assert bits(y)[1] == 0


def test_overflow_rounds_to_infinity_and_the_max_plus_half_ulp_tie_goes_to_infinity():
    fmax = float(np.finfo(np.float32).max)
    x = np.full(16, fmax, np.float32)
    y = H.hadamard(x, 16)
    assert y[0] == np.inf and (bits(y[1:]) == 0).all()
    x = np.zeros((3, 16))
    x[0, 0] = 4 * (2.0 ** 128 - 2.0 ** 103)                  # exactly max + ulp/2: even neighbour is Inf
    x[1, 0] = 4 * (2.0 ** 128 - 2.0 ** 103) - 2.0 ** 80      # just below: max
    x[2, 0] = 4 * fmax
    y = H.hadamard(x, 16)
    assert y[0, 0] == np.inf and y[1, 0] == fmax and y[2, 0] == fmax
    check_exact(x, 16)


# --- laws: inverse, axes, threads ------------------------------------------------------------------------------

def _ulp(a: np.ndarray, dt) -> np.ndarray:
    fi = ml_dtypes.finfo(dt)
    e = np.floor(np.log2(np.maximum(np.abs(a.astype(np.float64)), float(fi.smallest_normal))))
    return np.exp2(e - fi.nmant)


@pytest.mark.parametrize("n", [2, 16, 32, 256])
@pytest.mark.parametrize("od", [np.float32, BF16])
def test_inverse_round_trip_error_is_within_the_two_roundings(n, od):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((8, n)) * np.exp2(rng.integers(-8, 8, (8, n)))).astype(np.float32)
    s = H.sign_vector(n, seed=11, blocks=8)
    y = H.hadamard(x, n, signs=s, out_dtype=od)
    z = H.hadamard(y, n, signs=s, inverse=True, out_dtype=np.float32)
    # the inverse is orthogonal: forward rounding errors e_j (|e_j| <= ulp(y_j)/2) move z by ||e||_2 at most
    fwd = np.sqrt(np.sum((_ulp(y, od) / 2) ** 2, axis=1, keepdims=True))
    err = np.abs(z.astype(np.float64) - x.astype(np.float64))
    assert (err <= fwd * (1 + 1e-12) + _ulp(z, np.float32) / 2).all()


def test_float64_input_round_trip_through_float32_is_within_bound():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 16))
    y = H.hadamard(x, 16)
    z = H.hadamard(y, 16, inverse=True)
    fwd = np.sqrt(np.sum((_ulp(y, np.float32) / 2) ** 2, axis=1, keepdims=True))
    assert np.all(np.abs(z - x) <= fwd * (1 + 1e-12) + _ulp(z, np.float32) / 2)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
def test_axis_equals_moving_the_axis_last_and_matches_exact_with_per_block_signs(axis):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 32, 16)).astype(np.float32)
    moved = np.moveaxis(x, axis, -1)
    want = np.moveaxis(H.hadamard(np.ascontiguousarray(moved), 16), -1, axis)
    assert_same_bits(H.hadamard(x, 16, axis=axis), np.ascontiguousarray(want))
    small = x[:, :16, :2] if axis % 3 != 2 else x[:2, :16, :]
    nblocks = small.size // 16
    s = H.sign_vector(16, seed=3, blocks=nblocks)
    for od in (np.float32, BF16):
        assert_same_bits(H.hadamard(small, 16, axis=axis, signs=s, out_dtype=od),
                         E.transform(small, 16, axis=axis, signs=s, out_dtype=od))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_strided_axis_with_special_and_wide_range_columns_matches_exact(dt):
    # axis 0 runs the column-tiled path (64 columns a tile); odd columns need its per-column fallbacks
    rng = np.random.default_rng(12)
    x = rng.standard_normal((16, 66)).astype(np.float32)
    x[3, 1], x[10, 3] = np.nan, -np.inf
    x[:, 5] = 0.0
    x[:, 7] = 0.0
    x[0, 7], x[1, 7] = 2.0 ** -120, 2.0 ** -121  # bfloat16 subnormal outputs
    x[2, 9], x[3, 9] = 1e30, 1e-30
    x[4, 11] = 6e-39                             # float32 subnormal input
    x[5, 65] = 1e-20
    x = x.astype(dt)
    s = H.sign_vector(16, seed=4, blocks=66)
    for kw in ({}, {"signs": s}, {"signs": s[0], "inverse": True}):
        for od in (np.float32, BF16):
            assert_same_bits(H.hadamard(x, 16, axis=0, out_dtype=od, **kw),
                             E.transform(x, 16, axis=0, out_dtype=od, **kw))


def test_block_order_is_c_order_of_the_blocked_shape():
    # x (32, 3) along axis 0: blocked shape (2, 3); block (b, c) is number 3 b + c
    x = np.ones((32, 3), np.float32)
    s = np.ones((6, 16), np.int8)
    s[4, 0] = -1  # block (1, 1): rows 16..31 of column 1
    y = H.hadamard(x, 16, axis=0, signs=s)
    changed = np.argwhere(y != H.hadamard(x, 16, axis=0))
    assert set(map(tuple, changed[:, ::-1] // [1, 16])) == {(1, 1)}


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 64)).astype(np.float32)
    x[3, 5], x[7, :3], x[9, 9] = np.nan, [1e30, 1e-30, -1e-20], np.inf
    s = H.sign_vector(64, seed=1, blocks=64)
    before = numba.get_num_threads()
    try:
        runs = []
        for nt in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(nt)
            runs.append([bits(H.hadamard(x, n, axis=ax, signs=s if (n, ax) == (64, -1) else None, out_dtype=od))
                         for n in (16, 32, 64) for ax in (0, -1) for od in (np.float32, BF16)])
        for a, b in zip(runs[0], runs[-1]):
            assert np.array_equal(a, b)
    finally:
        numba.set_num_threads(before)


# --- the TE model and the accumulation tolerance ---------------------------------------------------------------

def _te_python(x: np.ndarray, s, inverse: bool) -> np.ndarray:
    """The documented TE model, written with numpy float32 scalars: fl32 products, adds in order i = 0..15."""
    h = H.hadamard_matrix(16)
    out = np.empty(16, np.float32)
    for j in range(16):
        acc = np.float32(0.0)
        for i in range(16):
            b = np.float32(0.25) * np.float32(h[i, j]) * np.float32(s[j] if inverse else s[i])
            acc = np.float32(acc + np.float32(np.float32(x[i]) * b))
        out[j] = acc
    return out


@pytest.mark.parametrize("inverse", [False, True])
def test_te_mode_is_the_documented_float32_sequence(inverse):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((6, 16)) * np.exp2(rng.integers(-30, 30, (6, 16)))).astype(BF16)
    s = H.sign_vector(16, mask=H.TE_WGRAD_SIGN_MASK)
    y32 = H.hadamard(x, 16, signs=s, inverse=inverse, mode="te", out_dtype=np.float32)
    yb = H.hadamard(x, 16, signs=s, inverse=inverse, mode="te", out_dtype=BF16)
    for r in range(6):
        want = _te_python(x[r].astype(np.float32), s, inverse)
        assert_same_bits(y32[r], want)
        assert_same_bits(yb[r], want.astype(BF16))  # ml_dtypes float32 -> bfloat16 is one RNE rounding


@pytest.mark.parametrize("inverse", [False, True])
def test_te_mode_reads_float16_inputs_including_subnormals_as_their_float32_values(inverse):
    # 16-bit inputs are read as bit patterns and widened per element; float16 subnormals need a renormalization
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((40, 16)) * np.exp2(rng.integers(-26, 12, (40, 16)))).astype(np.float16)
    x[0, :4] = [0.0, -0.0, np.float16(2.0 ** -24), -np.float16(2.0 ** -24)]
    s = H.sign_vector(16, mask=H.TE_WGRAD_SIGN_MASK)
    y = H.hadamard(x, 16, signs=s, inverse=inverse, mode="te", out_dtype=np.float32)
    for r in range(x.shape[0]):
        assert_same_bits(y[r], _te_python(x[r].astype(np.float32), s, inverse))


@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("od", [np.float32, BF16])
def test_te_mode_over_many_blocks_with_specials_is_the_sequence_block_by_block(od, inverse):
    # several work units of side-by-side blocks, a partial last one, and NaN/Inf/-0/zero blocks
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((37, 48)) * np.exp2(rng.integers(-40, 40, (37, 48)))).astype(np.float32)
    x[3, 5], x[7, 20], x[8, 33], x[9, :16] = np.nan, np.inf, -np.inf, -0.0
    x[10, 16:32] = 0.0
    x[11, 0], x[11, 1] = np.inf, -np.inf
    x[12, 32:48] = np.where(np.arange(16) % 2, -0.0, 0.0)  # zero sums under negated columns stay +0
    s = H.sign_vector(16, seed=2)
    y = H.hadamard(x, 16, signs=s, inverse=inverse, mode="te", out_dtype=od)
    for r in range(x.shape[0]):
        for b in range(3):
            with np.errstate(invalid="ignore"):  # Inf - Inf in the reference's own float32 sums
                want = _te_python(x[r, 16 * b:16 * b + 16], s, inverse)
            want[np.isnan(want)] = np.nan  # the model's NaN is the canonical quiet NaN, whatever x86 gives
            assert_same_bits(y[r, 16 * b:16 * b + 16], want if od == np.float32 else want.astype(BF16))


@pytest.mark.parametrize("mode", ["te", "exact"])
def test_transform_into_a_reused_buffer_equals_a_fresh_result_and_a_wrong_buffer_is_refused(mode):
    x = np.random.default_rng(3).standard_normal((8, 64)).astype(np.float32)
    s = H.sign_vector(16, mask=H.TE_WGRAD_SIGN_MASK)
    for od, udt in ((np.float32, np.uint32), (BF16, np.uint16)):
        buf = np.full(x.size + 5, 0xFFFF, udt)
        y, _ = H.transform_amax(x, 16, -1, s, out_dtype=od, mode=mode, buffer=buf)
        assert_same_bits(y, H.hadamard(x, 16, -1, s, out_dtype=od, mode=mode))
        assert np.shares_memory(y, buf)
        for bad in (np.empty(x.size - 1, udt), np.empty(x.size, np.int64), np.empty((2, x.size), udt)):
            with pytest.raises(ValueError, match="buffer must be a contiguous 1-D"):
                H.transform_amax(x, 16, -1, s, out_dtype=od, mode=mode, buffer=bad)


def test_te_mode_per_block_signs_and_axis0_match_the_sequence():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((32, 2)).astype(np.float32)
    s = H.sign_vector(16, seed=5, blocks=4)
    y = H.hadamard(x, 16, axis=0, signs=s, mode="te")
    for bi, (b, c) in enumerate(np.ndindex(2, 2)):
        assert_same_bits(y[b * 16:(b + 1) * 16, c], _te_python(x[b * 16:(b + 1) * 16, c], s[bi], False))


def test_te_model_differs_from_exact_on_a_wide_range_block_and_tolerance_flags_it():
    # terms 1, 2^-8, 2^-30: exact 1 + 2^-8 + 2^-30 rounds up to 1 + 2^-7 in bfloat16; fp32 accumulation loses
    # 2^-30, lands on the bfloat16 tie 1 + 2^-8 and rounds to the even 1.0
    x = np.zeros(16, BF16)
    x[0], x[1], x[2] = 4.0, 2.0 ** -6, 2.0 ** -28
    te = H.hadamard(x, 16, mode="te", out_dtype=BF16)
    ex = H.hadamard(x, 16, out_dtype=BF16)
    assert float(te[0]) == 1.0 and float(ex[0]) == 1 + 2.0 ** -7
    tol = H.accumulation_tolerance(x, 16, out_dtype=BF16)
    assert tol.ambiguous[0] and tol.bound[0] > 0
    differ = bits(te) != bits(ex)
    assert not (differ & ~tol.ambiguous).any()


def test_bf16_inputs_within_eight_binades_are_certified_exact_so_te_equals_exact():
    # 8 significant bits, exponents -6..2: all terms are multiples of 2^-15 and sum below 2^5 < 2^(-15+24)
    rng = np.random.default_rng(6)
    shape = (256, 64)
    x = (rng.choice([-1.0, 1.0], shape) * (1 + rng.integers(0, 128, shape) / 128)
         * np.exp2(rng.integers(-6, 3, shape))).astype(BF16)
    s = H.sign_vector(16, mask=H.TE_WGRAD_SIGN_MASK)
    tol = H.accumulation_tolerance(x, 16, signs=s, out_dtype=BF16)
    assert (tol.bound == 0).all() and not tol.ambiguous.any()
    assert_same_bits(H.hadamard(x, 16, signs=s, mode="te", out_dtype=BF16),
                     H.hadamard(x, 16, signs=s, out_dtype=BF16))


@pytest.mark.parametrize("inverse", [False, True])
def test_te_equals_exact_wherever_the_tolerance_says_unambiguous(inverse):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((512, 64)) * np.exp2(rng.integers(-20, 20, (512, 64)))).astype(BF16)
    s = H.sign_vector(16, mask=H.TE_WGRAD_SIGN_MASK)
    for od in (BF16, np.float32):
        tol = H.accumulation_tolerance(x, 16, signs=s, inverse=inverse, out_dtype=od)
        te = H.hadamard(x, 16, signs=s, inverse=inverse, mode="te", out_dtype=od)
        ex = H.hadamard(x, 16, signs=s, inverse=inverse, out_dtype=od)
        differ = bits(te) != bits(ex)
        assert not (differ & ~tol.ambiguous).any()
        if od == BF16:  # float32 outputs: an fp32 sum of 16 terms is nearly always within reach of a midpoint
            assert tol.ambiguous.mean() < 0.01


def _rz32(v: Fraction) -> np.float32:
    """v rounded toward zero to float32 (a truncating adder)."""
    r = np.float32(float(v))
    if abs(Fraction(float(r))) > abs(v):
        r = np.nextafter(r, np.float32(0.0))
    return r


def _accumulations(terms: list[np.float32], rng) -> list[np.float32]:
    """Several float32 accumulations of the same terms: orders, trees, round-to-nearest and truncation."""
    res = []
    for order in (list(range(len(terms))), list(range(len(terms)))[::-1], list(rng.permutation(len(terms)))):
        acc = np.float32(0.0)
        for i in order:
            acc = np.float32(acc + terms[i])
        res.append(acc)
        acc = np.float32(0.0)
        for i in order:
            acc = _rz32(Fraction(float(acc)) + Fraction(float(terms[i])))
        res.append(acc)
    level = list(terms)
    while len(level) > 1:
        level = [np.float32(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    res.append(level[0])
    return res


@pytest.mark.parametrize("n, spread", [(4, 4), (4, 40), (16, 4), (16, 40), (64, 40)])
def test_every_float32_accumulation_lies_within_the_bound_and_rounds_like_exact_unless_ambiguous(n, spread):
    rng = np.random.default_rng(n + spread)
    rows = 12 if n < 64 else 4
    x = (rng.standard_normal((rows, n)) * np.exp2(rng.integers(-spread, spread, (rows, n)))).astype(np.float32)
    x[0, :] = np.resize([1.0, 2.0 ** -8, 2.0 ** -30, -1.0], n)  # near a tie after cancellation
    s = H.sign_vector(n, seed=n)
    tol = H.accumulation_tolerance(x, n, signs=s, out_dtype=BF16)
    ex = H.hadamard(x, n, signs=s, out_dtype=BF16)
    h = H.hadamard_matrix(n)
    c = np.float32(1 / math.sqrt(n))  # exact for these n
    for r in range(x.shape[0]):
        for j in range(n):
            terms = [np.float32(x[r, i] * np.float32(s[i] * h[i, j]) * c) for i in range(n)]
            exact = sum(Fraction(float(x[r, i])) * int(s[i] * h[i, j]) for i in range(n)) * Fraction(float(c))
            for acc in _accumulations(terms, rng):
                assert abs(Fraction(float(acc)) - exact) <= Fraction(float(tol.bound[r, j]))
                if not tol.ambiguous[r, j]:
                    assert bits(np.float32(acc).astype(BF16)) == bits(ex[r, j])


def test_tolerance_with_nan_inf_is_zero_and_unambiguous_unless_finite_terms_may_overflow():
    x = np.ones((3, 16), np.float32)
    x[0, 2] = np.nan
    x[1, 3] = np.inf
    x[2, :] = np.float32(np.finfo(np.float32).max)
    tol = H.accumulation_tolerance(x, 16)
    assert (tol.bound[:2] == 0).all() and not tol.ambiguous[:2].any()
    assert np.isinf(tol.bound[2]).all() and tol.ambiguous[2].all()


# --- the exact reference itself --------------------------------------------------------------------------------

def test_exact_reference_rounding_agrees_with_hardware_and_ml_dtypes_conversions():
    rng = np.random.default_rng(9)
    v = rng.standard_normal(3000) * np.exp2(rng.integers(-160, 126, 3000))
    for x in v:
        if np.float32(x) == 0 or abs(x) > 65504:
            continue  # round_bits takes nonzero values (zero signs are decided before rounding)
        assert E.round_bits(Fraction(x), False, "float32") == int(np.float64(x).astype(np.float32).view(np.uint32))
        assert E.round_bits(Fraction(x), False, "float16") == int(np.float64(x).astype(np.float16).view(np.uint16))
        f = np.float32(x)  # bfloat16 from float32 in ml_dtypes is a single RNE rounding
        assert E.round_bits(Fraction(float(f)), False, "bfloat16") == int(f.astype(BF16).view(np.uint16))
    for x in v[:300]:
        if not 1e-30 < abs(x) < 1e30:
            continue
        w = Fraction(x)
        r = E.round_bits(w, True, "float32")  # w / sqrt 2 far from float32 midpoints: float64 agrees
        approx = np.float32(x / math.sqrt(2))
        assert abs(r - int(approx.view(np.uint32))) <= 1


# --- errors ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, 3, 6, 8192, -4])
def test_bad_size_is_rejected(size):
    with pytest.raises(ValueError, match="size must be a power of two"):
        H.hadamard(np.zeros(16, np.float32), size)


@pytest.mark.parametrize("size", [16.0, True, "16", None])
def test_non_integer_size_is_rejected(size):
    with pytest.raises(TypeError, match="size"):
        H.hadamard(np.zeros(16, np.float32), size)


def test_bad_axis_and_length_are_rejected():
    x = np.zeros((4, 16), np.float32)
    with pytest.raises(ValueError, match="axis must be in"):
        H.hadamard(x, 16, axis=2)
    with pytest.raises(ValueError, match="axis must be in"):
        H.hadamard(x, 16, axis=-3)
    with pytest.raises(TypeError, match="axis"):
        H.hadamard(x, 16, axis=1.0)
    with pytest.raises(ValueError, match=r"x.shape\[0\] = 4 is not a multiple of size = 16"):
        H.hadamard(x, 16, axis=0)
    with pytest.raises(ValueError, match="at least one dimension"):
        H.hadamard(np.float32(1.0), 2)


@pytest.mark.parametrize("signs, err, msg", [
    (np.ones(8), ValueError, r"signs must have shape \(16,\)"),
    (np.ones((3, 16)), ValueError, r"or \(4, 16\)"),
    (np.zeros(16), ValueError, "only \\+1 and -1"),
    (np.full(16, 0.5), ValueError, "only \\+1 and -1"),
    (np.ones(16, bool), TypeError, "numeric"),
    (["1"] * 16, TypeError, "numeric"),
])
def test_bad_signs_are_rejected(signs, err, msg):
    with pytest.raises(err, match=msg):
        H.hadamard(np.zeros((4, 16), np.float32), 16, signs=signs)


def test_bad_dtypes_modes_and_options_are_rejected():
    x = np.zeros(16, np.float32)
    with pytest.raises(TypeError, match="allowed: float64, float32"):
        H.hadamard(np.zeros(16, np.int32), 16)
    with pytest.raises(TypeError, match="allowed"):
        H.hadamard(np.zeros(16, np.complex64), 16)
    with pytest.raises(ValueError, match="out_dtype"):
        H.hadamard(x, 16, out_dtype=np.float64)
    with pytest.raises(ValueError, match="mode must be one of exact, te"):
        H.hadamard(x, 16, mode="fast")
    with pytest.raises(ValueError, match="size must be 16"):
        H.hadamard(np.zeros(32, np.float32), 32, mode="te")
    with pytest.raises(TypeError, match="mode='te'"):
        H.hadamard(np.zeros(16), 16, mode="te")
    with pytest.raises(ValueError, match="not float16"):
        H.hadamard(x, 16, mode="te", out_dtype=np.float16)
    with pytest.raises(TypeError, match="inverse"):
        H.hadamard(x, 16, inverse=1)
    with pytest.raises(TypeError, match="float32, bfloat16 or float16"):
        H.accumulation_tolerance(np.zeros(16), 16)
    with pytest.raises(ValueError, match="unit_roundoff"):
        H.accumulation_tolerance(x, 16, unit_roundoff=0.5)


def test_bad_sign_vector_arguments_are_rejected():
    with pytest.raises(ValueError, match="exactly one of mask= or seed="):
        H.sign_vector(16)
    with pytest.raises(ValueError, match="exactly one of mask= or seed="):
        H.sign_vector(16, mask=1, seed=1)
    with pytest.raises(ValueError, match=r"mask must be an integer in \[0, 2\*\*16\)"):
        H.sign_vector(16, mask=1 << 16)
    with pytest.raises(ValueError, match="mask must be"):
        H.sign_vector(16, mask=-1)
    with pytest.raises(ValueError, match="apply to seed="):
        H.sign_vector(16, mask=3, blocks=2)
    with pytest.raises(ValueError, match="blocks must be"):
        H.sign_vector(16, seed=1, blocks=0)
    with pytest.raises(ValueError, match="call must be"):
        H.sign_vector(16, seed=1, call=-1)
    with pytest.raises(ValueError, match="size must be a power of two"):
        H.hadamard_matrix(12)


@pytest.mark.parametrize("od", [np.float32, BF16])
@pytest.mark.parametrize("special", [None, np.inf, np.nan])
def test_te_transform_amax_is_the_largest_output_magnitude(od, special):
    # the te kernel's amax (quantization's tensor amax of te-nvfp4-rht) against numpy on the returned outputs
    rng = np.random.default_rng(12)
    x = (rng.standard_normal((70, 32)) * np.exp2(rng.integers(-140, 120, (70, 32)))).astype(np.float32)
    x[5, :16] = -0.0
    if special is not None:
        x[40, 3] = special
    s = H.sign_vector(16, mask=H.TE_WGRAD_SIGN_MASK)
    y, amax = H.transform_amax(x, 16, -1, s, out_dtype=od, mode="te")
    assert_same_bits(y, H.hadamard(x, 16, -1, s, out_dtype=od, mode="te"))
    with np.errstate(invalid="ignore"):
        want = np.abs(y.astype(np.float64)).max()
    assert (math.isnan(amax) and math.isnan(want)) or amax == want
    assert H.transform_amax(x[:64], 16, 0, s, out_dtype=od, mode="te")[1] is None  # strided blocks: not computed
    got = H.te_amax(x, H.te_sign_mask(s), od)  # the same amax without writing the outputs
    assert (math.isnan(got) and math.isnan(want)) or got == want


@pytest.mark.parametrize("dtype", [np.float32, BF16, np.float16])
@pytest.mark.parametrize("od", [np.float32, BF16])
def test_te_amax_without_outputs_finds_the_largest_output_in_any_piece_and_work_unit(dtype, od):
    # te_amax runs te_rows piece by piece (TE_PIECE elements) in 64 work units; the largest output is moved
    # through the first, a middle and the last block, and numpy's max of the written outputs is the reference
    rng = np.random.default_rng(13)
    x = rng.standard_normal((3, 70_000 // 16 * 16)).astype(dtype)
    s = H.sign_vector(16, seed=4)
    for at in (0, x.size // 2 + 5, x.size - 1):
        xs = x.copy()
        xs.reshape(-1)[at] = 1000.0
        want = np.abs(H.hadamard(xs, 16, -1, s, out_dtype=od, mode="te").astype(np.float64)).max()
        assert H.te_amax(xs, H.te_sign_mask(s), od) == want
    assert H.te_sign_mask(H.sign_vector(16, mask=H.TE_WGRAD_SIGN_MASK)) == H.TE_WGRAD_SIGN_MASK
    with pytest.raises(ValueError, match="out_dtype must be float32 or bfloat16"):
        H.te_amax(x, 0, np.float16)
    with pytest.raises(ValueError, match="multiple of 16"):
        H.te_amax(x[:, :40], 0, np.float32)
