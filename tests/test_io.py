"""Tests for fp4ref.io: every format round-trips, damaged files are errors, never partial arrays."""
from __future__ import annotations

import os
import pathlib
import pickle
import subprocess
import sys
import tempfile

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fp4ref import io as I
from fp4ref.io import TensorFileError

BF16 = np.dtype(ml_dtypes.bfloat16)


def _chop(path, n):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:-n])


def _same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# --- round trips -------------------------------------------------------------------------------------------------
PLAIN = [np.float32, np.float64, np.float16, np.uint8, np.int8, np.uint16, np.int32, np.int64, np.bool_]


@settings(max_examples=40, deadline=None)
@given(arr=hnp.arrays(st.sampled_from(PLAIN), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)))
def test_plain_dtypes_round_trip_through_every_format(arr):
    with tempfile.TemporaryDirectory() as d:
        for name in ("t.npy", "t.bin"):
            I.write_tensor(os.path.join(d, name), arr)
        I.write_tensors(os.path.join(d, "t.npz"), {"x": arr, "other": np.zeros(2, np.uint8)})
        I.write_tensors(os.path.join(d, "t.safetensors"), {"x": arr, "other": np.zeros(2, np.uint8)})
        specs = ["t.npy", "t.npz:x", "t.safetensors:x"]
        for s in specs:
            assert _same(I.read_tensor(os.path.join(d, s)), arr), s
            assert _same(np.asarray(I.open_tensor(os.path.join(d, s))), arr), s
        raw = I.read_tensor(os.path.join(d, "t.bin"), dtype=arr.dtype, shape=arr.shape)
        assert _same(raw, arr)


@pytest.mark.parametrize("dt", ["bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e8m0fnu"])
def test_ml_dtypes_round_trip_through_safetensors_and_raw(tmp_path, dt):
    bits = np.arange(240, dtype=np.uint8 if dt != "bfloat16" else np.uint16).reshape(12, 20)
    arr = bits.view(getattr(ml_dtypes, dt))
    I.write_tensors(tmp_path / "t.safetensors", {"x": arr})
    I.write_tensor(tmp_path / "t.bin", arr)
    for got in (I.read_tensor(tmp_path / "t.safetensors"), I.open_tensor(f"{tmp_path}/t.safetensors:x"),
                I.read_tensor(tmp_path / "t.bin", dtype=dt, shape=(12, 20))):
        assert got.dtype == np.dtype(getattr(ml_dtypes, dt)) and got.tobytes() == arr.tobytes()


def test_safetensors_bf16_comes_back_as_ml_dtypes_bfloat16(tmp_path):
    x = np.array([1.0, -2.5, 3.140625], dtype=BF16)
    I.write_tensors(tmp_path / "b.safetensors", {"w": x}, metadata={"source": "test"})
    assert I.list_tensors(tmp_path / "b.safetensors") == {"w": ((3,), "BF16")}
    got = I.read_tensor(f"{tmp_path}/b.safetensors:w", dtype="bfloat16", shape=(3,))
    assert got.dtype == BF16 and (got == x).all()


def test_open_tensor_memory_maps_read_only(tmp_path):
    a = np.arange(1000, dtype=np.float32).reshape(100, 10)
    I.write_tensor(tmp_path / "a.npy", a)
    I.write_tensor(tmp_path / "a.bin", a)
    I.write_tensors(tmp_path / "a.safetensors", {"a": a})
    for m in (I.open_tensor(tmp_path / "a.npy"), I.open_tensor(tmp_path / "a.bin", dtype=np.float32, shape=(100, 10)),
              I.open_tensor(tmp_path / "a.safetensors")):
        assert isinstance(m, np.memmap) and (m == a).all()
        with pytest.raises(ValueError):
            m[0, 0] = 1


# --- damaged files -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cut", [1, 7, 3990, 4000 + 60])
def test_truncated_npy_is_an_error(tmp_path, cut):
    p = tmp_path / "a.npy"
    I.write_tensor(p, np.arange(1000, dtype=np.float32))
    _chop(p, cut)
    for reader in (I.read_tensor, I.open_tensor):
        with pytest.raises(TensorFileError):
            reader(p)


