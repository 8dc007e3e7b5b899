"""Run real implementations on the level-1 golden vectors, as a user of the vectors would, and report per family:
pass, or how many cases differ and the divergence class.

    PYTHONPATH=. /root/venv-peers/bin/python benchmarks/vendors/run_vectors_vendors.py [--vectors vectors/]
        [--markdown benchmarks/vendors/VECTORS_RESULTS.md]

Implementations (run here, on the CPU; versions printed in the report):
- ml_dtypes ``astype``: float4_e2m1fn, float6_e2m3fn, float6_e3m2fn, float8_e4m3fn, float8_e5m2, float8_e8m0fnu
  (nearest-even only), on the cast vectors.
- torch ``Tensor.to``: float8_e4m3fn, float8_e5m2, float8_e8m0fnu, on the cast vectors (nearest-even).
- torchao element helpers ``f32_to_f4_unpacked`` / ``f32_to_f6_e2m3_unpacked`` / ``f32_to_f6_e3m2_unpacked``
  (float32 inputs), on the cast vectors.
- torchao ``to_mx(x, elem, 32, ScaleCalculationMode.M)`` on the scale and block vectors of the torchao-mx*
  recipes and of the OCP recipes of the same element format; ``nvfp4_quantize`` on the torchao-nvfp4(-nopts)
  vectors.

Cast mismatches are classified twice: by the decision their case reaches (the vector's ``decisions`` bits) and
by :func:`fp4ref.check.check_cast` (which names the alternative policy or mode reproducing the vendor). Block
mismatches are classified by :func:`fp4ref.check.check_quantized`.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import warnings

import ml_dtypes
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fp4ref import check as fcheck  # noqa: E402
from fp4ref.conformance.check import check_directory, load_npz  # noqa: E402
from fp4ref.conformance.manifest import load_manifest  # noqa: E402

warnings.filterwarnings("ignore")


# --- cast implementations ----------------------------------------------------------------------------------------
_ML = {"e2m1": "float4_e2m1fn", "e2m3": "float6_e2m3fn", "e3m2": "float6_e3m2fn", "e4m3": "float8_e4m3fn",
       "e5m2": "float8_e5m2", "e8m0": "float8_e8m0fnu"}


def ml_dtypes_cast(x, fmt, rounding, policies):
    if rounding != "nearest-even" or fmt not in _ML:
        return None
    with np.errstate(all="ignore"):
        return np.asarray(x).astype(getattr(ml_dtypes, _ML[fmt])).view(np.uint8)


def _torch_input(x):
    import torch
    if x.dtype == np.dtype(ml_dtypes.bfloat16):
        return torch.from_numpy(x.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(x).copy())


def torch_cast(x, fmt, rounding, policies):
    import torch
    dt = {"e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2, "e8m0": torch.float8_e8m0fnu}.get(fmt)
    if rounding != "nearest-even" or dt is None:
        return None
    return _torch_input(x).to(dt).view(torch.uint8).numpy()


def torchao_cast(x, fmt, rounding, policies):
    from torchao.prototype.mx_formats import kernels
    fn = {"e2m1": kernels.f32_to_f4_unpacked, "e2m3": kernels.f32_to_f6_e2m3_unpacked,
          "e3m2": kernels.f32_to_f6_e3m2_unpacked}.get(fmt)
    if rounding != "nearest-even" or fn is None or x.dtype != np.float32:
        return None
    return fn(_torch_input(x)).numpy().astype(np.uint8)


CAST_IMPLS = {"ml_dtypes": ml_dtypes_cast, "torch": torch_cast, "torchao": torchao_cast}


def _cast_classes(directory, vector, tok, family, impl):
    """fp4ref.check's classes for the mismatching cases of one (vector, mode, family)."""
    d = pathlib.Path(directory)
    arrays, meta = load_npz(d / f"{vector}.npz")
    sel = arrays["family"] == meta["families"].index(family)
    x = arrays["x"][sel]
    o = meta["options"]
    got = impl(x, o["format"], o["mode_names"][tok], o["resolved_policies"])
    rep = fcheck.check_cast(x, np.asarray(got, np.uint8), o["format"], o["mode_names"][tok],
                            **o["resolved_policies"])
    return dict(rep.classes), _hints(rep)


def _hints(rep) -> list[str]:
    """The alternative option that reproduces the most mismatches of each class, where one does."""
    out = []
    for c, h in rep.hints.items():
        if h:
            alt, n, of = h[0]
            out.append(f"{alt} ({n}/{of})")
    return out


