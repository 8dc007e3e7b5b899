"""Capture the FP4 design-space paper's simulator (MrHuff/mfu-fp4-training,
low_bits_training/experiments/mxfp4/quantization/, Graphcore 2025).

Not committed, not installed. The repository has no fetchable snapshot here; its files were read from the
search index at commit 1f7b1b1d206e4779dd977771833e0736c8ef4f79 and placed under <paper-root>/quantization/:
customTorchQuantiser.py and dimensionQuantisationClass.py verbatim; MXFPconfig.py verbatim less a trailing
comment block; ExMy.py trimmed to ExMy_new (+ imports); quantization_autograd_functions.py trimmed to
E2M1QuantizerSR / E2M1Quantizer (+ imports); __init__.py replaced by a comment (the original imports
``.mxfp``, which the snapshot lacks). Run:
    /root/venv-peers/bin/python tests/vendors/capture_paper.py --paper-root /tmp/mfu

Version shims applied before import (the code targets older gfloat / torchao releases than any one installable
pair; each shim renames, it does not change a number):
- gfloat 0.5.2 FormatInfo lacks ``expBias`` and ``has_infs`` (gfloat 0.4 names, used by customTorchQuantiser);
  they are added as properties returning ``bias`` and ``num_posinfs > 0``. (gfloat 0.4 has the names but its
  round_ndarray is numpy-only, which ExMy_new calls with torch tensors.)
- torchao 0.18 constants lack ``DTYPE_FP4``; it is set to "fp4_e2m1" (the paper's own MXFPconfig value) and
  appended to ``SUPPORTED_ELEM_DTYPES``. F4_E2M1_MAX (6.0) and F4_E2M1_MAX_POW2 (2) are unchanged.

Calls captured (exactly; the configuration mirrors mxfp4_utils/test_mxfp_single_quantization.py):
    sm = MXFPscalingModule(elem_dtype="fp4_e2m1", block_size=B, block_dim=None, roundMode=R,
                           scale_type=S, use_approx={"smooth": "STE", "alpha": 1.0, "stepGradient": "STE",
                           "use_tensor_scaling": T}, fp_scale_factor=False)
    mx, _, pre = new_to_mx(tensor=x, scalingModule=sm, fp4_quantiser=E2M1Quantizer())
    dequant = mx.to_dtype(torch.float32)
Saved: codes = exact E2M1 codes of mx._data (element values); scales = codes of mx._scale_lp, which is an
ENCODE scale (elements = E2M1(clamp(x / g * s, ±6)), dequant = q / s * g): E8M0 code of s, or E4M3 bits of s;
scales_f32 = s; global_scale = g (1.0 without tensor scaling; otherwise the tensor amax, divided out first:
meta says "divide").
Element SR file: quantization.customTorchQuantiser.round_ndarray(format_info_ocp_e2m1, x, RoundMode.Stochastic,
sat=True, srbits=srbits, srnumbits=16), with srbits a tensor of x's dtype as E2M1QuantizerSR passes them.
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
import ml_dtypes  # noqa: E402

DT = {"float32": "f32", "bfloat16": "bf16"}
CONFIGS = [
    # name, scale_type, round mode, tensor scaling, block size, input sets
    ("e8m0_rtp_b32", "E8M0", "TowardPositive", False, 32, ("mx_suite",)),
    ("e8m0_rne_b32", "E8M0", "TiesToEven", False, 32, ("mx_suite",)),
    ("e8m0_rtp_ts_b32", "E8M0", "TowardPositive", True, 32, ("nvfp4_random",)),
    ("e4m3_rtp_ts_b16", "E4M3", "TowardPositive", True, 16, ("nvfp4_random", "nvfp4_suite")),
    ("e4m3_rne_ts_b16", "E4M3", "TiesToEven", True, 16, ("nvfp4_random",)),
]


def _to_torch(x: np.ndarray):
    if x.dtype == np.float32:
        return torch.from_numpy(x.copy())
    return torch.from_numpy(x.view(np.uint16).astype(np.int16)).view(torch.bfloat16)


def _shim():
    import gfloat.types as gt
    if not hasattr(gt.FormatInfo, "expBias"):
        gt.FormatInfo.expBias = property(lambda self: self.bias)
    if not hasattr(gt.FormatInfo, "has_infs"):
        gt.FormatInfo.has_infs = property(lambda self: self.num_posinfs > 0)
    from torchao.prototype.mx_formats import constants as c
    if not hasattr(c, "DTYPE_FP4"):
        c.DTYPE_FP4 = "fp4_e2m1"
        c.SUPPORTED_ELEM_DTYPES.append("fp4_e2m1")


def _scale_codes(s: np.ndarray, scale_type: str) -> np.ndarray:
    if scale_type == "E8M0":
        return _common.e8m0_codes_from_scales(s)
    codes, bad = _common.codes_from_values(s, "e4m3")
    if bad:
        raise AssertionError(f"{bad} E4M3 scales off the grid")
    return codes


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--paper-root", required=True)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    sys.path.insert(0, args.paper_root)
    _shim()
    import gfloat
    from importlib.metadata import version
    from quantization.dimensionQuantisationClass import MXFPscalingModule, new_to_mx
    from quantization.quantization_autograd_functions import E2M1Quantizer
    from quantization import customTorchQuantiser as ctq
    from gfloat.formats import format_info_ocp_e2m1

    ver = ("MrHuff/mfu-fp4-training git 1f7b1b1d206e4779dd977771833e0736c8ef4f79 "
           f"(with gfloat {version('gfloat')}, torchao {version('torchao')}, torch {torch.__version__})")
    written = []
    for name, stype, rmode, ts, bs, sets in CONFIGS:
        for set_name in sets:
            for dt in ("float32", "bfloat16"):
                x = inputs.build(set_name, dt)
                sm = MXFPscalingModule(elem_dtype="fp4_e2m1", block_size=bs, block_dim=None,
                                       roundMode=getattr(gfloat.RoundMode, rmode), scale_type=stype,
                                       use_approx={"smooth": "STE", "alpha": 1.0, "stepGradient": "STE",
                                                   "use_tensor_scaling": ts}, fp_scale_factor=False)
                with np.errstate(all="ignore"):
                    mx, _, pre = new_to_mx(tensor=_to_torch(x), scalingModule=sm, fp4_quantiser=E2M1Quantizer())
                    deq = mx.to_dtype(torch.float32).numpy()
                elem = mx._data.float().numpy().reshape(x.shape)
                codes, bad = _common.codes_from_values(elem, "e2m1")
                s = mx._scale_lp.float().numpy().reshape(x.shape[0], x.shape[1] // bs).astype(np.float64)
                g = float(mx._g) if ts else 1.0
                meta = {"version": ver,
                        "call": f"new_to_mx(tensor=x, scalingModule=MXFPscalingModule(elem_dtype='fp4_e2m1', "
                                f"block_size={bs}, block_dim=None, roundMode=RoundMode.{rmode}, scale_type='{stype}', "
                                f"use_approx={{'smooth': 'STE', 'alpha': 1.0, 'stepGradient': 'STE', "
                                f"'use_tensor_scaling': {ts}}}, fp_scale_factor=False), "
                                f"fp4_quantiser=E2M1Quantizer()); dequant = mx.to_dtype(torch.float32)",
                        "axis": -1, "block_size": bs, "elem_format": "e2m1", "scale_format": stype.lower(),
                        "scale_convention": "ENCODE: s = round_{scale_type}(6 / amax * g) rounded with "
                                            f"RoundMode.{rmode}, sat=True, then clip(min = 2^-127 (E8M0) or the "
                                            "smallest subnormal (E4M3)); amax 0 -> 1; elements = E2M1(clamp(x/g * s))",
                        "rounding": "elements RNE (customTorchQuantiser.round_ndarray, TiesToEven, sat=True)",
                        "compute_dtype": dt, "input_set": set_name,
                        "nibble_order": "n/a (vendor returns float element values; codes derived exactly)",
                        "scale_layout": "linear row-major",
                        "global_scale_convention": "divide: elements computed from x / g; dequant = q / s * g "
                                                   "(g = tensor amax)" if ts else None,
                        "codes_note": f"{bad} element values not in E2M1 (0xFF)",
                        "n_codes_unrepresentable": bad}
                written.append(_common.save("paper_sim", f"{name}_{set_name}_{DT[dt]}", x=x, codes=codes,
                                            scales=_scale_codes(s, stype), scales_f32=s, global_scale=np.array([g]),
                                            dequant=deq, meta=meta, extra={"elem_values": elem.astype(np.float32)},
                                            out_dir=args.out))
    # element-level stochastic rounding as E2M1QuantizerSR does it, with the random bits made explicit
    for dt in ("float32", "bfloat16"):
        x0 = inputs.build("cast_e2m1", dt)
        bits = np.concatenate([np.zeros((1, x0.size)), np.full((1, x0.size), 65535.0), np.full((1, x0.size), 32768.0),
                               np.full((1, x0.size), 32767.0),
                               np.array([[inputs._Rng(0x5EED0007 + r).u64() & 0xFFFF for _ in range(x0.size)]
                                         for r in range(4)], dtype=np.float64)])
        x = np.broadcast_to(x0, bits.shape).copy()
        xt = _to_torch(x)
        srb = torch.tensor(bits, dtype=torch.float32).to(xt.dtype)
        r = ctq.round_ndarray(format_info_ocp_e2m1, xt, gfloat.RoundMode.Stochastic, sat=True, srbits=srb,
                              srnumbits=16).float().numpy()
        codes, bad = _common.codes_from_values(r, "e2m1")
        meta = {"version": ver, "kind": "element cast", "elem_format": "e2m1", "input_set": "cast_e2m1 tiled to 8 rows",
                "call": "quantization.customTorchQuantiser.round_ndarray(format_info_ocp_e2m1, x, RoundMode.Stochastic, "
                        "sat=True, srbits=srbits, srnumbits=16) with srbits a tensor of x's dtype (as E2M1QuantizerSR)",
                "srbits_note": "extra key srbits = the values actually passed (after conversion to x's dtype: in "
                               "bfloat16 large integers are rounded to the bf16 grid, as in E2M1QuantizerSR)",
                "codes_note": f"{bad} values not in E2M1 (0xFF)", "rounding": "Stochastic (gfloat algorithm, torch port)"}
        written.append(_common.save("paper_sim", f"round_e2m1_stochastic_sr16_{DT[dt]}", x=x, codes=codes,
                                    dequant=r, meta=meta, extra={"srbits": srb.float().numpy()}, out_dir=args.out))
    for p in written:
        print("wrote", p)


if __name__ == "__main__":
    main()
