"""Packing of sub-byte codes into bytes, and block-scale layouts.

Codes are the uint8 arrays that :func:`fp4ref.encode` returns, one code per byte. Packing works along the last
axis and never reorders anything else.

FP4 (two codes per byte), ``nibble_order``:
- ``"low"`` (default): element ``2k`` in bits 3:0 and element ``2k+1`` in bits 7:4 of byte ``k``. This is the
  memory order of torchao (``pack_uint4`` in ``torchao/prototype/mx_formats/kernels.py``; run here, 0.18.0,
  fixture tests/data/torchao_packing.npz) and, per docs/semantics.md D-16 (not run here), TransformerEngine,
  Triton and the cuBLAS/CUTLASS block-scaled GEMM operands. (Older torchao releases packed element 0 high.)
- ``"high"``: element ``2k`` in bits 7:4. This is the register order of the PTX instruction
  ``cvt.rn.satfinite.e2m1x2.f32 d, a, b``, which stores ``a`` in ``d[7:4]`` and ``b`` in ``d[3:0]``
  (PTX ISA 8.6+, "Data Movement and Conversion Instructions: cvt", Semantics; sm_100+, not run here), so a
  kernel that passes ``(x[2k], x[2k+1])`` as ``(a, b)`` writes this order.

FP6 (four codes in three bytes), ``fp6_layout``:
- ``"lsb-first"`` (default): the three bytes are read as one little-endian 24-bit word and element ``i`` of the
  group occupies bits ``6i .. 6i+5``. This is the contiguous packing the PTX ISA asks for in global memory
  (§5.5.1.1.1 "Padding and alignment of the sub-byte types": ``.b6x16_p32`` / ``.b6p2x16`` are "packed
  contiguously") with the same least-significant-first element order as FP4's ``"low"`` nibble and CUTLASS's
  sub-byte arrays. Read from the ISA text, not run: no FP6-capable GPU is available to this project (sm_100).
- ``"msb-first"``: the three bytes are one big-endian 24-bit word with element 0 in the top six bits
  (``AAAAAABB|BBBBCCCC|CCDDDDDD``), the order of generic MSB-first ``pack_uint6`` bit-stream helpers in PyTorch
  quantization code; no FP6 GEMM is known to read it.
- Not provided: torchao's former MXFP6 packing (``pack_uint6`` in ``mx_formats/custom_cast.py``, removed before
  0.18.0) split each group into two "high 4 bits" bytes and one "low 2 bits" byte, and its Triton kernel and its
  PyTorch reference disagreed on the order of elements 2 and 3; it cannot be run here, so it is no recipe.

Block scales (one uint8 code per block; E8M0 or UE4M3), ``layout``:
- ``"row-major"`` / ``"col-major"``: the (rows, cols) scale matrix flattened in C or Fortran order.
- ``"swizzled-128x4"``: the cuBLAS "1D Block Scaling Factors Layout" used by cuBLASLt, CUTLASS, cuDNN,
  TransformerEngine (``nvte_swizzle_scaling_factors``) and torchao (``to_blocked``). Rows are the M (or N) axis
  and columns are the K blocks. The matrix is padded to whole 128x4 tiles; tiles are stored row-major
  (``nC = ceil(cols/4)`` tiles per tile row), 512 bytes each, and inside a tile scale ``S[r, c]`` sits at
  ``(r % 32) * 16 + ((r % 128) // 32) * 4 + c % 4``. Byte equality with torchao 0.18.0 ``to_blocked`` (run on
  the CPU) is recorded in ``tests/data/torchao_to_blocked.npz``. Column-wise scales (blocks along M, as in
  TransformerEngine's "4x128 for col-scale") are swizzled as their transpose: pass ``scales.T``.
"""
from __future__ import annotations

import numpy as np

from . import formats as _formats

