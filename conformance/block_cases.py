"""Block-quantization families and vectors: one ``scale`` vector and one ``block`` vector per recipe.

``scale/<recipe>-<dtype>``: the scale decision alone, for every power of two. Each case is a one-spike block
(the spike at the block's first position, every other element 0; a 2-D recipe's spike at its tile's top-left
corner) whose amax sweeps 2^k, the input's largest value below 2^k and the element max times 2^k with its
neighbours, for every k the input dtype holds, plus the extremes. The file stores ``amax`` (the spike, signed),
the expected ``scale`` code and the spike's element ``code``; recipes with a tensor scale quantize these cases
with a fixed ``global_amax`` (``options.global_amax``) so that the cases are independent of each other.

``block/<recipe>-<dtype>``: whole tensors, one per family (its own tensor amax): ties of the element grid at a
few scales, zero blocks, one-spike blocks, NaN and Inf blocks, tiny blocks next to a large one, ragged lengths
(with the family's ``pad`` override), 2-D tiles, Hadamard spikes and near-ties (transform recipes) and random
blocks. Per family the file stores ``<family>.x``, ``.codes`` (x's shape), ``.scales`` (the recipe's scale
layout), ``.global_scale`` (recipes with a tensor scale) and ``.decisions`` (one bitmask per block, the blocks
in row-major tile order).

Expected outputs come from :func:`fp4ref.quantize.quantize`. The block decisions are computed from the inputs
and the expected scales with exact arithmetic (:mod:`.decisions`): the amax class, the scale code class and the
class of every element's exact quotient by its scale.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from fp4ref import formats as _formats
from fp4ref import hadamard as _H
from fp4ref import recipes as _recipes
from fp4ref.quantize import quantize

from . import decisions as D
from .catalogue import Family, Vector, check_family, register
from .inputs import DTYPE_NAMES, dtype_of, exact_in, finfo, next_down, next_up, philox_words, wide

__all__ = ["RecipeTarget", "build_scale_vector", "build_block_vector", "global_amax_of"]


@dataclass(frozen=True)
class RecipeTarget:
    """kind: "scale" or "block"; recipe: a registered recipe name; dtype: input dtype tag; families: names to
    build (None: every family that applies)."""
    kind: str
    recipe: str
    dtype: str = "f32"
    families: tuple | None = None

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.recipe}-{self.dtype}"


def _geometry(rec):
    """(tile rows, tile cols) of the recipe's blocks."""
    if rec.blocks == "2d":
        return int(rec.block[0]), int(rec.block[1])
    return 1, int(rec.block)


def _layout(blocks: list[np.ndarray], rec) -> np.ndarray:
    """Blocks (each tr*tc values, row-major inside a tile) as the 2-D tensor the recipe blocks that way: one
    block per row for 1-D/flat blocks, tiles stacked vertically for 2-D."""
    tr, tc = _geometry(rec)
    arr = np.stack(blocks)
    if rec.blocks == "2d":
        return arr.reshape(len(blocks) * tr, tc)
    return arr.reshape(len(blocks), tc)


def global_amax_of(rec) -> float | None:
    """The fixed tensor amax of scale vectors: the one whose tensor factor is 1 (NVFP4: 6 * 448 = 2688)."""
    if rec.tensor_scale is None or rec.global_scale is not None:
        return None
    if rec.tensor_scale.startswith("nvfp4"):
        return float(_formats.get(rec.elem).max * _formats.get(rec.scale_fmt).max)
    return 1.0


def _pow2_range(dt):
    fi = finfo(dt)
    lo = int(np.log2(float(fi.smallest_subnormal)))
    hi = int(np.floor(np.log2(float(fi.max))))
    return lo, hi


# --- exact quotients --------------------------------------------------------------------------------------------
def _scale_fraction(code, scale_fmt):
    if scale_fmt == "fp32":
        v = float(code)
        return Fraction(v) if np.isfinite(v) else None
    return _formats.get(scale_fmt).exact_value(int(code))


def _global_decode(q) -> Fraction | None:
    """The tensor factor the element quotient divides by (1 without a tensor scale)."""
    if q.global_scale is None:
        return Fraction(1)
    g = float(q.global_scale)
    if not np.isfinite(g) or g == 0:
        return None
    return 1 / Fraction(g) if q.global_scale_convention == "encode" else Fraction(g)


