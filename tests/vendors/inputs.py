"""Deterministic adversarial inputs shared by every vendor capture (tests/vendors/capture_*.py).

Nothing here imports vendor code: the inputs are built from format definitions, fixed constants and one
fixed-seed generator, so that every captured file (tests/data/vendor_*.npz) is a reply to the same question.
Each captured file also stores the input it was given (``x``), so tests never need to rebuild it; this module
exists so that the captures can be regenerated and so that a test can name which rows are which
(:func:`row_labels`).

Input sets (``build(name, dtype)``; dtype "float32" or "bfloat16", bfloat16 returned as ml_dtypes.bfloat16):

- ``mx_suite`` (128, 64): for MX recipes (blocks of 32 along the last axis; every 16-aligned half block is
  self-contained too, so block size 16 works). Rows, in order:
  * element-tie blocks: each 16-block is ``[±max_F·2^k, 15 values]`` where the values are, for element format
    F in (e2m1, e2m3, e3m2, e4m3, e5m2), every representable magnitude, every midpoint between neighbours
    (including the overflow midpoint max + ulp/2) and the next input-dtype value below and above each
    midpoint, all times 2^k, with alternating signs. The anchor ``max_F·2^k`` makes the FLOOR, RCEIL and EVEN
    scales all exactly 2^k, so after scaling the values sit exactly on F's ties (±1 input ulp). A last block
    that runs out of values is padded with zeros of alternating sign (so these blocks also carry -0.0).
  * scale-edge blocks: amax ``A`` = 2^k, nextbelow(2^k), nextabove(2^k) for k from the fp32 subnormal range to
    2^127; ``max_F·2^k`` ± 1 ulp (RCEIL thresholds); ``(2 - 2^-m)·2^k`` ± 1 ulp (EVEN thresholds for m
    element mantissa bits); 1.5·2^127, 1.75·2^127 ± 1 ulp, FLT_MAX. Other elements are fixed fractions of A.
  * special blocks (32 wide): zeros, −0.0, single spikes, NaN, −NaN, ±Inf, subnormal inputs, all-equal
    blocks, FLT_MAX blocks, every E2M1 value.
  * random rows: normal at σ = 2^-20, 1e-3, 1, 1e3, 2^40; lognormal at three magnitudes.
- ``nvfp4_suite`` (64, 64): for NVFP4 (blocks of 16, 2D tiles of 16×16). The tensor amax is exactly 2688
  (= 6·448), so TransformerEngine's encode factor 2688/amax and torchao's amax/2688 are both exactly 1.0.
  Rows: E2M1 tie blocks with anchor 6·2^k (decode scale 2^k exact in E4M3, k = -9..8); blocks whose amax/6
  lands on every E4M3 midpoint (and ±1 input ulp); block scales at the E4M3 range ends (448, 2^-6, 2^-9,
  below 2^-10: underflow); zero, −0 and spike blocks.
- ``nvfp4_random`` (32, 128): normal and lognormal rows, plus one block of large outliers so that the other
  blocks' scales sit far below the tensor amax (NVFP4 scale underflow).
- ``nvfp4_specials`` (16, 64): NaN, ±Inf, −0.0, zero, subnormal blocks (whole-tensor amax is NaN: every
  global-scale recipe sees it).
- ``cast_<fmt>`` 1-D: element-cast probes for fmt in (e2m1, e2m3, e3m2, e4m3, e5m2, e8m0, int8 = MXINT8
  elements k/64): every
  representable value, every midpoint ±1 input ulp, overflow boundaries, ±Inf, ±NaN, ±0, input subnormals,
  FLT_MAX.

bfloat16 versions are built with bfloat16 ulps (not rounded from the float32 ones), so "±1 ulp" stays
meaningful; values not representable in bfloat16 (fp32 subnormals below 2^-133) are left out there.
"""
from __future__ import annotations

import numpy as np
import ml_dtypes

__all__ = ["SETS", "build", "row_labels", "format_values", "CAST_FORMATS"]

