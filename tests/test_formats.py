"""Format descriptions: the numbers of docs/semantics.md, and the decode table against the exact bit fields."""
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from fp4ref import formats as F

EXPECTED = {  # name: (bits, max, min normal, min subnormal)
    "e2m1": (4, 6, 1, 0.5), "e2m3": (6, 7.5, 1, 0.125), "e3m2": (6, 28, 0.25, 0.0625),
    "e4m3": (8, 448, 2 ** -6, 2 ** -9), "e5m2": (8, 57344, 2 ** -14, 2 ** -16), "e8m0": (8, 2 ** 127, 2 ** -127, None),
    "ue4m3": (8, 448, 2 ** -6, 2 ** -9), "ue5m3-61440": (8, 61440, 2 ** -14, 2 ** -17),
    "ue5m3-114688": (8, 114688, 2 ** -14, 2 ** -17), "ue5m3-122880": (8, 122880, 2 ** -14, 2 ** -17),
    "mxint8": (8, 127 / 64, 1 / 64, 1 / 64), "e1m2": (4, 3.5, 2, 0.5), "int4": (4, 7, 1, 1),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_format_numbers_match_the_published_tables(name):
    f = F.get(name)
    bits, mx, mn, sub = EXPECTED[name]
    assert (f.bits, f.max, f.min_normal, f.min_subnormal) == (bits, mx, mn, sub)


def test_e2m1_values_are_the_ocp_grid():
    assert list(F.get("e2m1").values[:8]) == [0, 0.5, 1, 1.5, 2, 3, 4, 6]


def test_ocp_emax_of_elements():
    # OCP MX v1.0 Table: emax_elem used by the FLOOR scale rule
    assert {n: F.get(n).emax for n in ("e4m3", "e5m2", "e3m2", "e2m3", "e2m1", "mxint8")} == \
        {"e4m3": 8, "e5m2": 15, "e3m2": 4, "e2m3": 2, "e2m1": 2, "mxint8": 0}


@pytest.mark.parametrize("fmt", F.all_formats(), ids=lambda f: f.name)
def test_decode_table_equals_exact_bit_field_values(fmt):
    for c in range(fmt.n_codes):
        v = fmt.exact_value(c)
        t = fmt.values[c]
        if v is None:
            assert np.isnan(t) or np.isinf(t)
        else:
            assert Fraction(float(t)) == v


@pytest.mark.parametrize("name,mldt", [("e2m1", ml_dtypes.float4_e2m1fn), ("e2m3", ml_dtypes.float6_e2m3fn),
                                       ("e3m2", ml_dtypes.float6_e3m2fn), ("e4m3", ml_dtypes.float8_e4m3fn),
                                       ("e5m2", ml_dtypes.float8_e5m2), ("e8m0", ml_dtypes.float8_e8m0fnu)])
def test_decode_table_equals_ml_dtypes_for_every_code(name, mldt):
    f = F.get(name)
    ref = np.arange(f.n_codes, dtype=np.uint8).view(mldt).astype(np.float64)
    np.testing.assert_array_equal(f.values, ref)


def test_ue5m3_variants_differ_only_in_their_top_codes():
    a, b, c = (F.get(n) for n in ("ue5m3-61440", "ue5m3-114688", "ue5m3-122880"))
    np.testing.assert_array_equal(a.values[:0xF8], c.values[:0xF8])
    assert np.isinf(a.values[0xF8]) and np.isnan(a.values[0xF9:]).all()
    assert b.values[0xFE] == 114688 and np.isnan(b.values[0xFF])
    assert c.values[0xFF] == 122880 and not np.isnan(c.values).any()


def test_mxint8_minus_two_is_an_option():
    assert F.get("mxint8").exact_value(0x80) is None
    assert F.get("mxint8-m2").exact_value(0x80) == -2


def test_unknown_format_lists_the_valid_names():
    with pytest.raises(ValueError, match="valid formats: e2m1"):
        F.get("e2m9")


def test_ue4m3_has_128_codes():
    f = F.get("ue4m3")
    assert f.n_codes == 128
    with pytest.raises(ValueError, match="out of range"):
        f.exact_value(0x80)
