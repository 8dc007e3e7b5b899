"""Stochastic rounding (SR) with the random bits as an input: variants, widths, rbits lane maps, Philox bits.

Every variant rounds the exact input value once. Write |x| = (n + f) * q with q the spacing of the target's grid
at |x| (the binade's quantum; the subnormal quantum below the smallest normal; 2**-frac_bits for integer
formats) and 0 <= f < 1 the exact fraction. The variant decides from f and the element's random integer
r (0 <= r < 2**w, w = ``rbits_width``) whether the magnitude becomes n * q ("toward zero") or (n + 1) * q
("away"); f = 0 is never rounded. Carries into the next binade follow from the grid (15.9 → 16 in E4M3). A
result beyond the format's max is an overflow and follows ``overflow`` (saturate by default, as PTX
``.satfinite`` and gfloat's sat=True); NaN, ±Inf, ±0, negative inputs into unsigned formats follow the same
policies as :func:`fp4ref.encode` (for E2M1 the defaults give PTX's NaN → +6 and ±Inf → ±6).

Variants (``rounding=``), with P(away) over the 2**w values of r:

``stochastic-ptx``  (aliases ``rs``, ``stochastic``) — the PTX ISA ``cvt.rs`` carry rule: r is added to the
    discarded bits of the input, aligned with the most significant discarded bit, and the carry out rounds away:
    away iff floor(f * 2**w) + r >= 2**w, i.e. f + r / 2**w >= 1 exactly. The bits of f below 2**-w never
    matter (adding r to the top w discarded bits and truncating the rest gives the same carry).
    P(away) = floor(f * 2**w) / 2**w, exact when f has at most w bits (toward zero otherwise). Widths in the
    ISA text: 8 per element for ``.e2m1x4`` (TransformerEngine's reading), 16 for the FP8/FP6 ``x4`` forms,
    16 for ``bf16x2``, 13 for ``f16x2`` (default ``rbits_width``: 8 for e2m1, 16 for e2m3/e3m2/e4m3/e5m2).
    Not run here: ``cvt.rs`` needs sm_100+, the device is an H100. A third-party probe on sm_100a (lane maps
    ``sm100-probe-*``) reports the same carry rule with 16 bits per element for every ``x4`` form, e2m1x4
    included.
``stochastic-te`` — TransformerEngine's software fallback for E2M1 (``stochastic_round_fp4_e2m1`` in
    ``transformer_engine/common/util/ptx.cuh``, used by ``ptx_arch_spec.cuh`` where ``cvt.rs`` is missing):
    u = (r & 0xFF) / 256, t = fmaf(u, step(|x|), |x|) in float32, result min(floor(t / step(t)) * step(t), 6)
    with the sign of x. The float32 rounding of t makes it differ from the carry rule: away iff
    f + r / 256 >= 1 - h / q, h being half the float32 spacing just below the upper neighbour — it differs only
    for |x| < 0.5 just below a multiple of 1/512. P(away) = floor(256 * (f + h / q)) / 256. E2M1 only, w = 8,
    x must hold float32 values. Proven by running TransformerEngine's own ``mul_cvt_fp32_to_fp4_4x_with_
    stochastic_rounding`` (software branch, sm_90) on an H100: 662 inputs x all 256 random bytes, and 4096
    random groups for the lane map (tests/data/te_sr_fallback.npz, tests/vendors/capture_te_sr.py).
``stochastic-gfloat`` — gfloat ``RoundMode.Stochastic``: d = round-half-even(f * 2**w), away iff
    d + r >= 2**w. P(away) = d / 2**w (unbiased up to the rounding of f to w bits).
``stochastic-gfloat-odd`` — ``RoundMode.StochasticOdd``: as above with round-half-to-odd.
``stochastic-gfloat-fast`` — ``RoundMode.StochasticFast``: away iff fl(f + (2r + 1) / 2**(w+1)) >= 1, the sum
    rounded to nearest even with p significand bits. gfloat 0.5.2 on NumPy 2 arrays computes it in float64
    whatever x's dtype (its ``where`` with a 0-d float64 array promotes): p = 53. On torch (and other
    array-API) tensors it computes in the tensor's dtype: ``stochastic-gfloat-fast-float32`` (p = 24),
    ``-float16`` (11), ``-bfloat16`` (8). P(away) = floor(f * 2**w + 1/2 + 2**(w-p-1)) / 2**w. gfloat forms
    2r + 1 in x's dtype, and with w >= p an exact input could round away: w <= p - 1 is required, p here the
    smaller of the sum's and x's significand bits (wider widths are refused).
``stochastic-gfloat-fastest`` — ``RoundMode.StochasticFastest``: away iff fl(f + r / 2**w) >= 1, p and the
    ``-float32``/``-float16``/``-bfloat16`` forms as above; w <= p.
    P(away) = floor(f * 2**w + 2**(w-p-1)) / 2**w: biased toward zero (gfloat's RoundMode docstring says
    "farther from zero"; the enumeration in tests/test_stochastic.py shows the opposite).
    The gfloat variants are proven against gfloat 0.5.2 itself, on NumPy and torch arrays
    (tests/data/gfloat_sr.npz, tests/vendors/capture_gfloat_sr.py).
``stochastic-exact`` — the textbook definition, for reference: away iff r < f * 2**w, so P(away) = f exactly.
    It needs f * 2**w to be an integer for every inexact element; otherwise a :class:`fp4ref.CastError` names
    the element and the width it needs.

Random bits (``rbits=``):

- per-element integers: any integer array of x's shape, every value in [0, 2**w) (larger values are an error,
  never masked);
- packed 32-bit words with ``lanes=NAME``: shape ``x.shape[:-1] + (x.shape[-1] // G,)`` for a map of G lanes;
  element G * j + k of the last axis takes lane k of word j. Lane k is the element stored in the k-th field
  from the least significant end of the packed ``cvt`` result (fp4ref's packing order: element 0 in the low
  nibble). See :data:`LANE_MAPS`; the map sets w.
- :class:`PhiloxBits`: curand's Philox4x32-10 words regenerated from (seed, subsequence, offset), one stream per
  subsequence; with ``lanes`` each word feeds G elements, without it each word feeds one element through its
  low w bits.
"""
from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from . import formats as _formats
from .cast import CastError, as_float32, as_float_array, cast_params
from .kernels import cast as _KC
from .kernels import stochastic as K

