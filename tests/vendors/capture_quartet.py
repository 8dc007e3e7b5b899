"""Capture Quartet's MXFP4 forward/backward quantizers (IST-DASLab/Quartet,
src/models/quantization/quantizers/mxfp4_triton.py, a Triton kernel: GPU only).

Not committed. Copy the kernel file from a Quartet checkout (commit given with --commit) and instrument it with
two extra stores only (the group-transformed values ``x_had_grouped`` and the per-group ``shared_exps``, written
to two extra output pointers; the wrapper returns them and the seed). No computation is changed. Then on a GPU:
    python3 tests/vendors/capture_quartet.py --kernel <instrumented.py> --commit <sha> --out DIR

Calls captured (exactly as the quantizer classes call the wrapper; x on CUDA, contiguous):
- quest:   ``mxfp4_forward_kernel_wrapper(x, H, return_clip_mask=True, stochastic_round=False, quest=True,
           gaussian_scale=2.92247856 / 6.0)``   (QuestMXFP4Quantizer.forward, the forward pass)
- tseng_sr: ``mxfp4_forward_kernel_wrapper(x, H, return_clip_mask=False, stochastic_round=True, quest=False,
           gaussian_scale=3/4)`` after ``random.seed(20250)`` (AlbertTsengQuantizer default, backward pass;
           the wrapper draws seed = random.randint(0, 1000000); the seed used is saved in meta)
- tseng_rtn: same with stochastic_round=False (AlignedAlbertTsengQuantizer before its x1.009276 factor)
H is ``hadamard_transform(torch.eye(32), scale=32**-0.5)`` of fast_hadamard_transform, i.e. the Sylvester H32
times fl32(32^-0.5), built here directly (that package is not installed), then ``.to(x.dtype)`` as the
quantizer classes do. The kernel computes ``tl.dot(x, H)`` (for float32 x Triton's default input precision,
tf32, applies), groups of 32 along the flattened last axis.
Saved: dequant = the wrapper's output (x's dtype, as float32); ``had`` (extra) = the transformed values;
scales_f32 = shared_exps; codes and scales from derive_codes_scales() (exact inversion of the kernel's final
fp32 multiply and store); ``clip_mask`` (extra, quest only). ``--rederive DIR`` re-applies
derive_codes_scales to already captured files (no GPU needed).
"""
from __future__ import annotations

import argparse
import importlib.util
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inputs  # noqa: E402
import _common  # noqa: E402

import ml_dtypes  # noqa: E402
import torch  # noqa: E402

DT = {"float32": "f32", "bfloat16": "bf16"}


_E2M1 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])


def derive_codes_scales(deq: np.ndarray, se: np.ndarray, quest: bool, dtype: str):
    """Invert the kernel's last step exactly: dequant = to_dtype(fl32(q * shared_exp)).

    For every element the E2M1 value q whose product, rounded as the kernel rounds it, equals the stored
    dequant is found by trying all 15 values (products of distinct q differ, so a match is unique); 0xFF where
    none matches (NaN/Inf blocks). Scale codes: quest scales are powers of two (code = log2 + 127); tseng scales
    are fl32(2^k / 0.75): code = k + 127 when fl32(2^k / 0.75) reproduces the scale exactly, else 0xFF.
    """
    full = np.repeat(se.astype(np.float32), 32, axis=1)
    codes = np.full(deq.shape, 0xFF, np.uint8)
    for code in range(16):
        q = np.float32(_E2M1[code & 7] * (-1.0 if code & 8 else 1.0))
        with np.errstate(all="ignore"):
            prod = (q * full).astype(np.float32)
            if dtype == "bfloat16":
                prod = prod.astype(ml_dtypes.bfloat16).astype(np.float32)
        hit = (prod == deq) & (np.signbit(prod) == np.signbit(deq)) & (codes == 0xFF)
        codes[hit] = code
    sef = se.astype(np.float64)
    with np.errstate(all="ignore"):
        k = np.round(np.log2(sef * (1.0 if quest else 0.75)))
        ok = np.isfinite(k) & (k >= -127) & (k <= 127)
        kk = np.where(ok, k, 0.0)
        back = np.exp2(kk).astype(np.float32) if quest else (np.exp2(kk).astype(np.float32) / np.float32(0.75))
    ok &= back.astype(np.float32) == se.astype(np.float32)
    scales = np.where(ok, kk + 127, 255).astype(np.uint8)
    return codes, scales, int((codes == 0xFF).sum())


def _to_torch(x: np.ndarray, dev):
    if x.dtype == np.float32:
        return torch.from_numpy(x.copy()).to(dev)
    return torch.from_numpy(x.view(np.uint16).astype(np.int16)).view(torch.bfloat16).to(dev)


