#!/usr/bin/env bash
# Run every GPU capture on the device machine and pack the files into one archive under $OUT.
# Usage (device machine, repository root): bash tests/vendors/run_gpu_captures.sh <instrumented Quartet kernel> <Quartet commit>
# Each capture runs in its own process (JAX and PyTorch do not share the GPU allocator), and a failing capture
# does not stop the others; the log of each is packed too.
set -u
OUT=${OUT:?OUT must be set}
DEST="$OUT/gpu"
mkdir -p "$DEST"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=${PY:-python3}
{
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  $PY -c 'import torch, triton, jax, numpy, ml_dtypes; print("torch", torch.__version__, "cuda", torch.version.cuda, "triton", triton.__version__, "jax", jax.__version__, jax.devices(), "numpy", numpy.__version__, "ml_dtypes", ml_dtypes.__version__)'
} > "$DEST/environment.txt" 2>&1
$PY tests/vendors/capture_torch.py --device cuda --out "$DEST" > "$DEST/log_torch.txt" 2>&1
# the device's torch is older than the CPU venv's: its CPU casts tell version effects from device effects
$PY tests/vendors/capture_torch.py --device cpu --name "torch$($PY -c 'import torch; print(torch.__version__.split("+")[0].replace(".", ""))')_devicehost_cpu" --out "$DEST" >> "$DEST/log_torch.txt" 2>&1
if [ -z "${ONLY_QUARTET:-}" ]; then
  $PY tests/vendors/capture_jax.py --out "$DEST" > "$DEST/log_jax.txt" 2>&1
  $PY tests/vendors/capture_triton.py --device cuda --out "$DEST" > "$DEST/log_triton.txt" 2>&1
fi
if [ "$#" -ge 2 ]; then
  $PY tests/vendors/capture_quartet.py --kernel "$1" --commit "$2" --out "$DEST" > "$DEST/log_quartet.txt" 2>&1
fi
tail -n 5 "$DEST"/log_*.txt
tar -C "$OUT" -czf "$OUT/gpu_captures.tar.gz" gpu && rm -rf "$DEST"
ls -la "$OUT"