# --- element format tables (positive magnitudes, from the OCP MX v1.0 definitions) ------------------------------
# name: (ebits, mbits, bias, max_finite)
_FLOAT_FORMATS = {
    "e2m1": (2, 1, 1, 6.0),
    "e2m3": (2, 3, 1, 7.5),
    "e3m2": (3, 2, 3, 28.0),
    "e4m3": (4, 3, 7, 448.0),
    "e5m2": (5, 2, 15, 57344.0),
}
CAST_FORMATS = ("e2m1", "e2m3", "e3m2", "e4m3", "e5m2", "e8m0", "int8")


def format_values(fmt: str) -> np.ndarray:
    """Sorted non-negative finite magnitudes of an element format (float64, exact)."""
    if fmt == "e8m0":
        return np.array([2.0 ** e for e in range(-127, 128)])
    if fmt == "int8":  # MXINT8 elements: k/64, k in [0, 127] (the negative side mirrors, plus -128/64)
        return np.arange(128) / 64.0
    eb, mb, bias, vmax = _FLOAT_FORMATS[fmt]
    vals = set()
    for e in range(2 ** eb):
        for m in range(2 ** mb):
            if e == 0:
                v = m * 2.0 ** (1 - bias - mb)
            else:
                v = (1 + m / 2 ** mb) * 2.0 ** (e - bias)
            if v <= vmax:
                vals.add(v)
    return np.array(sorted(vals))


# --- dtype helpers ---------------------------------------------------------------------------------------------
def _np_dtype(dtype: str):
    if dtype == "float32":
        return np.float32
    if dtype == "bfloat16":
        return ml_dtypes.bfloat16
    raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {dtype!r}")


def _exact(v: float, dtype: str):
    """v as the given dtype, asserting it is exact (the builders only ask for representable values)."""
    d = _np_dtype(dtype)
    r = np.array(v, dtype=np.float64).astype(d)
    if not (np.isnan(v) or float(r) == v):
        raise AssertionError(f"{v!r} is not exact in {dtype}")
    return r


def _step(v: float, dtype: str, direction: int) -> float:
    """Next representable value of the dtype from v toward +inf (direction=+1) or -inf (-1)."""
    if dtype == "float32":
        return float(np.nextafter(np.float32(v), np.float32(np.inf * direction)))
    b = np.array(v, dtype=ml_dtypes.bfloat16).view(np.uint16).astype(np.int64)
    if v == 0:
        return float(np.array(1 if direction > 0 else 0x8001, dtype=np.uint16).view(ml_dtypes.bfloat16))
    b = b + (direction if v > 0 else -direction)
    return float(np.array(b, dtype=np.uint16).view(ml_dtypes.bfloat16))


def _representable(v: float, dtype: str) -> bool:
    if not np.isfinite(v):
        return True
    d = _np_dtype(dtype)
    with np.errstate(over="ignore"):
        return float(np.array(v, dtype=np.float64).astype(d)) == v


def _smallest(dtype: str) -> int:
    """log2 of the smallest positive subnormal of the dtype."""
    return -149 if dtype == "float32" else -133


class _Rng:
    """SplitMix64 over Python ints: identical everywhere, no dependence on numpy's generator versions."""

    def __init__(self, seed: int):
        self.s = seed & (2 ** 64 - 1)

    def u64(self) -> int:
        self.s = (self.s + 0x9E3779B97F4A7C15) & (2 ** 64 - 1)
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2 ** 64 - 1)
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2 ** 64 - 1)
        return z ^ (z >> 31)

    def uniform(self, n: int) -> np.ndarray:
        """n floats in (0, 1): 53-bit mantissas, never 0."""
        return np.array([((self.u64() >> 11) + 0.5) * 2.0 ** -53 for _ in range(n)])

    def normal(self, n: int) -> np.ndarray:
        u1, u2 = self.uniform(n), self.uniform(n)
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)

    def signs(self, n: int) -> np.ndarray:
        return np.array([1.0 if self.u64() >> 63 else -1.0 for _ in range(n)])