def test_truncated_npy_error_names_expected_and_actual_bytes(tmp_path):
    p = tmp_path / "a.npy"
    I.write_tensor(p, np.arange(10, dtype=np.float32))
    _chop(p, 4)
    with pytest.raises(TensorFileError, match=r"truncated.*168 bytes in all, file has 164"):
        I.read_tensor(p)


def test_npy_with_trailing_bytes_is_an_error(tmp_path):
    p = tmp_path / "a.npy"
    I.write_tensor(p, np.arange(10, dtype=np.float32))
    with open(p, "ab") as f:
        f.write(b"\0")
    with pytest.raises(TensorFileError, match="trailing bytes"):
        I.read_tensor(p)


@pytest.mark.parametrize("cut", [1, 22, 300, 3000])
def test_truncated_npz_is_an_error(tmp_path, cut):
    p = tmp_path / "a.npz"
    I.write_tensors(p, {"x": np.arange(1000, dtype=np.float32), "y": np.ones(3, np.uint8)})
    _chop(p, cut)
    with pytest.raises(TensorFileError):
        I.read_tensor(f"{p}:x")


def test_npz_with_a_flipped_data_byte_is_an_error(tmp_path):
    p = tmp_path / "a.npz"
    I.write_tensors(p, {"x": np.arange(1000, dtype=np.float32)})
    data = bytearray(open(p, "rb").read())
    data[500] ^= 0xFF
    open(p, "wb").write(bytes(data))
    with pytest.raises(TensorFileError, match="corrupt"):
        I.read_tensor(p)


@pytest.mark.parametrize("cut", [1, 48, 200])
def test_truncated_safetensors_is_an_error(tmp_path, cut):
    p = tmp_path / "a.safetensors"
    I.write_tensors(p, {"x": np.arange(100, dtype=np.float32), "y": np.ones(3, BF16)})
    _chop(p, cut)
    for reader in (I.read_tensor, I.open_tensor):
        with pytest.raises(TensorFileError, match="safetensors"):
            reader(f"{p}:x")


def test_raw_size_mismatch_names_expected_and_actual_bytes(tmp_path):
    p = tmp_path / "a.bin"
    I.write_tensor(p, np.arange(12, dtype=np.float32))
    _chop(p, 1)
    with pytest.raises(TensorFileError, match="needs exactly 48 bytes, file has 47"):
        I.read_tensor(p, dtype="float32", shape=(3, 4))
    with pytest.raises(TensorFileError, match="needs dtype= and shape="):
        I.read_tensor(p, dtype="float32")


# --- refused content ---------------------------------------------------------------------------------------------
def test_pickled_object_arrays_are_refused(tmp_path):
    obj = np.array([{"a": 1}, None], dtype=object)
    np.save(tmp_path / "o.npy", obj, allow_pickle=True)
    np.savez(tmp_path / "o.npz", x=obj)
    with open(tmp_path / "p.npy", "wb") as f:
        pickle.dump(np.arange(3), f)
    with pytest.raises(TensorFileError, match="object arrays are refused"):
        I.read_tensor(tmp_path / "o.npy")
    with pytest.raises(TensorFileError, match="object arrays are refused"):
        I.read_tensor(tmp_path / "o.npz")
    with pytest.raises(TensorFileError, match="not a readable .npy"):
        I.read_tensor(tmp_path / "p.npy")
    with pytest.raises(ValueError, match="cannot be written"):
        I.write_tensor(tmp_path / "w.npy", obj)


@pytest.mark.parametrize("arr", [np.ones(3, np.complex64), np.array(["ab"]), np.zeros(2, [("a", "f4")])])
def test_complex_string_and_structured_arrays_are_refused(tmp_path, arr):
    np.save(tmp_path / "c.npy", arr)
    with pytest.raises(TensorFileError, match="not a real numeric type"):
        I.read_tensor(tmp_path / "c.npy")


