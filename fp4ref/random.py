"""Counter-based Philox4x32-10, word for word as curand's device API draws it.

Stochastic-rounding kernels draw their random bits per GPU thread from Philox4x32-10 (Salmon et al., "Parallel
random numbers: as easy as 1, 2, 3", SC11). With the same (seed, subsequence, offset) these functions return the
same 32-bit words, so a kernel's rounding can be replayed on the CPU.

The stream (curand_philox4x32_x.h, proven against curand 10.4 / CUDA 13.0 on an H100: tests/test_random.py and
tests/vendors/capture_curand_philox.py). ``curand_init(seed, subsequence, offset, &state)`` followed by
``curand(&state)`` calls returns, for k = 0, 1, 2, ...::

    word k = Philox4x32-10(counter, key)[lane]
    counter = (subsequence * 2**64 + (offset + k) // 4) mod 2**128     (a 128-bit integer; 4 words x, y, z, w,
    lane    = (offset + k) % 4                                         x the least significant)
    key     = (seed mod 2**32, seed // 2**32)                          (the 64-bit seed split low word first)

- seed: any 64-bit integer; its low word is key word 0, its high word key word 1. Seeds that differ only in the
  high word give unrelated streams (no folding of the seed).
- subsequence: adds to the counter's high 64 bits (words z, w), so subsequence s starts 2**64 blocks (2**66
  words) after subsequence s - 1; the subsequence's words are a slice of one single 2**128-block sequence.
- offset: skips ``offset`` words: the counter's low 64 bits (x, y) start at offset // 4 and the first word
  returned is lane offset % 4 of that block (the rest of that block's words follow, then the next block's).
  offset // 4 < 2**62, so curand_init itself never carries into the subsequence words.
- wrap: the counter is one 128-bit integer. Word x wraps to 0 after 2**32 blocks and carries into y; y
  carries into z (drawing past 2**64 blocks of a subsequence continues with subsequence + 1's words); z into w;
  w's carry is lost (the sequence repeats after 2**128 blocks).
- ``curand4(&state)`` returns the next four words of the same stream (whatever the lane, across block
  boundaries) and advances it by four words: four ``curand()`` calls give the same words, so it needs no
  function of its own here.
- ``curand_uniform(&state)`` maps one word to float32: see :func:`curand_uniform`.

TransformerEngine (``transformer_engine/common/util/curanddx.hpp``, ``philox4x32_native_state<10>``) counts its
offset in 128-bit blocks, not words: ``init(seed, subsequence, offset)`` starts at counter
subsequence * 2**64 + offset and each ``generate4()`` returns one whole block (words x, y, z, w) then steps the
counter. That stream is ``offset_unit="block"`` here (= curand's word offset 4 * offset, which curand_init can
only reach for offset < 2**62). Its NVFP4 quantize kernels, for example, take subsequence = linear thread index
and (seed, offset) = (rng_state[0], rng_state[1]), and read a block's words x, y, z, w in that order. The block unit was read from TE's source; TE was not run (its
SR kernels need sm_100) — its equivalence with the curand stream is arithmetic, and the block form is checked
against curand's own words at block offsets up to 2**64 - 4 (reached with curand's skipahead).
"""
from __future__ import annotations

import numpy as np

from .kernels import random as _k

__all__ = ["philox4x32_10", "philox4x32_10_many", "philox4x32_10_bijection", "curand_uniform", "OFFSET_UNITS"]

_U64_MAX = (1 << 64) - 1

# How `offset` counts: "word" = curand_init's offset (32-bit numbers); "block" = TE's curanddx
# philox4x32_native_state::init offset (128-bit Philox outputs, four words each).
OFFSET_UNITS = ("word", "block")