# --- block builders (each returns a list of 1-D float64 lists of exact dtype values) ------------------------------
def _tie_values(fmt: str, k: int, dtype: str) -> list[float]:
    """Representable values, midpoints and midpoints ±1 input ulp of `fmt`, times 2**k, all exact in dtype."""
    vals = format_values(fmt)
    ulp_top = vals[-1] - vals[-2]
    mids = list((vals[:-1] + vals[1:]) / 2) + [vals[-1] + ulp_top / 2]  # last: the overflow midpoint
    out = [v * 2.0 ** k for v in vals[1:]]
    for m in mids:
        c = m * 2.0 ** k
        out += [_step(c, dtype, -1), c, _step(c, dtype, +1)]
    return [v for v in out if v != 0 and _representable(v, dtype)]


def _tie_blocks(fmt: str, ks, dtype: str, anchor_max: float) -> list[list[float]]:
    blocks = []
    for k in ks:
        vals = _tie_values(fmt, k, dtype)
        sgn = 1.0
        for i in range(0, len(vals), 15):
            chunk = vals[i:i + 15]
            chunk = chunk + [0.0] * (15 - len(chunk))
            signed = []
            for v in chunk:
                signed.append(sgn * v)
                sgn = -sgn
            anchor = anchor_max * 2.0 ** k * (1 if len(blocks) % 2 == 0 else -1)
            blocks.append([anchor] + signed)
    return blocks


_FRACTIONS = (1.0, -0.75, 0.5, 0.3, -0.2, 0.1, 0.0625, -0.04, 0.01, 1e-3, -0.6, 0.45, 0.27, -0.15, 0.9, 0.35)


def _edge_block(a: float, dtype: str) -> list[float]:
    """16 values whose amax is exactly `a` (positive, representable); others are fixed fractions of a."""
    d = _np_dtype(dtype)
    with np.errstate(under="ignore", over="ignore"):
        others = [float(np.array(a * f, dtype=np.float64).astype(d)) for f in _FRACTIONS[1:]]
    others = [min(abs(o), a) * np.sign(o) if o != 0 else 0.0 for o in others]
    return [a] + others


def _edge_amaxes(dtype: str) -> list[tuple[str, float]]:
    lo = _smallest(dtype)
    out = []
    for k in (-149, -140, -133, -131, -130, -128, -127, -126, -125, -124, -120, -64, -10, -1, 0, 1, 2, 8, 15, 16,
              64, 120, 125, 126, 127):
        if k < lo:
            continue
        p = 2.0 ** k
        out.append((f"2^{k}", p))
        if k > lo:
            out.append((f"nextbelow(2^{k})", _step(p, dtype, -1)))
        out.append((f"nextabove(2^{k})", _step(p, dtype, +1)))
    for fmt, (_, mb, _, vmax) in _FLOAT_FORMATS.items():
        for k in (-130, -127, -12, 0, 9, 118):
            a = vmax * 2.0 ** k
            if not _representable(a, dtype) or a > 3.0e38 or a < 2.0 ** (lo + 4):
                continue
            out += [(f"{fmt}.max*2^{k}", a), (f"nextbelow({fmt}.max*2^{k})", _step(a, dtype, -1)),
                    (f"nextabove({fmt}.max*2^{k})", _step(a, dtype, +1))]
        t = (2.0 - 2.0 ** -mb) * 2.0 ** 3  # EVEN threshold (rounds up into the next binade) for mb bits
        out += [(f"even_threshold_m{mb}*2^3", t), (f"nextbelow(even_threshold_m{mb}*2^3)", _step(t, dtype, -1)),
                (f"nextabove(even_threshold_m{mb}*2^3)", _step(t, dtype, +1))]
    big = float(np.finfo(np.float32).max) if dtype == "float32" else float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)
    for name, a in (("1.5*2^127", 1.5 * 2.0 ** 127), ("1.75*2^127", 1.75 * 2.0 ** 127),
                    ("nextbelow(1.75*2^127)", _step(1.75 * 2.0 ** 127, dtype, -1)),
                    ("nextabove(1.75*2^127)", _step(1.75 * 2.0 ** 127, dtype, +1)), ("dtype_max", big)):
        out.append((name, a))
    # de-duplicate (EVEN thresholds coincide between formats with equal mantissa bits)
    seen, uniq = set(), []
    for name, a in out:
        if a not in seen:
            seen.add(a)
            uniq.append((name, a))
    return uniq