# --- torchao block quantization ----------------------------------------------------------------------------------
def _torchao_mx(x, rec):
    """(codes, scales) of torchao to_mx for a recipe's element format and scale rule."""
    import torch
    from torchao.prototype.mx_formats import mx_tensor
    from torchao.prototype.mx_formats.config import ScaleCalculationMode
    from torchao.prototype.mx_formats.constants import DTYPE_FP6_E2M3, DTYPE_FP6_E3M2
    edt = {"e2m1": torch.float4_e2m1fn_x2, "e2m3": DTYPE_FP6_E2M3, "e3m2": DTYPE_FP6_E3M2,
           "e4m3": torch.float8_e4m3fn, "e5m2": torch.float8_e5m2}[rec.elem]
    mode = {"floor": "FLOOR", "ceil": "CEIL", "even": "EVEN", "rceil": "RCEIL"}[rec.scale_rule]
    scale, data = mx_tensor.to_mx(_torch_input(x), edt, 32, getattr(ScaleCalculationMode, mode))
    if edt == torch.float4_e2m1fn_x2:
        b = data.view(torch.uint8).numpy()
        codes = np.stack([b & 0xF, b >> 4], axis=-1).reshape(*b.shape[:-1], -1)
    elif rec.elem in ("e4m3", "e5m2"):
        codes = data.view(torch.uint8).numpy()
    else:
        codes = data.numpy().astype(np.uint8)
    return codes.astype(np.uint8), scale.view(torch.uint8).numpy().reshape(-1)


def _torchao_nvfp4(x, rec, global_amax=None):
    import torch
    from torchao.prototype.mx_formats import nvfp4_tensor
    xt = _torch_input(x)
    pts = None
    if rec.tensor_scale is not None:
        amax = torch.tensor(float(global_amax)) if global_amax is not None else torch.max(torch.abs(xt))
        pts = nvfp4_tensor.per_tensor_amax_to_scale(amax)
    scales, data = nvfp4_tensor.nvfp4_quantize(xt, 16, pts)
    b = data.view(torch.uint8).numpy()
    codes = np.stack([b & 0xF, b >> 4], axis=-1).reshape(*b.shape[:-1], -1)
    g = None if pts is None else np.float32(pts.item())
    return codes.astype(np.uint8), scales.view(torch.uint8).numpy().reshape(-1), g


# vendor call → the vectors it is run on: its own recipe first, then the spec recipe of the same element format
MX_RUNS = [("torchao to_mx FLOOR", "torchao-mxfp4-floor", ["torchao-mxfp4-floor", "ocp-mxfp4"]),
           ("torchao to_mx CEIL", "torchao-mxfp4-ceil", ["torchao-mxfp4-ceil"]),
           ("torchao to_mx EVEN", "torchao-mxfp4-even", ["torchao-mxfp4-even"]),
           ("torchao to_mx RCEIL", "torchao-mxfp4-rceil", ["torchao-mxfp4-rceil", "te-mxfp4-ref"]),
           ("torchao to_mx FLOOR e2m3", "torchao-mxfp6-e2m3-floor", ["torchao-mxfp6-e2m3-floor", "ocp-mxfp6-e2m3"]),
           ("torchao to_mx FLOOR e3m2", "torchao-mxfp6-e3m2-floor", ["torchao-mxfp6-e3m2-floor", "ocp-mxfp6-e3m2"]),
           ("torchao to_mx FLOOR e4m3", "torchao-mxfp8-e4m3-floor", ["torchao-mxfp8-e4m3-floor", "ocp-mxfp8-e4m3"]),
           ("torchao to_mx RCEIL e4m3", "torchao-mxfp8-e4m3-rceil", ["torchao-mxfp8-e4m3-rceil", "te-mxfp8"]),
           ("torchao to_mx FLOOR e5m2", "torchao-mxfp8-e5m2-floor", ["torchao-mxfp8-e5m2-floor", "ocp-mxfp8-e5m2"])]
NV_RUNS = [("torchao nvfp4_quantize (per-tensor scale)", "torchao-nvfp4", ["torchao-nvfp4", "te-nvfp4"]),
           ("torchao nvfp4_quantize (no per-tensor scale)", "torchao-nvfp4-nopts", ["torchao-nvfp4-nopts"])]


