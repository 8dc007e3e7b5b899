"""fp4ref.strategies: the drawn inputs have the asked dtype and shape, and they reach the points where
implementations differ (exact ties, overflow boundaries, blocks whose FLOOR and RCEIL scales differ)."""
import ml_dtypes
import numpy as np
import pytest
from hypothesis import find, given, settings, strategies as st

import fp4ref
from fp4ref import strategies as fst
from fp4ref.quantize import quantize

DTYPES = [np.float64, np.float32, np.float16, ml_dtypes.bfloat16]


@pytest.mark.parametrize("fmt", ["e2m1", "e2m3", "e3m2", "e4m3", "e5m2", "e8m0", "mxint8"])
def test_boundary_points_hold_every_midpoint_of_the_format_as_an_exact_input(fmt):
    f = fp4ref.formats.get(fmt)
    v = np.unique(np.abs(f.values[np.isfinite(f.values)]))
    mids = ((v[:-1] + v[1:]) / 2).astype(np.float32).astype(np.float64)
    pts = fst.boundary_points(fmt, np.float32)
    assert np.isin(mids, pts).all() and np.isin(-mids, pts).all()
    assert np.isin(np.float32(v[-1] + (v[-1] - v[-2]) / 2), pts)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_values_and_arrays_have_the_asked_dtype_and_shape(data):
    dt = np.dtype(data.draw(st.sampled_from(DTYPES)))
    v = data.draw(fst.values("e2m1", dt))
    a = data.draw(fst.arrays("e4m3", (3, 5), dt))
    assert v.dtype == dt and v.shape == () and a.dtype == dt and a.shape == (3, 5)


def test_values_reach_an_exact_tie_and_an_overflow_to_nan():
    tie = find(fst.values("e2m1"), lambda v: fp4ref.encode(v, "e2m1") != fp4ref.encode(v, "e2m1", "nearest-away"))
    assert abs(float(tie)) in (0.25, 1.25, 2.5, 5.0)
    big = find(fst.values("e4m3"), lambda v: fp4ref.encode(v, "e4m3", overflow="nan") in (0x7F, 0xFF)
               and not np.isnan(v) and not np.isinf(v))
    assert abs(float(big)) >= 464


@pytest.mark.parametrize("recipe,shape", [("ocp-mxfp4", None), ("te-nvfp4-2d", None), ("te-nvfp4", (2, 32))])
def test_blocks_have_the_recipe_shape(recipe, shape):
    @settings(max_examples=5, deadline=None)
    @given(fst.blocks(recipe, shape, ml_dtypes.bfloat16))
    def check(x):
        assert x.dtype == ml_dtypes.bfloat16 and x.shape == (shape or ((32, 32) if "2d" in recipe else (4, 128)))
        quantize(x, recipe)
    check()


def test_blocks_reach_floor_versus_rceil_scales_and_element_ties():
    s = fst.blocks("ocp-mxfp4", (1, 32), specials=False)
    find(s, lambda x: (quantize(x, "ocp-mxfp4").scales != quantize(x, "ocp-mxfp4", scale_rule="rceil",
                                                                  scale_expr="amax/m").scales).any())
    find(s, lambda x: (quantize(x, "ocp-mxfp4").codes != quantize(x, "ocp-mxfp4", rounding="nearest-away").codes)
         .any())


def test_blocks_rejects_shapes_that_are_not_whole_blocks():
    with pytest.raises(ValueError, match="whole number"):
        fst.blocks("ocp-mxfp4", (4, 40))
