"""Capture Triton's MX helpers: the PyTorch helper classes in ``triton.tools.mxfp`` (MXFP4Tensor, MXScaleTensor)
and, on a GPU, how ``tl.dot_scaled`` decodes E2M1 codes and E8M0 scales (its emulation path on Hopper).

Run: python3 tests/vendors/capture_triton.py [--device cpu|cuda] [--out DIR]

Calls captured (exactly):
- ``triton.tools.mxfp.MXFP4Tensor(data=x).data`` (uint8 code per element, bits 0-3) and ``.to(torch.float32)``
  for dequant, on the float32 E2M1 cast probes;
- ``triton.tools.mxfp.MXScaleTensor(data=x).data`` and ``.to(torch.float32)`` on the float32 E8M0 cast probes;
- (cuda only) a one-block kernel ``c = tl.dot_scaled(a, a_scale, "e2m1", b, b_scale, "e2m1")`` with M = N = 32,
  K = 64: a's rows 0-15 hold E2M1 code 0x2 (1.0) everywhere and scale codes ``a_scale_codes`` (extra key);
  rows 16-31 hold E2M1 code (row - 16) everywhere and scale 127; b is all 1.0 (code 0x2) with scale 127.
  So c[i, j] = 64 * decode_e8m0(a_scale_codes[i]) for i < 16 and 64 * decode_e2m1(i - 16) for i >= 16.
  Saved as vendor_triton_<dev>_dot_scaled_decode.npz with x = the A codes (uint8), c (extra) and no codes.
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
import triton  # noqa: E402

SCALE_PROBE = [0, 1, 2, 3, 64, 126, 127, 128, 129, 200, 252, 253, 254, 255, 0, 127]


def capture_tools(dev, out, written):
    from triton.tools.mxfp import MXFP4Tensor, MXScaleTensor
    for fmt, cls in (("e2m1", MXFP4Tensor), ("e8m0", MXScaleTensor)):
        x = inputs.build(f"cast_{fmt}", "float32")
        labels = inputs.row_labels(f"cast_{fmt}", "float32")
        t = cls(data=torch.from_numpy(x.copy()).to(dev))
        codes = t.data.cpu().numpy().astype(np.uint8)
        back = t.to(torch.float32).cpu().numpy()
        probes = {}
        for p in ("+nan", "-nan", "+inf", "-inf", "-0", "+0", "2*max", "neg 2*max", "dtype_max", "half_min_sub",
                  "neg half_min_sub", "input_min_subnormal"):
            idx = np.nonzero(labels == p)[0]
            if len(idx):
                probes[p] = f"0x{int(codes[idx[0]]):02X} -> {float(back[idx[0]])!r}"
        meta = {"version": f"triton {triton.__version__}", "torch_version": torch.__version__, "device": dev,
                "call": f"triton.tools.mxfp.{cls.__name__}(data=x).data; .to(torch.float32)",
                "kind": "element cast", "elem_format": fmt, "input_set": f"cast_{fmt}",
                "rounding": "MXFP4Tensor: nearest by distance, ties broken by subtracting 1e-6 from even-mantissa "
                            "candidates; MXScaleTensor: floor(torch.log2(x)), x <= 0 / NaN / Inf -> 0xFF",
                "observed_special_codes": probes}
        written.append(_common.save(f"triton_{dev}", f"tools_mxfp_cast_{fmt}_from_f32", x=x, codes=codes,
                                    dequant=back, meta=meta, out_dir=out))


def capture_dot_scaled(out, written):
    import triton.language as tl

    @triton.jit
    def kernel(a_ptr, as_ptr, b_ptr, bs_ptr, c_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr):
        om = tl.arange(0, M)
        on = tl.arange(0, N)
        ok2 = tl.arange(0, K // 2)
        os_ = tl.arange(0, K // 32)
        a = tl.load(a_ptr + om[:, None] * (K // 2) + ok2[None, :])
        b = tl.load(b_ptr + ok2[:, None] * N + on[None, :])
        a_s = tl.load(as_ptr + om[:, None] * (K // 32) + os_[None, :])
        b_s = tl.load(bs_ptr + on[:, None] * (K // 32) + os_[None, :])
        c = tl.dot_scaled(a, a_s, "e2m1", b, b_s, "e2m1")
        tl.store(c_ptr + om[:, None] * N + on[None, :], c)

    M = N = 32
    K = 64
    a_codes = np.full((M, K), 2, np.uint8)
    for i in range(16):
        a_codes[16 + i, :] = i
    a_scale = np.full((M, K // 32), 127, np.uint8)
    for i, c in enumerate(SCALE_PROBE):
        a_scale[i, :] = c
    a_packed = (a_codes[:, 0::2] | (a_codes[:, 1::2] << 4)).astype(np.uint8)          # (M, K/2), K-packed
    b_packed = np.full((K // 2, N), 0x22, np.uint8)                                     # (K/2, N), K-packed
    b_scale = np.full((N, K // 32), 127, np.uint8)
    dev = "cuda"
    t = {k: torch.from_numpy(v).to(dev) for k, v in
         {"a": a_packed, "as": a_scale, "b": b_packed, "bs": b_scale}.items()}
    c = torch.empty((M, N), dtype=torch.float32, device=dev)
    meta = {"version": f"triton {triton.__version__}", "torch_version": torch.__version__,
            "device": torch.cuda.get_device_name(),
            "call": "tl.dot_scaled(a, a_scale, 'e2m1', b, b_scale, 'e2m1') (default fast_math=False, k-packed "
                    "operands, out_dtype float32); M = N = 32, K = 64, one program",
            "kind": "decode probe", "nibble_order": "element 2i in the low nibble of a (K-packed)",
            "expected": "c[i, :] = 64 * 2^(a_scale_codes[i] - 127) (i < 16; code 255 is NaN); "
                        "c[16 + e, :] = 64 * E2M1(e)"}
    try:
        kernel[(1,)](t["a"], t["as"], t["b"], t["bs"], c, M=M, N=N, K=K)
        torch.cuda.synchronize()
        cval = c.cpu().numpy()
        meta["status"] = "ran"
    except Exception as e:  # record why it could not run
        cval = np.full((M, N), np.nan, np.float32)
        meta["status"] = f"failed: {type(e).__name__}: {str(e)[:300]}"
    written.append(_common.save("triton_cuda", "dot_scaled_decode", x=a_codes, meta=meta,
                                extra={"c": cval, "a_scale_codes": a_scale[:, 0].copy()}, out_dir=out))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    written = []
    capture_tools(args.device, args.out, written)
    if args.device == "cuda":
        capture_dot_scaled(args.out, written)
    for p in written:
        print("wrote", p)


if __name__ == "__main__":
    main()
