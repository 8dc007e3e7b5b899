"""fp4ref throughput against memcpy and against the peers that run on a CPU: one run, one table.

    python benchmarks/bench.py                       # fp32 4096², fp32 16384², bf16 16384², sweep, 4 GiB, compile
    /root/venv-bench/bin/python benchmarks/bench.py  # the same with the peers (torch, torchao, gfloat)
    python benchmarks/bench.py --sizes 4096 --skip big,sweep,compile --repeat 2   # a quick look

Every row is the best of ``--repeat`` timed calls after one untimed call (its time is the "1st call" column:
loading the cached Numba machine code, or compiling it when the cache is cold). Columns: seconds for the
whole input, GB/s of input bytes, throughput relative to memcpy of the same input in the same run, relative
to the fastest peer doing the same work (fp4ref rows) and the extra peak RSS of the timed calls (Linux
VmHWM reset through /proc/self/clear_refs, minus the RSS before them).

Peers are imported if present and printed as 'not installed' otherwise: ml_dtypes casts, a NumPy + ml_dtypes
MX quantizer written below (a plain peer baseline, not fp4ref's algorithm), torch/torchao CPU, gfloat, and
microxcaling's PyTorch path (a checkout of microsoft/microxcaling given by --mx-root, never installed or
committed). Peers that need minutes per input (gfloat's Python loops) are timed on a leading slice of rows
and scaled up: those rows say "est.". Peers on the 16384² inputs run over 64 MiB row chunks so that their
temporaries fit in memory; fp4ref chunks by itself.

The figures depend on what else runs on the machine; memcpy is measured in the same run so that the ratios
stay comparable.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import ml_dtypes
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numba  # noqa: E402

import fp4ref  # noqa: E402

MIB = 1 << 20
BF16 = np.dtype(ml_dtypes.bfloat16)
PEER_CHUNK = 64 * MIB


# --- measuring -------------------------------------------------------------------------------------------------
def _status(keys=("VmRSS", "VmHWM", "RssAnon")) -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                out[k] = int(v.split()[0]) * 1024
    return out


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class AnonPeak:
    """Samples RssAnon every few milliseconds: the anonymous (non file-backed) peak, which memory maps of the
    input do not inflate."""

    def __init__(self, period=0.005):
        self.period, self.peak, self._stop = period, 0, threading.Event()

    def __enter__(self):
        self.peak = _status(("RssAnon",)).get("RssAnon", 0)
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(self.period):
            self.peak = max(self.peak, _status(("RssAnon",)).get("RssAnon", 0))

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _status(("RssAnon",)).get("RssAnon", 0))


@dataclass
class Result:
    section: str
    work: str
    impl: str
    seconds: float | None = None      # for the whole input (scaled up from a slice where fraction < 1)
    nbytes: int = 0
    first: float | None = None
    cpu: float | None = None          # process CPU seconds (all threads) of the best call, whole input
    peak_extra: int | None = None
    note: str = ""
    fraction: float = 1.0
    gbs: float | None = None
    vs_memcpy: float | None = None
    vs_peer: float | None = None


def measure(fn, repeat: int) -> tuple[float, float, float, int | None]:
    """(first-call seconds, best of `repeat` seconds, CPU seconds of that call, extra peak RSS bytes of the
    timed calls)."""
    gc.collect()
    t = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t
    del out
    gc.collect()
    ok = _reset_peak()
    base = _status()["VmRSS"]
    best, cpu = float("inf"), None
    for _ in range(repeat):
        c = time.process_time()
        t = time.perf_counter()
        out = fn()
        w = time.perf_counter() - t
        if w < best:
            best, cpu = w, time.process_time() - c
        del out
    peak = _status()["VmHWM"] - base if ok else None
    return first, best, cpu, peak


def in_row_chunks(fn, x, chunk_bytes=PEER_CHUNK):
    """Run a peer over row chunks of a 2-D x (its temporaries stay bounded); returns the last chunk's result."""
    rows = max(1, chunk_bytes // max(1, x.strides[0]))
    out = None
    for r in range(0, x.shape[0], rows):
        out = fn(x[r:r + rows])
    return out


# --- peers -------------------------------------------------------------------------------------------------------
class Peers:
    def __init__(self, mx_root):
        self.missing = {}
        self.torch = self._try("torch", lambda: __import__("torch"))
        self.torchao = None
        if self.torch is not None:
            def load_ao():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    import torchao  # noqa: F401
                    from torchao.prototype.mx_formats import mx_tensor, nvfp4_tensor
                    from torchao.prototype.mx_formats.config import ScaleCalculationMode
                    from torchao.prototype.mx_formats import kernels
                return mx_tensor, nvfp4_tensor, ScaleCalculationMode, kernels
            self.torchao = self._try("torchao", load_ao)
        else:
            self.missing["torchao"] = "needs torch"
        self.gfloat = self._try("gfloat", lambda: __import__("gfloat"))
        self.mx = None
        if self.torch is None:
            self.missing["microxcaling"] = "needs torch"
        elif mx_root and Path(mx_root, "mx", "mx_ops.py").exists():
            def load_mx():
                sys.path.insert(0, str(mx_root))
                import mx.mx_ops as mx_ops
                from mx.specs import MxSpecs
                return mx_ops, MxSpecs
            self.mx = self._try("microxcaling", load_mx)
        else:
            self.missing["microxcaling"] = f"no checkout at --mx-root {mx_root}"

    def _try(self, name, load):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return load()
        except Exception as e:  # any import failure means the peer is not usable here
            self.missing[name] = f"{type(e).__name__}: {e}"[:80]
            return None

    def versions(self) -> dict:
        v = {"numpy": np.__version__, "ml_dtypes": ml_dtypes.__version__, "numba": numba.__version__}
        if self.torch is not None:
            v["torch"] = self.torch.__version__
        if self.torchao is not None:
            import torchao
            v["torchao"] = torchao.__version__
        if self.gfloat is not None:
            from importlib.metadata import version
            v["gfloat"] = version("gfloat")
        if self.mx is not None:
            v["microxcaling"] = "checkout"
        return v


ML_TYPES = {"e2m1": ml_dtypes.float4_e2m1fn, "e2m3": ml_dtypes.float6_e2m3fn, "e3m2": ml_dtypes.float6_e3m2fn,
            "e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2, "e8m0": ml_dtypes.float8_e8m0fnu}


def numpy_mx_quantize(x, elem=ml_dtypes.float4_e2m1fn, emax=2, block=32):
    """PEER BASELINE (not fp4ref): a straightforward NumPy + ml_dtypes MX quantizer along the last axis.

    Scale 2^(floor(log2 amax) - emax) from frexp, clamped to E8M0's range; x / scale cast by ml_dtypes."""
    b = np.asarray(x, np.float32).reshape(-1, block)
    amax = np.max(np.abs(b), axis=1, keepdims=True)
    _, e = np.frexp(amax)
    se = np.clip(e.astype(np.int32) - 1 - emax, -127, 127)
    se[amax == 0] = -127
    scaled = np.ldexp(b, -se)
    codes = scaled.astype(elem).view(np.uint8)
    return codes.reshape(np.shape(x)), (se + 127).astype(np.uint8).reshape(*np.shape(x)[:-1], -1)


def numpy_mx_dequantize(codes, scales, elem=ml_dtypes.float4_e2m1fn, block=32):
    """PEER BASELINE: element value × 2^(scale - 127), in float32."""
    v = codes.view(elem).astype(np.float32).reshape(-1, block)
    s = np.ldexp(np.float32(1), scales.reshape(-1, 1).astype(np.int32) - 127)
    return (v * s).reshape(codes.shape)


# --- the rows ----------------------------------------------------------------------------------------------------
ENCODE_FORMATS = ("e2m1", "e1m2", "e2m3", "e3m2", "e4m3", "e5m2", "e8m0", "ue4m3", "mxint8", "int4")


def te_signs():
    from fp4ref import hadamard as H
    return tuple(int(s) for s in H.sign_vector(16, mask=H.TE_WGRAD_SIGN_MASK))


class Bench:
    def __init__(self, args, peers: Peers):
        self.args, self.peers, self.results = args, peers, []

    def log(self, msg):
        print(msg, file=sys.stderr, flush=True)

    def add(self, section, work, impl, fn, nbytes, repeat, fraction=1.0, note=""):
        r = Result(section, work, impl, nbytes=nbytes, note=note, fraction=fraction)
        if not self.selected(work, impl):
            return None
        try:
            first, best, cpu, peak = measure(fn, repeat)
            r.first, r.seconds, r.cpu, r.peak_extra = first, best / fraction, cpu / fraction, peak
            if fraction < 1:
                r.note = (r.note + " " if r.note else "") + f"est. from {fraction:.3g} of the input"
        except Exception as e:  # a failing row is reported, the table still prints
            r.note = f"error: {type(e).__name__}: {e}"[:120]
        self.results.append(r)
        self.log(f"  {section:<18} {work:<28} {impl:<26} "
                 + (f"{r.seconds:8.3f}s  1st {r.first:6.2f}s" if r.seconds is not None else r.note))
        return r

    def absent(self, section, work, impl, why):
        if self.selected(work, impl):
            self.results.append(Result(section, work, impl, note=f"not installed ({why})"))

    def selected(self, work, impl):
        only = self.args.only
        return not only or any(o in f"{work} {impl}" for o in only.split(","))

    # one input: every row
    def input_rows(self, label, x, repeat):
        Q = importlib.import_module("fp4ref.quantize")  # the module (fp4ref.quantize is also the function)
        p = self.peers
        nb = x.nbytes
        big = nb > 256 * MIB
        self.log(f"[{label}]")
        dst = np.empty_like(x)
        self.add(label, "memcpy", "numpy.copyto", lambda: np.copyto(dst, x), nb, max(repeat, 3))
        del dst
        chunked = (lambda fn: (lambda: in_row_chunks(fn, x))) if big else (lambda fn: (lambda: fn(x)))
        sl = x[: max(1, x.shape[0] // (1024 if big else 64))]

        # element encode
        for f in ENCODE_FORMATS:
            w = f"encode {f}"
            self.add(label, w, "fp4ref", lambda f=f: fp4ref.encode(x, f), nb, repeat)
            if f in ML_TYPES:
                t = ML_TYPES[f]
                self.add(label, w, "ml_dtypes astype", chunked(lambda a, t=t: a.astype(t)), nb, repeat,
                         note="ml_dtypes' NaN/overflow policy")
            if f in ("e4m3", "e5m2", "e8m0"):
                if p.torch is not None:
                    td = {"e4m3": "float8_e4m3fn", "e5m2": "float8_e5m2", "e8m0": "float8_e8m0fnu"}[f]
                    tdt = getattr(p.torch, td)
                    self.add(label, w, "torch .to", chunked(lambda a, tdt=tdt: self.to_torch(a).to(tdt)), nb, repeat)
                else:
                    self.absent(label, w, "torch .to", p.missing["torch"])
            if f in ("e2m1", "e2m3", "e3m2"):
                if p.torchao is not None:
                    k = p.torchao[3]
                    fn = {"e2m1": k.f32_to_f4_unpacked, "e2m3": k.f32_to_f6_e2m3_unpacked,
                          "e3m2": k.f32_to_f6_e3m2_unpacked}[f]
                    self.add(label, w, "torchao f32_to_fx_unpacked",
                             chunked(lambda a, fn=fn: fn(self.to_torch(a).float())), nb, repeat)
                else:
                    self.absent(label, w, "torchao f32_to_fx_unpacked", p.missing.get("torchao", ""))
            if f in ("e2m1", "e4m3") and not big:
                if p.gfloat is not None:
                    from gfloat import formats as gff
                    fi = {"e2m1": gff.format_info_ocp_e2m1, "e4m3": gff.format_info_ocp_e4m3}[f]
                    g = p.gfloat
                    self.add(label, w, "gfloat round+encode",
                             lambda fi=fi: g.encode_ndarray(fi, g.round_ndarray(fi, sl.astype(np.float32),
                                                                                g.RoundMode.TiesToEven, True)),
                             nb, 1, fraction=sl.size / x.size)
                else:
                    self.absent(label, w, "gfloat round+encode", p.missing["gfloat"])

        # block quantize
        self.quantize_rows(label, x, repeat, chunked, sl)

        # stochastic rounding
        from fp4ref import stochastic as S
        rb = np.random.default_rng(1).integers(0, 256, x.shape, dtype=np.uint8)
        self.add(label, "SR e2m1 explicit bits", "fp4ref",
                 lambda: fp4ref.encode(x, "e2m1", "stochastic-ptx", rbits=rb), nb, repeat, note="8-bit rbits")
        subs = np.arange(x.shape[0], dtype=np.uint64)
        self.add(label, "SR e2m1 Philox", "fp4ref",
                 lambda: fp4ref.encode(x, "e2m1", "stochastic-ptx", rbits=S.PhiloxBits(7, 0, subs)), nb, repeat,
                 note="one curand stream per row")
        self.add(label, "quantize ocp-mxfp4 SR", "fp4ref",
                 lambda: Q.quantize(x, "ocp-mxfp4", rounding="stochastic-ptx", rbits=rb), nb, repeat)
        if not big and p.gfloat is not None:
            from gfloat import formats as gff
            g = p.gfloat
            rbs = rb[: sl.shape[0]].astype(np.int64)
            self.add(label, "SR e2m1 explicit bits", "gfloat round(Stochastic)+encode",
                     lambda: g.encode_ndarray(gff.format_info_ocp_e2m1, g.round_ndarray(
                         gff.format_info_ocp_e2m1, sl.astype(np.float32), g.RoundMode.Stochastic, True,
                         srbits=rbs, srnumbits=8)), nb, 1, fraction=sl.size / x.size)
        del rb

        # Hadamard
        from fp4ref import hadamard as H
        sg = np.array(te_signs(), np.int8)
        self.add(label, "RHT16 (bf16 out)", "fp4ref exact", lambda: H.hadamard(x, 16, -1, sg, out_dtype=BF16), nb,
                 repeat)
        self.add(label, "RHT16 (bf16 out)", "fp4ref te model",
                 lambda: H.hadamard(x, 16, -1, sg, out_dtype=BF16, mode="te"), nb, repeat)
        B = (H.hadamard_matrix(16) * sg[:, None]).astype(np.float32) / 4  # y = x @ (D H / 4), rows of 16
        self.add(label, "RHT16 (bf16 out)", "numpy matmul fp32 + cast",
                 chunked(lambda a: (a.astype(np.float32).reshape(-1, 16) @ B).astype(BF16)), nb, repeat)

    def to_torch(self, a):
        t = self.peers.torch
        if a.dtype == BF16:
            return t.from_numpy(np.ascontiguousarray(a).view(np.int16)).view(t.bfloat16)
        return t.from_numpy(np.ascontiguousarray(a))

    def quantize_rows(self, label, x, repeat, chunked, sl):
        Q = importlib.import_module("fp4ref.quantize")  # the module (fp4ref.quantize is also the function)
        p = self.peers
        nb = x.nbytes
        signs = te_signs()
        q_mx = None
        for rec, kw, w in (("ocp-mxfp4", {}, "quantize ocp-mxfp4"), ("te-nvfp4", {}, "quantize te-nvfp4"),
                           ("te-nvfp4-2d", {}, "quantize te-nvfp4-2d"),
                           ("te-nvfp4-rht", {}, "quantize te-nvfp4 RHT16"),
                           ("ocp-mxfp8-e4m3", {}, "quantize ocp-mxfp8-e4m3")):
            r = self.add(label, w, "fp4ref", lambda rec=rec, kw=kw: Q.quantize(x, rec, **kw), nb, repeat)
            if rec == "ocp-mxfp4" and r is not None and r.seconds is not None:
                q_mx = Q.quantize(x, rec)
            if rec == "te-nvfp4" and not kw and self.selected("check te-nvfp4", "fp4ref"):
                try:
                    q_nv = Q.quantize(x, rec)
                    self.check_rows(label, x, q_nv, "te-nvfp4", repeat)
                    del q_nv
                except Exception as e:
                    self.log(f"  te-nvfp4 check skipped: {e}")
        # peers of MXFP4 quantize
        w = "quantize ocp-mxfp4"
        self.add(label, w, "numpy+ml_dtypes MX (peer)", chunked(numpy_mx_quantize), nb, repeat,
                 note="written in this script")
        if p.torchao is not None:
            mx_tensor, nvfp4_tensor, SCM, _ = p.torchao
            self.add(label, w, "torchao to_mx FLOOR", chunked(
                lambda a: mx_tensor.to_mx(self.to_torch(a), p.torch.float4_e2m1fn_x2, 32, SCM.FLOOR)), nb, repeat)
            amax = float(np.max(np.abs(x.astype(np.float32) if x.dtype == BF16 and x.size < 1 << 26 else x)))

            def tao_nv(a):
                pts = nvfp4_tensor.per_tensor_amax_to_scale(p.torch.tensor(amax, dtype=p.torch.float32))
                return nvfp4_tensor.nvfp4_quantize(self.to_torch(a), 16, pts)
            self.add(label, "quantize te-nvfp4", "torchao nvfp4_quantize", chunked(tao_nv), nb, repeat,
                     note="torchao's NVFP4 (decode-convention tensor scale)")
            H16 = None
            try:
                from fp4ref import hadamard as H
                H16 = p.torch.from_numpy((H.hadamard_matrix(16) * np.array(signs)[:, None]).astype(np.float32) / 4)
            except Exception:
                pass
            if H16 is not None:
                def tao_rht(a):
                    t = self.to_torch(a)
                    y = (t.float().reshape(-1, 16) @ H16).to(p.torch.bfloat16).reshape(t.shape)
                    pts = nvfp4_tensor.per_tensor_amax_to_scale(p.torch.max(p.torch.abs(y)).float())
                    return nvfp4_tensor.nvfp4_quantize(y, 16, pts)
                self.add(label, "quantize te-nvfp4 RHT16", "torch matmul + torchao nvfp4", chunked(tao_rht), nb,
                         repeat)
        else:
            for ww, impl in ((w, "torchao to_mx FLOOR"), ("quantize te-nvfp4", "torchao nvfp4_quantize")):
                self.absent(label, ww, impl, p.missing.get("torchao", ""))
        if p.mx is not None:
            mx_ops, MxSpecs = p.mx
            spec = MxSpecs()
            self.add(label, w, "microxcaling quantize_mx_op", chunked(
                lambda a: mx_ops.quantize_mx_op(self.to_torch(a), spec, elem_format="fp4_e2m1", block_size=32,
                                                axes=[-1], round="even")), nb, repeat,
                note="fake-quant: returns dequantized floats")
        else:
            self.absent(label, w, "microxcaling quantize_mx_op", p.missing.get("microxcaling", ""))
        if p.gfloat is not None and x.nbytes <= 256 * MIB:
            from gfloat.formats import format_info_mxfp4_e2m1
            g = p.gfloat
            blocks = sl.reshape(-1, 32)[:64].astype(np.float32)

            def gf_blocks():
                return [g.quantize_block(format_info_mxfp4_e2m1, b, g.compute_scale_amax) for b in blocks]
            self.add(label, w, "gfloat quantize_block", gf_blocks, nb, 1, fraction=blocks.size / x.size,
                     note="per-block Python")
        # dequantize and check
        if q_mx is not None:
            self.add(label, "dequantize ocp-mxfp4", "fp4ref", lambda: Q.dequantize(q_mx), nb, repeat,
                     note="GB/s of the fp32 input size")
            c, s = numpy_mx_quantize(x[:64])
            self.add(label, "dequantize ocp-mxfp4", "numpy+ml_dtypes MX (peer)", lambda: numpy_mx_dequantize(
                q_mx.codes, q_mx.scales), nb, repeat)
            if p.torchao is not None:
                mx_tensor = p.torchao[0]
                SCM = p.torchao[2]
                mxt = [mx_tensor.MXTensor.to_mx(self.to_torch(x[:x.shape[0] // 16]), p.torch.float4_e2m1fn_x2, 32,
                                                SCM.FLOOR)]
                self.add(label, "dequantize ocp-mxfp4", "torchao MXTensor.dequantize",
                         lambda: mxt[0].dequantize(p.torch.float32), nb, repeat, fraction=1 / 16)
            self.check_rows(label, x, q_mx, "ocp-mxfp4", repeat)
            del q_mx

    def check_rows(self, label, x, q, recipe, repeat):
        from fp4ref import check as C
        nb = x.nbytes
        r = self.add(label, f"check {recipe}", "fp4ref",
                     lambda: C.check_quantized(x, q.codes, q.scales, recipe, global_scale=q.global_scale), nb,
                     repeat, note="clean dump")
        if recipe == "ocp-mxfp4":
            bad = q.codes.copy()
            flat = bad.reshape(-1)
            flat[:: max(1, flat.size // 1000)] ^= 1
            self.add(label, f"check {recipe}", "fp4ref (1000 mismatches)",
                     lambda: C.check_quantized(x, bad, q.scales, recipe), nb, repeat)
            del bad
            chunk = (lambda fn: (lambda: in_row_chunks(fn, x))) if nb > 256 * MIB else (lambda fn: (lambda: fn(x)))

            def peer_check(a):
                c, s = numpy_mx_quantize(a)
                return np.array_equal(c, c) and np.array_equal(s, s)
            self.add(label, f"check {recipe}", "numpy+ml_dtypes re-quantize+compare", chunk(peer_check), nb,
                     repeat, note="no diagnosis")
        return r

    # the exhaustive float32 sweep of one element format
    def sweep(self):
        from fp4ref.cast import cast_params
        from fp4ref.kernels import cast as K
        self.log("[sweep]")
        step = 1 << 24
        buf = np.empty(step, np.uint32)
        out = np.empty(step, np.uint8)
        fp, pol = cast_params("e2m1")

        def run(fmt="e2m1"):
            errors = 0
            for lo in range(0, 1 << 32, step):
                _fill(buf, lo)
                errors += K.encode_array(buf.view(np.float32), out, fp, pol)
            return errors
        self.add("2^32 sweep", "encode e2m1, every float32", "fp4ref", run, 1 << 34, 1,
                 note="kernel on 2^24 patterns at a time, pattern fill included")

    # a 4 GiB memory-mapped input, chunked
    def big_file(self, gib):
        from fp4ref import check as C
        from fp4ref import io as IO
        Q = importlib.import_module("fp4ref.quantize")  # the module (fp4ref.quantize is also the function)
        self.log(f"[{gib} GiB memory-mapped .npy]")
        rows = int(gib * (1 << 30)) // (16384 * 4)
        d = Path(tempfile.mkdtemp(prefix="fp4ref-bench-", dir=self.args.tmp))
        try:
            xp, cp, sp = d / "x.npy", d / "codes.npy", d / "scales.npy"
            xm = np.lib.format.open_memmap(xp, "w+", np.float32, (rows, 16384))
            rng = np.random.default_rng(5)
            for r in range(0, rows, 4096):
                xm[r:r + 4096] = rng.standard_normal((min(4096, rows - r), 16384), dtype=np.float32)
            xm.flush()
            del xm
            nb = rows * 16384 * 4
            # one untimed call on a slice, as the other rows get: Numba compiles read-only arrays (the memory-mapped
            # file, its pieces, the dump) apart, so a stale cache would otherwise compile inside the timed call
            xr = np.load(xp, mmap_mode="r")[:32]
            qw = Q.quantize_rows(xr, 0, 32, "ocp-mxfp4")
            for a in (qw.codes, qw.scales):
                a.setflags(write=False)
            C.check_quantized(xr, qw.codes, qw.scales, "ocp-mxfp4")
            del xr, qw

            def quantize_file():
                # the dump a user checks: codes and scales written chunk by chunk, nothing held whole
                with open(cp, "wb") as fc, open(sp, "wb") as fs:
                    np.lib.format.write_array_header_2_0(fc, {"descr": "|u1", "fortran_order": False,
                                                              "shape": (rows, 16384)})
                    np.lib.format.write_array_header_2_0(fs, {"descr": "|u1", "fortran_order": False,
                                                              "shape": (rows, 16384 // 32)})
                    for start, piece in IO.iter_row_chunks(str(xp), max_bytes=64 * MIB):
                        q = Q.quantize_rows(piece, 0, piece.shape[0], "ocp-mxfp4")
                        fc.write(np.ascontiguousarray(q.codes).tobytes())
                        fs.write(np.ascontiguousarray(q.scales).tobytes())
            self._file_row(f"{gib} GiB .npy", "quantize ocp-mxfp4 (chunked)", quantize_file, nb)

            def check_file():
                x = np.load(xp, mmap_mode="r")
                c = np.load(cp, mmap_mode="r")
                s = np.load(sp, mmap_mode="r")
                rep = C.check_quantized(x, c, s, "ocp-mxfp4")
                assert rep.ok if hasattr(rep, "ok") else True
                return rep
            self._file_row(f"{gib} GiB .npy", "check ocp-mxfp4 (memmap)", check_file, nb)
        finally:
            for p in d.glob("*"):
                p.unlink()
            d.rmdir()

    def _file_row(self, section, work, fn, nb):
        if not self.selected(work, "fp4ref"):
            return
        r = Result(section, work, "fp4ref", nbytes=nb)
        try:
            gc.collect()
            _reset_peak()
            base = _status()
            with AnonPeak() as ap:
                c = time.process_time()
                t = time.perf_counter()
                fn()
                r.seconds, r.cpu = time.perf_counter() - t, time.process_time() - c
            r.peak_extra = _status()["VmHWM"] - base["VmRSS"]
            r.note = f"peak RSS {_status()['VmHWM'] / MIB:.0f} MiB, anon +{(ap.peak - base['RssAnon']) / MIB:.0f} MiB"
        except Exception as e:
            r.note = f"error: {type(e).__name__}: {e}"[:120]
        self.results.append(r)
        self.log(f"  {section:<18} {work:<28} " + (f"{r.seconds:8.3f}s {r.note}" if r.seconds else r.note))

    # Numba compile and cache load, in fresh processes
    def compile_rows(self):
        """Wall time of a fresh process doing one small call: with an empty Numba cache (everything it needs
        compiled), then again with the cache it left (cache=True: what a second CLI run pays). Every recipe
        and `check` run the same quantize kernels, so one quantize row stands for them."""
        self.log("[first call]")
        py = sys.executable
        runs = {
            "import fp4ref": [py, "-c", "import fp4ref"],
            "CLI fp4ref encode -f e2m1 1.3": [py, "-m", "fp4ref.cli.main", "encode", "-f", "e2m1", "1.3"],
            "encode e2m1 (fp32 input)": [py, "-c", "import fp4ref, numpy as np; "
                                                   "fp4ref.encode(np.ones(8, np.float32), 'e2m1')"],
            "encode e2m1 (fp64 input)": [py, "-c", "import fp4ref, numpy as np; fp4ref.encode(np.ones(8), 'e2m1')"],
            "quantize ocp-mxfp4": [py, "-c", "import numpy as np; from fp4ref.quantize import quantize; "
                                             "quantize(np.ones((4, 64), np.float32), 'ocp-mxfp4')"],
        }
        for name, cmd in runs.items():
            if not self.selected(name, "first call"):
                continue
            cache = tempfile.mkdtemp(prefix="fp4ref-numba-cache-", dir=self.args.tmp)
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            r = Result("first call", name, "fp4ref", note="process wall time")
            try:
                times = []
                for _ in range(2):  # empty cache, then the cache the first run wrote
                    t = time.perf_counter()
                    p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
                    times.append(time.perf_counter() - t)
                    if p.returncode:
                        raise RuntimeError((p.stderr.strip().splitlines() or ["?"])[-1][:100])
                r.first, r.seconds = times
            except RuntimeError as e:
                r.note = f"error: {e}"
            finally:
                subprocess.run(["rm", "-rf", cache])
            self.results.append(r)
            self.log(f"  {name:<32} " + (f"empty cache {r.first:.2f}s, cached {r.seconds:.2f}s" if r.seconds
                                         else r.note))


@numba.njit(cache=True, parallel=True)
def _fill(buf, lo):
    for i in numba.prange(buf.size):
        buf[i] = np.uint32(lo + i)


# --- the table ---------------------------------------------------------------------------------------------------
def finish(results):
    memcpy = {r.section: r.nbytes / r.seconds for r in results if r.work == "memcpy" and r.seconds}
    best_peer = {}
    for r in results:
        if r.seconds and r.nbytes:
            r.gbs = r.nbytes / r.seconds / 1e9
            if r.section in memcpy:
                r.vs_memcpy = (r.nbytes / r.seconds) / memcpy[r.section]
            if not r.impl.startswith("fp4ref") and r.work != "memcpy":
                key = (r.section, r.work)
                best_peer[key] = max(best_peer.get(key, 0), r.gbs)
    for r in results:
        if r.gbs and (r.section, r.work) in best_peer:
            r.vs_peer = r.gbs / best_peer[(r.section, r.work)]


def table(results) -> str:
    head = ("input", "work", "implementation", "time s", "CPU s", "GB/s", "× memcpy", "× best peer",
            "extra RSS MiB", "1st call s", "note")
    rows = []
    for r in results:
        f = lambda v, fmt: "" if v is None else format(v, fmt)  # noqa: E731
        if r.section == "first call":
            rows.append((r.section, r.work, r.impl, f(r.seconds, ".2f") + " cached", "", "", "", "", "",
                         f(r.first, ".2f") + " empty cache" if r.first is not None else "", r.note))
            continue
        rows.append((r.section, r.work, r.impl, f(r.seconds, ".3f"), f(r.cpu, ".3f"), f(r.gbs, ".2f"),
                     f(r.vs_memcpy, ".2f"),
                     f(r.vs_peer, ".2f"), "" if r.peak_extra is None else f"{r.peak_extra / MIB:.0f}",
                     f(r.first, ".2f"), r.note))
    w = [max(len(str(x[i])) for x in rows + [head]) for i in range(len(head))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(cells)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (x + 2) for x in w) + "|"] + [line(r) for r in rows])


def targets(results) -> str:
    """The issue's targets, evaluated on this run."""
    def get(s, w):
        rows = [r for r in results if r.section == s and r.work == w and r.impl.startswith("fp4ref")
                and r.seconds and "mismatches" not in r.impl]
        return min(rows, key=lambda r: r.seconds) if rows else None
    out = []
    for s in sorted({r.section for r in results if r.work == "memcpy"}):
        def ratio(w, need, what="vs_memcpy"):
            r = get(s, w)
            if r is None or getattr(r, what) is None:
                return f"  {s}: {w}: not measured"
            v = getattr(r, what)
            return f"  {s}: {w} {v:.2f} {'×memcpy' if what == 'vs_memcpy' else '×best peer'} " \
                   f"(target ≥ {need}) {'MET' if v >= need else 'not met'}"
        out += [ratio("quantize ocp-mxfp4", 0.6), ratio("quantize ocp-mxfp4", 15, "vs_peer"),
                ratio("quantize te-nvfp4", 0.6), ratio("quantize te-nvfp4", 15, "vs_peer"),
                ratio("quantize te-nvfp4-2d", 0.6), ratio("SR e2m1 explicit bits", 0.35), ratio("SR e2m1 Philox", 0.35),
                ratio("quantize te-nvfp4 RHT16", 0.35), ratio("RHT16 (bf16 out)", 0.35)]
        for rec in ("ocp-mxfp4", "te-nvfp4"):
            q, c = get(s, f"quantize {rec}"), get(s, f"check {rec}")
            if q and c:
                v = q.seconds / c.seconds
                out.append(f"  {s}: check {rec} at {v:.2f} of quantize speed (target ≥ 0.5) "
                           f"{'MET' if v >= 0.5 else 'not met'}")
    sw = get("2^32 sweep", "encode e2m1, every float32")
    if sw:
        out.append(f"  2^32 sweep of e2m1: {sw.seconds:.1f} s (target ≤ 10 s) {'MET' if sw.seconds <= 10 else 'not met'}")
    return "\n".join(out)


def machine(peers) -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (f"{platform.node()}: {cpu}, {os.cpu_count()} cores, Numba threads {numba.get_num_threads()}, "
            f"Python {platform.python_version()}, load average at the end {load[0]:.1f}; "
            + ", ".join(f"{k} {v}" for k, v in peers.versions().items()))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="4096,16384", help="square fp32 inputs (comma-separated sides)")
    ap.add_argument("--bf16", type=int, default=16384, help="side of the bf16 input (0: none)")
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per row (best is kept)")
    ap.add_argument("--big-repeat", type=int, default=2, help="timed calls per row for inputs over 256 MiB")
    ap.add_argument("--skip", default="", help="comma-separated: peers, sweep, big, compile")
    ap.add_argument("--only", default="", help="comma-separated substrings of 'work implementation' to run")
    ap.add_argument("--big-gib", type=float, default=4.0, help="size of the memory-mapped .npy input")
    ap.add_argument("--mx-root", default=os.environ.get("FP4REF_BENCH_MX", "/tmp/microxcaling"),
                    help="a checkout of microsoft/microxcaling (holding mx/)")
    ap.add_argument("--tmp", default=None, help="directory for the big file and the cold Numba cache")
    ap.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    peers = Peers(args.mx_root) if "peers" not in skip else Peers.__new__(Peers)
    if "peers" in skip:
        peers.missing = {k: "skipped" for k in ("torch", "torchao", "gfloat", "microxcaling")}
        peers.torch = peers.torchao = peers.gfloat = peers.mx = None
    b = Bench(args, peers)
    t0 = time.time()
    try:
        run_all(b, args, skip)
    except KeyboardInterrupt:  # Ctrl-C: the rows measured so far still make a table
        b.log("interrupted: printing the rows measured so far")
    finish(b.results)
    print(f"Machine: {machine(peers)}")
    print(f"Command: {' '.join([Path(sys.executable).name] + sys.argv)}  ({time.time() - t0:.0f} s)")
    print()
    print(table(b.results))
    print()
    print("Targets (issue, this run):")
    print(targets(b.results))
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in b.results], indent=1))


def run_all(b, args, skip):
    rng = np.random.default_rng(0)
    for side in [int(s) for s in args.sizes.split(",") if s]:
        x = rng.standard_normal((side, side), dtype=np.float32)
        b.input_rows(f"fp32 {side}²", x, args.repeat if x.nbytes <= 256 * MIB else min(args.big_repeat, args.repeat))
        del x
        gc.collect()
    if args.bf16:
        x = rng.standard_normal((args.bf16, args.bf16), dtype=np.float32).astype(BF16)
        b.input_rows(f"bf16 {args.bf16}²", x, args.repeat if x.nbytes <= 256 * MIB else min(args.big_repeat, args.repeat))
        del x
        gc.collect()
    if "sweep" not in skip:
        b.sweep()
    if "big" not in skip:
        b.big_file(args.big_gib)
    if "compile" not in skip:
        b.compile_rows()


if __name__ == "__main__":
    main()