# --- keys --------------------------------------------------------------------------------------------------------
def test_ambiguous_or_missing_keys_list_the_available_keys(tmp_path):
    t = {"weight": np.ones(2, np.float32), "scale": np.ones(1, np.uint8)}
    I.write_tensors(tmp_path / "m.npz", t)
    I.write_tensors(tmp_path / "m.safetensors", t)
    for name in ("m.npz", "m.safetensors"):
        with pytest.raises(TensorFileError, match=r"holds 2 tensors.*available: .*scale.*weight|weight.*scale"):
            I.read_tensor(tmp_path / name)
        with pytest.raises(TensorFileError, match=r"no tensor 'bias'; available: "):
            I.read_tensor(f"{tmp_path}/{name}:bias")
        assert (I.read_tensor(f"{tmp_path}/{name}:scale") == 1).all()
    assert I.list_tensors(tmp_path / "m.npz") == {"weight": ((2,), "float32"), "scale": ((1,), "uint8")}


def test_spec_errors(tmp_path):
    I.write_tensor(tmp_path / "a.npy", np.ones(2, np.float32))
    with pytest.raises(TensorFileError, match="takes no ':key'"):
        I.read_tensor(f"{tmp_path}/a.npy:x")
    with pytest.raises(TensorFileError, match="no such file"):
        I.read_tensor(tmp_path / "missing.npy")
    (tmp_path / "a.txt").write_text("1 2 3")
    with pytest.raises(TensorFileError, match="unknown file type '.txt'"):
        I.read_tensor(tmp_path / "a.txt")
    colon = tmp_path / "run:1.npy"   # an existing path is never split at ':'
    I.write_tensor(colon, np.ones(3, np.int8))
    assert I.read_tensor(colon).shape == (3,)


def test_stored_dtype_and_shape_are_asserted_not_converted(tmp_path):
    I.write_tensor(tmp_path / "a.npy", np.ones((2, 3), np.float32))
    with pytest.raises(TensorFileError, match="stored dtype is float32, expected float64"):
        I.read_tensor(tmp_path / "a.npy", dtype=np.float64)
    with pytest.raises(TensorFileError, match=r"stored shape is \(2, 3\), expected \(3, 2\)"):
        I.read_tensor(tmp_path / "a.npy", shape=(3, 2))


# --- bit patterns ------------------------------------------------------------------------------------------------
def test_bfloat16_bit_patterns_stored_as_uint16_are_viewed_as_bfloat16(tmp_path):
    values = np.array([1.0, -0.0, np.inf, 3.0e38, 1e-40], dtype=BF16)
    bits = values.view(np.uint16)
    I.write_tensor(tmp_path / "b.npy", bits)
    I.write_tensor(tmp_path / "s.npy", bits.view(np.int16))
    I.write_tensors(tmp_path / "b.npz", {"x": bits})
    I.write_tensor(tmp_path / "b.bin", bits)
    for got in (I.read_tensor(tmp_path / "b.npy", input_dtype="bfloat16"),
                I.read_tensor(tmp_path / "s.npy", input_dtype="bfloat16"),
                I.read_tensor(tmp_path / "b.npz", input_dtype="bfloat16"),
                I.open_tensor(tmp_path / "b.bin", dtype="uint16", shape=(5,), input_dtype="bfloat16")):
        assert got.dtype == BF16 and got.tobytes() == values.tobytes()


def test_np_save_of_bfloat16_needs_input_dtype(tmp_path):
    np.save(tmp_path / "v.npy", np.ones(3, BF16))   # numpy records it as raw |V2
    with pytest.raises(TensorFileError, match="input_dtype= one of 'bfloat16', 'float16'"):
        I.read_tensor(tmp_path / "v.npy")
    assert I.read_tensor(tmp_path / "v.npy", input_dtype="bfloat16").dtype == BF16


def test_float16_and_float32_bit_views_and_width_checks(tmp_path):
    I.write_tensor(tmp_path / "h.npy", np.array([0x3C00], np.uint16))
    I.write_tensor(tmp_path / "f.npy", np.array([0x3F800000], np.uint32))
    assert I.read_tensor(tmp_path / "h.npy", input_dtype="float16").tolist() == [1.0]
    assert I.read_tensor(tmp_path / "f.npy", input_dtype="float32").tolist() == [1.0]
    with pytest.raises(TensorFileError, match="needs 2-byte integer bit patterns"):
        I.read_tensor(tmp_path / "f.npy", input_dtype="bfloat16")
    with pytest.raises(ValueError, match="input_dtype must be one of"):
        I.read_tensor(tmp_path / "f.npy", input_dtype="float8")


# --- streaming ---------------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(rows=st.integers(0, 300), cols=st.integers(1, 9), max_bytes=st.integers(1, 4000),
       multiple=st.integers(1, 40))