__all__ = ["VARIANTS", "LANE_MAPS", "LaneMap", "PhiloxBits", "encode_stochastic", "variant_name",
           "unpack_words", "default_width"]

# name -> (kernel variant id, significand bits of the gfloat fast variants' sum; 0 where unused)
VARIANTS = {
    "stochastic-ptx": (K.V_PTX, 0),
    "stochastic-te": (K.V_TE, 0),
    "stochastic-gfloat": (K.V_GFLOAT, 0),
    "stochastic-gfloat-odd": (K.V_GFLOAT_ODD, 0),
    "stochastic-gfloat-fast": (K.V_GFLOAT_FAST, 53),
    "stochastic-gfloat-fast-float32": (K.V_GFLOAT_FAST, 24),
    "stochastic-gfloat-fast-float16": (K.V_GFLOAT_FAST, 11),
    "stochastic-gfloat-fast-bfloat16": (K.V_GFLOAT_FAST, 8),
    "stochastic-gfloat-fastest": (K.V_GFLOAT_FASTEST, 53),
    "stochastic-gfloat-fastest-float32": (K.V_GFLOAT_FASTEST, 24),
    "stochastic-gfloat-fastest-float16": (K.V_GFLOAT_FASTEST, 11),
    "stochastic-gfloat-fastest-bfloat16": (K.V_GFLOAT_FASTEST, 8),
    "stochastic-exact": (K.V_EXACT, 0),
}
_ALIASES = {"stochastic": "stochastic-ptx", "rs": "stochastic-ptx", "stochastic-rs": "stochastic-ptx",
            "stochastic-transformer-engine": "stochastic-te", "stochastic-te-fallback": "stochastic-te",
            "stochastic-gfloat-even": "stochastic-gfloat"}

