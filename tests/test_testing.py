"""fp4ref.testing: the README example (an imaginary kernel under hypothesis) passes; a wrong kernel fails with the
check's diagnosis in the assertion message."""
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings

from fp4ref import strategies as fst
from fp4ref.quantize import dequantize, quantize
from fp4ref.testing import assert_codes_equal, assert_quantized_equal


def my_kernel(x, ties="even"):
    """An imaginary MXFP4 kernel, independent of fp4ref: FLOOR scale from the exponent field (np.frexp), elements
    cast by ml_dtypes (RNE, saturating) or rounded half away, two codes per byte with element 0 low."""
    b = x.astype(np.float32).reshape(*x.shape[:-1], -1, 32)
    amax = np.abs(b).max(axis=-1)
    e = np.where(amax > 0, np.frexp(amax)[1] - 1 - 2, -127).clip(-127, 127)
    q = b / np.ldexp(np.float32(1), e)[..., None].astype(np.float32)
    if ties == "away":
        grid = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], np.float32)
        mag = np.abs(q)[..., None]
        dist = np.abs(mag - grid)
        best = np.where(dist == dist.min(axis=-1, keepdims=True), np.arange(8), -1).max(axis=-1)
        q = np.copysign(grid[best], q)
    codes = q.astype(ml_dtypes.float4_e2m1fn).view(np.uint8).reshape(x.shape)
    return codes[..., 0::2] | (codes[..., 1::2] << 4), (e + 127).astype(np.uint8)


# The README example: ten lines that test a kernel against fp4ref on adversarial blocks.
@settings(max_examples=40, deadline=None)
@given(fst.blocks("ocp-mxfp4", shape=(4, 64), specials=False))
def test_readme_example_imaginary_kernel_matches_ocp_mxfp4(x):
    codes, scales = my_kernel(x)
    assert_quantized_equal((codes, scales), x, "ocp-mxfp4")


def test_a_kernel_with_ties_away_fails_with_the_diagnosis_in_the_message():
    x = np.array([[0.25, 1.25, 2.5, 5.0, 6.0, 0.75, 3.5, 1.75] * 4], np.float32)
    with pytest.raises(AssertionError) as e:
        assert_quantized_equal(my_kernel(x, ties="away"), x, "ocp-mxfp4")
    msg = str(e.value)
    assert "16 mismatch(es) against fp4ref" in msg and "tie_direction" in msg
    assert "reproduced by rounding=nearest-away" in msg and "input 0.25" in msg


def test_assert_quantized_equal_takes_a_quantized_tensor_a_triple_or_values():
    x = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    q = quantize(x, "te-nvfp4")
    assert assert_quantized_equal(q, x, "te-nvfp4").match
    assert_quantized_equal((q.codes, q.scales, q.global_scale), x, "te-nvfp4")
    assert_quantized_equal(dequantize(q), x, "te-nvfp4")
    with pytest.raises(AssertionError, match="global_scale_convention"):
        assert_quantized_equal((q.codes, q.scales, np.float32(1) / q.global_scale), x, "te-nvfp4")
    with pytest.raises(TypeError, match="codes, scales"):
        assert_quantized_equal(q.codes, x, "te-nvfp4")


def test_assert_codes_equal_passes_on_ml_dtypes_float32_casts_and_names_its_nan_policy():
    x = np.array([0.25, 0.75, 2.5, -0.0, 7.0, np.nan, -np.nan], np.float32)
    vendor = x.astype(ml_dtypes.float4_e2m1fn).view(np.uint8)
    with pytest.raises(AssertionError, match="nan=ml_dtypes"):
        assert_codes_equal(vendor, x, "e2m1")
    assert_codes_equal(vendor, x, "e2m1", nan="ml_dtypes")
