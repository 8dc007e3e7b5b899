"""Tensor scale conventions and scale-rule vocabulary (fp4ref.scaling), against the exact reference's own
float32 evaluation of each definition (fp4ref.exact.blocks.tensor_scale) and the vendors' documented cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fp4ref import scaling as S
from fp4ref.exact import blocks as X

F32_MAX = float(np.finfo(np.float32).max)


@pytest.mark.parametrize("kind", ["nvfp4-encode", "nvfp4-encode-ref", "nvfp4-decode", "amax"])
@settings(max_examples=300, deadline=None)
@given(amax=st.one_of(st.floats(0, F32_MAX, width=32), st.sampled_from([0.0, 1e-45, 2688.0, float("inf"),
                                                                          float("nan")])))
def test_tensor_scale_matches_the_exact_float32_evaluation(kind, amax):
    ts = S.tensor_scale(kind, amax, elem="e2m1", scale_fmt="ue4m3")
    G, D = X.tensor_scale(kind, amax, elem="e2m1", scale_fmt="ue4m3")
    for ours, ref in ((ts.G, G), (ts.D, D)):
        ref = float(ref)
        assert (math.isnan(ours) and math.isnan(ref)) or ours == ref, (ours, ref)


def test_te_kernel_and_reference_differ_on_zero_and_nan_amax():
    k0 = S.tensor_scale("nvfp4-encode", 0.0, elem="e2m1", scale_fmt="ue4m3")
    r0 = S.tensor_scale("nvfp4-encode-ref", 0.0, elem="e2m1", scale_fmt="ue4m3")
    assert k0.G == 1.0 and r0.G == F32_MAX  # kernel: amax == 0 → 1.0; reference: min(Inf, FLT_MAX)
    for kind in ("nvfp4-encode", "nvfp4-encode-ref"):
        assert S.tensor_scale(kind, float("inf"), elem="e2m1", scale_fmt="ue4m3").G == 1.0  # 2688/Inf = 0 → 1
    assert S.tensor_scale("nvfp4-encode", float("nan"), elem="e2m1", scale_fmt="ue4m3").G == F32_MAX  # fminf
    assert math.isnan(S.tensor_scale("nvfp4-encode-ref", float("nan"), elem="e2m1", scale_fmt="ue4m3").G)


def test_encode_factor_is_2688_over_amax_and_decode_factor_amax_over_2688():
    ts = S.tensor_scale("nvfp4-encode", 5376.0, elem="e2m1", scale_fmt="ue4m3")
    assert (ts.G, ts.D, ts.convention) == (0.5, 2.0, "encode")
    ts = S.tensor_scale("nvfp4-decode", 5376.0, elem="e2m1", scale_fmt="ue4m3")
    assert (ts.G, ts.D, ts.convention) == (1.0, 2.0, "decode")


def test_divisor_needs_an_explicit_global_scale_and_none_refuses_one():
    with pytest.raises(ValueError, match="needs global_scale"):
        S.tensor_scale("divisor", 1.0, elem="e2m1", scale_fmt="ue4m3")
    assert S.tensor_scale("divisor", 0.0, elem="e2m1", scale_fmt="ue4m3", global_scale=1.0).D == 1.0
    with pytest.raises(ValueError, match="tensor_scale is None"):
        S.tensor_scale(None, 1.0, elem="e2m1", scale_fmt="ue4m3", global_scale=2.0)
    with pytest.raises(ValueError, match="unknown tensor_scale 'te'"):
        S.tensor_scale("te", 1.0, elem="e2m1", scale_fmt="ue4m3")


def test_every_expression_and_rule_name_is_documented():
    assert set(S.SCALE_RULES) >= {"floor", "ceil", "even", "rceil", "nvfp4", "paper", "quest"}
    for table in (S.SCALE_EXPRS, S.ELEM_EXPRS):
        assert all(isinstance(v, str) and v for v in table.values())
    assert S.rule_defaults("rceil") == "toward-positive" and S.rule_defaults("floor") is None