# default rbits_width of stochastic-ptx: the per-element random bits the PTX ISA text gives the cvt.rs forms
PTX_WIDTHS = {"e2m1": 8, "e2m3": 16, "e3m2": 16, "e4m3": 16, "e5m2": 16}
_MAX_WIDTH = 62


@dataclass(frozen=True)
class LaneMap:
    """How one 32-bit ``rbits`` word feeds G elements: ``lanes[k]`` lists the word's bit positions that form
    lane k's random integer, most significant first (so the width is ``len(lanes[k])``)."""
    name: str
    lanes: tuple[tuple[int, ...], ...]
    source: str

    @property
    def group(self) -> int:
        return len(self.lanes)

    @property
    def width(self) -> int:
        return len(self.lanes[0])


def _run(hi, lo):
    """Bit positions hi, hi-1, ..., lo (hi > lo) or hi, hi+1, ..., lo (hi < lo: a bit-reversed slice)."""
    step = -1 if hi >= lo else 1
    return tuple(range(hi, lo + step, step))


_ISA = "PTX ISA 9.x, cvt, rbits operand text (the ISA's figure was not available)"
_PROBE = ("vkuzo/quant_cast_bench experiments/nvidia_rs_bit_probe: measured on sm_100a by its author with one-hot "
          "rbits words; read here, not run (cvt.rs needs sm_100+)")
LANE_MAPS = {m.name: m for m in (
    LaneMap("te-e2m1x4", tuple(_run(8 * k + 7, 8 * k) for k in range(4)),
            "TransformerEngine ptx_arch_spec.cuh software branch of mul_cvt_{fp32,bf16}_to_fp4_4x_with_"
            "stochastic_rounding: element k gets stochastic_round_fp4_e2m1(x_k, rbits >> 8k), which reads & 0xFF"),
    LaneMap("ptx-isa-e2m1x4", (_run(7, 0), _run(23, 16), _run(15, 8), _run(31, 24)),
            _ISA + ": 8 bits per element; the lower bytes of the two 16-bit halves go to e, f and the upper "
                   "bytes to a, b (the first operand of each pair taking the upper half, as a takes the upper "
                   "half for bf16x2); lanes 0..3 are f, e, b, a. Differs from te-e2m1x4 in lanes 1 and 2"),
    LaneMap("sm100-probe-e2m1x4", (_run(23, 16) + _run(7, 0), _run(0, 7) + _run(16, 23),
                                   _run(31, 24) + _run(15, 8), _run(8, 15) + _run(24, 31)),
            _PROBE + ": 16 bits per element, f and e share bytes 0 and 2, b and a share bytes 1 and 3, the second "
                     "of each pair bit-reversed"),
    LaneMap("ptx-isa-f8x4", (_run(15, 0), _run(15, 0), _run(31, 16), _run(31, 16)),
            _ISA + " for e4m3x4/e5m2x4/e2m3x4/e3m2x4, read literally: the lower 16 bits for e and f, the upper "
                   "16 bits for a and b (the text gives no split within a pair)"),
    LaneMap("sm100-probe-f8x4", (_run(15, 0), _run(0, 15), _run(31, 16), _run(16, 31)),
            _PROBE + " for e4m3x4 and e5m2x4: f takes bits 15..0, e the same bits reversed, b bits 31..16, a those "
                     "reversed (e2m3x4/e3m2x4 were not probed)"),
    LaneMap("ptx-isa-bf16x2", (_run(15, 0), _run(31, 16)),
            _ISA + ": upper 16 bits for a (lane 1), lower 16 bits for b (lane 0); the probe agrees"),
    LaneMap("ptx-isa-f16x2", (_run(12, 0), _run(28, 16)),
            _ISA + ": the 13 low bits of each 16-bit half (a: upper half, lane 1; b: lower half, lane 0)"),
)}
_LANE_ALIASES = {"te": "te-e2m1x4", "ptx-isa": "ptx-isa-e2m1x4"}


