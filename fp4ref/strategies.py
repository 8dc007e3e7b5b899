"""Hypothesis strategies that produce adversarial inputs for a format or a recipe.

Random floats almost never hit the inputs where implementations differ: exact ties between two codes, the last
value that still rounds to max, a block amax one ulp below a power of two, a block whose amax / max is a power of
two. These strategies draw mostly from such points (and their neighbours one input-dtype ulp away), mixed with
arbitrary values, so that a property test of a kernel against :mod:`fp4ref.testing` meets them early:

    from hypothesis import given
    from fp4ref import strategies as fst
    from fp4ref.testing import assert_quantized_equal

    @given(fst.blocks("ocp-mxfp4", shape=(4, 64)))
    def test_my_kernel(x):
        assert_quantized_equal(my_kernel(x), x, "ocp-mxfp4")

- :func:`values`: one scalar for an element cast into a format.
- :func:`arrays`: an array of such scalars.
- :func:`blocks`: an array for a block recipe, block by block: an amax at a scale boundary of the recipe's
  scale rule, and elements at that block's element-grid ties and boundaries.

Inputs come as numpy arrays of ``dtype`` (float64, float32, float16 or ml_dtypes.bfloat16).
"""
from __future__ import annotations

import math

import ml_dtypes
import numpy as np
from hypothesis import strategies as st

from . import formats as _formats

__all__ = ["values", "arrays", "blocks", "boundary_points"]

_DTYPES = {np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)}
_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in _DTYPES:
        raise ValueError(f"dtype must be float64, float32, float16 or bfloat16, got {dt}")
    return dt


def _neighbours(points: np.ndarray, dt: np.dtype) -> np.ndarray:
    """The points rounded into dt and their neighbours one dt ulp either side (finite, both signs)."""
    with np.errstate(over="ignore", invalid="ignore"):
        a = np.abs(points.astype(np.float64)).astype(dt)
    a = a[np.isfinite(a.astype(np.float64))]
    bits = a.view(_UINT[dt.itemsize]).astype(np.int64)
    near = np.concatenate([bits, bits + 1, np.maximum(bits - 1, 0)]).astype(_UINT[dt.itemsize]).view(dt)
    near = near[np.isfinite(near.astype(np.float64))]
    return np.unique(np.concatenate([near, -near]).astype(np.float64))


def boundary_points(fmt, dtype=np.float32) -> np.ndarray:
    """The finite inputs of ``dtype`` where a cast into ``fmt`` is decided (float64 array, both signs): every
    value of the format, every midpoint of two neighbours (the exact ties), the overflow boundary max + half an
    ulp and twice max, half the smallest positive value, each with its neighbours one dtype ulp away."""
    f = _formats.get(fmt)
    dt = _dtype(dtype)
    v = np.unique(np.abs(f.values[np.isfinite(f.values)]))
    mids = (v[:-1] + v[1:]) / 2
    top = v[-1] + (v[-1] - v[-2]) / 2 if v.size > 1 else v[-1]
    small = v[v > 0][0] / 2
    pts = np.concatenate([v, mids, [top, 2 * v[-1], small]])
    return _neighbours(pts, dt)


def _specials(dt) -> list:
    info_max = float(np.finfo(dt).max) if dt != np.dtype(ml_dtypes.bfloat16) else float(ml_dtypes.finfo(dt).max)
    tiny = float(np.finfo(dt).smallest_subnormal) if dt != np.dtype(ml_dtypes.bfloat16) else \
        float(ml_dtypes.finfo(dt).smallest_subnormal)
    return [math.nan, -math.nan, math.inf, -math.inf, 0.0, -0.0, info_max, -info_max, tiny, -tiny]


def _scalar(dt: np.dtype, pts: np.ndarray, specials: bool):
    """A strategy of float64 scalars that are exact values of dt: mostly the points, some arbitrary values."""
    width = {8: 64, 4: 32, 2: 16}[dt.itemsize] if dt != np.dtype(ml_dtypes.bfloat16) else 32
    rnd = st.floats(width=width, allow_nan=specials, allow_infinity=specials)
    if dt == np.dtype(ml_dtypes.bfloat16):
        rnd = rnd.map(lambda v: float(np.float32(v).astype(dt)))
    table = tuple(float(p) for p in pts)
    point = st.integers(0, len(table) - 1).map(table.__getitem__)   # (a small repr, unlike sampled_from)
    choices = [point, point, point, rnd]
    if specials:
        choices.append(st.sampled_from(_specials(dt)))
    return st.one_of(*choices)


def values(fmt, dtype=np.float32, *, specials: bool = True):
    """Scalars (0-d arrays of ``dtype``) that stress an element cast into ``fmt``: :func:`boundary_points`,
    arbitrary values, and with ``specials`` also ±0, ±Inf, NaN of both signs and the dtype's extremes."""
    dt = _dtype(dtype)
    return _scalar(dt, boundary_points(fmt, dt), specials).map(lambda v: np.asarray(v).astype(dt))


def arrays(fmt, shape, dtype=np.float32, *, specials: bool = True):
    """Arrays of ``shape`` and ``dtype`` whose elements are drawn as :func:`values`."""
    dt = _dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    n = math.prod(shape)
    el = _scalar(dt, boundary_points(fmt, dt), specials)
    return st.lists(el, min_size=n, max_size=n).map(lambda vs: np.asarray(vs, np.float64).astype(dt).reshape(shape))