__all__ = [
    "NIBBLE_ORDERS", "FP6_LAYOUTS", "SCALE_LAYOUTS",
    "pack_fp4", "unpack_fp4", "pack_fp6", "unpack_fp6", "pack", "unpack", "packed_length",
    "swizzle_scales", "unswizzle_scales", "swizzled_size", "swizzled_offset",
    "to_scale_layout", "from_scale_layout",
]

NIBBLE_ORDERS = ("low", "high")
FP6_LAYOUTS = ("lsb-first", "msb-first")
SCALE_LAYOUTS = ("row-major", "col-major", "swizzled-128x4")

_TILE_ROWS, _TILE_COLS = 128, 4
_TILE_BYTES = _TILE_ROWS * _TILE_COLS


# --- validation ----------------------------------------------------------------------------------------------
def _choice(name: str, value, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}")
    return value


def _uint8_array(name: str, a, *, min_ndim: int = 1) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of dtype uint8, got {type(a).__name__}")
    if a.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype uint8, got {a.dtype} (view float8 types with .view(np.uint8))")
    if a.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), got shape {a.shape}")
    return a


def _codes(name: str, a, bits: int) -> np.ndarray:
    a = _uint8_array(name, a)
    if a.size and int(a.max()) >= (1 << bits):
        bad = np.flatnonzero(a.reshape(-1) >= (1 << bits))
        raise ValueError(f"{name} holds values above the {bits}-bit code range 0..{(1 << bits) - 1}: "
                         f"{a.reshape(-1)[bad[0]]} at flat index {bad[0]} ({bad.size} such values)")
    return a


def _pad_last(codes: np.ndarray, group: int, pad, bits: int, name: str) -> np.ndarray:
    """Pad the last axis to a multiple of ``group`` with code ``pad``, or refuse when ``pad`` is None."""
    n = codes.shape[-1]
    short = -n % group
    if short == 0:
        return codes
    if pad is None:
        raise ValueError(f"{name} has {n} elements along its last axis, not a multiple of {group}; pass "
                         f"pad=<code> (0..{(1 << bits) - 1}) to fill the last group explicitly")
    if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or not 0 <= int(pad) < (1 << bits):
        raise ValueError(f"pad must be None or a {bits}-bit code 0..{(1 << bits) - 1}, got {pad!r}")
    widths = [(0, 0)] * (codes.ndim - 1) + [(0, short)]
    return np.pad(codes, widths, constant_values=np.uint8(pad))


def _count(count, n_groups: int, per_group: int, name: str) -> int:
    full = n_groups * per_group
    if count is None:
        return full
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
        raise TypeError(f"count must be an int or None, got {type(count).__name__}")
    count, least = int(count), max(0, full - per_group + 1)
    if not least <= count <= full:
        raise ValueError(f"count={count} does not fit {name}: {n_groups} packed group(s) hold "
                         f"{least}..{full} elements")
    return count


# --- FP4 -----------------------------------------------------------------------------------------------------
def pack_fp4(codes: np.ndarray, nibble_order: str = "low", *, pad: int | None = None) -> np.ndarray:
    """Pack 4-bit codes two per byte along the last axis.

    ``codes``: uint8 array of values 0..15. An odd last axis is an error unless ``pad`` names the code that fills
    the final nibble. ``nibble_order``: ``"low"`` (element 0 in bits 3:0; torchao, TE, Triton, cuBLAS) or
    ``"high"`` (element 0 in bits 7:4; PTX ``cvt ... e2m1x2 d, a, b`` with ``a`` = element 0).
    Returns a uint8 array with the last axis halved (rounded up).
    """
    order = _choice("nibble_order", nibble_order, NIBBLE_ORDERS)
    codes = _pad_last(_codes("codes", codes, 4), 2, pad, 4, "codes")
    first, second = codes[..., 0::2], codes[..., 1::2]
    if order == "low":
        return first | (second << 4)
    return (first << 4) | second