@dataclass(frozen=True)
class PhiloxBits:
    """Random words regenerated from curand's Philox4x32-10 (see :mod:`fp4ref.random` for the stream).

    ``subsequence`` is an integer (one stream for all of x) or an integer array whose shape equals the leading
    axes of x: stream ``subsequence[i]`` then covers ``x[i]`` (flattened in C order), as a GPU thread t that
    calls ``curand_init(seed, subsequence[t], offset)`` and quantizes its own elements. The stream's words feed
    its elements in order (G per word with ``lanes``, else one per element through the low w bits).
    ``offset_unit``: "word" (curand_init) or "block" (TransformerEngine's curanddx ``init``: 128-bit blocks).

    TransformerEngine's NVFP4 kernels (``quantize_transpose_nvfp4.cuh``) use seed = rng_state[0], offset =
    rng_state[1] in blocks, subsequence = threadIdx.x + blockIdx.x * THREADS_NUM + blockIdx.y * gridDim.x *
    THREADS_NUM, and the thread's k-th ``get_rbits`` call returns word k of its stream (words x, y, z, w of each
    block), which rounds the thread's k-th group of four consecutive elements through ``mul_cvt_*_to_fp4_4x``
    (lanes "te-e2m1x4" in the software branch; the cvt.rs path slices it as the hardware does). Which
    elements a thread owns depends on the kernel's tiling: lay x out as (threads, elements per thread).
    """
    seed: int
    offset: int = 0
    subsequence: object = 0
    offset_unit: str = "word"


def variant_name(rounding: str) -> str:
    """Canonical stochastic variant name (accepts aliases)."""
    if not isinstance(rounding, str):
        raise TypeError(f"rounding must be a string, one of: {', '.join(VARIANTS)}")
    key = rounding.lower()
    key = _ALIASES.get(key, key)
    if key not in VARIANTS:
        raise ValueError(f"unknown stochastic rounding {rounding!r}; valid values: {', '.join(VARIANTS)}")
    return key


def lane_map(lanes) -> LaneMap:
    if isinstance(lanes, LaneMap):
        return lanes
    if not isinstance(lanes, str):
        raise TypeError(f"lanes must be a lane map name, one of: {', '.join(LANE_MAPS)}")
    key = _LANE_ALIASES.get(lanes.lower(), lanes.lower())
    if key not in LANE_MAPS:
        raise ValueError(f"unknown lanes {lanes!r}; valid values: {', '.join(LANE_MAPS)}")
    return LANE_MAPS[key]