def test_iter_row_chunks_covers_every_row_once_in_bounded_slices(rows, cols, max_bytes, multiple):
    a = np.arange(rows * cols, dtype=np.float32).reshape(rows, cols)
    seen = 0
    chunks = list(I.iter_row_chunks(a, max_bytes=max_bytes, row_multiple=multiple))
    for i, (start, chunk) in enumerate(chunks):
        assert start == seen and chunk.base is not None   # a view, not a copy
        if i < len(chunks) - 1:
            assert chunk.shape[0] % multiple == 0
            assert chunk.nbytes <= max_bytes or chunk.shape[0] == multiple
        seen += chunk.shape[0]
    assert seen == rows


def test_iter_row_chunks_of_a_spec_maps_each_piece_separately(tmp_path):
    a = np.arange(64 * 1024, dtype=np.uint16).reshape(256, 256)
    I.write_tensor(tmp_path / "big.npy", a)
    I.write_tensor(tmp_path / "big.bin", a)
    I.write_tensors(tmp_path / "big.safetensors", {"a": a, "b": a[:1]})
    I.write_tensors(tmp_path / "big.npz", {"a": a})
    np.save(tmp_path / "fortran.npy", np.asfortranarray(a))
    for spec, kw in [("big.npy", {}), ("big.safetensors:a", {}), ("big.npz", {}), ("fortran.npy", {}),
                     ("big.bin", {"dtype": "uint16", "shape": (256, 256)})]:
        chunks = list(I.iter_row_chunks(f"{tmp_path}/{spec}", max_bytes=8192, row_multiple=16, **kw))
        assert [st for st, _ in chunks] == list(range(0, 256, 16)), spec
        assert np.concatenate([c for _, c in chunks]).tobytes() == a.tobytes(), spec
        mapped = spec.startswith("big.") and not spec.endswith(".npz")
        assert all(isinstance(c, np.memmap) for _, c in chunks) == mapped, spec
    bf = list(I.iter_row_chunks(tmp_path / "big.npy", input_dtype="bfloat16", max_bytes=1 << 20))
    assert len(bf) == 1 and bf[0][1].dtype == BF16 and bf[0][1].tobytes() == a.tobytes()
    with pytest.raises(ValueError, match="apply to a spec"):
        next(I.iter_row_chunks(a, input_dtype="bfloat16"))


def test_streaming_a_large_npy_keeps_resident_memory_bounded(tmp_path):
    """A 1 GiB (sparse) .npy is summed piece by piece with peak RSS far below its size."""
    p = tmp_path / "big.npy"
    with open(p, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (262144, 1024)})
        f.truncate(f.tell() + (1 << 30))
    code = (
        "import resource, sys, numpy as np\n"
        "from fp4ref import io as I\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "rows = sum(c.shape[0] for _, c in I.iter_row_chunks(sys.argv[1], max_bytes=32 << 20) if c.sum() == 0)\n"
        "print(rows, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)\n"
    )
    root = pathlib.Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(root)}).stdout.split()
    rows, grown_mib = int(out[0]), int(out[1])
    assert rows == 262144
    assert grown_mib < 256, f"resident memory grew by {grown_mib} MiB while streaming 1024 MiB"


# --- writers -----------------------------------------------------------------------------------------------------
def test_writer_refusals_leave_no_files(tmp_path):
    with pytest.raises(ValueError, match="cannot record bfloat16"):
        I.write_tensors(tmp_path / "a.npz", {"x": np.ones(2, BF16)})
    with pytest.raises(ValueError, match="writes .npz or .safetensors"):
        I.write_tensors(tmp_path / "a.npy", {"x": np.ones(2)})
    with pytest.raises(ValueError, match="cannot hold metadata"):
        I.write_tensors(tmp_path / "a.npz", {"x": np.ones(2)}, metadata={"a": "b"})
    with pytest.raises(ValueError, match="no safetensors name"):
        I.write_tensors(tmp_path / "a.safetensors", {"x": np.ones(2, ml_dtypes.int4)})
    with pytest.raises(ValueError, match="writes .npy or raw"):
        I.write_tensor(tmp_path / "a.npz", np.ones(2))
    assert list(tmp_path.iterdir()) == []
