"""Print what each captured vendor file shows on the special cases (the numbers behind tests/data/VENDORS.md).

Run: python tests/vendors/summarize.py [glob ...]   (default: every tests/data/vendor_*.npz)

Independent of fp4ref: the few models used here (E2M1/E4M3/... value grids, exact floor/ceil of log2 via frexp,
nearest rounding on a grid) are written out below and only serve to count agreements.
"""
from __future__ import annotations

import glob
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
import inputs  # noqa: E402

GRID_MAX = {"e2m1": 6.0, "e2m3": 7.5, "e3m2": 28.0, "e4m3": 448.0, "e5m2": 57344.0, "int8": 127 / 64}
EMAX = {"e2m1": 2, "e2m3": 2, "e3m2": 4, "e4m3": 8, "e5m2": 15, "int8": 0}


def _grid(fmt):
    if fmt == "int8":
        return np.arange(128) / 64.0
    return inputs.format_values(fmt)


def _round_grid(v, fmt, ties):
    """Nearest grid magnitude (saturating) with ties 'even' (even code) or 'away'; returns signed values."""
    g = _grid(fmt)
    a = np.abs(v)
    idx = np.searchsorted(g, a, side="left")
    idx = np.clip(idx, 1, len(g) - 1)
    lo, hi = g[idx - 1], g[idx]
    pick_hi = (a - lo) > (hi - a)
    tie = (a - lo) == (hi - a)
    if ties == "even":
        pick_hi |= tie & (idx % 2 == 0)  # grid index = code magnitude; hi has index idx
    else:
        pick_hi |= tie
    r = np.where(pick_hi, hi, lo)
    r = np.where(a >= g[-1], g[-1], r)
    r = np.where(a <= 0, 0.0, r)
    return np.copysign(r, v)


def _x_f64(arrays):
    return arrays["x"].astype(np.float32).astype(np.float64)


def _labels(meta, shape):
    s = meta.get("input_set", "")
    dt = "bfloat16" if meta.get("x_dtype") == "bfloat16" else "float32"
    try:
        lab = inputs.row_labels(s, dt)
    except Exception:
        return None
    return lab if lab.shape == tuple(shape) else None


def _family(label):
    if label.startswith("special "):
        return label
    return label.split(" ")[0].split("(")[0]


def summarize_cast(path, arrays, meta):
    out = [f"  probes: {meta.get('observed_special_codes')}"]
    lab = _labels(meta, arrays["x"].shape)
    fmt = meta.get("elem_format")
    if lab is not None and fmt in GRID_MAX and "dequant" in arrays:
        x = _x_f64(arrays)
        d = arrays["dequant"].astype(np.float64)
        fin = np.isfinite(x) & (np.abs(x) <= GRID_MAX[fmt])
        for ties in ("even", "away"):
            exp = _round_grid(x, fmt, ties)
            ok = (exp == d) | (np.isnan(d) & np.isnan(exp))
            m = Counter(lab[fin & ~ok])
            out.append(f"  in-range values off RN-{ties}: {int((fin & ~ok).sum())} of {int(fin.sum())} {dict(m)}")
    if fmt == "e8m0" and lab is not None:
        x = _x_f64(arrays)
        c = arrays["codes"].astype(np.int64)
        mids = np.isin(lab, ["mid"]) & (x > 0)
        if mids.any():
            e = np.frexp(x[mids])[1] - 1  # x = 1.5 * 2^e
            up = c[mids] == e + 1 + 127
            out.append(f"  E8M0 of 1.5*2^k (linear midpoints): {int(up.sum())} rounded up, {int((~up).sum())} not "
                       f"(examples code(1.5*2^k)-127-k: {Counter((c[mids] - 127 - e).tolist())})")
        neg = (x < 0) & np.isfinite(x)
        if neg.any():
            out.append(f"  negative finite inputs -> codes {Counter(arrays['codes'][neg].tolist()).most_common(4)}")
    return out