def unpack_fp4(packed: np.ndarray, nibble_order: str = "low", count: int | None = None) -> np.ndarray:
    """Unpack bytes into 4-bit codes along the last axis (inverse of :func:`pack_fp4`).

    ``count``: number of codes to keep along the last axis (``2n`` or ``2n - 1`` for ``n`` bytes; default ``2n``),
    which drops a pad nibble. Returns uint8 codes 0..15.
    """
    order = _choice("nibble_order", nibble_order, NIBBLE_ORDERS)
    packed = _uint8_array("packed", packed)
    count = _count(count, packed.shape[-1], 2, "packed")
    low, high = packed & 0x0F, packed >> 4
    pair = (low, high) if order == "low" else (high, low)
    out = np.stack(pair, axis=-1).reshape(*packed.shape[:-1], 2 * packed.shape[-1])
    return out[..., :count]


# --- FP6 -----------------------------------------------------------------------------------------------------
def pack_fp6(codes: np.ndarray, fp6_layout: str = "lsb-first", *, pad: int | None = None) -> np.ndarray:
    """Pack 6-bit codes four per three bytes along the last axis.

    ``codes``: uint8 array of values 0..63; a last axis that is not a multiple of 4 is an error unless ``pad``
    names the filling code. ``fp6_layout``: ``"lsb-first"`` (PTX contiguous packing, default) or
    ``"msb-first"``; see the module docstring. Returns uint8 with last axis ``3 * ceil(n / 4)``.
    """
    layout = _choice("fp6_layout", fp6_layout, FP6_LAYOUTS)
    codes = _pad_last(_codes("codes", codes, 6), 4, pad, 6, "codes")
    g = codes.reshape(*codes.shape[:-1], -1, 4).astype(np.uint32)
    if layout == "lsb-first":
        word = g[..., 0] | (g[..., 1] << 6) | (g[..., 2] << 12) | (g[..., 3] << 18)
        parts = (word, word >> 8, word >> 16)
    else:
        word = (g[..., 0] << 18) | (g[..., 1] << 12) | (g[..., 2] << 6) | g[..., 3]
        parts = (word >> 16, word >> 8, word)
    out = np.stack([(p & 0xFF).astype(np.uint8) for p in parts], axis=-1)
    return out.reshape(*codes.shape[:-1], -1)


def unpack_fp6(packed: np.ndarray, fp6_layout: str = "lsb-first", count: int | None = None) -> np.ndarray:
    """Unpack groups of three bytes into four 6-bit codes (inverse of :func:`pack_fp6`).

    The last axis of ``packed`` must be a multiple of 3. ``count``: codes to keep (``4g-3 .. 4g`` for ``g``
    groups; default ``4g``).
    """
    layout = _choice("fp6_layout", fp6_layout, FP6_LAYOUTS)
    packed = _uint8_array("packed", packed)
    if packed.shape[-1] % 3:
        raise ValueError(f"packed FP6 data needs a last axis that is a multiple of 3 bytes, got {packed.shape[-1]}")
    count = _count(count, packed.shape[-1] // 3, 4, "packed")
    b = packed.reshape(*packed.shape[:-1], -1, 3).astype(np.uint32)
    if layout == "lsb-first":
        word = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)
        shifts = (0, 6, 12, 18)
    else:
        word = (b[..., 0] << 16) | (b[..., 1] << 8) | b[..., 2]
        shifts = (18, 12, 6, 0)
    out = np.stack([((word >> s) & 0x3F).astype(np.uint8) for s in shifts], axis=-1)
    return out.reshape(*packed.shape[:-1], -1)[..., :count]


# --- by format -----------------------------------------------------------------------------------------------
def _storage_bits(fmt) -> int:
    f = _formats.get(fmt)
    if f.bits not in (4, 6, 8):
        raise ValueError(f"no packing is defined for {f.name} ({f.bits}-bit codes); formats of 4, 6 or 8 bits pack")
    return f.bits


