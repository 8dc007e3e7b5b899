"""fp4ref.random against curand itself (words captured on an H100, tests/vendors/capture_curand_philox.py),
against Random123's published known answers, and against its own laws."""
from __future__ import annotations

from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fp4ref import random as rnd

CAPTURE = np.load(Path(__file__).parent / "data" / "curand_philox4x32_10.npz")
U64 = (1 << 64) - 1
u64s = st.integers(0, U64)
small = settings(max_examples=40, deadline=None)


def _captured(mode: str, *, skipped: bool):
    """(seed, subsequence, offset, skip, skip_reps, words) of each captured stream of one mode."""
    mode_id = list(CAPTURE["mode_names"]).index(mode)
    rows = []
    for i in range(CAPTURE["name"].size):
        if CAPTURE["mode"][i] != mode_id or bool(CAPTURE["skip_reps"][i]) != skipped:
            continue
        s, n = int(CAPTURE["start"][i]), int(CAPTURE["count"][i])
        rows.append((int(CAPTURE["seed"][i]), int(CAPTURE["subsequence"][i]), int(CAPTURE["offset"][i]),
                     int(CAPTURE["skip"][i]), int(CAPTURE["skip_reps"][i]), CAPTURE["words"][s:s + n]))
    return rows


def test_capture_records_its_versions():
    assert int(CAPTURE["curand_header_version"]) >= 10000
    assert int(CAPTURE["cuda_runtime_version"]) > 0 and int(CAPTURE["cuda_driver_version"]) > 0
    assert str(CAPTURE["cupy_version"]) and "H100" in str(CAPTURE["gpu"])


# --- curand, run on the GPU -----------------------------------------------------------------------------------

def test_every_curand_word_after_curand_init_is_reproduced():
    rows = _captured("curand", skipped=False)
    assert len(rows) >= 190
    for seed, sub, off, _, _, words in rows:
        got = rnd.philox4x32_10(seed, sub, off, words.size)
        assert np.array_equal(got, words), (hex(seed), hex(sub), hex(off))


def test_curand_streams_across_the_low_64_counter_bits_wrap_continue_in_the_next_subsequence():
    # captured: curand_init(seed, sub, lane) then 4 x skipahead(2**64 - 4): block 2**64 - 4, lane `off`
    rows = _captured("curand", skipped=True)
    assert len(rows) == 8
    for seed, sub, lane, skip, reps, words in rows:
        block = ((skip >> 2) * reps) % (1 << 64)
        assert block == (1 << 64) - 4
        got = rnd.philox4x32_10(seed, sub, block, words.size + lane, offset_unit="block")[lane:]
        assert np.array_equal(got, words), (hex(seed), hex(sub), lane)
        # from block 2**64 on, the words are subsequence sub + 1's (sub = 2**64 - 1 wraps to subsequence 0)
        nxt = rnd.philox4x32_10(seed, (sub + 1) & U64, 0, words.size - (16 - lane))
        assert np.array_equal(words[16 - lane:], nxt)


def test_one_launch_of_threads_with_subsequence_thread_index_is_the_vectorised_form():
    rows = [r for r in _captured("curand", skipped=False) if r[0] == 0x5EED]
    assert len(rows) == 64 and [r[1] for r in rows] == list(range(64))
    got = rnd.philox4x32_10_many(0x5EED, np.arange(64), 5, 7)
    assert np.array_equal(got, np.stack([r[5] for r in rows]))


def test_curand4_returns_the_next_four_curand_words_from_any_lane():
    rows = _captured("curand4", skipped=False)
    assert len(rows) == 18
    for seed, sub, off, _, _, words in rows:
        assert np.array_equal(rnd.philox4x32_10(seed, sub, off, words.size), words), (hex(seed), off)


def test_curand_uniform_float_bits_are_reproduced():
    rows = _captured("uniform", skipped=False)
    assert len(rows) == 4
    for seed, sub, off, _, _, bits in rows:
        got = rnd.curand_uniform(rnd.philox4x32_10(seed, sub, off, bits.size))
        assert got.dtype == np.float32
        assert np.array_equal(got.view(np.uint32), bits)


def test_curand_uniform_range_ends():
    u = rnd.curand_uniform(np.array([0, 2**32 - 129, 2**32 - 128, 2**32 - 1], dtype=np.uint32))
    assert u[0] == np.float32(2.0 ** -33)   # never 0
    assert u[1] < 1 and u[2] == 1 and u[3] == 1


# --- Random123 known answers (tests/kat_vectors of github.com/DEShawResearch/random123) -------------------------

