"""Tests for fp4ref.packing: nibble and FP6 packing, scale layouts.

Independent references: byte arithmetic (``a + 16*b``), Python-int bit strings for FP6, a per-element loop over
the documented swizzle offset formula, and torchao 0.18.0 outputs recorded in tests/data/torchao_packing.npz
(regenerate with tests/vendors/capture_torchao_swizzle.py).
"""
from __future__ import annotations

import pathlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fp4ref import packing as P

DATA = pathlib.Path(__file__).parent / "data" / "torchao_packing.npz"


def codes_arrays(bits, last_multiple=1, max_last=24):
    """uint8 code arrays of 1-3 dims whose last axis is a multiple of ``last_multiple``."""
    def build(lead, n):
        return hnp.arrays(np.uint8, (*lead, n * last_multiple), elements=st.integers(0, (1 << bits) - 1))
    lead = st.lists(st.integers(1, 4), min_size=0, max_size=2).map(tuple)
    return st.tuples(lead, st.integers(0, max_last // last_multiple)).flatmap(lambda t: build(*t))


# --- FP4 ---------------------------------------------------------------------------------------------------------
def test_unpack_fp4_every_byte_matches_arithmetic_split():
    b = np.arange(256, dtype=np.uint8)
    low_first = np.stack([np.arange(256) % 16, np.arange(256) // 16], axis=-1)
    assert (P.unpack_fp4(b[:, None], "low") == low_first).all()
    assert (P.unpack_fp4(b[:, None], "high") == low_first[:, ::-1]).all()
    # as one row of 256 bytes: element 2k/2k+1 come from byte k
    assert (P.unpack_fp4(b, "low") == low_first.reshape(-1)).all()


def test_pack_fp4_every_code_pair_matches_arithmetic():
    a, c = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    pairs = np.stack([a.ravel(), c.ravel()], axis=-1).astype(np.uint8)
    assert (P.pack_fp4(pairs, "low")[:, 0] == a.ravel() + 16 * c.ravel()).all()
    assert (P.pack_fp4(pairs, "high")[:, 0] == 16 * a.ravel() + c.ravel()).all()


def test_pack_fp4_low_nibble_first_matches_torchao_pack_uint4():
    d = np.load(DATA, allow_pickle=False)
    assert (P.pack_fp4(d["fp4_codes"], "low") == d["fp4_packed"]).all()
    assert not (P.pack_fp4(d["fp4_codes"], "high") == d["fp4_packed"]).all()


@settings(max_examples=60, deadline=None)
@given(codes=codes_arrays(4, last_multiple=2), order=st.sampled_from(P.NIBBLE_ORDERS))
def test_fp4_round_trip_even_lengths(codes, order):
    packed = P.pack_fp4(codes, order)
    assert packed.shape == (*codes.shape[:-1], codes.shape[-1] // 2) and packed.dtype == np.uint8
    assert (P.unpack_fp4(packed, order) == codes).all()


@settings(max_examples=40, deadline=None)
@given(codes=codes_arrays(4), order=st.sampled_from(P.NIBBLE_ORDERS), pad=st.integers(0, 15))
def test_fp4_round_trip_any_length_with_explicit_pad_and_count(codes, order, pad):
    packed = P.pack_fp4(codes, order, pad=pad)
    n = codes.shape[-1]
    assert (P.unpack_fp4(packed, order, count=n) == codes).all()
    if n % 2:
        assert (P.unpack_fp4(packed, order)[..., -1] == pad).all()


def test_pack_fp4_odd_length_without_pad_is_an_error():
    with pytest.raises(ValueError, match="pad="):
        P.pack_fp4(np.zeros(3, np.uint8))


@pytest.mark.parametrize("bad, err, match", [
    (np.zeros(4, np.int8), TypeError, "dtype uint8"),
    ([0, 1], TypeError, "numpy array"),
    (np.array([0, 16], np.uint8), ValueError, "0..15"),
])
def test_pack_fp4_rejects_bad_codes(bad, err, match):
    with pytest.raises(err, match=match):
        P.pack_fp4(bad)


def test_fp4_rejects_unknown_nibble_order_and_bad_pad_and_count():
    with pytest.raises(ValueError, match="'low', 'high'"):
        P.pack_fp4(np.zeros(2, np.uint8), "little")
    with pytest.raises(ValueError, match="pad must be"):
        P.pack_fp4(np.zeros(3, np.uint8), pad=16)
    with pytest.raises(ValueError, match="count=2"):
        P.unpack_fp4(np.zeros(2, np.uint8), count=2)   # 2 bytes hold 3..4 codes
    with pytest.raises(ValueError, match="count=-1"):
        P.unpack_fp4(np.zeros(0, np.uint8), count=-1)


# --- FP6 ---------------------------------------------------------------------------------------------------------
def _fp6_reference(group, layout):
    """Pack four 6-bit codes with Python integers: bit strings, independent of numpy shifts."""
    if layout == "msb-first":
        return list(int("".join(format(int(v), "06b") for v in group), 2).to_bytes(3, "big"))
    return list(sum(int(v) << (6 * i) for i, v in enumerate(group)).to_bytes(3, "little"))


@pytest.mark.parametrize("layout", P.FP6_LAYOUTS)
def test_pack_fp6_every_code_in_every_slot_matches_bit_string_reference(layout):
    rng = np.random.default_rng(1)
    groups = []
    for slot in range(4):
        g = rng.integers(0, 64, size=(64, 4), dtype=np.uint8)
        g[:, slot] = np.arange(64)
        groups.append(g)
    groups = np.concatenate(groups)
    expected = np.array([_fp6_reference(g, layout) for g in groups], dtype=np.uint8)
    assert (P.pack_fp6(groups, layout) == expected).all()
    assert (P.unpack_fp6(expected, layout) == groups).all()


def test_fp6_lsb_first_puts_element0_in_low_bits_of_byte0():
    packed = P.pack_fp6(np.array([0x3F, 0, 0, 0], np.uint8), "lsb-first")
    assert packed.tolist() == [0x3F, 0, 0]
    assert P.pack_fp6(np.array([0, 0, 0, 0x3F], np.uint8), "lsb-first").tolist() == [0, 0, 0xFC]
    assert P.pack_fp6(np.array([0x3F, 0, 0, 0], np.uint8), "msb-first").tolist() == [0xFC, 0, 0]


@settings(max_examples=60, deadline=None)
@given(codes=codes_arrays(6, last_multiple=4), layout=st.sampled_from(P.FP6_LAYOUTS))
def test_fp6_round_trip(codes, layout):
    packed = P.pack_fp6(codes, layout)
    assert packed.shape == (*codes.shape[:-1], 3 * codes.shape[-1] // 4)
    assert (P.unpack_fp6(packed, layout) == codes).all()


@settings(max_examples=30, deadline=None)
@given(codes=codes_arrays(6), layout=st.sampled_from(P.FP6_LAYOUTS), pad=st.integers(0, 63))
def test_fp6_round_trip_any_length_with_pad_and_count(codes, layout, pad):
    packed = P.pack_fp6(codes, layout, pad=pad)
    assert (P.unpack_fp6(packed, layout, count=codes.shape[-1]) == codes).all()


def test_fp6_errors():
    with pytest.raises(ValueError, match="multiple of 4"):
        P.pack_fp6(np.zeros(6, np.uint8))
    with pytest.raises(ValueError, match="0..63"):
        P.pack_fp6(np.array([64, 0, 0, 0], np.uint8))
    with pytest.raises(ValueError, match="multiple of 3"):
        P.unpack_fp6(np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="'lsb-first', 'msb-first'"):
        P.pack_fp6(np.zeros(4, np.uint8), "ptx")


# --- by format ---------------------------------------------------------------------------------------------------
def test_pack_by_format_dispatches_on_code_width():
    c4 = np.arange(16, dtype=np.uint8)
    assert (P.pack(c4, "e2m1") == P.pack_fp4(c4)).all()
    assert (P.pack(c4, "e2m1", nibble_order="high") == P.pack_fp4(c4, "high")).all()
    c6 = np.arange(64, dtype=np.uint8)
    assert (P.pack(c6, "e3m2", fp6_layout="msb-first") == P.pack_fp6(c6, "msb-first")).all()
    c8 = np.arange(256, dtype=np.uint8)
    assert P.pack(c8, "e4m3") is c8 and P.unpack(c8, "e8m0") is c8
    assert (P.unpack(P.pack(c6, "e2m3"), "e2m3") == c6).all()
    assert [P.packed_length(5, f) for f in ("e2m1", "e2m3", "e4m3")] == [3, 6, 5]


# --- scale layouts -----------------------------------------------------------------------------------------------
def _swizzle_by_formula(scales, pad_value=0):
    """Per-element construction from the cuBLAS offset formula (loops, no reshapes)."""
    rows, cols = scales.shape
    n_c = -(-cols // 4)
    out = np.full(-(-rows // 128) * n_c * 512, pad_value, dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            off = ((r // 128) * n_c + c // 4) * 512 + (r % 32) * 16 + ((r % 128) // 32) * 4 + c % 4
            out[off] = scales[r, c]
    return out


@pytest.mark.parametrize("shape", [(1, 1), (32, 4), (128, 4), (127, 3), (129, 5), (130, 9), (256, 8), (300, 13)])
def test_swizzle_matches_per_element_formula_including_padding(shape):
    scales = np.random.default_rng(sum(shape)).integers(1, 256, size=shape, dtype=np.uint8)
    for pad_value in (0, 0x7F):
        assert (P.swizzle_scales(scales, pad_value=pad_value) == _swizzle_by_formula(scales, pad_value)).all()


def test_swizzled_offset_agrees_with_swizzle_scales():
    rows, cols = 300, 13
    scales = np.random.default_rng(5).integers(0, 256, size=(rows, cols), dtype=np.uint8)
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    assert (P.swizzle_scales(scales)[P.swizzled_offset(r, c, cols)] == scales).all()
    assert P.swizzled_offset(0, 0, 1) == 0 and P.swizzled_offset(32, 0, 4) == 4 and P.swizzled_offset(1, 1, 4) == 17
    with pytest.raises(ValueError, match="out of range"):
        P.swizzled_offset(0, 4, 4)


def test_swizzle_and_unswizzle_match_torchao_to_blocked_and_from_blocked():
    d = np.load(DATA, allow_pickle=False)
    shapes = [k[len("scales_"):] for k in d.files if k.startswith("scales_")]
    assert len(shapes) >= 8
    for s in shapes:
        rows, cols = map(int, s.split("x"))
        assert (P.swizzle_scales(d[f"scales_{s}"]) == d[f"to_blocked_{s}"]).all(), s
        assert (P.unswizzle_scales(d[f"swz_{s}"], rows, cols) == d[f"from_blocked_{s}"]).all(), s


@settings(max_examples=40, deadline=None)
@given(scales=hnp.arrays(np.uint8, st.tuples(st.integers(0, 300), st.integers(0, 13))))
def test_swizzle_round_trip_and_size(scales):
    rows, cols = scales.shape
    buf = P.swizzle_scales(scales)
    assert buf.ndim == 1 and buf.size == P.swizzled_size(rows, cols)
    assert buf.size % 512 == 0 and buf.size >= rows * cols
    assert (P.unswizzle_scales(buf, rows, cols) == scales).all()


def test_unswizzle_checks_buffer_size_and_optional_padding():
    scales = np.ones((129, 5), np.uint8)
    buf = P.swizzle_scales(scales)
    with pytest.raises(ValueError, match="must hold 2048 bytes.*got 2047"):
        P.unswizzle_scales(buf[:-1], 129, 5)
    assert (P.unswizzle_scales(buf, 129, 5, expect_pad=0) == 1).all()
    buf[-1] = 9  # a padding byte (row 255, col 7)
    with pytest.raises(ValueError, match="1 padding byte"):
        P.unswizzle_scales(buf, 129, 5, expect_pad=0)
    assert (P.unswizzle_scales(buf, 129, 5) == 1).all()


def test_swizzle_rejects_bad_input():
    with pytest.raises(TypeError, match="dtype uint8"):
        P.swizzle_scales(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        P.swizzle_scales(np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="pad_value"):
        P.swizzle_scales(np.zeros((4, 4), np.uint8), pad_value=256)


@pytest.mark.parametrize("layout", P.SCALE_LAYOUTS)
def test_scale_layouts_round_trip(layout):
    scales = np.random.default_rng(2).integers(0, 256, size=(37, 6), dtype=np.uint8)
    buf = P.to_scale_layout(scales, layout)
    assert (P.from_scale_layout(buf, 37, 6, layout) == scales).all()


def test_linear_scale_layouts_are_c_and_fortran_order():
    scales = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert P.to_scale_layout(scales, "row-major").tolist() == [0, 1, 2, 3, 4, 5]
    assert P.to_scale_layout(scales, "col-major").tolist() == [0, 3, 1, 4, 2, 5]
    with pytest.raises(ValueError, match="6 bytes"):
        P.from_scale_layout(np.zeros(5, np.uint8), 2, 3, "col-major")
    with pytest.raises(ValueError, match="'row-major', 'col-major', 'swizzled-128x4'"):
        P.to_scale_layout(scales, "blocked")