def _quotients(xv: np.ndarray, svals: list, gdec, role: str):
    """(float64 quotient, exact?) of every element: x / (s * g) (decode-role scales) or x * s / g (encode)."""
    q = np.full(xv.size, np.nan)
    ex = np.zeros(xv.size, bool)
    flat = np.asarray(xv, np.float64).reshape(-1)
    for i, (v, s) in enumerate(zip(flat, svals)):
        if v == 0 or not np.isfinite(v) or s is None or s == 0 or gdec is None:
            continue
        f = Fraction(v) * s / gdec if role == "encode" else Fraction(v) / (s * gdec)
        q[i] = float(f)
        ex[i] = Fraction(q[i]) == f
    return q, ex


def _transform(x: np.ndarray, rec) -> np.ndarray:
    """The recipe's Hadamard transform of x (what the blocks are cut from), as fp4ref.quantize applies it."""
    if rec.transform is None:
        return x
    _, size, signs, out_dtype, mode = rec.transform
    out = x.dtype if out_dtype == "input" else {"float32": np.float32, "float16": np.float16,
                                                "bfloat16": dtype_of("bf16")}[out_dtype]
    sg = None if signs is None else np.asarray(signs)
    if rec.blocks == "flat":
        return _H.hadamard(x.reshape(-1, size), size, -1, sg, out_dtype=out, mode=mode).reshape(x.shape)
    return _H.hadamard(x, size, -1, sg, out_dtype=out, mode=mode)


