"""Shared writer for the vendor captures: one schema for every tests/data/vendor_<vendor>_<what>.npz.

Keys of every file:
  x            the input in its true dtype; bfloat16 inputs are stored as their uint16 bit patterns
               (meta["x_dtype"] == "bfloat16", meta["x_storage"] == "uint16 bits").
  codes        uint8 element codes, UNPACKED, same shape as x (low bits hold the code; for 4/6-bit formats the
               code is S·2^(bits-1) + E·2^m + M). Packed vendors are unpacked here; meta["nibble_order"] says
               which nibble held element 0. A code of 0xFF in a 4- or 6-bit format means the vendor produced a
               value outside the format (see meta["codes_note"]).
  scales       uint8 scale codes (E8M0 biased exponent or E4M3 bits) in LINEAR row-major block-grid layout
               (shape = x.shape with the blocked axis divided by the block size). Absent for element casts.
  scales_f32   the vendor's float scales, where it had float scales.
  global_scale float32 tensor scale, where the recipe has one; meta["global_scale_convention"] says
               "encode" (multiply before quantizing, TE 2688/amax) or "decode" (multiply after dequantizing,
               torchao amax/2688).
  dequant      the vendor's own dequantized float32 values, where the vendor has a dequantize.
  meta         a JSON string (np.str_): vendor, version/commit, exact call, axis, block size, element and scale
               formats, rounding, input set, and the oddities observed while capturing.
Other keys a file may add are named in meta["extra_keys"].
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import ml_dtypes

DATA_DIR = Path(__file__).resolve().parents[1] / "data"

# element formats: name -> (bits, ebits, mbits, bias, has_inf_nan)
_ELEM = {
    "e2m1": (4, 2, 1, 1, None),
    "e2m3": (6, 2, 3, 1, None),
    "e3m2": (6, 3, 2, 3, None),
    "e4m3": (8, 4, 3, 7, "fn"),      # NaN = S.1111.111 only
    "e5m2": (8, 5, 2, 15, "ieee"),   # IEEE-like Inf/NaN
}


def _value_table(fmt: str) -> dict:
    """(signbit, magnitude) -> code for every finite code of a float element format (exact)."""
    bits, eb, mb, bias, special = _ELEM[fmt]
    table = {}
    for code in range(2 ** bits):
        s = code >> (bits - 1)
        e = (code >> mb) & (2 ** eb - 1)
        m = code & (2 ** mb - 1)
        if special == "fn" and e == 2 ** eb - 1 and m == 2 ** mb - 1:
            continue
        if special == "ieee" and e == 2 ** eb - 1:
            continue
        mag = m * 2.0 ** (1 - bias - mb) if e == 0 else (1 + m / 2 ** mb) * 2.0 ** (e - bias)
        table[(s, mag)] = code
    return table


def codes_from_values(vals, fmt: str):
    """Exact element codes of values that the vendor returned as floats.

    Returns (codes uint8, n_unrepresentable). NaN maps to the sign-kept canonical NaN of formats that have
    one (e4m3: S.1111.111, e5m2: S.11111.11); ±Inf maps to the Inf codes of e5m2. Anything else that is not a
    value of the format (NaN or Inf in a format without them, a value off the grid) becomes 0xFF.
    For fmt "int8" (MXINT8 elements k/64) the code is k in two's complement.
    """
    v = np.asarray(vals, dtype=np.float64)
    out = np.full(v.shape, 0xFF, dtype=np.uint8)
    flat_v, flat_o = v.ravel(), out.ravel()
    if fmt == "int8":
        k = flat_v * 64.0
        ok = np.isfinite(k) & (k == np.round(k)) & (k >= -128) & (k <= 127)
        flat_o[ok] = (k[ok].astype(np.int64) & 0xFF).astype(np.uint8)
        return out, int((~ok).sum())
    table = _value_table(fmt)
    bits, eb, mb, _, special = _ELEM[fmt]
    bad = 0
    for i, x in enumerate(flat_v):
        s = int(np.signbit(x))
        if np.isnan(x):
            if special is not None:
                flat_o[i] = (s << 7) | (0x7F if special == "fn" else 0x7E)
            else:
                bad += 1
            continue
        if np.isinf(x):
            if special == "ieee":
                flat_o[i] = (s << 7) | 0x7C
            else:
                bad += 1
            continue
        c = table.get((s, abs(x)))
        if c is None:
            bad += 1
        else:
            flat_o[i] = c
    return out, bad


def e8m0_codes_from_scales(s):
    """E8M0 codes of float scales that must be powers of two in [2^-127, 2^127] or NaN (-> 0xFF)."""
    s = np.asarray(s, dtype=np.float64)
    out = np.zeros(s.shape, dtype=np.uint8)
    nan = np.isnan(s)
    out[nan] = 0xFF
    good = ~nan
    m, e = np.frexp(s[good])
    if not np.all(m == 0.5):
        raise AssertionError(f"scale not a power of two: {s[good][m != 0.5][:5]}")
    biased = e.astype(np.int64) - 1 + 127
    if biased.min(initial=0) < 0 or biased.max(initial=0) > 254:
        raise AssertionError("scale outside the E8M0 range")
    out[good] = biased.astype(np.uint8)
    return out


def x_for_storage(x: np.ndarray):
    """(array to store, meta entries) for an input array in float32 / float64 / bfloat16."""
    if x.dtype == ml_dtypes.bfloat16:
        return x.view(np.uint16), {"x_dtype": "bfloat16", "x_storage": "uint16 bits"}
    return x, {"x_dtype": str(x.dtype), "x_storage": "native"}


def save(vendor: str, what: str, *, x, meta: dict, codes=None, scales=None, scales_f32=None, global_scale=None,
         dequant=None, extra: dict | None = None, out_dir: str | os.PathLike | None = None) -> Path:
    """Write tests/data/vendor_<vendor>_<what>.npz in the schema above and return its path."""
    out_dir = Path(out_dir) if out_dir else DATA_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    xs, xmeta = x_for_storage(np.asarray(x))
    arrays = {"x": xs}
    if codes is not None:
        codes = np.asarray(codes)
        if codes.dtype != np.uint8 or codes.shape != np.asarray(x).shape:
            raise AssertionError(f"codes must be uint8 of shape {np.asarray(x).shape}, got {codes.dtype} "
                                 f"{codes.shape}")
        arrays["codes"] = codes
    if scales is not None:
        scales = np.asarray(scales)
        if scales.dtype != np.uint8:
            raise AssertionError("scales must be uint8 codes")
        arrays["scales"] = scales
    if scales_f32 is not None:
        arrays["scales_f32"] = np.asarray(scales_f32, dtype=np.float32)
    if global_scale is not None:
        arrays["global_scale"] = np.asarray(global_scale, dtype=np.float32)
    if dequant is not None:
        arrays["dequant"] = np.asarray(dequant, dtype=np.float32)
    extra = extra or {}
    for k, v in extra.items():
        arrays[k] = np.asarray(v)
    meta = dict(meta)
    meta.update(xmeta)
    meta["vendor"] = vendor
    meta["what"] = what
    if extra:
        meta["extra_keys"] = sorted(extra)
    arrays["meta"] = np.str_(json.dumps(meta, sort_keys=True, default=str))
    path = out_dir / f"vendor_{vendor}_{what}.npz"
    np.savez_compressed(path, **arrays)
    return path


def load(path):
    """(arrays dict, meta dict) of a capture; x comes back in its true dtype."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    if meta.get("x_dtype") == "bfloat16":
        arrays["x"] = arrays["x"].view(ml_dtypes.bfloat16)
    return arrays, meta
