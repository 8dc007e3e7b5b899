"""Capture TransformerEngine's pure-PyTorch NVFP4 reference (transformer_engine/pytorch/custom_recipes/).

Not committed, not installed. Extract from a TransformerEngine checkout (commit given with --commit) the two
files ``custom_recipes/reference_nvfp4.py`` and ``custom_recipes/reference_utils.py`` into
``<te-root>/transformer_engine/pytorch/custom_recipes/`` and provide these stubs (nothing else is needed):
  transformer_engine/__init__.py, transformer_engine/pytorch/__init__.py, .../custom_recipes/__init__.py: empty
  .../custom_recipes/gemm.py: ``class GEMMType(enum.Enum)`` (FPROP, DGRAD, WGRAD) and ``class MMParams``
      (only named in signatures; no GEMM is run)
  transformer_engine/pytorch/quantized_tensor.py: ``class QuantizedTensorStorage: pass`` and ``class Quantizer``
      whose ``__init__(self, *, rowwise, columnwise)`` sets ``rowwise_usage`` / ``columnwise_usage``.
Then: /root/venv-peers/bin/python tests/vendors/capture_te.py --te-root /tmp/te_ref --commit <sha>

Calls captured (exactly):
- 1D:  ``NVFP4QuantizerRef(dtype=Fp4Formats.E2M1, quant_tile_shape=(1, 16)).quantize(x)`` -> rowwise data/scale
- 2D:  same with ``quant_tile_shape=(16, 16)`` (the weight recipe) -> rowwise data/scale
- RHT: ``NVFP4QuantizerRef(dtype=Fp4Formats.E2M1, quant_tile_shape=(1, 16), with_rht=True).quantize(X)`` (the
  default for non-weight tensors, random sign mask on) -> COLUMNWISE data_t/scale_t, i.e. the quantization of
  RHT(X.T). In these files ``x`` is X.T (so codes have x's shape) and ``rht_output`` (extra key) is the
  reference's own ``_apply_rht(X.T)`` result, computed in X's dtype.
- MXFP4 (pow_2_scales=True, 1x32): ``NVFP4QuantizerRef._quantize_blockwise_reference(x, None, 32, 1,
  pow_2_scales=True, eps=0.0)`` directly, because ``quantize()`` raises UnboundLocalError for pow_2_scales at
  this commit (row_input is only assigned on the NVFP4 branch).
The reference has no dequantize: files carry no dequant. global_scale is the encode factor the reference
computed (its local ``global_encode_scale``, read on return of _quantize_blockwise_reference); global_amax
(extra key) is the amax it returned.
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

DT = {"float32": "f32", "bfloat16": "bf16"}


def _to_torch(x: np.ndarray):
    if x.dtype == np.float32:
        return torch.from_numpy(x.copy())
    return torch.from_numpy(x.view(np.uint16).astype(np.int16)).view(torch.bfloat16)


def _unpack(packed: np.ndarray) -> np.ndarray:
    out = np.empty(packed.shape[:-1] + (packed.shape[-1] * 2,), dtype=np.uint8)
    out[..., 0::2] = packed & 0x0F
    out[..., 1::2] = packed >> 4
    return out


class _Locals:
    """Records the locals of every return from functions with a given name (via sys.setprofile)."""

    def __init__(self, name):
        self.name, self.frames = name, []

    def __enter__(self):
        def prof(frame, event, arg):
            if event == "return" and frame.f_code.co_name == self.name:
                self.frames.append(dict(frame.f_locals))
        sys.setprofile(prof)
        return self

    def __exit__(self, *a):
        sys.setprofile(None)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--te-root", required=True)
    ap.add_argument("--commit", required=True)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    sys.path.insert(0, args.te_root)
    from transformer_engine.pytorch.custom_recipes import reference_nvfp4 as ref
    from transformer_engine.pytorch.custom_recipes import reference_utils as ru

    version = f"NVIDIA/TransformerEngine git {args.commit} (transformer_engine/pytorch/custom_recipes/reference_nvfp4.py)"
    written = []
    base = {"version": version, "torch_version": torch.__version__, "elem_format": "e2m1",
            "rounding": "cast_to_fp4x2: interval table equal to RNE on [-6, 6]; NaN -> 0, -0.0 -> 0",
            "nibble_order": "element 2i in the low nibble (bits 0-3), element 2i+1 in the high nibble "
                            "(cast_to_fp4x2 returns result[:, ::2] + result[:, 1::2] * 16)",
            "scale_layout": "linear row-major"}
    for set_name in ("nvfp4_suite", "nvfp4_random", "nvfp4_specials"):
        for dt in ("float32", "bfloat16"):
            x = inputs.build(set_name, dt)
            for cfg in ("1d", "2d", "rht"):
                tile = (16, 16) if cfg == "2d" else (1, 16)
                q = ref.NVFP4QuantizerRef(dtype=ru.Fp4Formats.E2M1, quant_tile_shape=tile, with_rht=(cfg == "rht"))
                if cfg == "rht":
                    X = _to_torch(np.ascontiguousarray(x.T))  # the operand handed to quantize()
                    with _Locals("_quantize_blockwise_reference") as rec:
                        t = q.quantize(X)
                    rht_out = q._apply_rht(X.t().contiguous())
                    codes = _unpack(t.data_t.view(torch.uint8).numpy())
                    scales = t.scale_t.view(torch.uint8).numpy()
                    gamax = t.global_amax_col.float().numpy()
                    g_enc = rec.frames[1]["global_encode_scale"]  # [0] rowwise, [1] columnwise
                    x_file = x  # == X.T
                    extra = {"rht_output": rht_out.float().numpy(), "global_amax": gamax}
                    call = ("NVFP4QuantizerRef(dtype=Fp4Formats.E2M1, quant_tile_shape=(1, 16), with_rht=True)"
                            ".quantize(X) with X = x.T; saved: data_t / scale_t (columnwise = RHT(X.T) = RHT(x))")
                else:
                    xt = _to_torch(x)
                    with _Locals("_quantize_blockwise_reference") as rec:
                        t = q.quantize(xt)
                    codes = _unpack(t.data.view(torch.uint8).numpy())
                    sc = t.scale.view(torch.uint8).numpy()
                    if cfg == "2d":
                        rep = sc.reshape(sc.shape[0] // 16, 16, sc.shape[1])
                        if not (rep == rep[:, :1, :]).all():
                            raise AssertionError("2D scale rows differ within a tile")
                        sc = np.ascontiguousarray(rep[:, 0, :])
                    scales = sc
                    gamax = t.global_amax_row.float().numpy()
                    g_enc = rec.frames[0]["global_encode_scale"]
                    x_file = x
                    extra = {"global_amax": gamax}
                    call = (f"NVFP4QuantizerRef(dtype=Fp4Formats.E2M1, quant_tile_shape={tile}).quantize(x); "
                            "saved: data / scale (rowwise)")
                meta = dict(base, call=call, axis=-1, block_size=16,
                            tile="16x16 (scales saved one per tile: shape (M/16, N/16); the reference returns "
                                 "them repeated over the tile's 16 rows)" if cfg == "2d" else "1x16",
                            scale_format="e4m3fn", input_set=set_name,
                            scale_rule="decode = e4m3(clamp(min(amax * (S_enc * fl(1/6)), FLT_MAX), ±448)); "
                                       "encode = min(1 / (fp32(decode) * (1 / S_enc)), FLT_MAX)",
                            global_scale_convention="encode (S_enc = min(2688 / global_amax, FLT_MAX); "
                                                    "S_enc == 0 -> 1.0)",
                            rht="RHT16 = x_blocks @ (diag(sign) @ H16 * 0.25) in the input dtype, sign mask "
                                "[1,1,1,-1,1,-1,-1,-1,-1,-1,-1,1,-1,1,-1,-1] (bit i set = -1: 0xD7E8); "
                                "columnwise only" if cfg == "rht" else None,
                            stochastic_rounding="not in the Python reference (SR exists only in the CUDA kernels)")
                written.append(_common.save("te_ref", f"nvfp4_{cfg}_{set_name}_{DT[dt]}", x=x_file, codes=codes,
                                            scales=scales.astype(np.uint8),
                                            global_scale=g_enc.float().numpy().reshape(-1), meta=meta,
                                            extra=extra, out_dir=args.out))
    # MXFP4 reference path (pow_2_scales=True, 1x32)
    for dt in ("float32", "bfloat16"):
        x = inputs.build("mx_suite", dt)
        qx, sx = ref.NVFP4QuantizerRef._quantize_blockwise_reference(_to_torch(x), None, 32, 1, pow_2_scales=True,
                                                                     eps=0.0)
        sf = sx.float().numpy()
        meta = dict(base, call="NVFP4QuantizerRef._quantize_blockwise_reference(x, None, 32, 1, pow_2_scales=True, "
                               "eps=0.0)", axis=-1, block_size=32, scale_format="e8m0",
                    scale_rule="decode = 2**clamp(ceil(torch.log2(amax / 6)), -127, 127) in float32 "
                               "(cast_to_e8); encode = 1 / decode; NaN amax -> NaN scale",
                    input_set="mx_suite", quantize_bug="quantize() raises UnboundLocalError for pow_2_scales=True")
        written.append(_common.save("te_ref", f"mxfp4_pow2_mx_suite_{DT[dt]}", x=x,
                                    codes=_unpack(qx.view(torch.uint8).numpy()),
                                    scales=_common.e8m0_codes_from_scales(sf), scales_f32=sf, meta=meta,
                                    out_dir=args.out))
    for p in written:
        print("wrote", p)


if __name__ == "__main__":
    main()