def _tiles(a: np.ndarray, rec) -> np.ndarray:
    """A 2-D array cut into the recipe's blocks: (n_blocks, tr*tc) in row-major tile order, ragged edges padded
    with NaN placeholders (positions that are not elements)."""
    tr, tc = _geometry(rec)
    if rec.blocks == "flat":
        return a.reshape(-1, tc)
    R, C = a.shape
    nr, nc = -(-R // tr), -(-C // tc)
    full = np.full((nr * tr, nc * tc), np.nan, np.float64 if a.dtype.kind == "f" or a.dtype == dtype_of("bf16")
                   else a.dtype)
    full[:R, :C] = wide(a) if a.dtype.kind == "f" or a.dtype == dtype_of("bf16") else a
    return full.reshape(nr, tr, nc, tc).transpose(0, 2, 1, 3).reshape(nr * nc, tr * tc)


def _block_scales(q, rec) -> np.ndarray:
    """The scale of every block, in row-major tile order (TE's per-row 2-D scales read once per tile)."""
    s = np.asarray(q.scales)
    if rec.blocks == "2d" and rec.tile_scales == "rows":
        s = s[:: rec.block[0], :]
    return s.reshape(-1)


def _block_decisions(x: np.ndarray, q, rec, dt) -> np.ndarray:
    """Decision bitmask of every block of one family tensor."""
    xt = _transform(x, rec)
    blocks = _tiles(xt, rec)                                            # (n_blocks, elements), NaN = padding
    present = ~np.isnan(_tiles(np.zeros(x.shape, np.float32), rec))   # element positions (not padding)
    raw = _tiles(x, rec)
    scales = _block_scales(q, rec)
    nb = blocks.shape[0]
    out = np.zeros(nb, np.uint32)
    elems = np.where(present, blocks, 0.0)
    has_nan = (present & np.isnan(blocks)).any(axis=1)
    has_inf = (present & np.isinf(blocks)).any(axis=1)
    with np.errstate(invalid="ignore"):
        amax = np.where(has_nan, np.nan, np.max(np.abs(np.where(present, blocks, 0.0)), axis=1))
    fin = np.isfinite(amax) & (amax > 0)
    if fin.any():
        out[fin] |= D.amax_bits(amax[fin], dt if rec.transform is None else xt.dtype, rec.elem)
    out |= D.scale_bits(scales, rec.scale_fmt)
    bit = D.block_bit
    out[((elems == 0) | ~present).all(axis=1) & ~has_nan] |= bit("zero-block")
    out[(present & (blocks == 0) & np.signbit(elems)).any(axis=1)] |= bit("neg-zero")
    out[has_nan] |= bit("nan-block")
    out[has_inf & ~has_nan] |= bit("inf-block")
    out[(present & (raw != 0)).sum(axis=1) == 1] |= bit("spike")  # (NaN != 0: a NaN counts as nonzero)
    out[~present.all(axis=1)] |= bit("padded")
    if rec.blocks == "2d":
        out |= bit("tile-2d")
    if rec.transform is not None:
        out |= bit("transformed")
    # exact quotients of the nonzero finite elements by their block's scale (and the tensor factor)
    gdec = _global_decode(q)
    bi, ei = np.nonzero(present & np.isfinite(blocks) & (blocks != 0))
    svals = {}
    sq = []
    for i in bi:
        if i not in svals:
            svals[i] = _scale_fraction(scales[i], rec.scale_fmt)
        sq.append(svals[i])
    qv, ex = _quotients(blocks[bi, ei], sq, gdec, rec.scale_role)
    eb = D.quotient_bits(qv, ex, rec.elem)
    np.bitwise_or.at(out, bi, eb)
    return out


# --- the scale families ------------------------------------------------------------------------------------------
def _scale_pow2(rec, dt, level):
    lo, hi = _pow2_range(dt)
    k = np.arange(lo, hi + 1)
    v = np.ldexp(1.0, k) * np.where(k % 2 == 0, 1.0, -1.0)  # alternate signs: the amax is |x|
    return exact_in(v, dt), ("amax-pow2",)


def _scale_below_pow2(rec, dt, level):
    lo, hi = _pow2_range(dt)
    k = np.arange(lo + 1, hi + 1)
    v = next_down(np.ldexp(1.0, k).astype(dt))
    top = np.array([float(finfo(dt).max)], dt)  # the value below 2^(hi+1)
    return np.concatenate([v, top]), ("amax-below-pow2",)


def _scale_max_multiple(rec, dt, level):
    top = float(_formats.get(rec.elem).max)
    lo, hi = _pow2_range(dt)
    v = exact_in(top * np.ldexp(1.0, np.arange(lo, hi + 1)), dt)
    # the value above the threshold is the decision (a float32 amax/max may round down onto 2^k: D-21); the
    # one below rounds like the threshold itself under every rule
    x = np.concatenate([v, next_up(v)])
    x = x[np.isfinite(wide(x)) & (wide(x) > 0)]
    return x, ("amax-max-multiple", "amax-near-max-multiple")


def _scale_extremes(rec, dt, level):
    fi = finfo(dt)
    tiny, small, big = float(fi.smallest_subnormal), float(fi.smallest_normal), float(fi.max)
    v = np.array([big, -big, tiny, 3 * tiny, small, 1.5 * small, 0.0, -0.0, np.inf, -np.inf, np.nan, 1.0])
    x = v.astype(dt)
    x = np.concatenate([x, next_down(np.array([small], dt))])
    return x, ("zero-block", "nan-block", "inf-block", "amax-subnormal")


_SCALE_FAMS = [
    ("pow2", ("amax-pow2",), _scale_pow2, "one-spike blocks with amax 2^k for every k of the input dtype"),
    ("below-pow2", ("amax-below-pow2",), _scale_below_pow2,
     "one-spike blocks with amax the largest input value below 2^k, every k"),
    ("max-multiple", ("amax-max-multiple", "amax-near-max-multiple"), _scale_max_multiple,
     "one-spike blocks with amax = element max * 2^k and the next input value above it, every k (RCEIL)"),
    ("extremes", ("zero-block", "nan-block", "inf-block", "amax-subnormal"), _scale_extremes,
     "one-spike blocks at the input dtype's max, smallest subnormal and normal, ±0, ±Inf, NaN"),
]
for _n, _d, _b, _doc in _SCALE_FAMS:
    register(Family(kind="scale", name=_n, decisions=_d, doc=_doc, build=_b))


def _scale_tensor(amax: np.ndarray, rec) -> np.ndarray:
    tr, tc = _geometry(rec)
    x = np.zeros((amax.size * tr, tc), amax.dtype)
    x[::tr, 0] = amax
    return x


def build_scale_vector(t: RecipeTarget, level: int) -> Vector:
    rec = _recipes.get(t.recipe)
    dt = dtype_of(t.dtype)
    tr, _ = _geometry(rec)
    gamax = global_amax_of(rec)
    amaxs, fam_idx, names, targets = [], [], [], {}
    from .catalogue import families
    for fam in families("scale"):
        if level not in fam.levels or (t.families is not None and fam.name not in t.families):
            continue
        built = fam.build(rec, dt, level)
        if built is None:
            continue
        a, tg = built
        a = np.asarray(a, dt)
        targets[fam.name] = tg
        fam_idx.append(np.full(a.size, len(names), np.uint8))
        names.append(fam.name)
        amaxs.append(a)
    amax = np.concatenate(amaxs)
    family = np.concatenate(fam_idx)
    x = _scale_tensor(amax, rec)
    with np.errstate(all="ignore"):
        q = quantize(x, rec, global_amax=gamax)
    scales = _block_scales(q, rec)
    codes = np.asarray(q.codes)[::tr, 0]
    masks = _block_decisions(x, q, rec, dt)
    coverage = {}
    for k, fam in enumerate(names):
        sel = family == k
        reached = {d: int(((masks[sel] & D.block_bit(d)) != 0).sum()) for d in D.BLOCK_DECISIONS}
        reached = {d: c for d, c in reached.items() if c}
        check_family(t.name, fam, {"scale": scales[sel]}, reached, targets[fam])
        coverage[fam] = {"cases": int(sel.sum()), "targets": list(targets[fam]), "reached": reached}
    arrays = {"amax": amax, "family": family, "decisions": masks, "scale": scales, "code": codes}
    if q.global_scale is not None:
        arrays["global_scale"] = np.asarray([q.global_scale], np.float32)
    options = _recipe_options(rec, t, gamax, q)
    legend = {"family": "index into families", "decisions": {"bits": list(D.BLOCK_DECISIONS)},
              "amax": "the spike of a one-spike block (other elements 0; 2-D tiles: top-left corner)"}
    return Vector(name=t.name, kind="scale", options=options, families=tuple(names), arrays=arrays,
                  coverage=coverage, legend=legend)


def _recipe_options(rec, t, gamax, q) -> dict:
    tr, tc = _geometry(rec)
    sf = rec.scale_fmt
    return {"recipe": rec.name, "recipe_options": rec.options(), "input_dtype": DTYPE_NAMES[t.dtype],
            "elem": rec.elem, "elem_bits": _formats.get(rec.elem).bits, "scale_fmt": sf,
            "scale_bits": 32 if sf == "fp32" else 8, "tile": [tr, tc], "layout": rec.blocks,
            "global_amax": gamax, "global_scale_convention": q.global_scale_convention}


# --- the block families ------------------------------------------------------------------------------------------
def _elem_grid(rec):
    g, beyond = D.grid(rec.elem)
    return [float(v) for v in g], float(beyond)


def _fill(values: np.ndarray, anchor: float, n: int, dt) -> list[np.ndarray]:
    """Blocks of n values: the anchor first (it is the block amax), then ``values`` in order."""
    out = []
    per = n - 1
    for i in range(0, max(len(values), 1), per):
        chunk = list(values[i:i + per])
        chunk += [0.0] * (per - len(chunk))
        out.append(np.array([anchor] + chunk, np.float64).astype(dt))
    return out


def _anchor_block(rec, dt, n):
    """For tensor-scale recipes: a block whose amax makes the tensor factor 1 (2688 for NVFP4)."""
    g = global_amax_of(rec)
    if g is None or rec.tensor_scale in ("divisor", "amax"):
        return []
    b = np.zeros(n)
    b[0] = g
    return [b.astype(dt)]


def _blk_element_ties(rec, dt, level):
    if rec.transform is not None:
        return None  # the transform moves the values off the grid: rht-near-tie is the tie family there
    tr, tc = _geometry(rec)
    n = tr * tc
    g, _ = _elem_grid(rec)
    top = g[-1]
    mids = [(a + b) / 2 for a, b in zip(g, g[1:])]
    ks = (0, -3, 4) if level == 2 else ((0, -3) if _formats.get(rec.elem).bits < 8 else (0,))
    blocks = _anchor_block(rec, dt, n)
    for k in ks:
        s = 2.0 ** k
        vals = [m * s for m in mids] + [-m * s for m in mids]
        v = exact_in(np.array(vals), dt)
        blocks += _fill(wide(v), top * s, n, dt)
    # the simulator's tensor scaling divides by the largest block amax: a global amax of 1 keeps the ties
    ov = {"global_amax": 1.0} if rec.tensor_scale == "amax" and rec.global_scale is None else {}
    return _layout(blocks, rec), ov, ("elem-tie",)


def _blk_zero(rec, dt, level):
    tr, tc = _geometry(rec)
    n = tr * tc
    tiny = float(finfo(dt).smallest_subnormal)
    alt = np.where(np.arange(n) % 2 == 0, 0.0, -0.0)
    one = np.zeros(n)
    one[n // 2] = tiny
    anchor = np.zeros(n)
    anchor[: 4] = [1.0, -0.5, 0.25, 3.0]  # a finite block: the outputs are not all one code (MXINT8 has no -0)
    blocks = [np.zeros(n), -np.zeros(n), alt, one, -one, anchor]
    # a transform makes -0 into +0 before the blocks are cut: the sign decision is then not reached
    targets = ("zero-block",) if rec.transform is not None else ("zero-block", "neg-zero")
    return _layout([b.astype(dt) for b in blocks], rec), {}, targets


def _blk_spike(rec, dt, level):
    tr, tc = _geometry(rec)
    n = tr * tc
    pos = range(n) if level == 2 else sorted({0, n // 2, n - 1} if tr > 1 else {0, 1, n // 2 - 1, n // 2, n - 2,
                                                                                 n - 1})
    top = _elem_grid(rec)[0][-1]
    blocks = _anchor_block(rec, dt, n)
    for j, p in enumerate(pos):
        b = np.zeros(n)
        b[p] = (1 if j % 2 == 0 else -1) * top * (1 + (p % 8) / 8) * 2.0 ** (p % 7 - 3)
        blocks.append(b.astype(dt))
    return _layout(blocks, rec), {}, ("spike",)


def _values(n: int, name: str, dt) -> np.ndarray:
    """n deterministic moderate values (Philox): ±(1 + m) * 2^e with e in [-4, 3]."""
    w = philox_words(name, 2 * n).astype(np.int64).reshape(n, 2)
    mant = 1 + (w[:, 0] & 0xFFFF) / 65536.0
    e = (w[:, 1] & 7) - 4
    sign = np.where((w[:, 1] >> 3) & 1, -1.0, 1.0)
    return (sign * mant * 2.0 ** e).astype(dt)


def _local(rec) -> dict:
    """Overrides keeping special blocks local: tensor-scale recipes get a fixed global amax (a NaN or Inf tensor
    amax would give every block one code, a family the generator refuses)."""
    g = global_amax_of(rec)
    return {} if g is None else {"global_amax": g}


def _blk_nan(rec, dt, level, name="nan"):
    tr, tc = _geometry(rec)
    n = tr * tc
    base = wide(_values(3 * n, f"{name}/{rec.name}", dt)).reshape(3, n)
    b0, b1 = base[0].copy(), base[1].copy()
    b0[3] = np.nan
    b1[n - 1] = -np.nan
    return _layout([b.astype(dt) for b in (b0, b1, base[2])], rec), _local(rec), ("nan-block",)


def _blk_inf(rec, dt, level):
    tr, tc = _geometry(rec)
    n = tr * tc
    base = wide(_values(4 * n, f"inf/{rec.name}", dt)).reshape(4, n)
    base[0][2] = np.inf
    base[1][n - 2] = -np.inf
    base[2][0] = float(finfo(dt).max)
    return _layout([b.astype(dt) for b in base], rec), _local(rec), ("inf-block",)


def _blk_tiny(rec, dt, level):
    tr, tc = _geometry(rec)
    n = tr * tc
    top = _elem_grid(rec)[0][-1]
    sf = rec.scale_fmt
    if sf == "fp32" or rec.scale_rule == "quest":
        return None  # no scale format bottom to reach (QuEST's scale follows the block's deviation)
    smin = float(min(v for v in _formats.get(sf).values if np.isfinite(v) and v > 0))
    smax = float(_formats.get(sf).max)
    big = np.zeros(n)
    big[0] = top * min(smax, 2.0 ** 16)
    g = global_amax_of(rec)
    if g is not None and rec.tensor_scale.startswith("nvfp4"):
        big[0] = g  # tensor factor 1: the tiny blocks' scales land at the scale format's bottom
    blocks = [big]
    fracs = np.array([1.0, 0.75, 0.5, 0.375, 0.25])
    for j in (-1, 0, 1, 2, 3, 4, 6, 10):
        a = top * smin * 2.0 ** -j
        b = np.zeros(n)
        b[: fracs.size] = a * fracs
        blocks.append(b)
    arr = [exact_in(b, dt) for b in blocks]
    arr = [b for b in arr if b.size == n]
    # an encode-role scale (the simulator's m/amax) meets the top of its format where a decode scale meets
    # the bottom
    if rec.scale_role == "encode":
        return _layout(arr, rec), {}, ("scale-max",)
    return _layout(arr, rec), {}, ("scale-min|scale-subnormal|scale-zero|scale-min-normal",)


def _blk_ragged(rec, dt, level):
    tr, tc = _geometry(rec)
    if rec.blocks == "flat" or rec.transform is not None:
        return None  # flat blocks cross rows; a Hadamard transform needs whole transform blocks
    if rec.blocks == "2d":
        shape = (2 * tr + 5, tc + 7)
    else:
        shape = (3, 2 * tc + tc // 2 - 3)
    v = _values(int(np.prod(shape)), f"ragged/{rec.name}", dt).reshape(shape)
    return v, {"pad": 0.0}, ("padded",)


def _blk_tiles(rec, dt, level):
    if rec.blocks != "2d":
        return None
    tr, tc = _geometry(rec)
    v = wide(_values(2 * tr * 3 * tc, f"tiles/{rec.name}", dt)).reshape(2 * tr, 3 * tc) / 8
    for i in range(2):
        for j in range(3):
            v[i * tr + (i * 5 + j * 3) % tr, j * tc + (i * 3 + j * 7) % tc] = 6.0 * 2.0 ** (i - j)
    return v.astype(dt), {}, ("tile-2d",)


def _blk_rht_spike(rec, dt, level):
    if rec.transform is None:
        return None
    size = rec.transform[1]
    tr, tc = _geometry(rec)
    rows = []
    for p in range(0, size, 1 if level == 2 else max(1, size // 4)):
        r = np.zeros(tc)
        r[p % tc] = 6.0 * 2.0 ** (p % 5 - 2) * (1 if p % 2 == 0 else -1)
        rows.append(r)
    return np.array(rows).astype(dt), {}, ("transformed", "spike")


def _blk_rht_near_tie(rec, dt, level):
    """Inputs whose transform is a block of element-grid midpoints: the inverse transform of such a block, kept
    where the input dtype holds it and the recipe's forward transform gives the midpoints back exactly."""
    if rec.transform is None:
        return None
    size = rec.transform[1]
    tr, tc = _geometry(rec)
    g, _ = _elem_grid(rec)
    mids = [(a + b) / 2 for a, b in zip(g, g[1:])]
    _, _, signs, _, mode = rec.transform
    sg = None if signs is None else np.asarray(signs)
    want = 8 if level == 1 else 64
    words = philox_words(f"rht/{rec.name}", 256 * size).reshape(256, size).astype(np.int64)
    ys = np.array([[mids[int(w) % len(mids)] * (1 if (int(w) >> 8) & 1 else -1) for w in row] for row in words])
    ys[:, 0] = g[-1]  # the element max: the transformed block's amax sets a scale of 1
    x = _H.hadamard(ys.astype(np.float32), size, -1, sg, inverse=True, out_dtype=np.float32, mode="exact")
    x = x.astype(dt)
    back = wide(_transform(x, rec)) if tc == size else None
    keep = [i for i in range(ys.shape[0]) if back is not None and (back[i] == ys[i]).all()
            and (wide(x[i]) == wide(x[i].astype(np.float32))).all()]
    if not keep:
        return None
    return x[keep[:want]], {}, ("transformed", "elem-tie")


def _blk_random(rec, dt, level):
    tr, tc = _geometry(rec)
    nb = (8 if tr == 1 else 2) if level == 1 else 4096
    v = wide(_values(nb * tr * tc, f"random/{rec.name}", dt)).reshape(nb, tr * tc)
    w = philox_words(f"random-scale/{rec.name}", nb).astype(np.int64)
    v = v * 2.0 ** ((w % 21) - 10)[:, None]
    return _layout(list(v.astype(dt)), rec), {}, ("elem-inexact",)


_BLOCK_FAMS = [
    ("element-ties", ("elem-tie",), _blk_element_ties,
     "blocks whose amax is the element max times 2^k and whose other elements are every element midpoint "
     "times 2^k (both signs), at 1-2 scales (3 at level 2); tensor-scale recipes get an anchor block making the "
     "tensor factor 1"),
    ("zero-blocks", ("zero-block", "neg-zero"), _blk_zero,
     "all +0, all -0, alternating ±0, and zeros with one input-dtype subnormal"),
    ("one-spike", ("spike",), _blk_spike, "one nonzero element per block at the first, middle and last positions "
                                          "(every position at level 2)"),
    ("nan-blocks", ("nan-block",), _blk_nan,
     "a +NaN block, a -NaN block and a finite block (tensor-scale recipes: fixed global amax, so that the NaN "
     "stays in its block)"),
    ("inf-blocks", ("inf-block",), _blk_inf,
     "+Inf, -Inf and input-max blocks with a finite block (tensor-scale recipes: fixed global amax)"),
    ("tiny-blocks", ("scale-min|scale-subnormal|scale-zero|scale-min-normal", "scale-max"), _blk_tiny,
     "one large block and blocks whose amax is the element max times the smallest scale times 2^-j: the "
     "bottom of the scale format (NVFP4 tiny blocks against a large global amax)"),
    ("ragged", ("padded",), _blk_ragged, "rows (tiles) not a whole number of blocks, quantized with pad=0"),
    ("tiles-2d", ("tile-2d",), _blk_tiles, "2-D recipes: 2x3 tiles with the amax at a different place in each"),
    ("rht-spike", ("transformed", "spike"), _blk_rht_spike,
     "Hadamard recipes: one-hot rows (the transform spreads the spike over the whole block)"),
    ("rht-near-tie", ("transformed", "elem-tie"), _blk_rht_near_tie,
     "Hadamard recipes with a rational normalization (size 16: 1/4): rows whose transform is exactly a block of "
     "element midpoints"),
    ("random", ("elem-inexact",), _blk_random, "Philox-drawn blocks over 21 binades (8 blocks; 4096 at level 2)"),
]
for _n, _d, _b, _doc in _BLOCK_FAMS:
    register(Family(kind="block", name=_n, decisions=_d, doc=_doc, build=_b))


def build_block_vector(t: RecipeTarget, level: int) -> Vector:
    rec = _recipes.get(t.recipe)
    dt = dtype_of(t.dtype)
    from .catalogue import families
    arrays, names, coverage, overrides, skipped = {}, [], {}, {}, {}
    q0 = None
    for fam in families("block"):
        if level not in fam.levels or (t.families is not None and fam.name not in t.families):
            continue
        built = fam.build(rec, dt, level)
        if built is None:
            continue
        x, ov, tg = built
        x = np.asarray(x, dt)
        try:
            with np.errstate(all="ignore"):
                q = quantize(x, rec, **ov)
        except Exception as e:  # recorded in the manifest, never silently dropped
            cause = e.__cause__ or e
            skipped[fam.name] = f"fp4ref.quantize raised {type(cause).__name__}: {cause}"
            continue
        q0 = q0 or q
        masks = _block_decisions(x, q, rec, dt)
        reached = {d: int(((masks & D.block_bit(d)) != 0).sum()) for d in D.BLOCK_DECISIONS}
        reached = {d: c for d, c in reached.items() if c}
        check_family(t.name, fam.name, {"codes": np.asarray(q.codes)}, reached, tg)
        names.append(fam.name)
        arrays[f"{fam.name}.x"] = x
        arrays[f"{fam.name}.codes"] = np.asarray(q.codes, np.uint8)
        arrays[f"{fam.name}.scales"] = np.asarray(q.scales)
        if q.global_scale is not None:
            arrays[f"{fam.name}.global_scale"] = np.asarray([q.global_scale], np.float32)
        arrays[f"{fam.name}.decisions"] = masks
        if ov:
            overrides[fam.name] = ov
        coverage[fam.name] = {"cases": int(masks.size), "targets": list(tg), "reached": reached}
    options = _recipe_options(rec, t, None, q0)
    options["global_amax"] = None
    options["family_overrides"] = overrides
    if skipped:
        options["skipped_families"] = skipped
    legend = {"decisions": {"bits": list(D.BLOCK_DECISIONS)},
              "<family>.decisions": "one bitmask per block, blocks in row-major tile order"}
    return Vector(name=t.name, kind="block", options=options, families=tuple(names), arrays=arrays,
                  coverage=coverage, legend=legend)