def sylvester(n: int) -> torch.Tensor:
    h = torch.ones((1, 1), dtype=torch.float32)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernel")
    ap.add_argument("--commit")
    ap.add_argument("--out", default=None)
    ap.add_argument("--rederive", default=None, help="directory of captured vendor_quartet_*.npz to fix up")
    args = ap.parse_args(argv)
    if args.rederive:
        return rederive(args.rederive)
    spec = importlib.util.spec_from_file_location("quartet_mxfp4_triton", args.kernel)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import triton
    dev = "cuda"
    H32 = sylvester(32) * torch.tensor(32 ** -0.5, dtype=torch.float32)
    written = []
    configs = {"quest": dict(return_clip_mask=True, stochastic_round=False, quest=True, gaussian_scale=2.92247856 / 6.0),
               "tseng_sr": dict(return_clip_mask=False, stochastic_round=True, quest=False, gaussian_scale=3 / 4),
               "tseng_rtn": dict(return_clip_mask=False, stochastic_round=False, quest=False, gaussian_scale=3 / 4)}
    for cname, kw in configs.items():
        for set_name in ("mx_suite", "nvfp4_random"):
            for dt in ("float32", "bfloat16"):
                x = inputs.build(set_name, dt)
                xt = _to_torch(x, dev)
                H = H32.to(dev).to(xt.dtype)
                random.seed(20250)
                out, mask, had, sexp, seed = mod.mxfp4_forward_kernel_wrapper(xt, H, **kw)
                torch.cuda.synchronize()
                deq = out.float().cpu().numpy()
                se = sexp.cpu().numpy().astype(np.float64).reshape(x.shape[0], x.shape[1] // 32)
                codes, sc, bad = derive_codes_scales(deq, se, kw["quest"], dt)
                meta = {"version": f"IST-DASLab/Quartet git {args.commit}; triton {triton.__version__}; "
                                   f"torch {torch.__version__}",
                        "device": torch.cuda.get_device_name(),
                        "call": f"mxfp4_forward_kernel_wrapper(x, H, {', '.join(f'{k}={v!r}' for k, v in kw.items())})"
                                + (" after random.seed(20250)" if kw["stochastic_round"] else ""),
                        "seed": seed, "axis": -1, "block_size": 32, "hadamard": "Sylvester H32 * fl32(32^-0.5), "
                        "cast to x.dtype; x_had = tl.dot(x_rows_of_32, H)", "elem_format": "e2m1",
                        "scale_format": "power of two (quest) / 2^(floor(log2 amax)-2) * 4/3 (tseng): float, "
                                        "see scales_f32",
                        "scale_rule": ("quest: 2^floor(log2(gaussian_scale * sqrt(mean(x^2) - mean(x)^2) + 1e-8)) "
                                       "with tl.log2/tl.exp2") if kw["quest"] else
                                      "tseng: 2^(floor(log2(amax)) - 2) / (3/4) with tl.log2/tl.exp2",
                        "rounding": ("stochastic: up iff tl.rand(seed, offset) < (|v| - lo) / (hi - lo)"
                                     if kw["stochastic_round"] else
                                     "nearest with ties toward zero (thresholds |v| > 5, 3.5, 2.5, 1.75, 1.25, 0.75, "
                                     "0.25 strictly), saturating at 6; sign from v > 0 (zero and NaN get -)"),
                        "input_set": set_name, "compute_dtype": dt,
                        "scales_note": "scales = E8M0 code k + 127 of the power of two 2^k in scales_f32 "
                                       "(quest: scales_f32 = 2^k; tseng: scales_f32 = fl32(2^k / 0.75)); 0xFF where "
                                       "scales_f32 is not of that form (NaN, Inf, out of range)",
                        "codes_note": f"codes = the E2M1 code q with to_x_dtype(fl32(q * scales_f32)) == dequant; "
                                      f"{bad} elements match no code (0xFF: NaN/Inf blocks)",
                        "n_codes_unrepresentable": bad}
                extra = {"had": had.cpu().numpy().astype(np.float32)}
                if mask is not None:
                    extra["clip_mask"] = mask.cpu().numpy().astype(np.uint8)
                written.append(_common.save("quartet", f"{cname}_{set_name}_{DT[dt]}", x=x, codes=codes, scales=sc,
                                            scales_f32=se.astype(np.float32), dequant=deq, meta=meta, extra=extra,
                                            out_dir=args.out))
    for p in written:
        print("wrote", p)


def rederive(directory):
    import json
    for p in sorted(Path(directory).glob("vendor_quartet_*.npz")):
        arrays, meta = _common.load(p)
        dt = meta["compute_dtype"]
        codes, sc, bad = derive_codes_scales(arrays["dequant"], arrays["scales_f32"], meta["call"].find("quest=True") >= 0, dt)
        meta["codes_note"] = (f"codes = the E2M1 code q with to_x_dtype(fl32(q * scales_f32)) == dequant; {bad} "
                              "elements match no code (0xFF: NaN/Inf blocks)")
        meta["n_codes_unrepresentable"] = bad
        meta["scales_note"] = ("scales = E8M0 code k + 127 of the power of two 2^k in scales_f32 (quest: scales_f32 = "
                               "2^k; tseng: scales_f32 = fl32(2^k / 0.75)); 0xFF where scales_f32 is not of that "
                               "form (NaN, Inf, out of range)")
        extra = {k: v for k, v in arrays.items() if k in ("had", "clip_mask")}
        for k in ("vendor", "what", "x_dtype", "x_storage", "extra_keys"):
            meta.pop(k, None)
        x = arrays["x"]
        vendor, what = "quartet", p.stem[len("vendor_quartet_"):]
        print("rewrote", _common.save(vendor, what, x=x, codes=codes, scales=sc, scales_f32=arrays["scales_f32"],
                                      dequant=arrays["dequant"], meta=meta, extra=extra, out_dir=p.parent))


if __name__ == "__main__":
    main()