KAT = [  # counter (x, y, z, w), key (k0, k1), Philox4x32-10 output
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def test_bijection_matches_random123_known_answers():
    got = rnd.philox4x32_10_bijection(np.array([k[0] for k in KAT], dtype=np.uint32),
                                      np.array([k[1] for k in KAT], dtype=np.uint32))
    assert np.array_equal(got, np.array([k[2] for k in KAT], dtype=np.uint32))


def test_stream_of_seed_zero_starts_with_the_random123_zero_vector():
    assert np.array_equal(rnd.philox4x32_10(0, 0, 0, 4), np.array(KAT[0][2], dtype=np.uint32))


# --- the documented counter arithmetic ------------------------------------------------------------------------

def _words_by_formula(seed: int, sub: int, off: int, count: int) -> np.ndarray:
    """word k = Philox((sub * 2**64 + (off + k) // 4) mod 2**128, (seed lo, seed hi))[(off + k) % 4]."""
    first, last = off // 4, (off + count + 3) // 4
    ctrs = [(sub << 64) + b for b in range(first, max(last, first + 1))]
    c = np.array([[(v >> (32 * i)) & 0xFFFFFFFF for i in range(4)] for v in ctrs], dtype=np.uint32)
    key = np.array([seed & 0xFFFFFFFF, seed >> 32], dtype=np.uint32)
    flat = rnd.philox4x32_10_bijection(c, key).ravel()
    return flat[off % 4: off % 4 + count]


@small
@given(u64s, u64s, u64s, st.integers(0, 40))
def test_stream_is_the_bijection_of_the_documented_counters(seed, sub, off, count):
    assert np.array_equal(rnd.philox4x32_10(seed, sub, off, count), _words_by_formula(seed, sub, off, count))


def test_long_stream_across_chunks_and_the_x_word_wrap_is_the_bijection_of_successive_counters():
    off = (1 << 34) - 4 * 3000 + 1        # ctr.x wraps 3000 blocks in; the stream spans several kernel chunks
    got = rnd.philox4x32_10(0xDEADBEEF12345678, 7, off, 4 * 5000)
    assert np.array_equal(got, _words_by_formula(0xDEADBEEF12345678, 7, off, 4 * 5000))


# --- laws -----------------------------------------------------------------------------------------------------

@small
@given(u64s, u64s, st.integers(0, U64 - 64), st.integers(0, 64), st.integers(0, 64))
def test_offset_is_additive(seed, sub, off, k, extra):
    count = k + extra
    whole = rnd.philox4x32_10(seed, sub, off, count)
    assert np.array_equal(whole[k:], rnd.philox4x32_10(seed, sub, off + k, count - k))


@small
@given(u64s, u64s, st.integers(0, (1 << 62) - 1), st.integers(0, 30))
def test_block_offset_is_four_word_offsets(seed, sub, block, count):
    assert np.array_equal(rnd.philox4x32_10(seed, sub, block, count, offset_unit="block"),
                          rnd.philox4x32_10(seed, sub, 4 * block, count))


@small
@given(u64s, st.lists(u64s, min_size=0, max_size=9), u64s, st.integers(0, 13))
def test_vectorised_rows_equal_scalar_streams_and_are_deterministic(seed, subs, off, count):
    many = rnd.philox4x32_10_many(seed, np.array(subs, dtype=np.uint64), off, count)
    assert many.shape == (len(subs), count) and many.dtype == np.uint32
    for row, sub in zip(many, subs):
        assert np.array_equal(row, rnd.philox4x32_10(seed, sub, off, count))
    assert np.array_equal(many, rnd.philox4x32_10_many(seed, np.array(subs, dtype=np.uint64), off, count))


def test_one_and_all_numba_threads_give_the_same_words():
    subs = np.arange(3000, dtype=np.uint64) * 0x9E3779B97F4A7C15
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = (rnd.philox4x32_10_many(42, subs, 3, 11), rnd.philox4x32_10(42, 5, 1, 9000))
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = (rnd.philox4x32_10_many(42, subs, 3, 11), rnd.philox4x32_10(42, 5, 1, 9000))
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one[0], many[0]) and np.array_equal(one[1], many[1])


def test_many_keeps_the_shape_of_subsequences_and_takes_python_ints_above_int64():
    subs = [[0, 1, 2], [U64, 1 << 63, 5]]
    got = rnd.philox4x32_10_many(9, subs, 2, 6)
    assert got.shape == (2, 3, 6)
    assert np.array_equal(got[1, 0], rnd.philox4x32_10(9, U64, 2, 6))
    assert rnd.philox4x32_10(1, 2, 3, 0).shape == (0,)
    assert rnd.philox4x32_10_many(1, np.zeros((0,), np.uint64), 3, 4).shape == (0, 4)


# --- bad input ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, text", [
    (dict(seed=-1), ValueError, "seed must be in"),
    (dict(seed=1 << 64), ValueError, "seed must be in"),
    (dict(seed=1.0), TypeError, "seed must be an integer"),
    (dict(seed=True), TypeError, "seed must be an integer"),
    (dict(subsequence=-3), ValueError, "subsequence must be in"),
    (dict(offset=1 << 64), ValueError, "offset must be in"),
    (dict(count=-1), ValueError, "count must be a non-negative integer"),
    (dict(count=2.0), ValueError, "count must be a non-negative integer"),
    (dict(offset_unit="bytes"), ValueError, "offset_unit must be one of word, block"),
])
def test_bad_scalar_arguments_are_named(kwargs, error, text):
    args = dict(seed=1, subsequence=2, offset=3, count=4) | kwargs
    unit = args.pop("offset_unit", "word")
    with pytest.raises(error, match=text):
        rnd.philox4x32_10(**args, offset_unit=unit)


@pytest.mark.parametrize("subs, error, text", [
    (np.array([1.0]), TypeError, "subsequences must be an array of integers"),
    (np.array([0, -1]), ValueError, "subsequences must be in"),
    ([1 << 64], ValueError, "subsequences element must be in"),
])
def test_bad_subsequences_are_named(subs, error, text):
    with pytest.raises(error, match=text):
        rnd.philox4x32_10_many(1, subs, 0, 4)


def test_bad_bijection_and_uniform_inputs_are_named():
    with pytest.raises(ValueError, match="counters must be an integer array of shape"):
        rnd.philox4x32_10_bijection(np.zeros(3, np.uint32), np.zeros(2, np.uint32))
    with pytest.raises(ValueError, match="keys values must be 32-bit words"):
        rnd.philox4x32_10_bijection(np.zeros(4, np.uint32), np.array([0, 1 << 32]))
    with pytest.raises(ValueError, match="words must be 32-bit unsigned integers"):
        rnd.curand_uniform(np.array([0.5]))