def _special_blocks(dtype: str) -> list[tuple[str, list[float]]]:
    nan, inf = float("nan"), float("inf")
    base = [1.0, -2.5, 0.75, 3.0, -0.3, 5.0, 0.125, -1.75, 2.0, 0.6, -4.0, 1.25, 0.05, -0.9, 2.75, 0.4]
    e2m1 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]
    sub = 2.0 ** _smallest(dtype)
    tiny = [sub * m for m in (1, 3, 5, 7, 2, 9, 4, 11, 6, 13, 8, 15, 10, 17, 12, 19)]
    fmax = float(np.finfo(np.float32).max) if dtype == "float32" else float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)
    tinymin = float(np.finfo(np.float32).tiny)
    blocks = [
        ("zeros", [0.0] * 32),
        ("neg_zeros", [-0.0] * 32),
        ("mixed_zeros", [0.0, -0.0] * 16),
        ("spike_pos", [0.0] * 5 + [3.7] + [0.0] * 10 + [0.0] * 9 + [-0.0] + [0.0] * 5 + [1e-3]),
        ("spike_neg_big", [0.0] * 20 + [-1e30] + [0.0] * 11),
        ("nan_in_block", base[:3] + [nan] + base[4:] + base),
        ("neg_nan_in_block", base + base[:9] + [-nan] + base[10:]),
        ("pos_inf_in_block", base[:7] + [inf] + base[8:] + base[:1] + [inf] + base[2:]),
        ("neg_inf_in_block", [-inf] + base[1:] + base),
        ("nan_and_inf", [inf, nan] + base[2:] + [-inf] + base[1:]),
        ("all_equal_1", [1.0] * 32),
        ("all_equal_5", [5.0] * 32),
        ("all_equal_0.3", [0.3] * 32),
        ("all_equal_-7", [-7.0] * 32),
        ("subnormal_inputs", tiny + [-t for t in tiny]),
        ("normal_amax_subnormal_rest", [1.0] + tiny[1:] + [tinymin] + [-t for t in tiny[1:]]),
        ("min_normal_amax_subnormals", [tinymin] + tiny[1:] + [-tinymin] + tiny[1:]),
        ("neg_zero_and_neg_subnormal", [-0.0] * 15 + [-sub] + [-0.0] * 16),
        ("dtype_max", [fmax, -fmax] + base[2:] + [-fmax] + [0.0] * 15),
        ("e2m1_values_both_signs", e2m1 + [-v for v in e2m1] + e2m1[::-1] + [-v for v in e2m1[::-1]]),
        ("half_min_subnormal_e2m1_scaled", [6.0, 0.25, -0.25, 0.2500001, 0.24999999, 0.7499999, 0.75, 0.7500001,
                                             1.25, 1.75, 2.5, 3.5, 5.0, -5.0, -3.5, -2.5] + base),
    ]
    out = []
    d = _np_dtype(dtype)
    for name, vals in blocks:
        arr = np.array(vals, dtype=np.float64).astype(d).astype(np.float64)
        out.append((name, list(arr)))
    return out


def _random_rows(rng: _Rng, n_cols: int, dtype: str) -> list[tuple[str, list[float]]]:
    d = _np_dtype(dtype)
    rows = []
    for sigma_name, sigma in (("2^-20", 2.0 ** -20), ("1e-3", 1e-3), ("1", 1.0), ("1e3", 1e3), ("2^40", 2.0 ** 40)):
        for _ in range(2):
            r = rng.normal(n_cols) * sigma
            rows.append((f"normal(sigma={sigma_name})", list(r.astype(d).astype(np.float64))))
    for mag_name, mag in (("1e-2", 1e-2), ("1", 1.0), ("1e2", 1e2)):
        for _ in range(2):
            r = np.exp(2.0 * rng.normal(n_cols)) * rng.signs(n_cols) * mag
            rows.append((f"lognormal(sigma=2, scale={mag_name})", list(r.astype(d).astype(np.float64))))
    return rows


