"""Capture torch's element casts (float32/bfloat16 -> float8_e4m3fn, float8_e5m2, float8_e8m0fnu, float4).

Run: /root/venv-peers/bin/python tests/vendors/capture_torch.py [--device cpu|cuda] [--out DIR]
Writes vendor_<name>_cast_<fmt>_from_<dtype>.npz (name defaults to torch_<device>) (see tests/vendors/_common.py for the schema).
The call captured is exactly ``torch.tensor(x, device=device).to(torch_dtype)``; codes are the result's bytes
(``.view(torch.uint8)``), dequant is ``result.to(torch.float32)``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inputs  # noqa: E402
import _common  # noqa: E402

import torch  # noqa: E402

TARGETS = {
    "e4m3": "float8_e4m3fn",
    "e5m2": "float8_e5m2",
    "e8m0": "float8_e8m0fnu",
    "e2m1": "float4_e2m1fn_x2",
}
PROBES = ("+nan", "-nan", "+inf", "-inf", "-0", "+0", "2*max", "neg 2*max", "dtype_max", "neg dtype_max",
          "input_min_subnormal", "half_min_sub", "neg half_min_sub")


def _to_torch(x: np.ndarray, device: str):
    if x.dtype == np.float32:
        return torch.from_numpy(x.copy()).to(device)
    return torch.from_numpy(x.view(np.uint16).astype(np.int16)).view(torch.bfloat16).to(device)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None)
    ap.add_argument("--name", default=None, help="vendor name in the file names (default torch_<device>)")
    args = ap.parse_args(argv)
    dev = args.device
    vendor = args.name or f"torch_{dev}"
    dev_name = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
    written, failures = [], {}
    for fmt, tname in TARGETS.items():
        tdtype = getattr(torch, tname, None)
        for dt in ("float32", "bfloat16"):
            x = inputs.build(f"cast_{fmt}", dt)
            labels = inputs.row_labels(f"cast_{fmt}", dt)
            call = f"torch.tensor(x, dtype=torch.{'float32' if dt == 'float32' else 'bfloat16'}, device='{dev}')" \
                   f".to(torch.{tname})"
            if tdtype is None:
                failures[f"{fmt}/{dt}"] = f"torch has no dtype {tname}"
                continue
            try:
                y = _to_torch(x, dev).to(tdtype)
                codes = y.view(torch.uint8).cpu().numpy().astype(np.uint8)
                back = y.to(torch.float32).cpu().numpy()
            except Exception as e:  # record why a cast does not exist
                failures[f"{fmt}/{dt}"] = f"{type(e).__name__}: {e}"
                continue
            probes = {}
            for p in PROBES:
                idx = np.nonzero(labels == p)[0]
                if len(idx):
                    probes[p] = f"0x{int(codes[idx[0]]):02X} -> {float(back[idx[0]])!r}"
            meta = {
                "version": torch.__version__, "device": dev_name, "call": call,
                "kind": "element cast", "elem_format": fmt, "input_set": f"cast_{fmt}",
                "rounding": "vendor default (observed)", "observed_special_codes": probes,
                "labels_note": "inputs.row_labels('cast_%s', '%s') names each element" % (fmt, dt),
            }
            written.append(_common.save(vendor, f"cast_{fmt}_from_{'f32' if dt == 'float32' else 'bf16'}",
                                        x=x, codes=codes, dequant=back, meta=meta, out_dir=args.out))
    for p in written:
        print("wrote", p)
    for k, v in failures.items():
        print("FAILED", k, v)


if __name__ == "__main__":
    main()
