"""Capture TransformerEngine's E2M1 stochastic-rounding software fallback and its per-thread Philox words, on a GPU.

Run on a CUDA machine without cvt.rs (sm_80/sm_90: TE then takes its software branch) with nvcc >= 12.8:

    [TE_COMMIT=<sha>] python tests/vendors/capture_te_sr.py --te-src /path/to/TransformerEngine [--out tests/data]

(captured: TE d0067d0da6cb01811b8072a7d304f0e00344ce2b, nvcc 13.0, H100, sm_90)

The script writes a small CUDA harness that #includes TE's own headers from --te-src (nothing of TE is copied
into this repository) and calls, on the device:

- ``transformer_engine::ptx::mul_cvt_fp32_to_fp4_4x_with_stochastic_rounding(in01, in23, {1, 1}, rbits)``
  (``common/util/ptx_arch_spec.cuh``): four float32 values and one 32-bit rbits word → 16 bits of packed E2M1
  (its software branch calls ``stochastic_round_fp4_e2m1`` per element and packs with ``__nv_fp4x4_e2m1``);
- ``philox4x32_native_state<10>::init(seed, subsequence, offset)`` then ``dispatch::nvfp4::core::get_rbits``
  (``common/cast/nvfp4/core_nvfp4.cuh``) as TE's NVFP4 quantize kernels draw one word per four elements.

TE's logging.h includes the cuBLAS/cuDNN/NVRTC/NCCL headers for error macros the harness never expands; empty
stand-ins for those four headers go on the include path, so only the CUDA toolkit is needed.

Output tests/data/te_sr_fallback.npz:
  sweep_x (float32 [n]), sweep_out (uint16 [n, 256]): the word v * 0x01010101 (every lane the byte v) applied to
      the group (x, x, x, x); sweep_out[i, v] is the packed result.
  lane_x (float32 [m, 4]), lane_words (uint32 [m]), lane_out (uint16 [m]): random groups and words.
  philox_seed, philox_offset (uint64 [k]), philox_words (uint32 [k, threads, count]): get_rbits for subsequence
      = thread index 0..threads-1, offset in 128-bit blocks.
  meta (json): TE commit, nvcc version, GPU name, exact calls.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HARNESS = r"""
#include "common/util/ptx_arch_spec.cuh"
#include "cast/nvfp4/core_nvfp4.cuh"
#include <cstdio>
#include <vector>
using namespace transformer_engine;

__global__ void sr4(const float *x, const uint32_t *rb, uint16_t *out, long n) {
  long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float2 in01 = make_float2(x[4 * i], x[4 * i + 1]);
  const float2 in23 = make_float2(x[4 * i + 2], x[4 * i + 3]);
  const ptx::fp4e2m1x4 r =
      ptx::mul_cvt_fp32_to_fp4_4x_with_stochastic_rounding(in01, in23, make_float2(1.0f, 1.0f), rb[i]);
  out[i] = *reinterpret_cast<const uint16_t *>(&r);
}

__global__ void words(unsigned long long seed, unsigned long long offset, uint32_t *out, int count) {
  const int t = threadIdx.x;
  transformer_engine::curanddx::detail::philox4x32_native_state<10> rng;
  rng.init(seed, t, offset);
  uint4 random_uint4 = rng.generate4();
  int rnd_idx = 0;
  for (int j = 0; j < count; ++j) out[t * count + j] = dispatch::nvfp4::core::get_rbits(rng, random_uint4, rnd_idx);
}

template <typename T> std::vector<T> load(const char *p, long n) {
  std::vector<T> v(n); FILE *f = fopen(p, "rb"); fread(v.data(), sizeof(T), n, f); fclose(f); return v;
}

