"""Capture JAX's block-scaled quantize (mxfp8, nvfp4) and its element casts (XLA converts, not ml_dtypes).

Run: /root/venv-peers/bin/python tests/vendors/capture_jax.py [--out DIR]   (JAX picks its default backend:
CPU here, GPU on the device machine; the backend is written into each file's meta and into the file name).

Calls captured (exactly, eager, no jit):
- ``jax._src.cudnn.scaled_matmul_stablehlo.quantize(x, jax.nn.get_scaled_dot_general_config(mode))`` with mode
  'mxfp8' (block 32, E4M3 data, E8M0 scales) and 'nvfp4' (block 16, E2M1 data, E4M3 scales, global_scale =
  ones((1,)) by default); plus nvfp4 with ``global_scale=jnp.array([amax/2688], float32)`` (JAX divides x by
  it first: a decode-convention scale).
- ``jnp.asarray(x).astype(jnp.<dtype>)`` for float8_e4m3fn, float8_e5m2, float8_e8m0fnu, float4_e2m1fn.
JAX has no dequantize for these configs: files carry no dequant (decode the codes and scales instead).
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
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax._src.cudnn import scaled_matmul_stablehlo as sms  # noqa: E402

DT = {"float32": "f32", "bfloat16": "bf16"}
CASTS = {"e4m3": "float8_e4m3fn", "e5m2": "float8_e5m2", "e8m0": "float8_e8m0fnu", "e2m1": "float4_e2m1fn",
         "e2m3": "float6_e2m3fn", "e3m2": "float6_e3m2fn"}


def _codes(a) -> np.ndarray:
    return np.asarray(a).view(np.uint8).copy()


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    backend = jax.default_backend()
    dev = str(jax.devices()[0])
    vendor = f"jax_{backend}"
    base_meta = {"version": jax.__version__, "jaxlib_version": jax.lib.__version__ if hasattr(jax, "lib") else None,
                 "backend": backend, "device": dev}
    written, failures = [], {}

    # --- mxfp8 -------------------------------------------------------------------------------------------------
    for dt in ("float32", "bfloat16"):
        x = inputs.build("mx_suite", dt)
        cfg = jax.nn.get_scaled_dot_general_config("mxfp8")
        xq, sq = sms.quantize(jnp.asarray(x), cfg)
        meta = dict(base_meta, call="jax._src.cudnn.scaled_matmul_stablehlo.quantize(jnp.asarray(x), "
                                    "jax.nn.get_scaled_dot_general_config('mxfp8'))",
                    axis=-1, block_size=32, elem_format="e4m3", scale_format="e8m0",
                    scale_rule="cast_to_e8m0_with_rounding_up(amax / 448) (bit-level ceil)",
                    rounding="XLA convert to float8_e4m3fn after clip to ±448", input_set="mx_suite",
                    nibble_order="n/a (one byte per element)", scale_layout="linear row-major")
        written.append(_common.save(vendor, f"mxfp8_mx_suite_{DT[dt]}", x=x, codes=_codes(xq), scales=_codes(sq),
                                    meta=meta, out_dir=args.out))

    # --- nvfp4 -------------------------------------------------------------------------------------------------
    for set_name in ("nvfp4_suite", "nvfp4_random", "nvfp4_specials"):
        for gs_kind in ("default", "amax"):
            for dt in ("float32", "bfloat16"):
                x = inputs.build(set_name, dt)
                xj = jnp.asarray(x)
                if gs_kind == "default":
                    cfg = jax.nn.get_scaled_dot_general_config("nvfp4")
                    gs_call = "jax.nn.get_scaled_dot_general_config('nvfp4')"
                else:
                    amax = jnp.max(jnp.abs(xj.astype(jnp.float32)))
                    gs = (amax / jnp.float32(448.0 * 6.0)).reshape(1).astype(jnp.float32)
                    cfg = jax.nn.get_scaled_dot_general_config("nvfp4", global_scale=gs)
                    gs_call = ("jax.nn.get_scaled_dot_general_config('nvfp4', global_scale="
                               "(jnp.max(jnp.abs(x.astype(float32))) / float32(2688)).reshape(1))")
                xq, sq = sms.quantize(xj, cfg)
                meta = dict(base_meta, call=f"quantize(jnp.asarray(x), {gs_call})", axis=-1, block_size=16,
                            elem_format="e2m1", scale_format="e4m3fn",
                            scale_rule="clip(amax(x / global_scale) / 6, 0, 448) cast to float8_e4m3fn",
                            rounding="XLA convert to float4_e2m1fn after clip to ±6", input_set=set_name,
                            nibble_order="n/a (JAX float4_e2m1fn arrays hold one code per byte, bits 0-3)",
                            scale_layout="linear row-major",
                            global_scale_convention="decode (quantize divides x by global_scale first)")
                written.append(_common.save(vendor, f"nvfp4_gs{gs_kind}_{set_name}_{DT[dt]}", x=x, codes=_codes(xq),
                                            scales=_codes(sq), global_scale=np.asarray(cfg.global_scale),
                                            meta=meta, out_dir=args.out))

    # --- element casts -----------------------------------------------------------------------------------------
    for fmt, dname in CASTS.items():
        for dt in ("float32", "bfloat16"):
            x = inputs.build(f"cast_{fmt}", dt)
            labels = inputs.row_labels(f"cast_{fmt}", dt)
            try:
                y = jnp.asarray(x).astype(getattr(jnp, dname))
                codes = _codes(y)
                back = np.asarray(y.astype(jnp.float32))
            except Exception as e:
                failures[f"{fmt}/{dt}"] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
                continue
            probes = {}
            for p in ("+nan", "-nan", "+inf", "-inf", "-0", "+0", "2*max", "neg 2*max", "dtype_max",
                      "neg dtype_max", "half_min_sub", "neg half_min_sub", "input_min_subnormal"):
                idx = np.nonzero(labels == p)[0]
                if len(idx):
                    probes[p] = f"0x{int(codes[idx[0]]):02X} -> {float(back[idx[0]])!r}"
            meta = dict(base_meta, call=f"jnp.asarray(x).astype(jnp.{dname})", kind="element cast", elem_format=fmt,
                        input_set=f"cast_{fmt}", rounding="vendor default (observed)", observed_special_codes=probes)
            written.append(_common.save(vendor, f"cast_{fmt}_from_{DT[dt]}", x=x, codes=codes, dequant=back,
                                        meta=meta, out_dir=args.out))
    for p in written:
        print("wrote", p)
    for k, v in failures.items():
        print("FAILED", k, v)


if __name__ == "__main__":
    main()
