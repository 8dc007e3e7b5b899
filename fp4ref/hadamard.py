"""Walsh–Hadamard and random Hadamard transforms, applied block-diagonally along one axis.

Definitions (n = ``size`` = 2^k, 2 <= n <= 4096):

- ``H`` is the Sylvester Hadamard matrix, ``H[i, j] = (-1)^popcount(i & j)`` (H_1 = [1], H_2m = [[H, H], [H, -H]]);
  H H = n I, so H / sqrt(n) is orthogonal and symmetric.
- The array is cut along ``axis`` into blocks of n consecutive elements (the axis length must be a multiple of
  n). Blocks are numbered in C order of the array of blocks, whose shape is ``x.shape`` with ``x.shape[axis]``
  replaced by ``x.shape[axis] // n`` (for ``axis=-1`` block b is ``x.reshape(-1, n)[b]``).
- Random Hadamard transform (RHT), with D = diag(signs):
  forward ``y = H D x / sqrt(n)`` (signs first, then H), inverse ``x = D H y / sqrt(n)``, which undoes it.
  This is TransformerEngine's order: its reference builds ``diag(signs) @ H`` and computes
  ``x_row @ (diag(s) H / 4)`` (``transformer_engine/pytorch/custom_recipes/reference_nvfp4.py``,
  ``_build_hadamard_matrix`` / ``_apply_rht``; ``transformer_engine/pytorch/tensor/nvfp4_tensor.py``,
  ``get_rht_matrix``), which is H D x for a column x since H is symmetric; its CUDA fragment builder puts the
  sign of column c on B[r, c] for the forward and of row r for the inverse
  (``transformer_engine/common/hadamard_transform/hadamard_transform_utils.cuh``,
  ``get_hadamard_matrix_fragment``).

``mode="exact"`` (default): every output is the exact value of its row of B x (B = D H / sqrt(n) or
H D / sqrt(n)) rounded once, to nearest even, to ``out_dtype``. Inputs float64/float32/float16/bfloat16 are
used at their exact values. Overflow rounds to +-Inf (IEEE round-to-nearest). Zeros and specials follow an IEEE
sum of the n terms, which no summation order changes: an output is NaN (the canonical quiet NaN, positive) if
any input of its block is NaN or its infinite terms have both signs, +-Inf if its infinite terms share a sign,
and an exact zero is -0 only when every term is -0 (all inputs zero), +0 otherwise. For n a power of 4 the
scale 2^(-k/2) is exact; for n = 2 * 4^j the value is irrational unless zero, never a rounding tie, and the
rounding is decided in float64 with an error bound or, when too close to call, with integers (math.isqrt).

``mode="te"``: a model of TransformerEngine's RHT16 numerics (n = 16 only; TE's kernels take bfloat16 inputs,
so pass bfloat16 to reproduce them; float16/float32 inputs are used as they are). TE multiplies by a bf16
matrix B with entries +-0.25 on tensor cores, accumulating in fp32 (``wmma.mma.sync ... m16n16k16.f32.bf16.bf16.f32``
with a zero C operand in ``mma_m16_n16_k16_b16_b16_b16_noacc``, hadamard_transform_utils.cuh; UMMA with fp32
accumulators in ``row_cast_col_hadamard_transform_cast_fusion.cu``) and rounds the fp32 result to bf16 with
``cvt.rn.bf16x2.f32`` before the amax and the FP4 cast (the fused kernel does so unless NVTE_USE_FAST_MATH, where
the fp32 value is used: ``out_dtype=float32`` here). The order in which a tensor core adds the 16 products is
internal to the hardware and not an IEEE sequence; this model adds fl32(x_i * b_ij) in float32
round-to-nearest-even in index order i = 0..15, starting from +0.0; NaN results are the canonical NaN.
Whenever :func:`accumulation_tolerance` reports an output as unambiguous, every fp32 accumulation within its
bound (this model, and TE's MMA if it meets that bound) rounds to the same value as ``mode="exact"``. TE's
kernels were read, not run: on the ambiguous outputs this model is a plausible order, not proven TE bits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from .cast import as_float32
from .kernels.cast import bit_patterns
from .kernels import hadamard as K
from .random import philox4x32_10_many

__all__ = ["hadamard", "hadamard_matrix", "sign_vector", "accumulation_tolerance", "AccumulationTolerance",
           "TE_WGRAD_SIGN_MASK", "MODES", "MAX_SIZE"]

# TransformerEngine's NVFP4 wgrad RHT signs [1,1,1,-1,1,-1,-1,-1,-1,-1,-1,1,-1,1,-1,-1] as a mask, bit i set =
# sign -1 for element i (transformer_engine/pytorch/tensor/nvfp4_tensor.py: get_wgrad_sign_vector,
# get_sign_from_vector; the kernels take this uint16 as random_sign_mask).
TE_WGRAD_SIGN_MASK = 0xD7E8
MODES = ("exact", "te")
MAX_SIZE = 4096  # the limb butterfly's int64 limbs hold 12 doublings (kernels/hadamard.py)

_BF16 = np.dtype(ml_dtypes.bfloat16)
_INPUTS = {np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.float16), _BF16}
# output dtype -> (precision with hidden bit, exponent bits, bit-pattern dtype)
_OUTPUTS = {np.dtype(np.float32): (24, 8, np.uint32), _BF16: (8, 8, np.uint16),
            np.dtype(np.float16): (11, 5, np.uint16)}
_ALLOWED_IN = "float64, float32, float16, bfloat16 (ml_dtypes)"
_ALLOWED_OUT = "float32, bfloat16 (ml_dtypes), float16"


@dataclass(frozen=True)
class AccumulationTolerance:
    """Per output of :func:`accumulation_tolerance` (arrays of the input's shape).

    bound: float64 upper bound on |fp32-accumulated value - exact value| before the final rounding (0 where fp32
      accumulation is exact in every order or the result is NaN/Inf either way; inf where fp32 partial sums may
      overflow).
    ambiguous: True where some accumulation within the bound can round to a different ``out_dtype`` value (or
      signed zero) than the exact value does; False means every such accumulation gives the exact mode's bits.
    """
    bound: np.ndarray
    ambiguous: np.ndarray


def _check_size(size) -> int:
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"size must be an integer power of two in [2, {MAX_SIZE}], got {size!r}")
    n = int(size)
    if n < 2 or n > MAX_SIZE or n & (n - 1):
        raise ValueError(f"size must be a power of two in [2, {MAX_SIZE}], got {n}")
    return n


def hadamard_matrix(n) -> np.ndarray:
    """The n x n Sylvester Hadamard matrix (int8, entries +-1, H[i, j] = (-1)^popcount(i & j))."""
    n = _check_size(n)
    h = np.ones((1, 1), dtype=np.int8)
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def sign_vector(size, *, mask=None, seed=None, call=0, blocks=None) -> np.ndarray:
    """Signs (int8 +-1) for the RHT: exactly one of ``mask`` or ``seed``.

    mask: integer in [0, 2^size); bit i set = sign -1 for element i (TransformerEngine's random_sign_mask
      convention; ``TE_WGRAD_SIGN_MASK`` = 0xD7E8 is its NVFP4 wgrad vector). Returns shape (size,).
    seed: 64-bit integer. The signs of block b (b = 0 .. blocks-1) at call number ``call`` come from
      ``fp4ref.random.philox4x32_10(seed, subsequence=b, offset=call * w, count=w)`` with w = ceil(size/32)
      words (curand's Philox4x32-10 stream): element i is -1 when bit i % 32 of word i // 32 is set.
      ``blocks=None`` returns the vector of block 0, shape (size,), to share across blocks; ``blocks=B`` returns
      shape (B, size), fresh signs per block (pass it as ``signs`` with B = the number of blocks). A new
      ``call`` gives fresh signs per call.
    """
    n = _check_size(size)
    if (mask is None) == (seed is None):
        raise ValueError("sign_vector takes exactly one of mask= or seed=")
    if mask is not None:
        if blocks is not None or call != 0:
            raise ValueError("blocks= and call= apply to seed=, not mask=")
        if isinstance(mask, (bool, np.bool_)) or not isinstance(mask, (int, np.integer)) or not 0 <= mask < (1 << n):
            raise ValueError(f"mask must be an integer in [0, 2**{n}), got {mask!r}")
        bits = (int(mask) >> np.arange(n, dtype=object)) & 1
        return np.where(bits.astype(np.int64) == 1, -1, 1).astype(np.int8)
    if isinstance(call, (bool, np.bool_)) or not isinstance(call, (int, np.integer)) or call < 0:
        raise ValueError(f"call must be a non-negative integer, got {call!r}")
    nb = 1 if blocks is None else blocks
    if isinstance(nb, (bool, np.bool_)) or not isinstance(nb, (int, np.integer)) or nb < 1:
        raise ValueError(f"blocks must be a positive integer or None, got {blocks!r}")
    w = (n + 31) // 32
    words = philox4x32_10_many(seed, np.arange(int(nb), dtype=np.uint64), int(call) * w, w)
    i = np.arange(n)
    bits = (words[:, i // 32] >> (i % 32).astype(np.uint32)) & 1
    s = np.where(bits == 1, -1, 1).astype(np.int8)
    return s[0] if blocks is None else s


def _as_input(x) -> np.ndarray:
    if isinstance(x, (bool, int, np.integer)) and not isinstance(x, np.floating):
        raise TypeError(f"x is an integer ({x!r}); pass floats ({_ALLOWED_IN})")
    a = np.asarray(x)
    if a.dtype not in _INPUTS:
        raise TypeError(f"x has dtype {a.dtype}; allowed: {_ALLOWED_IN}")
    if a.ndim == 0:
        raise ValueError("x must have at least one dimension")
    return a


def _layout(a: np.ndarray, n: int, axis) -> tuple[int, int, int, int]:
    """(axis, pre, m, post) of the 3-D view; checks axis and the axis length."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an integer in [-{a.ndim}, {a.ndim - 1}], got {axis!r}")
    if not -a.ndim <= axis < a.ndim:
        raise ValueError(f"axis must be in [-{a.ndim}, {a.ndim - 1}] for x of shape {a.shape}, got {axis}")
    axis = int(axis) % a.ndim
    m = a.shape[axis]
    if m % n:
        raise ValueError(f"x.shape[{axis}] = {m} is not a multiple of size = {n}")
    return axis, math.prod(a.shape[:axis]), m, math.prod(a.shape[axis + 1:])


def _sign_table(signs, n: int, nblocks: int) -> np.ndarray:
    """signs as float64 (1, n) (shared) or (nblocks, n)."""
    if signs is None:
        return np.ones((1, n))
    s = np.asarray(signs)
    if s.dtype.kind not in "iuf" or s.dtype == np.bool_:
        raise TypeError(f"signs must be a numeric array of +1/-1, got dtype {s.dtype}")
    if s.shape == (n,):
        s = s.reshape(1, n)
    elif s.shape != (nblocks, n):
        raise ValueError(f"signs must have shape ({n},) (shared by all blocks) or ({nblocks}, {n}) (one row per "
                         f"block), got {s.shape}")
    if not np.all((s == 1) | (s == -1)):
        raise ValueError("signs must contain only +1 and -1")
    return np.ascontiguousarray(s, dtype=np.float64)


def _out_params(out_dtype) -> tuple[np.dtype, int, int, type]:
    try:
        dt = np.dtype(out_dtype)
    except TypeError:
        dt = None
    if dt not in _OUTPUTS:
        raise ValueError(f"out_dtype {out_dtype!r} is not supported; allowed: {_ALLOWED_OUT}")
    p, ebits, udt = _OUTPUTS[dt]
    return dt, p, ebits, udt


def _prepare(x, size, axis, signs):
    a = _as_input(x)
    n = _check_size(size)
    axis, pre, m, post = _layout(a, n, axis)
    nblocks = pre * (m // n) * post
    sg = _sign_table(signs, n, nblocks)
    return a, n, axis, pre, m, post, sg


def hadamard(x, size, axis=-1, signs=None, inverse=False, out_dtype=np.float32, mode="exact") -> np.ndarray:
    """Block (random) Hadamard transform of ``x`` along ``axis`` (definitions in the module docstring).

    x: float64/float32/float16/bfloat16 array; size: block length n, a power of two in [2, 4096];
    signs: None (plain Hadamard), shape (n,) shared by every block, or shape (number of blocks, n) in block
    order (see :func:`sign_vector`); entries +1/-1. inverse: apply the inverse (D H / sqrt(n)).
    out_dtype: float32, bfloat16 or float16 (float16 only with mode="exact"). mode: "exact" or "te".
    Returns an array of x's shape and ``out_dtype``.
    """
    return transform_amax(x, size, axis, signs, inverse, out_dtype, mode)[0]


def transform_amax(x, size, axis=-1, signs=None, inverse=False, out_dtype=np.float32, mode="exact", buffer=None):
    """(:func:`hadamard`'s result, its largest magnitude as a float, or None): the te kernel of contiguous
    blocks with one sign vector finds the amax on the way, which saves block quantization a pass over the
    output; None elsewhere. buffer: None, or a 1-D array of the output's bit-pattern dtype (uint32 for float32,
    uint16 for bfloat16/float16) with at least x.size elements, which then holds the result (block quantization
    reuses one such buffer chunk after chunk instead of allocating fresh pages for each)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not isinstance(inverse, (bool, np.bool_)):
        raise TypeError(f"inverse must be a bool, got {inverse!r}")
    a, n, axis, pre, m, post, sg = _prepare(x, size, axis, signs)
    dt, p, ebits, udt = _out_params(out_dtype)
    k = n.bit_length() - 1
    if mode == "te":
        if n != 16:
            raise ValueError(f"mode='te' models TransformerEngine's 16-point RHT; size must be 16, got {n}")
        if a.dtype == np.float64:
            raise TypeError("mode='te' models fp32 accumulation of bfloat16 inputs; x must be bfloat16, float16 "
                            "or float32, got float64")
        if dt == np.float16:
            raise ValueError("mode='te' gives bfloat16 (TE's output) or float32 (NVTE_USE_FAST_MATH), not float16")
        # float16/bfloat16 inputs are read as 16-bit patterns (widened per element)
        xb, bf16 = bit_patterns(np.ascontiguousarray(a).reshape(-1))
        to_bf16 = dt == _BF16
        mem = _result_memory(buffer, udt, a.size)
        o32 = np.empty(0, np.float32) if to_bf16 else mem.view(np.float32)
        o16 = mem if to_bf16 else np.empty(0, np.uint16)
        mb = K.transform_te(xb, bf16, pre, m, post, sg, hadamard_matrix(16), bool(inverse), to_bf16, o32, o16)
        amax = float(np.uint32(mb).view(np.float32)) if mb >= 0 else None
        return (o16.view(_BF16) if to_bf16 else o32).reshape(a.shape), amax
    container = np.float64 if a.dtype == np.float64 else np.float32
    xf = (np.ascontiguousarray(a) if container == np.float64 else as_float32(a)).reshape(-1)
    out = _result_memory(buffer, udt, xf.size)
    flags = np.zeros(pre * (m // n) * post, np.uint8)
    container_p = 53 if container == np.float64 else 24
    K.transform_exact(xf, pre, m, post, sg, k, bool(inverse), p, ebits, container_p, out, flags)
    for idx in np.flatnonzero(flags):
        row, c = divmod(int(idx), post)
        pos = row * n * post + c + post * np.arange(n)
        s = sg[0 if sg.shape[0] == 1 else idx]
        out[pos] = _exact_irrational_block([float(v) for v in xf[pos]], s, bool(inverse), k, p, ebits)
    return out.view(dt).reshape(a.shape), None


def te_sign_mask(signs) -> int:
    """One shared 16-entry sign vector (None: all +1) as the te kernels take it: bit i set where signs[i] is -1."""
    sg = _sign_table(signs, 16, 1)
    return sum(1 << i for i in range(16) if sg[0, i] < 0)


def te_amax(x, mask: int, out_dtype) -> float:
    """The largest magnitude of ``hadamard(x, 16, -1, signs, out_dtype=out_dtype, mode="te")`` (mask:
    te_sign_mask(signs)), NaN where the output has one, without writing the output out: the tensor amax of a
    transform that block quantization applies again tile row by tile row. x: float32/float16/bfloat16 with a
    last axis of a multiple of 16 elements."""
    dt = np.dtype(out_dtype)
    if dt not in (np.dtype(np.float32), _BF16):
        raise ValueError(f"out_dtype must be float32 or bfloat16 (mode='te'), got {out_dtype!r}")
    if x.shape[-1] % 16:
        raise ValueError(f"the last axis of x must be a multiple of 16, got {x.shape[-1]}")
    xb, bf16 = bit_patterns(np.ascontiguousarray(x).reshape(-1))
    return float(np.uint32(K.te_amax(xb, bf16, np.uint32(mask), dt == _BF16)).view(np.float32))


def _result_memory(buffer, udt, size: int) -> np.ndarray:
    """The first size elements of buffer (see transform_amax), or a fresh array."""
    if buffer is None:
        return np.empty(size, udt)
    if buffer.dtype != udt or buffer.ndim != 1 or buffer.size < size or not buffer.flags.c_contiguous:
        raise ValueError(f"buffer must be a contiguous 1-D {np.dtype(udt).name} array of at least {size} elements, "
                         f"got {buffer.dtype} of shape {buffer.shape}")
    return buffer[:size]


def _exact_irrational_block(xs: list[float], s: np.ndarray, inverse: bool, k: int, p: int, ebits: int) -> list[int]:
    """Bits of a finite block with odd k (scale 2^-(k//2) / sqrt 2), exactly, with Python integers.

    Only blocks whose float64 estimate came too close to a rounding midpoint get here (rare)."""
    n = 1 << k
    terms = [(-v if (not inverse and s[i] < 0) else v).as_integer_ratio() for i, v in enumerate(xs)]
    # every term is num / 2^e (den a power of two): scale all to the common denominator 2^qd
    qd = max(den.bit_length() - 1 for _, den in terms)
    ints = [num << (qd - (den.bit_length() - 1)) for num, den in terms]
    h = 1
    while h < n:
        for i0 in range(0, n, 2 * h):
            for j in range(i0, i0 + h):
                ints[j], ints[j + h] = ints[j] + ints[j + h], ints[j] - ints[j + h]
        h *= 2
    t = -qd - k // 2
    res = []
    for j, S in enumerate(ints):
        if S == 0:
            res.append(0)
            continue
        neg = (S < 0) != (inverse and s[j] < 0)
        N, qe = _round_sqrt2(abs(S), t, p, ebits)
        res.append(int(K.encode(neg, N, qe, p, ebits)))
    return res


def _round_sqrt2(S: int, t: int, p: int, ebits: int) -> tuple[int, int]:
    """Round-to-nearest of v = S * 2^t / sqrt(2) (S > 0) to precision p: (N, qe) with result N * 2^qe."""
    emin = 2 - (1 << (ebits - 1))
    b = S.bit_length()
    e = b - 1 + t if S * S >= (1 << (2 * b - 1)) else b - 2 + t  # floor(log2 v): v >= 2^(b-1+t) iff S^2 >= 2^(2b-1)
    qe = max(e, emin) - (p - 1)
    d = t - qe  # v / 2^qe = S * 2^d / sqrt 2; floor of it = isqrt(S^2 2^(2d) / 2), and isqrt(floor(r)) = floor(sqrt r)
    sq = S * S
    N = math.isqrt(sq << (2 * d - 1)) if 2 * d - 1 >= 0 else math.isqrt(sq >> (1 - 2 * d))
    # v / 2^qe > N + 1/2  iff  S^2 2^(2d+1) > (2N + 1)^2; never equal (sqrt 2 is irrational)
    lhs, rhs = (sq << (2 * d + 1), (2 * N + 1) ** 2) if 2 * d + 1 >= 0 else (sq, (2 * N + 1) ** 2 << -(2 * d + 1))
    return (N + 1 if lhs > rhs else N), qe


def accumulation_tolerance(x, size, axis=-1, signs=None, inverse=False, out_dtype=ml_dtypes.bfloat16,
                           unit_roundoff=2.0 ** -23) -> AccumulationTolerance:
    """Where a float32 accumulation of the transform may round differently from the exact result.

    Model of "a valid fp32 accumulation": each term x_i * b_ij (|b_ij| = 1/sqrt(n)) and the partial sums are
    formed in float32 in any order (any tree), each operation with relative error at most ``unit_roundoff``
    (2^-23 by default, which also covers truncating adders as in tensor cores; 2^-24 for round-to-nearest),
    products that underflow with absolute error below 2^-149, and no flush of subnormals to zero. Then
    |accumulated - exact| <= gamma_(n+1) * sum_i |x_i| / sqrt(n) + n * 2^-149, gamma_m = m u / (1 - m u), and 0
    when every term is a multiple of some 2^q >= 2^-149 with sum |terms| < 2^(q+24) (all partial sums are then
    float32 numbers, so every order is exact; only for n a power of 4, where the terms are exact). This is
    how bfloat16 inputs of moderate dynamic range make TE's RHT bit-exact.

    ``ambiguous`` compares the rounding of the two ends of [exact - bound, exact + bound] (widened by the
    float64 estimate's own error), so it may flag a few outputs more than necessary, never fewer.
    x: float32, bfloat16 or float16 (fp32 accumulation has no float64 inputs); other arguments as hadamard().
    """
    a, n, axis, pre, m, post, sg = _prepare(x, size, axis, signs)
    if a.dtype == np.float64:
        raise TypeError("accumulation_tolerance models fp32 accumulation; x must be float32, bfloat16 or float16")
    dt, p, ebits, udt = _out_params(out_dtype)
    u = float(unit_roundoff)
    if not 0.0 < u <= 2.0 ** -8:
        raise ValueError(f"unit_roundoff must be in (0, 2**-8], got {unit_roundoff!r}")
    k = n.bit_length() - 1
    xf = as_float32(a).reshape(-1)
    est = np.empty(xf.size, np.float64)
    nblocks = pre * (m // n) * post
    asum = np.empty(nblocks, np.float64)
    cert = np.empty(nblocks, np.uint8)
    K.block_sums(xf, pre, m, post, sg, k, bool(inverse), est, asum, cert)

    def per_element(a_blk):  # block array (rows * post) -> element array (rows * n * post), C order
        return np.broadcast_to(a_blk.reshape(-1, 1, post), (nblocks // post, n, post)).reshape(-1)

    c = 2.0 ** -(k // 2) * (K.INV_SQRT2 * (1 + 2.0 ** -52) if k % 2 else 1.0)
    tsum = per_element(asum) * c                       # sum |terms| (finite terms), rounded up
    special = per_element(cert == K.CERT_SPECIAL)
    exact = per_element(cert == K.CERT_EXACT)
    g = (n + 1) * u / (1 - (n + 1) * u)
    bound = g * tsum + n * 2.0 ** -149
    overflow = tsum * (1 + g) >= K.FLT_MAX
    bound = np.where(exact | special, 0.0, bound)
    bound = np.where(overflow, np.inf, bound)
    with np.errstate(invalid="ignore"):  # NaN/Inf outputs: decided by `special` below
        s_est = est * c
        err = ((k + 1) * 2.0 ** -53 * tsum + 2.0 ** -51 * np.abs(s_est))
        w = (bound + err) * (1 + 2.0 ** -40)
        lo = np.nextafter(s_est - w, -np.inf)
        hi = np.nextafter(s_est + w, np.inf)
    rlo = np.empty(lo.size, udt)
    rhi = np.empty(hi.size, udt)
    K.round_f64(lo, p, ebits, rlo)
    K.round_f64(hi, p, ebits, rhi)
    amb = rlo != rhi
    amb = np.where(exact | special, False, amb)
    amb = np.where(overflow, True, amb)
    return AccumulationTolerance(bound=bound.reshape(a.shape), ambiguous=amb.reshape(a.shape))