int main(int argc, char **argv) {
  const long n = atol(argv[1]);
  auto x = load<float>(argv[2], 4 * n);
  auto rb = load<uint32_t>(argv[3], n);
  float *dx; uint32_t *drb; uint16_t *dout;
  cudaMalloc(&dx, 16 * n); cudaMalloc(&drb, 4 * n); cudaMalloc(&dout, 2 * n);
  cudaMemcpy(dx, x.data(), 16 * n, cudaMemcpyHostToDevice);
  cudaMemcpy(drb, rb.data(), 4 * n, cudaMemcpyHostToDevice);
  sr4<<<(n + 255) / 256, 256>>>(dx, drb, dout, n);
  std::vector<uint16_t> out(n);
  cudaMemcpy(out.data(), dout, 2 * n, cudaMemcpyDeviceToHost);
  FILE *f = fopen(argv[4], "wb"); fwrite(out.data(), 2, n, f); fclose(f);
  const int k = atoi(argv[5]), threads = atoi(argv[6]), count = atoi(argv[7]);
  auto so = load<unsigned long long>(argv[8], 2 * k);
  uint32_t *dw; cudaMalloc(&dw, 4L * threads * count);
  std::vector<uint32_t> w(threads * count);
  FILE *g = fopen(argv[9], "wb");
  for (int c = 0; c < k; ++c) {
    words<<<1, threads>>>(so[2 * c], so[2 * c + 1], dw, count);
    cudaMemcpy(w.data(), dw, 4L * threads * count, cudaMemcpyDeviceToHost);
    fwrite(w.data(), 4, threads * count, g);
  }
  fclose(g);
  cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) { fprintf(stderr, "CUDA error %s\n", cudaGetErrorString(e)); return 1; }
  return 0;
}
"""

PHILOX_CASES = [(0, 0), (1, 0), (0x123456789ABCDEF0, 7), (0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFE), (42, 1 << 40)]
THREADS, COUNT = 8, 12


def sweep_inputs() -> np.ndarray:
    """float32 values where the fallback's float32 fma and grid floor matter, plus specials."""
    f32 = np.float32
    vals = []
    for step, lo, hi in ((0.5, 0.0, 2.0), (1.0, 2.0, 4.0), (2.0, 4.0, 8.0)):
        for k in range(0, 257, 8):   # points a + r*step/256 can hit: just below, on, just above
            base = f32(lo + k * step / 256)
            if lo <= base < hi:
                vals += [base, np.nextafter(base, f32(0)), np.nextafter(base, f32(np.inf))]
    for k in (1, 2, 3, 255, 256, 257, 511):     # tiny inputs whose float32 bits lie far below 2**-9
        b = f32(k / 512)
        vals += [np.nextafter(b, f32(0)), f32(b - f32(2.0 ** -30)), f32(b * (1 - 2.0 ** -20))]
    grid = [0.5, 1, 1.5, 2, 3, 4, 6]
    vals += [f32(g) for g in grid] + [f32((a + b) / 2) for a, b in zip([0] + grid, grid)]
    vals += [f32(2.0 ** -149), f32(2.0 ** -126), f32(2.0 ** -10), f32(6.5), f32(7.99), f32(8.0), f32(1e30),
             f32(3.4e38), f32(np.inf), f32(0.0)]
    v = np.array(vals, np.float32)
    v = np.unique(v[np.isfinite(v)])
    out = np.concatenate([v, -v, np.array([np.inf, -np.inf, -0.0], np.float32)])
    nan = np.array([0x7FC00000, 0xFFC00000, 0x7F800001], np.uint32).view(np.float32)
    return np.concatenate([out, nan])


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--te-src", required=True, help="a TransformerEngine source checkout")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data"))
    args = ap.parse_args(argv)
    te = Path(args.te_src) / "transformer_engine"
    rng = np.random.default_rng(0x5E5E)
    sx = sweep_inputs()
    v = np.arange(256, dtype=np.uint32)
    sweep_groups = np.repeat(sx, 4 * 256).reshape(-1, 4)
    sweep_words = np.tile(v * np.uint32(0x01010101), sx.size)
    m = 4096
    lane_idx = rng.integers(0, sx.size, (m, 4))
    lane_x = sx[lane_idx]
    lane_words = rng.integers(0, 1 << 32, m, dtype=np.uint64).astype(np.uint32)
    xs = np.concatenate([sweep_groups, lane_x]).astype(np.float32)
    ws = np.concatenate([sweep_words, lane_words]).astype(np.uint32)
    n = ws.size
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        stubs = d / "stubs"
        stubs.mkdir()
        for h in ("cublas_v2.h", "cudnn.h", "nvrtc.h", "nccl.h"):
            (stubs / h).write_text("/* stand-in: the harness expands no macro that needs this header */\n")
        (d / "h.cu").write_text(HARNESS)
        cmd = ["nvcc", "-std=c++17", "--expt-relaxed-constexpr", "-O2", "-arch=sm_90", "-I" + str(te),
               "-I" + str(te / "common" / "include"), "-I" + str(te / "common"), "-I" + str(stubs),
               "-o", str(d / "h"), str(d / "h.cu")]
        subprocess.run(cmd, check=True)
        xs.tofile(d / "x.bin")
        ws.tofile(d / "w.bin")
        so = np.array(PHILOX_CASES, np.uint64).reshape(-1)
        so.tofile(d / "so.bin")
        subprocess.run([str(d / "h"), str(n), str(d / "x.bin"), str(d / "w.bin"), str(d / "o.bin"),
                        str(len(PHILOX_CASES)), str(THREADS), str(COUNT), str(d / "so.bin"), str(d / "pw.bin")],
                       check=True)
        out = np.fromfile(d / "o.bin", np.uint16)
        pw = np.fromfile(d / "pw.bin", np.uint32).reshape(len(PHILOX_CASES), THREADS, COUNT)
    ns = sweep_words.size
    nvcc = subprocess.run(["nvcc", "--version"], capture_output=True, text=True).stdout.strip().splitlines()[-1]
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                         text=True).stdout.strip()
    # a source export has no .git of its own: name the commit with TE_COMMIT
    commit = os.environ.get("TE_COMMIT") or subprocess.run(
        ["git", "-C", str(args.te_src), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    meta = {"vendor": "TransformerEngine", "te_commit": commit, "nvcc": nvcc, "gpu": gpu, "arch": "sm_90",
            "calls": ["ptx::mul_cvt_fp32_to_fp4_4x_with_stochastic_rounding(make_float2(x0, x1), "
                      "make_float2(x2, x3), make_float2(1, 1), rbits) (software branch: no cvt.rs below sm_100)",
                      "curanddx::detail::philox4x32_native_state<10>::init(seed, thread, offset); "
                      "generate4(); dispatch::nvfp4::core::get_rbits(...) x count"]}
    path = Path(args.out) / "te_sr_fallback.npz"
    np.savez_compressed(path, sweep_x=sx, sweep_out=out[:ns].reshape(sx.size, 256), lane_x=lane_x,
                        lane_words=lane_words, lane_out=out[ns:],
                        philox_seed=np.array([c[0] for c in PHILOX_CASES], np.uint64),
                        philox_offset=np.array([c[1] for c in PHILOX_CASES], np.uint64), philox_words=pw,
                        meta=np.array(json.dumps(meta)))
    print("wrote", path, "groups", n)


if __name__ == "__main__":
    sys.exit(main())