def _lane_table(m: LaneMap) -> np.ndarray:
    """tab[k, byte, value]: the part of lane k's integer that byte `byte` of the word contributes."""
    tab = np.zeros((m.group, 4, 256), np.int64)
    v = np.arange(256)
    for k, bits in enumerate(m.lanes):
        w = len(bits)
        for pos, phys in enumerate(bits):
            tab[k, phys // 8] += ((v >> (phys % 8)) & 1) << (w - 1 - pos)
    return tab


def _identity_table(width: int) -> np.ndarray:
    """One element per word through its low `width` bits (Philox bits without lanes)."""
    return _lane_table(LaneMap("low-bits", (_run(width - 1, 0),), ""))


def unpack_words(words, lanes) -> np.ndarray:
    """Per-element random integers (int64) of packed 32-bit words under a lane map: the last axis becomes
    G times longer (element G * j + k = lane k of word j)."""
    m = lane_map(lanes)
    w = _words(words)
    if w.ndim == 0:
        raise ValueError("rbits (packed words) must be an array with at least one axis")
    return _expand(w, _lane_table(m)).reshape(w.shape[:-1] + (w.shape[-1] * m.group,))


def _words(words) -> np.ndarray:
    w = np.asarray(words)
    if w.dtype.kind not in "ui":
        raise TypeError(f"rbits (packed words) must be an integer array, got dtype {w.dtype}")
    if w.size and (w.min() < 0 or w.max() > 0xFFFFFFFF):
        raise ValueError("rbits (packed words) must hold 32-bit words in [0, 2**32 - 1]")
    return w.astype(np.uint32)


def default_width(variant: str, fmt) -> int | None:
    """rbits_width used when none is given: TE 8, PTX the ISA's width for the format, else None (required)."""
    if variant == "stochastic-te":
        return 8
    if variant == "stochastic-ptx":
        return PTX_WIDTHS.get(_formats.get(fmt).name)
    return None


def _width(variant, fmt, rbits_width, m: LaneMap | None, dtype_bits: int) -> int:
    if m is not None:
        if rbits_width is not None and rbits_width != m.width:
            raise ValueError(f"rbits_width={rbits_width} conflicts with lanes={m.name!r} ({m.width} bits per lane)")
        w = m.width
    elif rbits_width is None:
        w = default_width(variant, fmt)
        if w is None:
            raise ValueError(f"rounding={variant!r} needs rbits_width (random bits per element) for {fmt.name}")
    else:
        w = rbits_width
    if isinstance(w, (bool, np.bool_)) or not isinstance(w, (int, np.integer)) or not 1 <= w <= _MAX_WIDTH:
        raise ValueError(f"rbits_width must be an integer in 1..{_MAX_WIDTH}, got {w!r}")
    w = int(w)
    if variant == "stochastic-te" and w != 8:
        raise ValueError(f"stochastic-te uses 8 random bits per element (rbits & 0xFF), got rbits_width={w}")
    # gfloat converts 2r + 1 (fast) or r (fastest) to x's dtype and adds in p bits: beyond them an exact input
    # could round away (gfloat on bfloat16 tensors with 9 bits does); those widths are refused
    kid, p = VARIANTS[variant]
    p = min(p, dtype_bits)
    limit = {K.V_GFLOAT_FAST: p - 1, K.V_GFLOAT_FASTEST: p}.get(kid)
    if limit is not None and w > limit:
        raise ValueError(f"{variant} forms {'2r + 1' if kid == K.V_GFLOAT_FAST else 'r'} and the sum in {p} "
                         f"significand bits (x's dtype and the variant): rbits_width must be at most {limit}, "
                         f"got {w}")
    return w


def _element_bits(rbits, shape, width) -> np.ndarray:
    r = np.asarray(rbits)
    if r.dtype.kind not in "ui":
        raise TypeError(f"rbits must be an unsigned integer array of x's shape, got dtype {r.dtype}")
    if r.shape != shape:
        raise ValueError(f"rbits has shape {r.shape}; per-element bits need x's shape {shape} "
                         "(packed 32-bit words need lanes=)")
    if r.size and (r.dtype.kind == "i" or r.dtype.itemsize * 8 > width):
        lo, hi = int(r.min()), int(r.max())
        if lo < 0 or hi >= (1 << width):
            bad = r[(r < 0) | (r >= (1 << width))].reshape(-1)[0]
            raise ValueError(f"rbits holds {int(bad)}, outside [0, 2**{width}) for rbits_width={width}")
    if r.dtype.kind == "i":
        r = r.astype(np.uint64)
    return np.ascontiguousarray(r).reshape(-1)


def _u64(value, name) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or not 0 <= int(value) < 1 << 64:
        raise ValueError(f"PhiloxBits.{name} must be an integer in [0, 2**64 - 1], got {value!r}")
    return int(value)


def _philox_args(p: PhiloxBits, shape):
    seed = _u64(p.seed, "seed")
    offset = _u64(p.offset, "offset")
    if p.offset_unit == "word":
        lo, lane0 = offset >> 2, offset & 3
    elif p.offset_unit == "block":
        lo, lane0 = offset, 0
    else:
        raise ValueError(f"PhiloxBits.offset_unit must be 'word' or 'block', got {p.offset_unit!r}")
    sub = p.subsequence
    if isinstance(sub, (int, np.integer)) and not isinstance(sub, (bool, np.bool_)):
        subs = np.array([_u64(sub, "subsequence")], np.uint64)
    else:
        s = np.asarray(sub)
        if s.dtype.kind not in "ui" or s.ndim == 0:
            raise TypeError("PhiloxBits.subsequence must be an integer or an integer array")
        if s.shape != shape[:s.ndim]:
            raise ValueError(f"PhiloxBits.subsequence has shape {s.shape}; it must equal x's leading axes "
                             f"{shape[:s.ndim]} (x has shape {shape})")
        if s.size and s.min() < 0:
            raise ValueError("PhiloxBits.subsequence values must be non-negative")
        subs = np.ascontiguousarray(s.astype(np.uint64)).reshape(-1)
    return seed, lo, lane0, subs


def philox_integers(p: PhiloxBits, shape, width: int) -> np.ndarray:
    """The per-element random integers that ``p`` gives an x of this shape without lanes (each element takes the
    low ``width`` bits of its word), as an unsigned array of x's shape: explicit bits equal to ``p``."""
    if not 1 <= width <= 32:
        raise ValueError(f"Philox words have 32 bits; rbits_width={width} needs explicit bits")
    from .random import philox4x32_10_many
    _, _, _, subs = _philox_args(p, shape)
    n = int(np.prod(shape))
    words = philox4x32_10_many(p.seed, subs, p.offset, n // subs.size if subs.size else 0,
                               offset_unit=p.offset_unit)
    np.bitwise_and(words, np.uint32((1 << width) - 1), out=words)
    return words.astype(np.uint8 if width <= 8 else np.uint16 if width <= 16 else np.uint32).reshape(shape)


def encode_stochastic(x, fmt, rounding, *, rbits=None, rbits_width=None, lanes=None, overflow="saturate",
                      nan=None, neg_zero="keep", negative=None, zero=None, e8m0_subnormal="round") -> np.ndarray:
    """Codes (uint8, x's shape) of ``x`` rounded with a stochastic variant; called by :func:`fp4ref.encode`.

    See the module docstring for the variants, the forms of ``rbits`` and the lane maps. The other options are
    those of :func:`fp4ref.encode`.
    """
    variant = variant_name(rounding)
    f = _formats.get(fmt)
    if not f.has_zero or f.kind == "float" and not f.subnormals:
        raise ValueError(f"stochastic rounding is defined here for element formats; {f.name} has no zero or "
                         "subnormals (use a directed rounding for scales)")
    if variant == "stochastic-te" and f.name != "e2m1":
        raise ValueError(f"stochastic-te is TransformerEngine's E2M1 fallback; fmt={f.name!r} is not e2m1")
    if rbits is None:
        raise ValueError(f"rounding={variant!r} needs rbits: per-element random integers, packed 32-bit words "
                         "with lanes=, or fp4ref.stochastic.PhiloxBits")
    a = as_float_array(x)
    fp, pol = cast_params(f, "nearest-even", overflow, nan, neg_zero, negative, zero, e8m0_subnormal)
    v, prec = VARIANTS[variant]
    m = None if lanes is None else lane_map(lanes)
    width = _width(variant, f, rbits_width, m, ml_dtypes.finfo(a.dtype).nmant + 1)
    # float16/bfloat16 stay 16-bit where the float32 bit-field code runs (it widens per element); packed words
    # with a lane map keep the float64 loop
    ptx32 = _ptx32(v, a, width, pol) and (m is None or isinstance(rbits, PhiloxBits))
    bits = _ptx32_bits(a) if ptx32 else None
    flat = (np.ascontiguousarray(a) if a.dtype == np.float64 else
            np.empty(0, np.float32) if ptx32 else as_float32(a)).reshape(-1)
    if variant == "stochastic-te" and flat.dtype == np.float64:
        with np.errstate(over="ignore"):
            narrowed = flat.astype(np.float32).astype(np.float64)
        if not np.array_equal(narrowed, flat, equal_nan=True):
            i = int(np.nonzero(~((narrowed == flat) | np.isnan(flat)))[0][0])
            raise ValueError(f"stochastic-te models TransformerEngine's float32 arithmetic: x at flat index {i} "
                             f"({flat[i]!r}) is not a float32 value")
    out = np.empty(a.size, np.uint8)
    if isinstance(rbits, PhiloxBits):
        seed, lo, lane0, subs = _philox_args(rbits, a.shape)
        if width > 32 and m is None:
            raise ValueError(f"Philox words have 32 bits; rbits_width={width} needs explicit bits")
        tab = _lane_table(m) if m is not None else _identity_table(width)
        L = a.size // subs.size if subs.size else 0
        if L % tab.shape[0]:
            raise ValueError(f"lanes={m.name!r} takes {m.group} elements per word; each Philox stream covers "
                             f"{L} elements")
        xb, bf16 = bits if ptx32 else (np.empty(0, np.uint32), False)
        low = (1 << width) - 1 if m is None else -1
        errors = K.encode_philox(flat, xb, bf16, out, fp, pol, v, width, prec, tab, low,
                                 np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32), subs, np.uint64(lo), lane0, L,
                                 ptx32) if a.size else 0
        if errors:
            from .random import philox4x32_10_many
            words = philox4x32_10_many(seed, subs, rbits.offset, L // tab.shape[0], offset_unit=rbits.offset_unit)
            r = _expand(words, tab)
    elif m is not None:
        if a.ndim == 0 or a.shape[-1] % m.group:
            raise ValueError(f"lanes={m.name!r} packs {m.group} elements per word along the last axis; x has "
                             f"shape {a.shape}")
        w = _words(rbits)
        want = a.shape[:-1] + (a.shape[-1] // m.group,)
        if w.shape != want:
            raise ValueError(f"rbits (packed words, lanes={m.name!r}) must have shape {want}, got {w.shape}")
        tab = _lane_table(m)
        errors = K.encode_words(flat, np.ascontiguousarray(w).reshape(-1), out, fp, pol, v, width, prec, tab)
        if errors:
            r = _expand(w, tab)
    else:
        r = _element_bits(rbits, a.shape, width)
        if ptx32:
            errors = K.encode_ptx_bits32(*bits, r, out, fp, pol, width)
        else:
            errors = K.encode_bits(flat, r, out, fp, pol, v, width, prec)
    if errors:
        flat = as_float32(a).reshape(-1) if ptx32 else flat
        i, err = K.first_error_bits(flat, np.ascontiguousarray(r).reshape(-1).astype(np.uint64), fp, pol, v,
                                    width, prec)
        _raise(err, i, flat, f, width)
    return out.reshape(a.shape)


def _ptx32(v, a, width, pol) -> bool:
    """Whether stochastic-ptx runs on float32 bit fields (kernels.stochastic._ptx32_code) for these inputs."""
    return v == K.V_PTX and a.dtype != np.float64 and width <= 32 and pol[_KC.P_E8M0_SUB] == 0 \
        and pol[_KC.P_NEGATIVE] != _KC.NEG_ABS


def _ptx32_bits(a) -> tuple[np.ndarray, bool]:
    """(flat bit patterns, bf16) of x for the float32 bit-field code; float8/6/4 inputs widen to float32 first."""
    native = a.dtype in (np.float32, np.float16) or a.dtype == ml_dtypes.bfloat16
    return _KC.bit_patterns((np.ascontiguousarray(a) if native else as_float32(a)).reshape(-1))


def _expand(words, tab) -> np.ndarray:
    """Per-element integers (flat, int64) of packed words through a lane table."""
    w = np.asarray(words, np.int64).reshape(-1, 1)
    lanes = np.arange(tab.shape[0])[None, :]
    return sum(tab[lanes, b, (w >> (8 * b)) & 0xFF] for b in range(4)).reshape(-1)


def _raise(err, i, flat, f, width):
    if err == K.ERR_RBITS:
        raise CastError(f"stochastic-exact: the fraction of x at flat index {i} ({flat[i]!r}) needs more than "
                        f"rbits_width={width} random bits to be rounded with its exact probability")
    arg, what = {_KC.ERR_NAN: ("nan", "a NaN input"), _KC.ERR_NEGATIVE: ("negative", "a negative input"),
                 _KC.ERR_ZERO: ("zero", "a zero input")}[err]
    raise CastError(f"{what} at flat index {i} (value {flat[i]!r}) cannot be encoded in {f.name} with "
                    f"{arg}='raise'")
