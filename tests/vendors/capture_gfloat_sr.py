"""Capture gfloat's four stochastic RoundModes on NumPy arrays and torch tensors of every float dtype.

Run with a Python that has gfloat (0.5.2 recorded) and torch (CPU), e.g.
    python -m venv --system-site-packages /root/venv-sr && /root/venv-sr/bin/pip install gfloat torch
    /root/venv-sr/bin/python tests/vendors/capture_gfloat_sr.py [--out tests/data]

For each gfloat format fi (format_info_ocp_e2m1/e2m3/e3m2/e4m3/e5m2/int8), input dtype (float64, float32, float16,
bfloat16) and width n, an input set x (every binade of the format, both signs, values whose fraction lies just
below k / 2**(n+1) in the first subnormal interval — where the fast variants' rounded sum decides — values
beyond max, ±0, ±Inf, and NaN where the format has one) and random integers R[i, j] (columns: 0, 2**n - 1,
2**(n-1), 2**(n-1) - 1, 2**n - 2, three SplitMix64 draws), the exact calls are

    r = gfloat.round_ndarray(fi, x[:, None] broadcast, RoundMode.<mode>, True, srbits=R, srnumbits=n)
    codes = gfloat.encode_ndarray(fi, np.asarray(r, np.float64))

with x a NumPy array of the dtype (lib "numpy": all four modes) or a torch tensor of the dtype with R a torch
int64 tensor (lib "torch": StochasticFast and StochasticFastest, whose sum gfloat computes in the tensor's dtype;
on NumPy 2 it computes in float64 for every dtype).

Output tests/data/gfloat_sr.npz, keys:
    x/<fmt>/<dtype>               float64 [m]: the exact input values (x.astype(dtype) restores the array)
    r/<fmt>/<dtype>/<n>           uint32 [m, 8]
    codes/<lib>/<fmt>/<dtype>/<mode>/<n>  uint8 [m, 8]
    meta                          json: versions and the calls above
"""
from __future__ import annotations

import argparse
import json
from importlib.metadata import version
from pathlib import Path

import ml_dtypes
import numpy as np

import gfloat
import torch
from gfloat import RoundMode
from gfloat import formats as gf

FORMATS = {"e2m1": gf.format_info_ocp_e2m1, "e2m3": gf.format_info_ocp_e2m3, "e3m2": gf.format_info_ocp_e3m2,
           "e4m3": gf.format_info_ocp_e4m3, "e5m2": gf.format_info_ocp_e5m2, "int8": gf.format_info_ocp_int8}
DTYPES = {"float64": (np.float64, torch.float64, (3, 16)), "float32": (np.float32, torch.float32, (3, 12)),
          "float16": (np.float16, torch.float16, (3, 8)), "bfloat16": (ml_dtypes.bfloat16, torch.bfloat16, (3, 7))}
MODES = ("Stochastic", "StochasticOdd", "StochasticFast", "StochasticFastest")
TORCH_MODES = ("StochasticFast", "StochasticFastest")


class SplitMix64:
    def __init__(self, seed):
        self.s = seed & (2 ** 64 - 1)

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & (2 ** 64 - 1)
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2 ** 64 - 1)
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2 ** 64 - 1)
        return z ^ (z >> 31)


def _below(v: float, dt) -> float:
    """The dtype value just below v (v > 0 representable)."""
    a = np.array([v], dt)
    bits = a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.itemsize])
    return float((bits - 1).view(dt)[0])


def inputs(fi, dt, widths) -> np.ndarray:
    emin = 1 - fi.bias if fi.has_subnormals else -fi.bias
    p = fi.precision
    q_sub = 2.0 ** (emin - p + 1)
    emax = int(np.floor(np.log2(fi.max)))
    vals = []
    for e in range(emin - p - 1, emax + 2):
        for u in (0.0, 5 / 16, 0.5, 0.97):
            vals.append(2.0 ** e * (1 + u))
    for n in widths:   # fractions just below k / 2**(n+1) in the first subnormal interval [0, q_sub)
        for k in (1, 2, 3, 2 ** (n + 1) - 1):
            vals.append(q_sub * _below(k / 2 ** (n + 1), dt))
    vals += [fi.max, fi.max * 1.01, fi.max * 1.5, fi.max * 2, 1e30, q_sub / 3]
    x = np.array(vals, np.float64).astype(dt).astype(np.float64)
    x = np.unique(x[np.isfinite(x) & (x > 0)])
    x = np.concatenate([x, -x[::3], [0.0, -0.0, np.inf, -np.inf]])
    if fi.num_nans:
        x = np.concatenate([x, [np.nan, -np.nan]])
    return x


def r_table(m, n, rng) -> np.ndarray:
    top = 2 ** n
    cols = [0, top - 1, top // 2, top // 2 - 1, max(top - 2, 0)]
    r = np.empty((m, 8), np.uint32)
    r[:, :5] = cols
    for i in range(m):
        for j in range(5, 8):
            r[i, j] = rng.next() % top
    return r


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data"))
    args = ap.parse_args(argv)
    rng = SplitMix64(0x5EED5EED)
    arrays = {}
    for fname, fi in FORMATS.items():
        for dname, (ndt, tdt, widths) in DTYPES.items():
            x = inputs(fi, ndt, widths)
            arrays[f"x/{fname}/{dname}"] = x
            xs = np.broadcast_to(x[:, None].astype(ndt), (x.size, 8))
            for n in widths:
                r = r_table(x.size, n, rng)
                arrays[f"r/{fname}/{dname}/{n}"] = r
                for lib, modes in (("numpy", MODES), ("torch", TORCH_MODES)):
                    if lib == "torch" and dname == "float64":
                        continue
                    for mode in modes:
                        if lib == "numpy":
                            out = gfloat.round_ndarray(fi, xs, getattr(RoundMode, mode), True,
                                                       srbits=r.astype(np.int64), srnumbits=n)
                        else:
                            xt = torch.from_numpy(np.ascontiguousarray(xs.astype(np.float32))).to(tdt)
                            out = gfloat.round_ndarray(fi, xt, getattr(RoundMode, mode), True,
                                                       srbits=torch.from_numpy(r.astype(np.int64)), srnumbits=n)
                            out = out.to(torch.float64).numpy()
                        codes = gfloat.encode_ndarray(fi, np.asarray(out, np.float64))
                        arrays[f"codes/{lib}/{fname}/{dname}/{mode}/{n}"] = np.asarray(codes).astype(np.uint8)
    meta = {"gfloat": version("gfloat"), "numpy": np.__version__, "torch": torch.__version__,
            "ml_dtypes": ml_dtypes.__version__, "sat": True,
            "calls": "gfloat.round_ndarray(fi, x, RoundMode.<mode>, True, srbits=R, srnumbits=n); "
                     "gfloat.encode_ndarray(fi, np.asarray(r, np.float64)); x NumPy array or torch tensor of "
                     "the dtype, R int64 of the same kind"}
    path = Path(args.out) / "gfloat_sr.npz"
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)
    print("wrote", path, len(arrays), "arrays")


if __name__ == "__main__":
    main()
