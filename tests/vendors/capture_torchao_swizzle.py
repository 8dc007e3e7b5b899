"""Record torchao's scale swizzle and FP4 nibble packing as a fixture for tests/test_packing.py.

Runs torchao itself (CPU is enough: both functions are plain tensor code) and writes
tests/data/torchao_packing.npz. Run it in a separate environment that has torch and torchao, e.g.

    python -m venv --system-site-packages /root/venv-torchao
    /root/venv-torchao/bin/pip install torch==2.13.0 torchao==0.18.0
    /root/venv-torchao/bin/python tests/vendors/capture_torchao_swizzle.py

Keys: ``versions`` (torch, torchao); for each scale shape RxC ``scales_RxC`` (uint8 input),
``to_blocked_RxC`` (torchao.prototype.mx_formats.utils.to_blocked output), ``swz_RxC`` (a random swizzled
buffer) and ``from_blocked_RxC`` (torchao's from_blocked of it); ``fp4_codes`` / ``fp4_packed``
(torchao.prototype.mx_formats.kernels.pack_uint4 of all 16x16 code pairs).
"""
from __future__ import annotations

import pathlib

import numpy as np
import torch
import torchao
from torchao.prototype.mx_formats.kernels import pack_uint4
from torchao.prototype.mx_formats.utils import from_blocked, to_blocked

# shapes cover: exact tiles, rows and cols off by one, rows < 32, several tiles in each direction
SHAPES = [(1, 1), (5, 3), (31, 4), (128, 4), (129, 5), (200, 7), (256, 8), (300, 3), (33, 12)]
OUT = pathlib.Path(__file__).resolve().parents[1] / "data" / "torchao_packing.npz"


def main() -> None:
    rng = np.random.default_rng(20240611)
    rec: dict[str, np.ndarray] = {"versions": np.array([torch.__version__, torchao.__version__])}
    for r, c in SHAPES:
        scales = rng.integers(1, 256, size=(r, c), dtype=np.uint8)  # no zeros: padding stays visible
        rec[f"scales_{r}x{c}"] = scales
        rec[f"to_blocked_{r}x{c}"] = to_blocked(torch.from_numpy(scales)).numpy()
        n = -(-r // 128) * -(-c // 4) * 512
        buf = rng.integers(0, 256, size=n, dtype=np.uint8)
        rec[f"swz_{r}x{c}"] = buf
        rec[f"from_blocked_{r}x{c}"] = from_blocked(torch.from_numpy(buf), r, c).contiguous().numpy()
    a, b = np.meshgrid(np.arange(16, dtype=np.uint8), np.arange(16, dtype=np.uint8), indexing="ij")
    codes = np.stack([a.ravel(), b.ravel()], axis=-1).reshape(16, 32)  # rows of 16 (code, code) pairs
    rec["fp4_codes"] = codes
    rec["fp4_packed"] = pack_uint4(torch.from_numpy(codes)).numpy()
    np.savez(OUT, **rec)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes) with torch {torch.__version__}, torchao {torchao.__version__}")


if __name__ == "__main__":
    main()
