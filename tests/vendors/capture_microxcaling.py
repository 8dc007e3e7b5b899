"""Capture microsoft/microxcaling's PyTorch MX quantizer (mx/mx_ops.py, custom_cuda=False).

Not committed, not installed: fetch the repository and point --mx-root at a directory holding its ``mx/``
package (e.g. ``git --git-dir=<mirror> archive HEAD mx | tar x -C /tmp/microxcaling``), then run
    /root/venv-peers/bin/python tests/vendors/capture_microxcaling.py --mx-root /tmp/microxcaling --commit <sha>

Call captured (exactly): ``mx.mx_ops.quantize_mx_op(xt, MxSpecs(), elem_format=fmt, block_size=32, axes=[-1],
round=rnd)`` with MxSpecs() defaults (scale_bits 8, shared_exp_method "max", mx_flush_fp32_subnorms False,
custom_cuda False). It returns dequantized values only (fake quantization): that is ``dequant``.
To record codes and scales without re-implementing anything, ``mx.mx_ops._quantize_elemwise_core`` is wrapped
by a recorder that passes its arguments through unchanged and keeps (a) its input (the block-scaled values),
(b) its output (the element values, saved as ``elem_values``) and (c) the caller's local ``shared_exp`` (the
final float exponent after the vendor's clamps; NaN marks a scale overflow). codes are the exact codes of the
element values; scales = shared_exp + 127 (NaN -> 0xFF); scales_f32 = 2**shared_exp.
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

FORMATS = {"fp4_e2m1": "e2m1", "fp6_e2m3": "e2m3", "fp6_e3m2": "e3m2", "fp8_e4m3": "e4m3", "fp8_e5m2": "e5m2",
           "int8": "int8"}
BF16_FORMATS = ("fp4_e2m1", "fp8_e4m3")
DT = {"float32": "f32", "bfloat16": "bf16"}


def _to_torch(x: np.ndarray):
    if x.dtype == np.float32:
        return torch.from_numpy(x.copy())
    return torch.from_numpy(x.view(np.uint16).astype(np.int16)).view(torch.bfloat16)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--mx-root", required=True)
    ap.add_argument("--commit", required=True)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    sys.path.insert(0, args.mx_root)
    import mx.mx_ops as mx_ops
    from mx.specs import MxSpecs

    record = {}
    original = mx_ops._quantize_elemwise_core

    def recorder(A, *a, **kw):
        out = original(A, *a, **kw)
        record["scaled_in"] = A.detach().clone()
        record["elem_out"] = out.detach().clone()
        record["shared_exp"] = sys._getframe(1).f_locals["shared_exp"].detach().clone()
        return out

    mx_ops._quantize_elemwise_core = recorder
    written = []
    for fmt_name, fmt in FORMATS.items():
        for rnd in ("nearest", "even"):
            for dt in ("float32", "bfloat16"):
                if dt == "bfloat16" and fmt_name not in BF16_FORMATS:
                    continue
                x = inputs.build("mx_suite", dt)
                xt = _to_torch(x)
                record.clear()
                deq = mx_ops.quantize_mx_op(xt, MxSpecs(), elem_format=fmt_name, block_size=32, axes=[-1],
                                            round=rnd)
                elem = record["elem_out"].float().reshape(x.shape).numpy()
                se = record["shared_exp"].float().reshape(x.shape[0], -1).numpy().astype(np.float64)
                codes, n_bad = _common.codes_from_values(elem, fmt)
                scales = np.where(np.isnan(se), 255, se + 127).astype(np.uint8)
                with np.errstate(over="ignore"):
                    sf = np.where(np.isnan(se), np.nan, np.exp2(se))
                n_nan_scale = int(np.isnan(se).sum())
                meta = {
                    "version": f"microsoft/microxcaling git {args.commit}", "torch_version": torch.__version__,
                    "call": f"mx.mx_ops.quantize_mx_op(x, MxSpecs(), elem_format='{fmt_name}', block_size=32, "
                            f"axes=[-1], round='{rnd}')",
                    "axis": -1, "block_size": 32, "elem_format": fmt, "scale_format": "e8m0",
                    "scale_rule": "FLOOR via floor(torch.log2(amax)) in the input dtype (amax 0 -> log2(2^-126)); "
                                  "shared_exp - emax; > 127 -> NaN (whole block NaN); < -127 -> -127",
                    "rounding": {"nearest": "ties away from zero (floor(|x|·2^k + 0.5))",
                                 "even": "ties to even"}[rnd],
                    "input_set": "mx_suite", "nibble_order": "n/a (vendor returns floats; codes derived exactly)",
                    "scale_layout": "linear row-major",
                    "codes_note": "codes derived exactly from the vendor's element values (elem_values); 0xFF "
                                  f"where an element value is not in the format ({n_bad} such elements: NaN or "
                                  "Inf in formats without them, or off-grid values)",
                    "n_codes_unrepresentable": n_bad, "n_scale_nan_blocks": n_nan_scale,
                    "compute_dtype": dt,
                }
                written.append(_common.save("microxcaling", f"{fmt_name}_{rnd}_mx_suite_{DT[dt]}", x=x, codes=codes,
                                            scales=scales, scales_f32=sf, dequant=deq.float().numpy(), meta=meta,
                                            extra={"elem_values": elem.astype(np.float32)}, out_dir=args.out))
    mx_ops._quantize_elemwise_core = original
    for p in written:
        print("wrote", p)


if __name__ == "__main__":
    main()
