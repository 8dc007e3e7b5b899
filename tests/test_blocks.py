"""Block geometry (fp4ref.blocks): views, scale-grid shapes and layouts, element → block maps, errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fp4ref import blocks as B


@settings(max_examples=100, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), data=st.data())
def test_1d_blocks_along_any_axis_round_trip_and_map_each_element_to_its_block(shape, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    bs = data.draw(st.integers(1, 4))
    shape = list(shape)
    shape[axis] *= bs
    g = B.geometry(shape, axis, "1d", bs)
    x = np.arange(np.prod(shape)).reshape(shape)
    v = g.view_of(x)
    assert v.shape == g.view and (g.codes_from_view(v) == x).all()
    idx = g.scale_index_of_elements()
    # elements share a block exactly when they agree off the axis and on position // bs along it
    pos = np.indices(shape)
    key = [pos[d] if d != g.axis else pos[d] // bs for d in range(len(shape))]
    flat_key = np.ravel_multi_index(key, [s if d != g.axis else s // bs for d, s in enumerate(shape)])
    grid = g.scales_from_grid(np.arange(np.prod(g.grid)).reshape(g.grid))
    assert grid.shape == g.scale_shape
    assert (grid.reshape(-1)[flat_key] == idx).all()


def test_2d_tiles_grid_and_row_layouts():
    g = B.geometry((3, 32, 48), -1, "2d", (16, 16))
    assert g.view == (3, 32, 48) and g.grid == (3, 2, 3) and g.scale_shape == (3, 2, 3)
    r = B.geometry((3, 32, 48), -1, "2d", (16, 16), tile_scales="rows")
    assert r.scale_shape == (3, 32, 3)
    grid = np.arange(18).reshape(3, 2, 3)
    assert (r.scales_from_grid(grid) == np.repeat(grid, 16, axis=1)).all()


def test_flat_blocks_follow_memory_order():
    g = B.geometry((4, 24), -1, "flat", 32)
    assert g.view == (1, 3, 32) and g.scale_shape == (3,)


@pytest.mark.parametrize("args,msg", [
    (((2, 40), -1, "1d", 32), "not a whole number of blocks .*axis 1 length 40 by 32.*pad="),
    (((32, 40), -1, "2d", (16, 16)), "columns 40 by 16"),
    (((4, 32), 0, "2d", (16, 16)), "axis must be -1"),
    (((4, 32), -1, "2d", 16), "needs block=\\(rows, cols\\)"),
    (((4, 32), -1, "1d", (16, 16)), "integer block size"),
    (((4, 32), 2, "1d", 16), "axis 2 out of range"),
    (((4, 32), -1, "tile", 16), "unknown blocks 'tile'"),
])
def test_bad_geometry_is_a_named_error(args, msg):
    with pytest.raises(ValueError, match=msg):
        B.geometry(*args)


def test_padding_allows_ragged_lengths():
    g = B.geometry((2, 40), -1, "1d", 32, pad=0.0)
    assert g.grid == (1, 2, 2) and g.scale_shape == (2, 2)
