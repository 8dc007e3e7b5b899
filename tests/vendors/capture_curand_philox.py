"""Capture curand's Philox4x32-10 device-API words on a CUDA GPU (run on the device machine, not in CI).

Each case runs in one GPU thread:

    curandStatePhilox4_32_10_t s;
    curand_init(seed, subsequence, offset, &s);
    repeat skip_reps times: skipahead(skip, &s);      // reaches counters that curand_init alone cannot
    then `count` words from curand(&s) (mode "curand"), curand4(&s) (mode "curand4", count/4 calls) or the
    float32 bits of curand_uniform(&s) (mode "uniform").

The kernel is compiled by nvcc through CuPy (backend "nvcc"; NVRTC if nvcc is missing) against the toolkit's
own <curand_kernel.h>; the header's CURAND_VERSION is read back from the device. Output: an .npz with the case
table, the concatenated words, and the versions (CUDA runtime, driver, curand header, CuPy, GPU).

    python tests/vendors/capture_curand_philox.py OUT.npz
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np

MODES = {"curand": 0, "curand4": 1, "uniform": 2}

KERNEL = r"""
#include <curand_kernel.h>

extern "C" __global__ void capture(const unsigned long long* seed, const unsigned long long* sub,
                                   const unsigned long long* off, const unsigned long long* skip,
                                   const unsigned int* reps, const int* mode, const unsigned int* count,
                                   const unsigned long long* start, unsigned int* out, int n,
                                   int* header_version) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i == 0) *header_version = CURAND_VERSION;
    if (i >= n) return;
    curandStatePhilox4_32_10_t s;
    curand_init(seed[i], sub[i], off[i], &s);
    for (unsigned int r = 0; r < reps[i]; ++r) skipahead(skip[i], &s);
    unsigned int* o = out + start[i];
    if (mode[i] == 0) {
        for (unsigned int k = 0; k < count[i]; ++k) o[k] = curand(&s);
    } else if (mode[i] == 1) {
        for (unsigned int k = 0; k < count[i]; k += 4) {
            uint4 v = curand4(&s);
            o[k] = v.x; o[k + 1] = v.y; o[k + 2] = v.z; o[k + 3] = v.w;
        }
    } else {
        for (unsigned int k = 0; k < count[i]; ++k) o[k] = __float_as_uint(curand_uniform(&s));
    }
}
"""

U64 = (1 << 64) - 1


def cases() -> list[tuple[str, int, int, int, int, int, str, int]]:
    """(name, seed, subsequence, offset, skip, skip_reps, mode, count) for every captured stream."""
    out = []
    seeds = [0, 1, 42, 0xFFFFFFFF, 1 << 32, 0xDEADBEEF00000000, 0x123456789ABCDEF0, U64]
    subs = [0, 1, 2, 0xFFFFFFFF, 1 << 32, (1 << 32) + 5, 1 << 63, 0x0123456789ABCDEF, U64]
    # seed x subsequence at offset 0: the key split and the counter's high words
    for s in seeds:
        for q in subs:
            out.append(("seed-sub", s, q, 0, 0, 0, "curand", 6))
    # offset: positions inside a 4-word block, the carry of ctr.x into ctr.y (offset/4 = 2^32), large offsets
    offsets = list(range(10)) + [
        (1 << 32) - 1, 1 << 32, (1 << 32) + 3, (1 << 34) - 9, (1 << 34) - 3, 1 << 34, (1 << 34) + 2,
        (1 << 40) + 7, 1 << 63, U64 - 4, U64,
    ]
    for s, q in [(0, 0), (0x123456789ABCDEF0, (1 << 32) + 5), (U64, U64)]:
        for o in offsets:
            out.append(("offset", s, q, o, 0, 0, "curand", 9))
    # counts crossing ctr.x wrap during curand() calls (block 2^32 - 2 .. 2^32 + 2)
    out.append(("x-wrap-stream", 7, 3, (1 << 34) - 8, 0, 0, "curand", 20))
    # the low 64 counter bits wrap while drawing: 4 skipaheads of 2^64-4 words put the counter at block 2^64-4
    for q in [0, 5, 0xFFFFFFFF, U64]:
        out.append(("lo64-wrap", 0xC0FFEE, q, 0, U64 - 3, 4, "curand", 26))
        out.append(("lo64-wrap-off2", 0xC0FFEE, q, 2, U64 - 3, 4, "curand", 26))
    # many threads of one launch, as an SR kernel uses them: subsequence = thread index
    for q in range(64):
        out.append(("threads", 0x5EED, q, 5, 0, 0, "curand", 7))
    # curand4 from every position inside a block, and against curand on the same states
    for o in [0, 1, 2, 3, 4, 5, 6, 7, (1 << 34) - 6]:
        for s in [0, 0x123456789ABCDEF0]:
            out.append(("curand4", s, 9, o, 0, 0, "curand4", 12))
    # curand_uniform (float32 bits)
    for o in [0, 1, 2, 3]:
        out.append(("uniform", 7, 3, o, 0, 0, "uniform", 64))
    return out


def main(path: str) -> None:
    import cupy as cp

    table = cases()
    n = len(table)
    counts = np.array([c[7] for c in table], dtype=np.uint32)
    start = np.concatenate([[0], np.cumsum(counts, dtype=np.uint64)[:-1]]).astype(np.uint64)
    cols = {
        "seed": np.array([c[1] for c in table], dtype=np.uint64),
        "subsequence": np.array([c[2] for c in table], dtype=np.uint64),
        "offset": np.array([c[3] for c in table], dtype=np.uint64),
        "skip": np.array([c[4] for c in table], dtype=np.uint64),
        "skip_reps": np.array([c[5] for c in table], dtype=np.uint32),
        "mode": np.array([MODES[c[6]] for c in table], dtype=np.int32),
    }
    backend = "nvcc"
    try:
        module = cp.RawModule(code=KERNEL, backend="nvcc")
        kern = module.get_function("capture")
    except Exception as exc:  # nvcc missing or failing: the same source through NVRTC
        print(f"nvcc backend failed ({exc!r}); using NVRTC", file=sys.stderr)
        backend = "nvrtc"
        module = cp.RawModule(code=KERNEL, backend="nvrtc", options=("--std=c++17",))
        kern = module.get_function("capture")
    d = {k: cp.asarray(v) for k, v in cols.items()}
    d_count, d_start = cp.asarray(counts), cp.asarray(start)
    d_out = cp.zeros(int(counts.sum()), dtype=cp.uint32)
    d_ver = cp.zeros(1, dtype=cp.int32)
    threads = 128
    kern(((n + threads - 1) // threads,), (threads,),
         (d["seed"], d["subsequence"], d["offset"], d["skip"], d["skip_reps"], d["mode"], d_count, d_start,
          d_out, np.int32(n), d_ver))
    cp.cuda.runtime.deviceSynchronize()
    try:
        nvcc = subprocess.run(["nvcc", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        nvcc = "nvcc not found"
    props = cp.cuda.runtime.getDeviceProperties(0)
    np.savez_compressed(
        path,
        name=np.array([c[0] for c in table]),
        mode_names=np.array(list(MODES)),
        count=counts,
        start=start,
        words=cp.asnumpy(d_out),
        curand_header_version=np.int32(int(cp.asnumpy(d_ver)[0])),
        cuda_runtime_version=np.int32(cp.cuda.runtime.runtimeGetVersion()),
        cuda_driver_version=np.int32(cp.cuda.runtime.driverGetVersion()),
        cupy_version=np.array(cp.__version__),
        compiler_backend=np.array(backend),
        nvcc_version=np.array(nvcc),
        gpu=np.array(props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])),
        **cols,
    )
    print(f"captured {n} cases, {int(counts.sum())} words, curand header {int(cp.asnumpy(d_ver)[0])}, "
          f"runtime {cp.cuda.runtime.runtimeGetVersion()}, driver {cp.cuda.runtime.driverGetVersion()}, "
          f"CuPy {cp.__version__}, backend {backend}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
