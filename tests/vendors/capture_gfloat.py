"""Capture gfloat (Graphcore) element rounding/encoding under every RoundMode, and its MX block quantizer.

Run: /root/venv-peers/bin/python tests/vendors/capture_gfloat.py [--out DIR]

Element files vendor_gfloat_round_<fmt>_<mode>[_sr<n>].npz, exact calls:
    r = gfloat.round_ndarray(fi, x, rnd, sat, srbits=srbits, srnumbits=n)   (x: float32 numpy)
    codes = gfloat.encode_ndarray(fi, r)
  fi is gfloat.formats.format_info_ocp_<fmt>. sat=True, except the *_nosat files (TiesToEven, sat=False).
  When the vectorised call raises (gfloat raises on NaN for formats without NaN, and on overflow without sat),
  the call is repeated element by element; elements that raise get code 0xFF, dequant NaN, and
  ``raised`` = 1 (extra key), and the exception texts are in meta["exceptions"].
  Stochastic files: x is tiled into 8 rows; srbits (extra key, int64, same shape as x) holds the random bits
  passed for each element: row 0 all zeros, row 1 all 2^n - 1, row 2 2^(n-1), row 3 2^(n-1) - 1, rows 4..7
  SplitMix64 draws (seed 0x5EED0006) masked to n bits.
Block files vendor_gfloat_block_<mx fmt>_mx_suite_f32[_f64].npz: for each 32-block b of mx_suite (axis -1):
    q_scale = gfloat.compute_scale_amax(fi.etype.emax, b); enc = list(gfloat.encode_block(fi, q_scale,
    b / q_scale, RoundMode.TiesToEven)); dequant = gfloat.quantize_block(fi, b, compute_scale_amax)
  i.e. the exact steps of quantize_block with the codes kept (enc[0] is the scale code, enc[1:] the elements).
  b is float32 (the _f64 file passes b.astype(float64), to show the float32 log2 effect).
"""
from __future__ import annotations

import argparse
import sys
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inputs  # noqa: E402
import _common  # noqa: E402

import gfloat  # noqa: E402
from gfloat import RoundMode  # noqa: E402
from gfloat import formats as gf  # noqa: E402

FORMATS = {"e2m1": gf.format_info_ocp_e2m1, "e2m3": gf.format_info_ocp_e2m3, "e3m2": gf.format_info_ocp_e3m2,
           "e4m3": gf.format_info_ocp_e4m3, "e5m2": gf.format_info_ocp_e5m2, "int8": gf.format_info_ocp_int8,
           "e8m0": gf.format_info_ocp_e8m0}
DETERMINISTIC = ("TowardZero", "TowardPositive", "TowardNegative", "TiesToEven", "TiesToAway")
STOCHASTIC = ("Stochastic", "StochasticOdd", "StochasticFast", "StochasticFastest")
BLOCKS = {"mxfp4_e2m1": gf.format_info_mxfp4_e2m1, "mxfp6_e2m3": gf.format_info_mxfp6_e2m3,
          "mxfp6_e3m2": gf.format_info_mxfp6_e3m2, "mxfp8_e4m3": gf.format_info_mxfp8_e4m3,
          "mxfp8_e5m2": gf.format_info_mxfp8_e5m2, "mxint8": gf.format_info_mxint8}
PROBES = ("+nan", "-nan", "+inf", "-inf", "-0", "2*max", "neg 2*max", "dtype_max", "half_min_sub",
          "neg half_min_sub", "mid", "-2")


def _srbits(shape_n: int, n: int) -> np.ndarray:
    rng = inputs._Rng(0x5EED0006)
    rows = [np.zeros(shape_n, np.int64), np.full(shape_n, 2 ** n - 1, np.int64), np.full(shape_n, 2 ** (n - 1), np.int64),
            np.full(shape_n, 2 ** (n - 1) - 1, np.int64)]
    for _ in range(4):
        rows.append(np.array([rng.u64() & (2 ** n - 1) for _ in range(shape_n)], dtype=np.int64))
    return np.stack(rows)


def _round_encode(fi, x, rnd, sat, srbits=None, n=0):
    """Vectorised call; on an exception, element by element. Returns (rounded, codes, raised, exceptions)."""
    kw = {} if srbits is None else {"srbits": srbits, "srnumbits": n}
    try:
        r = gfloat.round_ndarray(fi, x, rnd, sat, **kw)
        c = gfloat.encode_ndarray(fi, np.asarray(r))
        return np.asarray(r, np.float64), np.asarray(c).astype(np.uint8), np.zeros(x.shape, np.uint8), {}
    except Exception:
        pass
    r_out = np.full(x.shape, np.nan)
    c_out = np.full(x.shape, 0xFF, np.uint8)
    raised = np.zeros(x.shape, np.uint8)
    exc = {}
    for idx in np.ndindex(x.shape):
        xi = x[idx]
        kwi = {} if srbits is None else {"srbits": np.asarray(srbits[idx])[None], "srnumbits": n}
        try:
            r = gfloat.round_ndarray(fi, np.asarray(xi).reshape(1), rnd, sat, **kwi)
            c = gfloat.encode_ndarray(fi, np.asarray(r))
            r_out[idx] = float(np.asarray(r)[0])
            c_out[idx] = int(np.asarray(c)[0])
        except Exception as e:
            raised[idx] = 1
            exc.setdefault(f"{type(e).__name__}: {e}"[:160], 0)
            exc[f"{type(e).__name__}: {e}"[:160]] += 1
    return r_out, c_out, raised, exc