# --- block recipes ---------------------------------------------------------------------------------------------
def _amax_candidates(rec, dt) -> np.ndarray:
    """Block amaxes at the recipe's scale boundaries: powers of two, max·2^k (amax / max a power of two, where
    RCEIL moves), the floor rule's saturation zone (2^(emax+1)·2^k, between max and the next power of two),
    and max·(a scale-format value or midpoint) for formats with mantissa bits, each across binades."""
    ef = _formats.get(rec.elem)
    m = ef.max
    ks = np.arange(-12, 13)
    pts = [2.0 ** ks, m * 2.0 ** ks, 2.0 ** (ef.emax + 1) * 2.0 ** ks * 0.99]
    if rec.scale_fmt not in ("fp32",):
        sf = _formats.get(rec.scale_fmt)
        sv = np.unique(np.abs(sf.values[np.isfinite(sf.values) & (sf.values > 0)]))
        if sf.mbits > 0:
            mids = (sv[:-1] + sv[1:]) / 2
            pts += [m * sv[::7], m * mids[::7], m * sv[:4], m * sv[-4:]]
    return _neighbours(np.concatenate([np.ravel(p) for p in pts]), dt)


def _element_factors(ef) -> np.ndarray:
    """Positions inside a block relative to its scale: the element grid, its midpoints, and just beyond max."""
    v = np.unique(np.abs(ef.values[np.isfinite(ef.values)]))
    mids = (v[:-1] + v[1:]) / 2
    return np.concatenate([v, mids, [v[-1] + (v[-1] - v[-2]) / 2 if v.size > 1 else v[-1]]])


@st.composite
def _block(draw, n, dt, amaxes, factors, emax, m, specials):
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return np.zeros(n, np.float64) * draw(st.sampled_from([1.0, -1.0]))      # an all-zero block (±0)
    pos = amaxes[amaxes > 0]
    amax = float(pos[draw(st.integers(0, pos.size - 1))])
    # the two scales a block with this amax may get: amax / max (ratio rules) and 2^(floor(log2 amax) - emax)
    s_ratio = amax / m
    s_floor = 2.0 ** (math.frexp(amax)[1] - 1 - emax)
    s = draw(st.sampled_from([s_ratio, s_floor]))
    f = factors[draw(st.lists(st.integers(0, factors.size - 1), min_size=n, max_size=n))]
    signs = draw(st.lists(st.sampled_from([1.0, -1.0]), min_size=n, max_size=n))
    x = np.array(f) * s * np.array(signs)
    with np.errstate(over="ignore"):
        x = np.where(np.abs(x) > amax, np.sign(x) * amax, x)
    x[draw(st.integers(0, n - 1))] = amax * draw(st.sampled_from([1.0, -1.0]))
    if draw(st.integers(0, 3)) == 0:   # some elements one input ulp off their tie
        bump = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        xd = x.astype(dt)
        u = xd.view(_UINT[dt.itemsize]).astype(np.int64) + np.where(bump, 1, 0)
        x = u.astype(_UINT[dt.itemsize]).view(dt).astype(np.float64)
    if specials and kind == 1:
        x[draw(st.integers(0, n - 1))] = draw(st.sampled_from([math.nan, math.inf, -math.inf, -math.nan]))
    if kind == 2:
        x[draw(st.integers(0, n - 1))] = -0.0
    return x


def blocks(recipe, shape=None, dtype=np.float32, *, specials: bool = True):
    """Arrays for a block recipe (blocks along the last axis, or the recipe's 2-D tiles): each block gets an amax
    from the recipe's scale boundaries, the block's elements sit at ties and boundaries of the element grid
    under the block's candidate scales (amax/max and the FLOOR scale), some one ulp off; some blocks are all
    zero, hold a -0.0, or (``specials``) a NaN or ±Inf. ``shape``: default 4 rows of 4 blocks (or 2x2 tiles)."""
    from . import recipes as _recipes
    rec = _recipes.get(recipe)
    dt = _dtype(dtype)
    ef = _formats.get(rec.elem)
    two_d = rec.blocks == "2d"
    bs = rec.block if not two_d else rec.block
    if shape is None:
        shape = (2 * bs[0], 2 * bs[1]) if two_d else (4, 4 * int(bs))
    shape = tuple(shape)
    if two_d:
        if len(shape) < 2 or shape[-2] % bs[0] or shape[-1] % bs[1]:
            raise ValueError(f"shape {shape} is not a whole number of {bs[0]}x{bs[1]} tiles")
        n = bs[0] * bs[1]
    else:
        if shape[-1] % int(bs):
            raise ValueError(f"shape {shape}: the last axis is not a whole number of blocks of {bs}")
        n = int(bs)
    count = math.prod(shape) // n
    amaxes = _amax_candidates(rec, dt)
    factors = _element_factors(ef)
    one = _block(n, dt, amaxes, factors, ef.emax, ef.max, specials)

    def assemble(bl):
        with np.errstate(over="ignore", invalid="ignore"):
            flat = np.stack(bl).astype(dt)
        if not two_d:
            return flat.reshape(shape)
        lead, (R, C) = shape[:-2], shape[-2:]
        t = flat.reshape(*lead, R // bs[0], C // bs[1], bs[0], bs[1])
        nd = len(lead)
        order = tuple(range(nd)) + (nd, nd + 2, nd + 1, nd + 3)
        return np.ascontiguousarray(t.transpose(order)).reshape(shape)
    return st.lists(one, min_size=count, max_size=count).map(assemble)