def _block_rows(directory, m, call_name, vendor_recipe, vector_recipes, nv):
    from fp4ref import recipes
    rows = []
    vrec = recipes.get(vendor_recipe)
    for target in vector_recipes:
        for kind in ("block", "scale"):
            name = f"{kind}/{target}-f32"
            if name not in m["vectors"]:
                continue
            arrays, meta = load_npz(pathlib.Path(directory) / f"{name}.npz")
            fams = meta["families"]
            for fam in fams:
                overrides = meta["options"].get("family_overrides", {}).get(fam, {})
                if kind == "block":
                    x = arrays[f"{fam}.x"]
                    exp_codes, exp_scales = arrays[f"{fam}.codes"], arrays[f"{fam}.scales"].reshape(-1)
                    gamax = overrides.get("global_amax")
                else:
                    sel = arrays["family"] == fams.index(fam)
                    a = arrays["amax"][sel]
                    x = np.zeros((a.size, 32 if not nv else 16), a.dtype)
                    x[:, 0] = a
                    exp_scales = arrays["scale"][sel]
                    exp_codes = None
                    gamax = meta["options"].get("global_amax")
                n_cols = x.shape[-1]
                if "pad" in overrides:  # torchao takes whole blocks: pad as the vector's option says, cut back
                    B = 16 if nv else 32
                    xp = np.full((x.shape[0], -(-n_cols // B) * B), overrides["pad"], x.dtype)
                    xp[:, :n_cols] = x
                else:
                    xp = x
                try:
                    if nv:
                        codes, scales, g = _torchao_nvfp4(xp, vrec, gamax)
                    else:
                        codes, scales = _torchao_mx(xp, vrec)
                        g = None
                    codes = codes[:, :n_cols]
                except Exception as e:  # a vendor error is a result, reported as such
                    rows.append((call_name, name, fam, f"raised {type(e).__name__}: {str(e)[:80]}", {}))
                    continue
                if kind == "scale":
                    n_bad = int((scales != exp_scales).sum())
                    cases = scales.size
                    spikes = codes[:, 0]
                    n_code = int((spikes != arrays["code"][arrays["family"] == fams.index(fam)]).sum())
                    if n_bad == n_code == 0:
                        rows.append((call_name, name, fam, "pass", {}))
                        continue
                    kw = {"global_scale": g} if g is not None else {}
                    rep = fcheck.check_quantized(x, codes, scales, target, **kw)
                    rows.append((call_name, name, fam, f"{n_bad}/{cases} scales, {n_code}/{cases} spike codes "
                                                       f"differ", dict(rep.classes)))
                    continue
                n_codes = int((codes != exp_codes).sum())
                n_scales = int((scales != exp_scales).sum())
                if n_codes == n_scales == 0:
                    rows.append((call_name, name, fam, "pass", {}))
                    continue
                kw = {"global_scale": g} if g is not None else {}
                kw.update({k: v for k, v in overrides.items() if k == "pad"})
                rep = fcheck.check_quantized(x, codes, scales, target, **kw)
                rows.append((call_name, name, fam, f"{n_codes}/{exp_codes.size} codes, {n_scales}/{exp_scales.size} "
                                                   f"scales differ", dict(rep.classes)))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vectors", default=str(ROOT / "vectors"))
    ap.add_argument("--markdown", default=None, help="also write the report as Markdown to this file")
    args = ap.parse_args(argv)
    import torch
    import torchao
    m = load_manifest(args.vectors)
    out = [f"# Vendors on the level-1 vectors (fp4ref {m['fp4ref_version']})", "",
           f"ml_dtypes {ml_dtypes.__version__}, torch {torch.__version__}, torchao {torchao.__version__}, "
           f"numpy {np.__version__}; CPU. Generated by benchmarks/vendors/run_vectors_vendors.py.", ""]
    # casts
    out += ["## Element casts (cast vectors, nearest-even)", "",
            "| implementation | vector | family | result | decision of the differing cases | fp4ref.check class |",
            "|---|---|---|---|---|---|"]
    totals = {}
    for name, impl in CAST_IMPLS.items():
        res = check_directory(args.vectors, impl, only="cast/", modes=("rne",))
        ran = [r for r in res if r.skipped is None]
        totals[name] = (len({r.vector for r in ran}), sum(r.cases for r in ran), sum(r.mismatches for r in ran),
                        sum(1 for r in ran if r.passed), len(ran))
        for r in ran:
            if r.passed:
                continue
            cls, hints = _cast_classes(args.vectors, r.vector, r.mode, r.family, impl)
            dec = ", ".join(f"{c} {n}" for c, n in r.classes)
            fc = ", ".join(f"{c} {n}" for c, n in sorted(cls.items(), key=lambda kv: -kv[1]))
            hint = "; ".join(hints[:2])
            out.append(f"| {name} | {r.vector} | {r.family} | {r.mismatches}/{r.cases} differ | {dec} | {fc}"
                       + (f" (reproduced by: {hint})" if hint else "") + " |")
    out += ["", "| implementation | cast vectors run | cases | mismatches | (vector, family) groups passing |",
            "|---|---|---|---|---|"]
    for name, (nv_, cases, bad, ok, groups) in totals.items():
        out.append(f"| {name} | {nv_} | {cases} | {bad} | {ok}/{groups} |")
    # blocks
    out += ["", "## Block quantization (torchao on scale and block vectors, float32)", "",
            "| vendor call | vector | family | result | fp4ref.check classes |", "|---|---|---|---|---|"]
    for call, vendor_recipe, targets in MX_RUNS:
        for row in _block_rows(args.vectors, m, call, vendor_recipe, targets, nv=False):
            out.append("| " + " | ".join([row[0], row[1], row[2], row[3],
                                          ", ".join(f"{k} {v}" for k, v in row[4].items())]) + " |")
    for call, vendor_recipe, targets in NV_RUNS:
        for row in _block_rows(args.vectors, m, call, vendor_recipe, targets, nv=True):
            out.append("| " + " | ".join([row[0], row[1], row[2], row[3],
                                          ", ".join(f"{k} {v}" for k, v in row[4].items())]) + " |")
    text = "\n".join(out) + "\n"
    print(text)
    if args.markdown:
        pathlib.Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