# --- the sets ---------------------------------------------------------------------------------------------------
def _pack_rows(items: list[tuple[str, list[float]]], width: int, n_rows: int, filler) -> tuple[list, list]:
    """Concatenate labelled 1-D blocks (lengths dividing width) into rows; pad with `filler` rows."""
    flat, labels = [], []
    for name, vals in items:
        flat += vals
        labels += [name] * len(vals)
    if len(flat) % width:
        raise AssertionError("blocks must fill whole rows")
    rows = [flat[i:i + width] for i in range(0, len(flat), width)]
    lab = [labels[i:i + width] for i in range(0, len(flat), width)]
    while len(rows) < n_rows:
        name, vals = filler(len(rows))
        rows.append(vals)
        lab.append([name] * width)
    if len(rows) != n_rows:
        raise AssertionError(f"{len(rows)} rows, expected {n_rows}")
    return rows, lab


def _mx_suite(dtype: str):
    rng = _Rng(0x5EED_0001)
    items = []
    # element ties: 16-wide blocks
    tie_ks = {"e2m1": (0, 3, -9, 40), "e2m3": (0, -5), "e3m2": (0, 7), "e4m3": (0,), "e5m2": (0,)}
    for fmt, ks in tie_ks.items():
        for blk in _tie_blocks(fmt, ks, dtype, _FLOAT_FORMATS[fmt][3]):
            items.append((f"ties_{fmt}", blk))
    if len(items) % 2:
        items.append(("ties_pad", [6.0] + [0.5] * 15))
    for name, a in _edge_amaxes(dtype):
        items.append((f"edge amax={name}", _edge_block(a, dtype)))
    n16 = len(items)
    if (n16 * 16) % 64:
        for i in range((64 - (n16 * 16) % 64) // 16):
            items.append(("edge_pad", _edge_block(1.0, dtype)))
    for name, blk in _special_blocks(dtype):
        items.append((f"special {name}", blk))
    rem = sum(len(v) for _, v in items) % 64
    if rem:
        items.append(("special_pad", [0.0] * (64 - rem)))
    rand = _random_rows(rng, 64, dtype)
    for name, row in rand:
        items.append((name, row))
    fill_rng = _Rng(0x5EED_0002)
    d = _np_dtype(dtype)
    return _pack_rows(items, 64, 128,
                      lambda i: ("normal(sigma=1) filler", list(fill_rng.normal(64).astype(d).astype(np.float64))))


def _e4m3_midpoints() -> list[float]:
    v = format_values("e4m3")
    return list((v[:-1] + v[1:]) / 2)


def _nvfp4_suite(dtype: str):
    items = []
    # one block carrying the tensor amax 2688 (= 6 * 448): global encode factor exactly 1
    items.append(("tensor_amax_2688", [2688.0, -1344.0, 448.0, 700.0, -2000.0, 10.0, 1.0, -0.5,
                                       2496.0, 6.0, -3.0, 1000.0, -2672.0, 50.0, 0.0, 2.0]))
    # E2M1 ties with anchor 6 * 2^k: decode scale 2^k (exact E4M3 for k in [-9, 8])
    for blk in _tie_blocks("e2m1", (0, -9, -6, 8, 3, -3), dtype, 6.0):
        items.append(("ties_e2m1 anchor=6*2^k", blk))
    # amax/6 on every E4M3 midpoint (±1 ulp of amax): the block-scale rounding decision
    mids = [m for m in _e4m3_midpoints() if 6 * m <= 2688]
    for m in mids:
        a = 6.0 * m
        for name, aa in (("", a), ("nextbelow ", _step(a, dtype, -1)), ("nextabove ", _step(a, dtype, +1))):
            if _representable(aa, dtype):
                items.append((f"{name}amax=6*e4m3_mid", _edge_block(aa, dtype)))
    # scale range ends
    for name, a in (("amax/6=448", 2688.0), ("amax/6=2^-6", 6 * 2.0 ** -6), ("amax/6=2^-9", 6 * 2.0 ** -9),
                    ("amax/6=2^-10 (tie to 0 or 2^-9)", 6 * 2.0 ** -10), ("amax/6=1.5*2^-10", 6 * 1.5 * 2.0 ** -10),
                    ("amax/6=2^-12", 6 * 2.0 ** -12), ("amax=1e-30", 1e-30), ("amax/6=2^-7", 6 * 2.0 ** -7),
                    ("amax/6=3*2^-9", 18 * 2.0 ** -9)):
        d = _np_dtype(dtype)
        aa = float(np.array(a).astype(d))
        items.append((f"range {name}", _edge_block(aa, dtype)))
    items.append(("zeros", [0.0] * 16))
    items.append(("neg_zeros", [-0.0] * 16))
    items.append(("spike", [0.0] * 7 + [5.5] + [0.0] * 8))
    items.append(("all_equal_5", [5.0] * 16))
    n = len(items)
    rng = _Rng(0x5EED_0003)
    d = _np_dtype(dtype)

    def filler(i):
        return ("normal(sigma=1) filler", list(rng.normal(64).astype(d).astype(np.float64)))

    rows_needed = -(-n * 16 // 64)
    rows_needed = -(-rows_needed // 16) * 16
    while (len(items) * 16) % 64:
        items.append(("pad", [1.0] + [0.25] * 15))
    return _pack_rows(items, 64, rows_needed, filler)


def _nvfp4_random(dtype: str):
    rng = _Rng(0x5EED_0004)
    d = _np_dtype(dtype)
    items = []
    for r in range(32):
        if r % 4 == 3:
            row = np.exp(2.0 * rng.normal(128)) * rng.signs(128) * 0.1
            name = "lognormal(sigma=2, scale=0.1)"
        else:
            row = rng.normal(128) * (0.01 if r % 4 == 1 else 1.0)
            name = f"normal(sigma={0.01 if r % 4 == 1 else 1})"
        if r == 5:
            row[16:32] = rng.normal(16) * 3e4  # outlier block: tensor amax far above the other blocks
            name = "normal with one outlier block (sigma=3e4) at cols 16..31"
        if r == 20:
            row[48:64] = rng.normal(16) * 1e-6  # tiny block: its NVFP4 scale underflows against the tensor amax
            name = "normal with tiny block (sigma=1e-6) at cols 48..63"
        items.append((name, list(row.astype(d).astype(np.float64))))
    return _pack_rows(items, 128, 32, None)


def _nvfp4_specials(dtype: str):
    nan, inf = float("nan"), float("inf")
    base = [1.0, -2.5, 0.75, 3.0, -0.3, 5.0, 0.125, -1.75, 2.0, 0.6, -4.0, 1.25, 0.05, -0.9, 2.75, 0.4]
    sub = 2.0 ** _smallest(dtype)
    items = [("nan_in_block", base[:3] + [nan] + base[4:]), ("neg_nan_in_block", [-nan] + base[1:]),
             ("pos_inf_in_block", base[:7] + [inf] + base[8:]), ("neg_inf_in_block", [-inf] + base[1:]),
             ("zeros", [0.0] * 16), ("neg_zeros", [-0.0] * 16), ("mixed_zeros", [0.0, -0.0] * 8),
             ("subnormals", [sub * m for m in range(1, 17)]), ("plain", base)]
    rng = _Rng(0x5EED_0005)
    d = _np_dtype(dtype)
    items = [(n, list(np.array(v, dtype=np.float64).astype(d).astype(np.float64))) for n, v in items]
    while len(items) % 4:
        items.append(items[-1])
    return _pack_rows(items, 64, 16,
                      lambda i: ("normal(sigma=1) filler", list(rng.normal(64).astype(d).astype(np.float64))))


def _cast_values(fmt: str, dtype: str):
    vals = format_values(fmt)
    lo = _smallest(dtype)
    out = []
    pos = [v for v in vals if v > 0 and _representable(v, dtype)]
    out += [("value", v) for v in pos]
    mids = list((vals[:-1] + vals[1:]) / 2)
    top = vals[-1] * 2 if fmt == "e8m0" else vals[-1] + (vals[-1] - vals[-2]) / 2
    for m in mids + [top]:
        if not _representable(m, dtype) or abs(m) < 2.0 ** lo:
            continue
        out += [("mid-ulp", _step(m, dtype, -1)), ("mid", m), ("mid+ulp", _step(m, dtype, +1))]
    for name, v in (("2*max", 2 * vals[-1]), ("4*max", 4 * vals[-1]), ("half_min_sub", vals[1] / 2),
                    ("quarter_min_sub", vals[1] / 4), ("input_min_subnormal", 2.0 ** lo),
                    ("input_min_normal", 2.0 ** -126), ("one_third", 1 / 3), ("e", np.e), ("pi", np.pi)):
        if _representable(v, dtype) and v < 3e38:
            out.append((name, v))
        elif v < 3e38:
            out.append((name + "(rounded)", float(np.array(v).astype(_np_dtype(dtype)))))
    big = float(np.finfo(np.float32).max) if dtype == "float32" else float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)
    out.append(("dtype_max", big))
    signed = []
    for name, v in out:
        signed += [(name, v), ("neg " + name, -v)]
    if fmt == "int8":  # the two's complement code 0x80 = -2.0 and its neighbourhood
        signed += [("-2", -2.0), ("nextbelow -2", _step(-2.0, dtype, -1)), ("nextabove -2", _step(-2.0, dtype, +1)),
                   ("-(2-1/128)", -(2.0 - 1 / 128))]
    signed += [("+0", 0.0), ("-0", -0.0), ("+inf", float("inf")), ("-inf", float("-inf")),
               ("+nan", float("nan")), ("-nan", -float("nan"))]
    return signed


def build(name: str, dtype: str = "float32") -> np.ndarray:
    """The input set `name` as a float32 or ml_dtypes.bfloat16 array (see module docstring)."""
    return _build(name, dtype)[0]


def row_labels(name: str, dtype: str = "float32") -> np.ndarray:
    """Per-element label strings naming the block family of each element of build(name, dtype)."""
    return _build(name, dtype)[1]


def _build(name: str, dtype: str):
    d = _np_dtype(dtype)
    if name.startswith("cast_"):
        fmt = name[5:]
        if fmt not in CAST_FORMATS:
            raise ValueError(f"unknown cast set {name!r}; allowed: {['cast_' + f for f in CAST_FORMATS]}")
        items = _cast_values(fmt, dtype)
        vals = np.array([v for _, v in items], dtype=np.float64)
        labels = np.array([n for n, _ in items])
    elif name in _SET_BUILDERS:
        rows, lab = _SET_BUILDERS[name](dtype)
        vals = np.array(rows, dtype=np.float64)
        labels = np.array(lab)
    else:
        raise ValueError(f"unknown input set {name!r}; allowed: {SETS}")
    with np.errstate(over="ignore"):
        arr = vals.astype(np.float32).astype(d)
    # -NaN keeps its sign bit through float64 -> float32 -> bfloat16 on every numpy we target; assert it
    neg_nan = np.isnan(vals) & np.signbit(vals)
    if neg_nan.any() and not np.signbit(arr.astype(np.float32)[neg_nan]).all():
        raise AssertionError("lost the sign of -NaN")
    ok = np.isnan(vals) | (arr.astype(np.float64) == vals)
    if not ok.all():
        bad = vals[~ok][:5]
        raise AssertionError(f"{name}/{dtype}: values not exact in the dtype: {bad}")
    return arr, labels


_SET_BUILDERS = {
    "mx_suite": _mx_suite,
    "nvfp4_suite": _nvfp4_suite,
    "nvfp4_random": _nvfp4_random,
    "nvfp4_specials": _nvfp4_specials,
}
SETS = tuple(_SET_BUILDERS) + tuple("cast_" + f for f in CAST_FORMATS)

if __name__ == "__main__":
    for s in SETS:
        for dt in ("float32", "bfloat16"):
            a = build(s, dt)
            print(f"{s:16s} {dt:9s} shape={a.shape} nan={int(np.isnan(a.astype(np.float32)).sum())} "
                  f"inf={int(np.isinf(a.astype(np.float32)).sum())}")
