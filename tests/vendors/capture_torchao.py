"""Capture torchao's MX and NVFP4 quantizers (torchao.prototype.mx_formats), eager PyTorch.

Run: /root/venv-peers/bin/python tests/vendors/capture_torchao.py [--device cpu|cuda] [--out DIR]
Files: vendor_torchao_<device>_<config>_<set>_<dtype>.npz (schema: tests/vendors/_common.py).

Calls captured (exactly):
- MX: ``torchao.prototype.mx_formats.mx_tensor.to_mx(x, elem_dtype, 32, scaling_mode)`` for the scales and data,
  and ``MXTensor.to_mx(x, elem_dtype, 32, scaling_mode).dequantize(torch.float32)`` for dequant.
- NVFP4: ``nvfp4_tensor.nvfp4_quantize(x, 16, per_tensor_scale)`` for scales and data, and
  ``NVFP4Tensor.to_nvfp4(x, 16, per_tensor_scale).dequantize(torch.float32)`` for dequant, with
  per_tensor_scale None or ``per_tensor_amax_to_scale(torch.max(torch.abs(x)))`` (decode convention amax/2688).
- element helpers: ``kernels.f32_to_f4_unpacked`` / ``f32_to_f6_e2m3_unpacked`` / ``f32_to_f6_e3m2_unpacked`` on
  float32 cast probes, with ``f4_unpacked_to_f32`` etc. for dequant.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inputs  # noqa: E402
import _common  # noqa: E402

warnings.filterwarnings("ignore")
import torch  # noqa: E402
import torchao  # noqa: E402
from torchao.prototype.mx_formats import mx_tensor, nvfp4_tensor, kernels  # noqa: E402
from torchao.prototype.mx_formats.config import ScaleCalculationMode  # noqa: E402
from torchao.prototype.mx_formats.constants import DTYPE_FP6_E2M3, DTYPE_FP6_E3M2  # noqa: E402

DT = {"float32": "f32", "bfloat16": "bf16"}


def _to_torch(x: np.ndarray, device: str):
    if x.dtype == np.float32:
        return torch.from_numpy(x.copy()).to(device)
    return torch.from_numpy(x.view(np.uint16).astype(np.int16)).view(torch.bfloat16).to(device)


def _unpack_nibbles(packed: np.ndarray) -> np.ndarray:
    """torchao pack_uint4: element 2i in the low nibble, element 2i+1 in the high nibble."""
    out = np.empty(packed.shape[:-1] + (packed.shape[-1] * 2,), dtype=np.uint8)
    out[..., 0::2] = packed & 0x0F
    out[..., 1::2] = packed >> 4
    return out


MX_CONFIGS = [
    # (name, elem_dtype expression, elem_dtype, fmt, modes)
    ("mxfp4", "torch.float4_e2m1fn_x2", torch.float4_e2m1fn_x2, "e2m1", ("FLOOR", "CEIL", "EVEN", "RCEIL")),
    ("mxfp8_e4m3", "torch.float8_e4m3fn", torch.float8_e4m3fn, "e4m3", ("FLOOR", "RCEIL")),
    ("mxfp8_e5m2", "torch.float8_e5m2", torch.float8_e5m2, "e5m2", ("FLOOR", "RCEIL")),
    ("mxfp6_e2m3", "DTYPE_FP6_E2M3", DTYPE_FP6_E2M3, "e2m3", ("FLOOR", "RCEIL")),
    ("mxfp6_e3m2", "DTYPE_FP6_E3M2", DTYPE_FP6_E3M2, "e3m2", ("FLOOR", "RCEIL")),
]


def capture_mx(dev, out, written):
    for name, expr, edt, fmt, modes in MX_CONFIGS:
        for mode in modes:
            sm = getattr(ScaleCalculationMode, mode)
            for dt in ("float32", "bfloat16"):
                x = inputs.build("mx_suite", dt)
                xt = _to_torch(x, dev)
                scale, data = mx_tensor.to_mx(xt, edt, 32, sm)
                scales = scale.view(torch.uint8).cpu().numpy()
                if edt == torch.float4_e2m1fn_x2:
                    codes = _unpack_nibbles(data.view(torch.uint8).cpu().numpy())
                    nib = "element 2i in the low nibble (bits 0-3), element 2i+1 in the high nibble"
                elif edt in (torch.float8_e4m3fn, torch.float8_e5m2):
                    codes = data.view(torch.uint8).cpu().numpy()
                    nib = "n/a (one byte per element)"
                else:
                    codes = data.cpu().numpy().astype(np.uint8)
                    nib = "n/a (one unpacked 6-bit code per byte, in bits 0-5)"
                mxt = mx_tensor.MXTensor.to_mx(xt, edt, 32, sm)
                deq = mxt.dequantize(torch.float32).cpu().numpy()
                meta = {
                    "version": torchao.__version__, "torch_version": torch.__version__, "device": dev,
                    "call": f"to_mx(x, {expr}, 32, ScaleCalculationMode.{mode}); "
                            f"MXTensor.to_mx(x, {expr}, 32, ScaleCalculationMode.{mode}).dequantize(torch.float32)",
                    "axis": -1, "block_size": 32, "elem_format": fmt, "scale_format": "e8m0",
                    "scale_rule": mode, "rounding": "RNE (torch cast / torchao bit-trick helpers)",
                    "input_set": "mx_suite", "nibble_order": nib, "scale_layout": "linear row-major (not swizzled)",
                    "rceil_path": ("eager fallback: ceil(torch.log2(amax / max_pos)) in float32 "
                                   "(not the SM100 cvt.rp.satfinite.ue8m0x2.f32 path)") if mode == "RCEIL" else None,
                }
                written.append(_common.save(f"torchao_{dev}", f"{name}_{mode.lower()}_mx_suite_{DT[dt]}", x=x,
                                            codes=codes.astype(np.uint8), scales=scales.astype(np.uint8),
                                            dequant=deq, meta=meta, out_dir=out))


def capture_nvfp4(dev, out, written):
    for set_name in ("nvfp4_suite", "nvfp4_random", "nvfp4_specials"):
        for use_pts in (False, True):
            for dt in ("float32", "bfloat16"):
                x = inputs.build(set_name, dt)
                xt = _to_torch(x, dev)
                pts = None
                if use_pts:
                    amax = torch.max(torch.abs(xt))
                    pts = nvfp4_tensor.per_tensor_amax_to_scale(amax)
                scales, data = nvfp4_tensor.nvfp4_quantize(xt, 16, pts)
                codes = _unpack_nibbles(data.view(torch.uint8).cpu().numpy())
                t = nvfp4_tensor.NVFP4Tensor.to_nvfp4(xt, 16, pts)
                deq = t.dequantize(torch.float32).cpu().numpy()
                meta = {
                    "version": torchao.__version__, "torch_version": torch.__version__, "device": dev,
                    "call": ("pts = per_tensor_amax_to_scale(torch.max(torch.abs(x))); " if use_pts else "pts = None; ")
                            + "nvfp4_quantize(x, 16, pts); NVFP4Tensor.to_nvfp4(x, 16, pts).dequantize(torch.float32)",
                    "axis": -1, "block_size": 16, "elem_format": "e2m1", "scale_format": "e4m3fn (ue4m3 in use)",
                    "scale_rule": "amax/6 (single level) or (amax/6)/pts (two level), clamp [2^-6, 448], cast RNE",
                    "rounding": "RNE (torchao f32_to_f4_unpacked)", "input_set": set_name,
                    "nibble_order": "element 2i in the low nibble (bits 0-3), element 2i+1 in the high nibble",
                    "scale_layout": "linear row-major (not swizzled)",
                    "global_scale_convention": "decode (per_tensor_scale = amax / (448*6); dequant multiplies)"
                                               if use_pts else None,
                }
                written.append(_common.save(
                    f"torchao_{dev}", f"nvfp4_{'pts' if use_pts else 'nopts'}_{set_name}_{DT[dt]}", x=x,
                    codes=codes, scales=scales.view(torch.uint8).cpu().numpy().astype(np.uint8),
                    global_scale=None if pts is None else pts.float().cpu().numpy().reshape(1),
                    dequant=deq, meta=meta, out_dir=out))


def capture_helpers(dev, out, written):
    helpers = [("e2m1", kernels.f32_to_f4_unpacked, kernels.f4_unpacked_to_f32, "f32_to_f4_unpacked"),
               ("e2m3", kernels.f32_to_f6_e2m3_unpacked, kernels.f6_e2m3_unpacked_to_f32, "f32_to_f6_e2m3_unpacked"),
               ("e3m2", kernels.f32_to_f6_e3m2_unpacked, kernels.f6_e3m2_unpacked_to_f32, "f32_to_f6_e3m2_unpacked")]
    for fmt, enc, dec, fname in helpers:
        x = inputs.build(f"cast_{fmt}", "float32")
        labels = inputs.row_labels(f"cast_{fmt}", "float32")
        c = enc(_to_torch(x, dev))
        back = dec(c).cpu().numpy()
        codes = c.cpu().numpy().astype(np.uint8)
        probes = {}
        for p in ("+nan", "-nan", "+inf", "-inf", "-0", "2*max", "neg 2*max", "dtype_max", "half_min_sub",
                  "neg half_min_sub"):
            idx = np.nonzero(labels == p)[0]
            if len(idx):
                probes[p] = f"0x{int(codes[idx[0]]):02X} -> {float(back[idx[0]])!r}"
        meta = {"version": torchao.__version__, "torch_version": torch.__version__, "device": dev,
                "call": f"torchao.prototype.mx_formats.kernels.{fname}(x); decode with the matching *_to_f32",
                "kind": "element cast", "elem_format": fmt, "input_set": f"cast_{fmt}",
                "rounding": "RNE (bit trick), saturating", "observed_special_codes": probes}
        written.append(_common.save(f"torchao_{dev}", f"cast_{fmt}_helper_from_f32", x=x, codes=codes, dequant=back,
                                    meta=meta, out_dir=out))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    written = []
    capture_helpers(args.device, args.out, written)
    capture_mx(args.device, args.out, written)
    capture_nvfp4(args.device, args.out, written)
    for p in written:
        print("wrote", p)


if __name__ == "__main__":
    main()