def pack(codes: np.ndarray, fmt, *, nibble_order: str = "low", fp6_layout: str = "lsb-first",
         pad: int | None = None) -> np.ndarray:
    """Pack the codes of format ``fmt`` by its width: 4 bits via :func:`pack_fp4`, 6 via :func:`pack_fp6`;
    8-bit codes are returned as they are (after the same validation)."""
    bits = _storage_bits(fmt)
    if bits == 4:
        return pack_fp4(codes, nibble_order, pad=pad)
    if bits == 6:
        return pack_fp6(codes, fp6_layout, pad=pad)
    return _uint8_array("codes", codes)


def unpack(packed: np.ndarray, fmt, count: int | None = None, *, nibble_order: str = "low",
           fp6_layout: str = "lsb-first") -> np.ndarray:
    """Inverse of :func:`pack` for format ``fmt``; ``count`` as in :func:`unpack_fp4` / :func:`unpack_fp6`."""
    bits = _storage_bits(fmt)
    if bits == 4:
        return unpack_fp4(packed, nibble_order, count)
    if bits == 6:
        return unpack_fp6(packed, fp6_layout, count)
    packed = _uint8_array("packed", packed)
    _count(count, packed.shape[-1], 1, "packed")
    return packed


def packed_length(n: int, fmt) -> int:
    """Bytes along the last axis that ``n`` codes of ``fmt`` occupy once packed (padding the last group)."""
    bits = _storage_bits(fmt)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    return {4: -(-int(n) // 2), 6: 3 * -(-int(n) // 4), 8: int(n)}[bits]


# --- scale layouts -------------------------------------------------------------------------------------------
def _dims(rows, cols) -> tuple[int, int]:
    for name, v in (("rows", rows), ("cols", cols)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")
    return int(rows), int(cols)


def swizzled_size(rows: int, cols: int) -> int:
    """Bytes of the 128x4-swizzled buffer for a (rows, cols) scale matrix: whole 128x4 tiles of 512 bytes."""
    rows, cols = _dims(rows, cols)
    return -(-rows // _TILE_ROWS) * -(-cols // _TILE_COLS) * _TILE_BYTES


def swizzled_offset(r, c, cols: int):
    """Byte offset of scale ``S[r, c]`` in the 128x4-swizzled buffer of a matrix with ``cols`` columns.

    ``((r // 128) * nC + c // 4) * 512 + (r % 32) * 16 + ((r % 128) // 32) * 4 + c % 4`` with
    ``nC = ceil(cols / 4)``. ``r`` and ``c`` may be ints or integer arrays (broadcast together).
    """
    _, cols = _dims(0, cols)
    n_col_tiles = -(-cols // _TILE_COLS)
    r = np.asarray(r, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    if (r < 0).any() or (c < 0).any() or (c >= cols).any():
        raise ValueError(f"indices out of range: need r >= 0 and 0 <= c < cols={cols}")
    off = ((r // 128) * n_col_tiles + c // 4) * _TILE_BYTES + (r % 32) * 16 + ((r % 128) // 32) * 4 + c % 4
    return int(off) if off.ndim == 0 else off


def swizzle_scales(scales: np.ndarray, *, pad_value: int = 0) -> np.ndarray:
    """Lay a (rows, cols) uint8 scale matrix out in the cuBLAS 128x4 swizzled layout (1-D uint8).

    The matrix is first padded to ``ceil(rows/128)*128`` x ``ceil(cols/4)*4`` with ``pad_value`` (default 0,
    as torchao's ``to_blocked``; TransformerEngine's kernels leave padding unspecified).
    """
    scales = _uint8_array("scales", scales, min_ndim=2)
    if scales.ndim != 2:
        raise ValueError(f"scales must be 2-D (rows, cols), got shape {scales.shape}")
    if isinstance(pad_value, bool) or not isinstance(pad_value, (int, np.integer)) or not 0 <= pad_value <= 255:
        raise ValueError(f"pad_value must be a byte 0..255, got {pad_value!r}")
    rows, cols = scales.shape
    n_row_tiles, n_col_tiles = -(-rows // _TILE_ROWS), -(-cols // _TILE_COLS)
    padded = np.full((n_row_tiles * _TILE_ROWS, n_col_tiles * _TILE_COLS), pad_value, dtype=np.uint8)
    padded[:rows, :cols] = scales
    # r = tile_r*128 + g*32 + i, c = tile_c*4 + j  ->  order (tile_r, tile_c, i, g, j)
    tiles = padded.reshape(n_row_tiles, 4, 32, n_col_tiles, _TILE_COLS)
    return np.ascontiguousarray(tiles.transpose(0, 3, 2, 1, 4)).reshape(-1)


def unswizzle_scales(buf: np.ndarray, rows: int, cols: int, *, expect_pad: int | None = None) -> np.ndarray:
    """Inverse of :func:`swizzle_scales`: the (rows, cols) scale matrix from a swizzled buffer.

    ``buf`` must hold exactly :func:`swizzled_size` bytes. ``expect_pad``: if given, the padding bytes must
    all equal it (a kernel that promises zero padding can be checked); None (default) ignores them.
    """
    rows, cols = _dims(rows, cols)
    buf = _uint8_array("buf", buf)
    if buf.ndim != 1:
        raise ValueError(f"buf must be 1-D, got shape {buf.shape}")
    expected = swizzled_size(rows, cols)
    if buf.size != expected:
        raise ValueError(f"swizzled buffer for a {rows}x{cols} scale matrix must hold {expected} bytes "
                         f"({-(-rows // 128)}x{-(-cols // 4)} tiles of 512), got {buf.size}")
    n_row_tiles, n_col_tiles = -(-rows // _TILE_ROWS), -(-cols // _TILE_COLS)
    tiles = buf.reshape(n_row_tiles, n_col_tiles, 32, 4, _TILE_COLS)
    padded = tiles.transpose(0, 3, 2, 1, 4).reshape(n_row_tiles * _TILE_ROWS, n_col_tiles * _TILE_COLS)
    if expect_pad is not None:
        mask = np.ones(padded.shape, dtype=bool)
        mask[:rows, :cols] = False
        bad = padded[mask] != expect_pad
        if bad.any():
            raise ValueError(f"{int(bad.sum())} padding byte(s) differ from expect_pad={expect_pad}")
    return np.ascontiguousarray(padded[:rows, :cols])


def to_scale_layout(scales: np.ndarray, layout: str, *, pad_value: int = 0) -> np.ndarray:
    """Flatten a (rows, cols) uint8 scale matrix into ``layout`` (one of :data:`SCALE_LAYOUTS`)."""
    layout = _choice("layout", layout, SCALE_LAYOUTS)
    if layout == "swizzled-128x4":
        return swizzle_scales(scales, pad_value=pad_value)
    scales = _uint8_array("scales", scales, min_ndim=2)
    if scales.ndim != 2:
        raise ValueError(f"scales must be 2-D (rows, cols), got shape {scales.shape}")
    return scales.reshape(-1, order="C" if layout == "row-major" else "F").copy()


def from_scale_layout(buf: np.ndarray, rows: int, cols: int, layout: str) -> np.ndarray:
    """The (rows, cols) scale matrix from a buffer in ``layout`` (inverse of :func:`to_scale_layout`)."""
    layout = _choice("layout", layout, SCALE_LAYOUTS)
    if layout == "swizzled-128x4":
        return unswizzle_scales(buf, rows, cols)
    rows, cols = _dims(rows, cols)
    buf = _uint8_array("buf", buf)
    if buf.ndim != 1 or buf.size != rows * cols:
        raise ValueError(f"{layout} buffer for a {rows}x{cols} scale matrix must be 1-D with {rows * cols} bytes, "
                         f"got shape {buf.shape}")
    return np.ascontiguousarray(buf.reshape(rows, cols, order="C" if layout == "row-major" else "F"))
