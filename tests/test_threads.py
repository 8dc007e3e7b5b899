"""Every parallel (prange) kernel gives the same bits with 1 Numba thread as with all of them.

The inputs mix normal values over many binades with the specials (NaN of both signs, ±Inf, ±0, subnormals,
values beyond every format's range), so that the reductions (tensor amax, NaN propagation) and the error
counts see them in every thread's share.
"""
from contextlib import contextmanager

import ml_dtypes
import numba
import numpy as np
import pytest

import fp4ref

N = numba.config.NUMBA_NUM_THREADS
pytestmark = pytest.mark.skipif(N < 2, reason="one Numba thread available: nothing to compare")


@contextmanager
def threads(n):
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(old)


def _bits(a):
    a = np.atleast_1d(np.asarray(a))
    return a.view(np.uint8) if a.dtype.kind in "fc" or a.dtype == ml_dtypes.bfloat16 else a


def assert_thread_independent(fn):
    """fn() with one thread and with N threads: arrays (or tuples/dataclass fields of arrays) bit-identical."""
    with threads(1):
        one = fn()
    with threads(N):
        many = fn()
    ones = one if isinstance(one, tuple) else (one,)
    manys = many if isinstance(many, tuple) else (many,)
    for a, b in zip(ones, manys):
        if a is None:
            assert b is None
            continue
        assert np.asarray(a).dtype == np.asarray(b).dtype and np.shape(a) == np.shape(b)
        np.testing.assert_array_equal(_bits(a), _bits(b))


def adversarial(shape, dtype=np.float32, seed=0, nan=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * np.exp2(rng.integers(-140, 140, shape))
    flat = x.reshape(-1)
    k = flat.size
    idx = rng.choice(k, size=min(k, 64), replace=False)
    specials = np.array([np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 3e38, -3e38, 6.0, -6.0, 2.0 ** -127])
    if nan:
        specials = np.concatenate([specials, [np.nan, -np.nan]])
    flat[idx] = np.resize(specials, idx.size)
    with np.errstate(over="ignore"):
        return x.astype(dtype)


def _q(q):
    return q.codes, q.scales, None if q.global_scale is None else np.asarray(q.global_scale)


# --- element encode ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, ml_dtypes.bfloat16], ids=["f32", "f64", "bf16"])
@pytest.mark.parametrize("fmt,mode", [("e2m1", "nearest-even"), ("e4m3", "toward-positive"), ("e8m0", "odd"),
                                      ("mxint8", "nearest-away")])
def test_encode_is_thread_independent(fmt, mode, dtype):
    x = adversarial((257, 511), dtype)
    assert_thread_independent(lambda: fp4ref.encode(x, fmt, mode))


def test_encode_error_count_is_thread_independent():
    x = adversarial((300, 300))
    for n in (1, N):
        with threads(n), pytest.raises(fp4ref.CastError, match="flat index"):
            fp4ref.encode(x, "e2m1", nan="raise")


# --- block quantize ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("recipe", ["ocp-mxfp4", "ocp-mxfp8-e4m3", "te-nvfp4", "te-nvfp4-2d", "te-nvfp4-rht"])
@pytest.mark.parametrize("nan", [False, True], ids=["finite", "nan"])
def test_quantize_is_thread_independent(recipe, nan):
    Q = pytest.importorskip("fp4ref.quantize")
    x = adversarial((96, 512), seed=1, nan=nan)
    assert_thread_independent(lambda: _q(Q.quantize(x, recipe)))


def test_tensor_amax_reduction_is_thread_independent():
    Q = pytest.importorskip("fp4ref.quantize")
    x = adversarial((64, 1024), seed=2, nan=False)
    assert_thread_independent(lambda: np.float64(Q.tensor_amax(x, "te-nvfp4")))


def test_dequantize_is_thread_independent():
    Q = pytest.importorskip("fp4ref.quantize")
    q = Q.quantize(adversarial((64, 256), seed=3), "ocp-mxfp4")
    assert_thread_independent(lambda: Q.dequantize(q))


# --- stochastic rounding -------------------------------------------------------------------------------------
def test_stochastic_rounding_with_explicit_bits_is_thread_independent():
    pytest.importorskip("fp4ref.stochastic")
    x = adversarial((128, 384), seed=4)
    rb = np.random.default_rng(5).integers(0, 256, x.shape, dtype=np.uint8)
    assert_thread_independent(lambda: fp4ref.encode(x, "e2m1", "stochastic-ptx", rbits=rb))


def test_stochastic_rounding_with_philox_is_thread_independent():
    S = pytest.importorskip("fp4ref.stochastic")
    x = adversarial((128, 384), seed=6)
    subs = np.arange(x.shape[0], dtype=np.uint64)
    assert_thread_independent(lambda: fp4ref.encode(x, "e2m1", "stochastic-ptx", rbits=S.PhiloxBits(11, 3, subs)))


def test_philox_words_are_thread_independent():
    R = pytest.importorskip("fp4ref.random")
    assert_thread_independent(lambda: R.philox4x32_10_many(0x1234, np.arange(300, dtype=np.uint64), 5, 97))


# --- Hadamard ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,out", [("exact", np.float32), ("exact", ml_dtypes.bfloat16),
                                      ("te", ml_dtypes.bfloat16)])
def test_rht16_is_thread_independent(mode, out):
    H = pytest.importorskip("fp4ref.hadamard")
    x = adversarial((128, 512), seed=7)
    signs = H.sign_vector(16, mask=H.TE_WGRAD_SIGN_MASK)
    assert_thread_independent(lambda: H.hadamard(x, 16, -1, signs, out_dtype=out, mode=mode))
