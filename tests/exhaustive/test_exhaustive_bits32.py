"""Every one of the 2^32 float32 inputs: the float32 bit-field loop (kernels.cast.encode_bits32, which
fp4ref.encode uses for float32/float16/bfloat16 inputs) against the integer reference (fp4ref.exact.cast).

The same cases as test_exhaustive_float32.py (which sweeps the float64 loop, encode_one): every format under
nearest-even, every mode for E2M1, FP4REF_EXHAUSTIVE=all for every format × mode; plus the policies that
only this loop implements branch-free (negative='abs', e8m0_subnormal='up', overflow to NaN/Inf).
The quantize loop's scaled encoder (x·2^-k) is swept for the shifts in SCALED, its ladders (the 4-bit element
codes of a tile as threshold counts) for the tile forms in LADDERS, its E2M1 arithmetic code (e2m1_rne_code)
under both -0 policies, and its amax bucket tables (a tile's scale code by two lookups) for every magnitude
pattern in the cases of test_quantize_bits.BUCKET_CASES.
"""
import os

import numpy as np
import pytest
from numba import njit, prange

from fp4ref import formats as F
from fp4ref import rounding as R
from fp4ref.cast import cast_params
from fp4ref.exact.cast import bits_encode, bits_params, split_f32
from fp4ref.kernels.cast import bits32_params, encode_bits32
from fp4ref.kernels import quantize_bits as KB
from fp4ref.kernels.bits import f32_as_u32, u32_as_f32
from fp4ref.kernels.quantize_bits import encode_bits32_scaled
from test_quantize_bits import (BUCKET_CASES, bucket_mismatches, bucket_plan,  # tests/ is on the path (conftest)
                               e2m1_arith_mismatches)

pytestmark = pytest.mark.exhaustive


@njit(cache=True, parallel=True)
def _sweep(lo, hi, q32, q, tpos, tneg, first):
    bad = 0
    for i in prange(lo, hi):
        b = np.uint32(i)
        neg, is_nan, is_inf, sig, ex, lg = split_f32(b)
        a = encode_bits32(np.int64(i), q32)
        r = bits_encode(neg, is_nan, is_inf, sig, ex, q, tpos, tneg, lg)
        if a < 0:
            a = -1
        if a != r:
            bad += 1
            first[0] = i
    return bad


_UNIQUE = {}
for _f in F.all_formats():
    _UNIQUE.setdefault((_f.kind, _f.bits, _f.ebits, _f.mbits, _f.bias, _f.signed, _f.max_code, _f.nan_code,
                        _f.inf_code, _f.int_min_used, _f.code_limit), _f.name)

if os.environ.get("FP4REF_EXHAUSTIVE") == "all":
    CASES = [(n, m, {}) for n in _UNIQUE.values() for m in R.MODES]
else:
    CASES = [(n, "nearest-even", {}) for n in _UNIQUE.values()] + \
        [("e2m1", m, {}) for m in R.MODES if m != "nearest-even"]
CASES += [("e8m0", "nearest-away", dict(negative="abs", e8m0_subnormal="up", overflow="nan")),
          ("e4m3", "toward-positive", dict(overflow="nan")), ("e5m2", "nearest-even", dict(overflow="inf")),
          ("ue4m3", "nearest-even", dict(negative="raise"))]


@pytest.mark.parametrize("name,mode,pol", CASES, ids=lambda v: v if isinstance(v, str) else
                         ",".join(f"{k}={w}" for k, w in v.items()) or "-")
def test_all_float32_inputs_bit_field_loop_equals_integer_reference(name, mode, pol):
    fp, pp = cast_params(name, mode, **pol)
    first = np.full(1, -1, np.int64)
    bad = _sweep(0, 1 << 32, bits32_params(fp, pp), *bits_params(name, mode, **pol), first)
    assert bad == 0, f"{bad} mismatches, e.g. float32 bits 0x{int(first[0]):08X}"


@njit(cache=True, parallel=True)
def _sweep_scaled(lo, hi, k, q32, q, tpos, tneg, first):
    bad = 0
    for i in prange(lo, hi):
        b = np.uint32(i)
        neg, is_nan, is_inf, sig, ex, lg = split_f32(b)
        if is_nan or is_inf:
            continue  # the scaled encoder takes finite inputs (its caller sends NaN/Inf tiles elsewhere)
        a = encode_bits32_scaled(np.int64(i), k, q32)
        r = bits_encode(neg, False, False, sig, ex - k, q, tpos, tneg, lg - k)
        if a < 0:
            a = -1
        if a != r:
            bad += 1
            first[0] = i
    return bad


# the shifts that MX quantization of real tensors uses most (|x| ~ 1: k = -2 for E2M1, -8 for E4M3), and the
# extremes of an E8M0 scale
SCALED = [("e2m1", -2), ("e2m1", -127), ("e2m1", 127), ("e4m3", -8), ("e2m3", 0), ("e5m2", 40)]