def summarize_mx(path, arrays, meta):
    out = []
    fmt = meta.get("elem_format", "").replace("ocp_", "")
    bs = meta.get("block_size")
    x = _x_f64(arrays)
    lab = _labels(meta, x.shape)
    sc = arrays.get("scales")
    if sc is None or bs is None:
        return ["  (no scales)"]
    rows, cols = x.shape
    if sc.shape != (rows, cols // bs):
        return [f"  scales shape {sc.shape} (not a 1-D block grid; see meta)"]
    xb = x.reshape(rows, cols // bs, bs)
    amax = np.max(np.abs(xb), axis=-1)
    nan_blk = np.isnan(xb).any(-1)
    inf_blk = np.isinf(xb).any(-1) & ~nan_blk
    zero_blk = (amax == 0) & ~nan_blk
    if meta.get("scale_format") == "e8m0" and fmt in EMAX:
        fin = np.isfinite(amax) & (amax > 0)
        e = np.where(fin, np.frexp(np.where(fin, amax, 1.0))[1] - 1, 0)
        floor_code = np.clip(e - EMAX[fmt], -127, 127) + 127
        mant1 = np.where(fin, np.frexp(np.where(fin, amax, 1.0))[0] == 0.5, True)
        ratio = np.where(fin, amax, 1.0) / GRID_MAX[fmt]
        m, ee = np.frexp(ratio)
        rceil = np.clip(np.where(m == 0.5, ee - 1, ee), -127, 127) + 127
        s = sc.astype(np.int64)
        out.append(f"  finite nonzero blocks: {int(fin.sum())}; scale == FLOOR: {int((s == floor_code)[fin].sum())}; "
                   f"== RCEIL(amax/{GRID_MAX[fmt]:g}): {int((s == rceil)[fin].sum())}")
        if lab is not None:
            lb = lab.reshape(rows, cols // bs, bs)[:, :, 0]
            bad = fin & (s != floor_code) & (s != rceil)
            if bad.any():
                out.append(f"    neither FLOOR nor RCEIL: {Counter(lb[bad].tolist()).most_common(6)}")
            offf = fin & (s != floor_code)
            if offf.any():
                out.append(f"    scale - FLOOR: {Counter((s - floor_code)[offf].tolist())}; families "
                           f"{Counter(_family(v) for v in lb[offf].tolist()).most_common(6)}")
    out.append(f"  zero blocks -> scale codes {Counter(sc[zero_blk].tolist())}; NaN blocks -> "
               f"{Counter(sc[nan_blk].tolist())}; Inf blocks -> {Counter(sc[inf_blk].tolist())}")
    # element rounding under the vendor's own (power-of-two) scale
    sf = arrays.get("scales_f32")
    if meta.get("scale_format") == "e8m0" and fmt in GRID_MAX:
        if sf is None:
            sf = np.where(sc == 255, np.nan, np.exp2(sc.astype(np.float64) - 127))
        sf = sf.astype(np.float64)
        if "encode" in str(meta.get("scale_convention", "")).lower():
            sf = 1.0 / sf
        full = np.repeat(sf, bs, axis=1)
        fine = np.isfinite(full) & np.isfinite(x) & np.repeat(~(nan_blk | inf_blk), bs, axis=1) & (full > 0)
        with np.errstate(all="ignore"):
            v = x / full
        c = arrays["codes"]
        for ties in ("even", "away"):
            exp = _round_grid(np.where(fine, v, 0.0), fmt, ties)
            ecode, _ = _common.codes_from_values(exp, fmt)
            ok = (ecode == c) | ~fine
            n_bad = int((~ok).sum())
            line = f"  elements (given the vendor's scale) off RN-{ties}: {n_bad} of {int(fine.sum())}"
            if lab is not None and n_bad:
                line += f" {Counter(_family(v) for v in lab[~ok].tolist()).most_common(5)}"
            out.append(line)
    # sign of zero and specials in elements
    c = arrays["codes"]
    if fmt in ("e2m1", "e2m3", "e3m2", "e4m3", "e5m2"):
        negz = (x == 0) & np.signbit(x)
        if negz.any():
            out.append(f"  -0.0 inputs -> codes {Counter(c[negz].tolist()).most_common(3)}")
        nan_el = np.isnan(x)
        if nan_el.any():
            out.append(f"  NaN elements -> codes {Counter(c[nan_el].tolist()).most_common(3)}; other elements of NaN "
                       f"blocks -> {Counter(c[np.repeat(nan_blk, bs, axis=1) & ~nan_el].tolist()).most_common(3)}")
        inf_el = np.isinf(x)
        if inf_el.any():
            out.append(f"  ±Inf elements -> codes {Counter(c[inf_el].tolist()).most_common(4)}")
    return out


def _bits(fmt):
    return {"e2m1": 4, "e2m3": 6, "e3m2": 6, "e4m3": 8, "e5m2": 8, "int8": 8}[fmt]


def summarize_e4m3_scaled(path, arrays, meta):
    out = []
    sc = arrays.get("scales")
    x = _x_f64(arrays)
    if sc is None:
        return out
    bs = 16
    rows, cols = x.shape
    if sc.shape == (rows, cols // bs):
        xb = x.reshape(rows, cols // bs, bs)
        nan_blk = np.isnan(xb).any(-1)
        inf_blk = np.isinf(xb).any(-1) & ~nan_blk
        zero_blk = (np.max(np.abs(np.where(np.isnan(xb), 0, xb)), -1) == 0) & ~nan_blk & ~inf_blk
        out.append(f"  zero blocks -> scale codes {Counter(sc[zero_blk].tolist())}; NaN blocks -> "
                   f"{Counter(sc[nan_blk].tolist())}; Inf blocks -> {Counter(sc[inf_blk].tolist())}")
        out.append(f"  scale codes < 0x08 (E4M3 subnormal or zero): {int((sc & 0x7F < 8).sum())}; "
                   f"min nonzero code 0x{int(sc[sc > 0].min()) if (sc > 0).any() else 0:02X}; "
                   f"0x7F/0xFF (NaN): {int(((sc & 0x7F) == 0x7F).sum())}")
    c = arrays["codes"]
    negz = (x == 0) & np.signbit(x)
    if negz.any():
        out.append(f"  -0.0 inputs -> codes {Counter(c[negz].tolist()).most_common(3)}")
    if np.isnan(x).any():
        out.append(f"  NaN elements -> codes {Counter(c[np.isnan(x)].tolist()).most_common(3)}")
    if np.isinf(x).any():
        out.append(f"  ±Inf elements -> codes {Counter(c[np.isinf(x)].tolist()).most_common(3)}")
    if "global_scale" in arrays:
        out.append(f"  global_scale {arrays['global_scale'].tolist()} ({meta.get('global_scale_convention')})")
    return out


def main(argv):
    paths = []
    for g in (argv or [str(_common.DATA_DIR / "vendor_*.npz")]):
        paths += sorted(glob.glob(g))
    for p in paths:
        arrays, meta = _common.load(p)
        print(Path(p).name, "|", meta.get("call", "")[:150])
        try:
            if meta.get("kind") == "element cast":
                lines = summarize_cast(p, arrays, meta)
            elif meta.get("scale_format") in ("e8m0",) and meta.get("block_size") in (16, 32):
                lines = summarize_mx(p, arrays, meta)
            elif "e4m3" in str(meta.get("scale_format")):
                lines = summarize_e4m3_scaled(p, arrays, meta)
            else:
                lines = [f"  keys {sorted(arrays)}"]
        except Exception as e:  # a summary must not hide the others
            lines = [f"  summary failed: {type(e).__name__}: {e}"]
        for line in lines:
            print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