def capture_elements(out, written):
    ver = version("gfloat")
    for fmt, fi in FORMATS.items():
        x = inputs.build(f"cast_{fmt}", "float32")
        labels = inputs.row_labels(f"cast_{fmt}", "float32")
        configs = [(m, True, None) for m in DETERMINISTIC] + [("TiesToEven", False, None)]
        if fmt != "e8m0":
            configs += [(m, True, 8) for m in STOCHASTIC]
            if fmt == "e2m1":
                configs += [(m, True, 16) for m in STOCHASTIC]
        for mode, sat, n in configs:
            rnd = getattr(RoundMode, mode)
            if n is None:
                xx, sr = x, None
            else:
                sr = _srbits(x.shape[0], n)
                xx = np.broadcast_to(x, sr.shape).copy()
            r, codes, raised, exc = _round_encode(fi, xx, rnd, sat, sr, n or 0)
            probes = {}
            if n is None:
                for p in PROBES:
                    idx = np.nonzero(labels == p)[0]
                    if len(idx):
                        probes[p] = ("raised" if raised[idx[0]] else
                                     f"0x{int(codes[idx[0]]):02X} -> {float(r[idx[0]])!r}")
            sr_txt = "" if n is None else ", srbits=srbits, srnumbits=%d" % n
            meta = {"version": ver, "call": f"gfloat.round_ndarray(format_info_ocp_{fmt}, x, RoundMode.{mode}, "
                                            f"sat={sat}{sr_txt}); gfloat.encode_ndarray(format_info_ocp_{fmt}, r)",
                    "kind": "element cast", "elem_format": fmt, "input_set": f"cast_{fmt}",
                    "rounding": mode, "sat": sat, "srnumbits": n, "exceptions": exc,
                    "observed_special_codes": probes,
                    "codes_note": "0xFF where the call raised (see extra key 'raised')",
                    "x_layout": "x = cast set tiled to 8 rows (one per srbits row)" if n else "cast set, 1-D"}
            extra = {"raised": raised}
            if sr is not None:
                extra["srbits"] = sr
            suffix = ("" if sat else "_nosat") + ("" if n is None else f"_sr{n}")
            written.append(_common.save("gfloat", f"round_{fmt}_{mode}{suffix}", x=xx, codes=codes,
                                        dequant=r.astype(np.float32), meta=meta, extra=extra, out_dir=out))


def capture_blocks(out, written):
    ver = version("gfloat")
    x = inputs.build("mx_suite", "float32")
    for name, bfi in BLOCKS.items():
        for as_f64 in ((False, True) if name == "mxfp4_e2m1" else (False,)):
            rows, cols = x.shape
            nb = cols // 32
            codes = np.full(x.shape, 0xFF, np.uint8)
            scales = np.full((rows, nb), 0xFF, np.uint8)
            sf = np.full((rows, nb), np.nan)
            deq = np.full(x.shape, np.nan)
            err = np.zeros((rows, nb), np.uint8)
            exc = {}
            for i in range(rows):
                for j in range(nb):
                    b = x[i, j * 32:(j + 1) * 32]
                    if as_f64:
                        b = b.astype(np.float64)
                    try:
                        with np.errstate(all="ignore"):
                            q = gfloat.compute_scale_amax(bfi.etype.emax, b)
                            enc = list(gfloat.encode_block(bfi, q, b / q, RoundMode.TiesToEven))
                            dq = gfloat.quantize_block(bfi, b, gfloat.compute_scale_amax)
                        scales[i, j] = enc[0]
                        codes[i, j * 32:(j + 1) * 32] = np.array(enc[1:], dtype=np.int64).astype(np.uint8)
                        sf[i, j] = float(q)
                        deq[i, j * 32:(j + 1) * 32] = dq
                    except Exception as e:
                        err[i, j] = 1
                        key = f"{type(e).__name__}: {e}"[:160]
                        exc[key] = exc.get(key, 0) + 1
            meta = {"version": ver,
                    "call": f"q = gfloat.compute_scale_amax(format_info_{name}.etype.emax, b); "
                            f"enc = list(gfloat.encode_block(format_info_{name}, q, b / q, RoundMode.TiesToEven)); "
                            f"gfloat.quantize_block(format_info_{name}, b, gfloat.compute_scale_amax)"
                            + (" with b = block.astype(float64)" if as_f64 else " with b a float32 block"),
                    "axis": -1, "block_size": 32, "elem_format": bfi.etype.name, "scale_format": "e8m0",
                    "scale_rule": "FLOOR: 2**clip(floor(log2(amax)) - emax, -127, 127) (np.log2 in the block dtype); "
                                  "all-zero block -> 2**-127",
                    "rounding": "TiesToEven, sat=True (encode_block)", "input_set": "mx_suite",
                    "nibble_order": "n/a (gfloat returns one int code per element)",
                    "scale_layout": "linear row-major", "exceptions": exc,
                    "codes_note": "blocks where gfloat raised have codes/scales 0xFF, scales_f32/dequant NaN and "
                                  "block_error=1 (extra key)"}
            written.append(_common.save("gfloat", f"block_{name}_mx_suite_{'f64' if as_f64 else 'f32'}", x=x,
                                        codes=codes, scales=scales, scales_f32=sf, dequant=deq, meta=meta,
                                        extra={"block_error": err}, out_dir=out))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    written = []
    warnings.filterwarnings("ignore")
    with np.errstate(all="ignore"):
        capture_elements(args.out, written)
        capture_blocks(args.out, written)
    for p in written:
        print("wrote", p)


if __name__ == "__main__":
    main()