@pytest.mark.parametrize("name,k", SCALED)
def test_all_float32_inputs_scaled_by_two_to_minus_k_equal_the_integer_reference(name, k):
    """encode_bits32_scaled (the quantize loop's element encoder for power-of-two scales) on every finite
    float32 x: the code of x·2^-k, as the integer reference rounds sig·2^(ex-k)."""
    fp, pp = cast_params(name, "nearest-even")
    first = np.full(1, -1, np.int64)
    bad = _sweep_scaled(0, 1 << 32, np.int64(k), bits32_params(fp, pp), *bits_params(name, "nearest-even"), first)
    assert bad == 0, f"{bad} mismatches, e.g. float32 bits 0x{int(first[0]):08X}"


@njit(parallel=True)  # no cache: it inlines the ladder loop under test (the cache does not see edits there)
def _sweep_ladder(exact, k, op, a1, a2, t, o, nx, na, nm, q, tpos, tneg, first):
    bad = 0
    for c in prange(1 << 16):
        xs = np.arange(c << 16, (c + 1) << 16).astype(np.uint32)
        out = np.empty(1 << 16, np.uint8)
        KB._run_ladder(xs, out, 0, 1 << 16, t, o, nx, na, nm, KB.ladder_shape(t))
        for j in range(1 << 16):
            b = xs[j]
            neg, is_nan, is_inf, sig, ex, lg = split_f32(b)
            if is_nan or is_inf:
                continue  # ladders take finite tiles
            if exact:
                r = bits_encode(neg, False, False, sig, ex - k, q, tpos, tneg, lg - k)
            else:  # the float32 expression in the machine's float32 arithmetic, then the integer reference
                x = u32_as_f32(b)
                y = (x / a1) / a2 if op == 0 else (x / a1) * a2 if op == 1 else (x * a1) * a2
                n2, nan2, inf2, sig2, ex2, lg2 = split_f32(f32_as_u32(y))
                r = bits_encode(n2, nan2, inf2, sig2, ex2, q, tpos, tneg, lg2)
            if out[j] != r:
                bad += 1
                first[0] = b
    return bad


# (neg_zero policy, exact, k, op, a1, a2): MXFP4 shifts (typical, E8M0 extremes) and NVFP4-like float32
# expressions (x·(1/s) with a global scale; x/s underflowing to -0 under neg_zero="positive")
LADDERS = [("keep", True, -2, 0, 1.0, 1.0), ("keep", True, -127, 0, 1.0, 1.0), ("positive", True, 130, 0, 1.0, 1.0),
           ("keep", False, 0, 2, 352938.5, 1.0), ("positive", False, 0, 1, 2.0 ** -130 * 3, 1.0)]


@pytest.mark.parametrize("neg_zero,exact,k,op,a1,a2", LADDERS)
def test_all_float32_inputs_e2m1_ladder_equals_the_integer_reference(neg_zero, exact, k, op, a1, a2):
    """The ladder loop (kernels/quantize_bits.py) for one tile form on every finite float32: the code the
    integer reference gives x·2^-k, or the float32 result of the tile's expression."""
    fp, pp = cast_params("e2m1", "nearest-even", neg_zero=neg_zero)
    q32 = bits32_params(fp, pp)
    m, P, o = KB.ladder_base(q32)
    t = np.empty(KB.LADDER + 1, np.uint32)
    a1, a2 = np.float32(a1), np.float32(a2)
    assert m == 8 and KB._ladder(t, m, P, o, exact, np.int64(k), np.int64(op), a1, a2, q32)
    assert KB.ladder_shape(t) == (KB.SHORT if neg_zero == "keep" else KB.NO_T8)  # both loops of E2M1 ladders
    first = np.full(1, -1, np.int64)
    bad = _sweep_ladder(exact, np.int64(k), np.int64(op), a1, a2, t, *KB.ladder_consts(o, q32),
                        *bits_params("e2m1", "nearest-even", neg_zero=neg_zero), first)
    assert bad == 0, f"{bad} mismatches, e.g. float32 bits 0x{int(first[0]):08X}"


@pytest.mark.parametrize("name, gamax", BUCKET_CASES)
def test_all_amax_patterns_bucket_tables_give_the_scalar_table_code(name, gamax):
    ip, T = bucket_plan(name, gamax)
    for lo in range(0, 1 << 31, 1 << 27):
        bad, first = bucket_mismatches(np.arange(lo, lo + (1 << 27), dtype=np.uint32), ip, T)
        assert bad == 0, f"{bad} mismatches, first at amax bits {first:#x}"


@pytest.mark.parametrize("neg_zero, zn", [("keep", 8), ("positive", 0)])
def test_all_float32_inputs_e2m1_arithmetic_code_equals_the_integer_reference(neg_zero, zn):
    """kernels.quantize_bits.e2m1_rne_code (laddered tiles' codes where the element value is a float32 product)
    on every float32 but NaN, under both -0 policies that e2m1_fast_q accepts."""
    first = np.full(1, -1, np.int64)
    bad = e2m1_arith_mismatches(0, 1 << 32, 1, zn, *bits_params("e2m1", "nearest-even", neg_zero=neg_zero), first)
    assert bad == 0, f"{bad} mismatches, e.g. float32 bits 0x{int(first[0]):08X}"