def _u64(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer in [0, 2**64 - 1], got {value!r}")
    v = int(value)
    if not 0 <= v <= _U64_MAX:
        raise ValueError(f"{name} must be in [0, 2**64 - 1], got {v}")
    return v


def _count(value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or int(value) < 0:
        raise ValueError(f"count must be a non-negative integer, got {value!r}")
    return int(value)


def _u64_array(values, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.dtype.kind not in "ui" and not isinstance(values, np.ndarray):
        # NumPy turns nested lists mixing ints above 2**63 with small ones into float64: keep the Python ints
        a = np.array(values, dtype=object)
    if a.dtype == object:
        flat = [_u64(v, f"{name} element") for v in a.ravel()]
        return np.array(flat, dtype=np.uint64).reshape(a.shape)
    if a.dtype.kind not in "ui":
        raise TypeError(f"{name} must be an array of integers in [0, 2**64 - 1], got dtype {a.dtype}")
    if a.dtype.kind == "i" and a.size and a.min() < 0:
        raise ValueError(f"{name} must be in [0, 2**64 - 1], got {int(a.min())}")
    return a.astype(np.uint64)


def _start(offset, offset_unit: str) -> tuple[int, int]:
    """(low 64 counter bits of the first block, lane of the first word)."""
    offset = _u64(offset, "offset")
    if offset_unit == "word":
        return offset >> 2, offset & 3
    if offset_unit == "block":
        return offset, 0
    raise ValueError(f"offset_unit must be one of {', '.join(OFFSET_UNITS)}, got {offset_unit!r}")


def philox4x32_10_many(seed, subsequences, offset, count, *, offset_unit: str = "word") -> np.ndarray:
    """The words of many curand Philox4x32-10 streams that share seed and offset, one per subsequence.

    Returns uint32 of shape ``subsequences.shape + (count,)``; row ``i`` is
    ``philox4x32_10(seed, subsequences[i], offset, count, offset_unit=offset_unit)`` (as a GPU launch where
    thread i calls ``curand_init(seed, subsequences[i], offset, &s)``). See the module docstring for the exact
    counter arithmetic.

    seed, offset: integers in [0, 2**64 - 1]; subsequences: integer array with values in [0, 2**64 - 1];
    count: words per stream (>= 0); offset_unit: "word" (curand_init) or "block" (TransformerEngine's
    philox4x32_native_state::init, 4 words per unit).
    """
    seed = _u64(seed, "seed")
    lo, lane = _start(offset, offset_unit)
    count = _count(count)
    subs = _u64_array(subsequences, "subsequences")
    out = np.empty((subs.size, count), dtype=np.uint32)
    if subs.size and count:
        _k.philox_streams(np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32), subs.ravel(), np.uint64(lo),
                          lane, count, out)
    return out.reshape(subs.shape + (count,))


def philox4x32_10(seed, subsequence, offset, count, *, offset_unit: str = "word") -> np.ndarray:
    """The ``count`` words that successive ``curand()`` calls return after
    ``curand_init(seed, subsequence, offset, &state)`` with ``curandStatePhilox4_32_10_t`` (uint32 array).

    seed, subsequence, offset: integers in [0, 2**64 - 1]; count: number of words (>= 0); offset_unit: "word"
    (curand_init's offset, default) or "block" (TransformerEngine's curanddx offset, in 128-bit outputs).
    ``philox4x32_10(s, q, o, n)[k:]`` equals ``philox4x32_10(s, q, o + k, n - k)``. The module docstring gives
    the exact counter arithmetic, the seed split and the wrap behaviour.
    """
    return philox4x32_10_many(seed, np.array([_u64(subsequence, "subsequence")], dtype=np.uint64), offset, count,
                              offset_unit=offset_unit)[0]


def philox4x32_10_bijection(counters, keys) -> np.ndarray:
    """The raw Philox4x32-10 bijection (Random123's ``philox4x32(ctr, key)`` with 10 rounds, curand's
    ``curand_Philox4x32_10``): uint32 ``counters[..., 4]`` (word 0 least significant) and ``keys[..., 2]``
    (broadcast against each other) to uint32 outputs ``[..., 4]``.
    """
    c = np.asarray(counters)
    k = np.asarray(keys)
    for a, name, width in ((c, "counters", 4), (k, "keys", 2)):
        if a.dtype.kind not in "ui" or a.ndim == 0 or a.shape[-1] != width:
            raise ValueError(f"{name} must be an integer array of shape (..., {width}), got {a.dtype} {a.shape}")
        if a.size and (a.min() < 0 or a.max() > 0xFFFFFFFF):
            raise ValueError(f"{name} values must be 32-bit words in [0, 2**32 - 1]")
    shape = np.broadcast_shapes(c.shape[:-1], k.shape[:-1])
    cc = np.ascontiguousarray(np.broadcast_to(c, shape + (4,)).reshape(-1, 4), dtype=np.uint32)
    kk = np.ascontiguousarray(np.broadcast_to(k, shape + (2,)).reshape(-1, 2), dtype=np.uint32)
    out = np.empty((cc.shape[0], 4), dtype=np.uint32)
    if out.size:
        _k.philox_blocks(cc, kk, out)
    return out.reshape(shape + (4,))


def curand_uniform(words) -> np.ndarray:
    """curand_uniform's float32 from each 32-bit word: ``float32(word) * 2**-32 + 2**-33``, each step rounded
    to nearest even in float32 (curand_uniform.h, ``_curand_uniform``; the product is exact, so an FMA gives
    the same). Results lie in (0, 1]; words at or above 2**32 - 128 give exactly 1.0.
    """
    w = np.asarray(words)
    if w.dtype.kind not in "ui" or (w.size and (w.min() < 0 or w.max() > 0xFFFFFFFF)):
        raise ValueError(f"words must be 32-bit unsigned integers, got dtype {w.dtype}")
    return w.astype(np.float32) * np.float32(2.0 ** -32) + np.float32(2.0 ** -33)
