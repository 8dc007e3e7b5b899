"""Input dtypes of the vectors and the bit-level helpers the case families are built with.

Every case is built from exact values (float64 holds every grid value, midpoint and threshold of the element
formats) and kept only where the input dtype holds it exactly; neighbours "± 1 ulp" are taken on the input
dtype's own bit patterns, so a bfloat16 vector probes bfloat16 ulps. Random cases come from fp4ref's Philox
stream with a fixed seed and a subsequence derived from the vector's name: no global random state anywhere.
"""
from __future__ import annotations

import zlib

import ml_dtypes
import numpy as np

from fp4ref.random import philox4x32_10

__all__ = ["finfo", "DTYPES", "DTYPE_NAMES", "UINT", "dtype_of", "bits_of", "from_bits", "next_up", "next_down",
           "exact_in", "wide", "unique_stable", "philox_words", "SEED"]

# Short tags used in vector names → the input dtype.
DTYPES = {"f64": np.dtype(np.float64), "f32": np.dtype(np.float32), "f16": np.dtype(np.float16),
          "bf16": np.dtype(ml_dtypes.bfloat16)}
DTYPE_NAMES = {"f64": "float64", "f32": "float32", "f16": "float16", "bf16": "bfloat16"}
UINT = {2: np.dtype(np.uint16), 4: np.dtype(np.uint32), 8: np.dtype(np.uint64)}

# The suite's one seed (Philox key); each vector draws from its own subsequence (crc32 of its name).
SEED = 0x4650345245460001


def dtype_of(tag: str) -> np.dtype:
    try:
        return DTYPES[tag]
    except KeyError:
        raise ValueError(f"unknown input dtype tag {tag!r}; valid: {', '.join(DTYPES)}") from None


def finfo(dt: np.dtype):
    """numpy's finfo, or ml_dtypes' for bfloat16 (numpy's refuses it)."""
    return ml_dtypes.finfo(dt) if dt == DTYPES["bf16"] else np.finfo(dt)


def wide(a: np.ndarray) -> np.ndarray:
    """a as float64 (exact; signaling NaNs come back quiet, without a warning)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(a).astype(np.float64)


def bits_of(a: np.ndarray) -> np.ndarray:
    """The bit patterns of a float array as unsigned integers of the same width."""
    a = np.ascontiguousarray(a)
    return a.view(UINT[a.dtype.itemsize])


def from_bits(bits, dt: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(bits, UINT[dt.itemsize])).view(dt)


def _sign_mag(a: np.ndarray):
    b = bits_of(a).astype(np.uint64)
    sign = np.uint64(1) << np.uint64(8 * a.dtype.itemsize - 1)
    return b & sign, b & ~sign, sign


def next_up(a: np.ndarray) -> np.ndarray:
    """The next larger value of a's dtype (finite inputs; +max goes to +Inf, -0 and +0 to the smallest
    positive subnormal), on the bit patterns so that bfloat16 is handled like every other dtype."""
    s, m, sign = _sign_mag(a)
    out = np.where(s == 0, m + np.uint64(1), np.where(m == 0, np.uint64(1), sign | (m - np.uint64(1))))
    return from_bits(out.astype(UINT[a.dtype.itemsize]), a.dtype)


def next_down(a: np.ndarray) -> np.ndarray:
    """The next smaller value of a's dtype (see next_up)."""
    s, m, sign = _sign_mag(a)
    out = np.where(s != 0, sign | (m + np.uint64(1)), np.where(m == 0, sign | np.uint64(1), m - np.uint64(1)))
    return from_bits(out.astype(UINT[a.dtype.itemsize]), a.dtype)


def exact_in(values, dt: np.dtype) -> np.ndarray:
    """The finite float64 ``values`` that ``dt`` holds exactly, converted to ``dt`` (order kept)."""
    v = np.asarray(values, np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    with np.errstate(over="ignore"):
        c = v.astype(dt)
    keep = np.isfinite(c.astype(np.float64)) & (c.astype(np.float64) == v)
    # -0.0 survives the comparison; keep the sign as built
    return c[keep]


def unique_stable(a: np.ndarray) -> np.ndarray:
    """``a`` without repeated bit patterns, first occurrences in their original order."""
    _, idx = np.unique(bits_of(a), return_index=True)
    return a[np.sort(idx)]


def philox_words(name: str, count: int) -> np.ndarray:
    """``count`` uint32 Philox4x32-10 words for the vector or family called ``name`` (subsequence crc32(name))."""
    return philox4x32_10(SEED, zlib.crc32(name.encode()), 0, count)
