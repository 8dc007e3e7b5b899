"""Strict reading and writing of tensors: .npy, .npz, .safetensors and raw binary.

A tensor is named by a *spec*: ``file.npy``, ``file.npz:key``, ``file.safetensors:key`` or ``file.bin`` (raw
bytes, ``.raw`` also accepted). The key may be left out when the file holds exactly one tensor. Every problem is
raised, never papered over: a missing or extra key, a truncated or corrupt file, a size that does not match the
declared shape, a dtype other than the one asked for, object, complex, string or structured data. Such errors are
:class:`TensorFileError` (a ``ValueError``); a reader never returns a partial array.

Pickles are never loaded (``np.load(..., allow_pickle=False)`` throughout). ``.safetensors`` files are opened with
the ``safetensors`` library, which checks the header against the file size; the bytes of one tensor are then read
(or memory-mapped) at the offsets of the header, so every dtype the format names is available, including those
the library's numpy API cannot build (F8_E4M3, F8_E5M2, F8_E8M0 come back as the ml_dtypes types; BF16 as
``ml_dtypes.bfloat16``).

Bit patterns: ``input_dtype="bfloat16"`` (or ``"float16"``, ``"float32"``) reinterprets a stored integer array of
the same width as that type, for dumps that keep bfloat16 as uint16 because .npy cannot name bfloat16.

Large inputs: :func:`open_tensor` memory-maps .npy, raw and .safetensors tensors read-only, and
:func:`iter_row_chunks` given a spec maps one bounded piece along axis 0 at a time, so a 4 GiB input is checked
or quantized in about ``max_bytes`` of resident memory.
"""
from __future__ import annotations

import json
import math
import os
import pathlib
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import Iterator, Mapping

import ml_dtypes
import numpy as np

__all__ = [
    "TensorFileError", "TensorSpec", "INPUT_DTYPES", "parse_spec", "read_tensor", "open_tensor", "list_tensors",
    "iter_row_chunks", "write_tensors", "write_tensor",
]


class TensorFileError(ValueError):
    """A tensor file is missing, truncated, corrupt, ambiguous, or holds something other than what was asked."""


_KINDS = {".npy": "npy", ".npz": "npz", ".safetensors": "safetensors", ".bin": "raw", ".raw": "raw"}

INPUT_DTYPES = {"bfloat16": np.dtype(ml_dtypes.bfloat16), "float16": np.dtype(np.float16),
                "float32": np.dtype(np.float32)}

_ML_NAMES = ("bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3b11fnuz", "float8_e4m3", "float8_e5m2",
             "float8_e5m2fnuz", "float8_e3m4", "float8_e8m0fnu", "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn",
             "int2", "int4", "uint2", "uint4")
_ML_DTYPES = {name: np.dtype(getattr(ml_dtypes, name)) for name in _ML_NAMES if hasattr(ml_dtypes, name)}

# safetensors dtype strings (safetensors/src/tensor.rs ``Dtype``) that map onto one numpy / ml_dtypes type
_ST_DTYPES = {
    "BOOL": np.dtype(np.bool_), "U8": np.dtype(np.uint8), "I8": np.dtype(np.int8), "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"), "U32": np.dtype("<u4"), "I32": np.dtype("<i4"), "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"), "F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8"),
    "BF16": _ML_DTYPES["bfloat16"], "F8_E4M3": _ML_DTYPES["float8_e4m3fn"], "F8_E5M2": _ML_DTYPES["float8_e5m2"],
}
if "float8_e8m0fnu" in _ML_DTYPES:
    _ST_DTYPES["F8_E8M0"] = _ML_DTYPES["float8_e8m0fnu"]


@dataclass(frozen=True)
class TensorSpec:
    """A parsed spec: the file, the key inside it (None: the only tensor) and the file kind."""
    path: pathlib.Path
    key: str | None
    kind: str   # "npy" | "npz" | "safetensors" | "raw"


# --- small checks --------------------------------------------------------------------------------------------
def _resolve_dtype(value, name: str) -> np.dtype:
    if isinstance(value, str) and value in _ML_DTYPES:
        return _ML_DTYPES[value]
    try:
        return np.dtype(value)
    except TypeError:
        raise ValueError(f"{name}={value!r} is not a dtype; use a numpy dtype or one of the ml_dtypes names "
                         f"{', '.join(_ML_DTYPES)}") from None


def _is_numeric(dt: np.dtype) -> bool:
    return dt.fields is None and (dt.kind in "biuf" or dt in _ML_DTYPES.values())


def _check_numeric(dt: np.dtype, where: str) -> None:
    if dt.hasobject:
        raise TensorFileError(f"{where}: object arrays are refused (they would need pickle)")
    if not _is_numeric(dt):
        hint = ""
        names = [n for n, t in INPUT_DTYPES.items() if t.itemsize == dt.itemsize]
        if dt.kind == "V" and dt.fields is None and names:
            hint = (f"; raw {dt.itemsize}-byte values (np.save of an ml_dtypes array stores them so): pass "
                    f"input_dtype= one of {', '.join(map(repr, names))} to reinterpret them")
        raise TensorFileError(f"{where}: dtype {dt} is not a real numeric type (complex, string, structured and "
                              f"datetime data are refused){hint}")


def _shape(value, name: str = "shape") -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    try:
        dims = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be a tuple of non-negative ints, got {value!r}") from None
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise ValueError(f"{name} must be a tuple of non-negative ints, got {value!r}")
    return tuple(int(d) for d in dims)


def _finish(arr: np.ndarray, where: str, dtype, shape, input_dtype) -> np.ndarray:
    """Check the stored dtype/shape against what was asked for, then apply the input_dtype view."""
    if dtype is not None:
        want = _resolve_dtype(dtype, "dtype")
        if arr.dtype != want:
            raise TensorFileError(f"{where}: stored dtype is {arr.dtype}, expected {want}")
    if shape is not None and arr.shape != _shape(shape):
        raise TensorFileError(f"{where}: stored shape is {arr.shape}, expected {_shape(shape)}")
    if input_dtype is None:
        _check_numeric(arr.dtype, where)
        return arr
    if input_dtype not in INPUT_DTYPES:
        raise ValueError(f"input_dtype must be one of {', '.join(map(repr, INPUT_DTYPES))} or None, "
                         f"got {input_dtype!r}")
    target = INPUT_DTYPES[input_dtype]
    src = arr.dtype
    if src == target:
        return arr
    bit_holder = src.kind in "ui" or (src.kind == "V" and src.fields is None and src not in _ML_DTYPES.values())
    if not bit_holder or src.itemsize != target.itemsize:
        raise TensorFileError(f"{where}: input_dtype={input_dtype!r} needs {target.itemsize}-byte integer bit "
                              f"patterns (e.g. uint{8 * target.itemsize}), but the stored dtype is {src}")
    if arr.ndim == 0:
        return arr.reshape(1).view(target).reshape(())
    return arr.view(target)


# --- spec ----------------------------------------------------------------------------------------------------
def parse_spec(spec) -> TensorSpec:
    """Split ``file[:key]`` into a :class:`TensorSpec`. A path that exists as given is never split."""
    text = os.fspath(spec)
    path, key = pathlib.Path(text), None
    if not path.is_file():
        head, sep, tail = text.rpartition(":")
        if sep and head and pathlib.Path(head).is_file():
            path, key = pathlib.Path(head), tail
            if not key:
                raise TensorFileError(f"{text}: empty key after ':'")
        elif path.exists():
            raise TensorFileError(f"{text}: not a regular file")
        else:
            raise TensorFileError(f"{text}: no such file")
    kind = _KINDS.get(path.suffix.lower())
    if kind is None:
        raise TensorFileError(f"{path}: unknown file type {path.suffix!r}; supported: {', '.join(_KINDS)}")
    if key is not None and kind in ("npy", "raw"):
        raise TensorFileError(f"{text}: a {kind} file holds one tensor and takes no ':key'")
    return TensorSpec(path, key, kind)


def _pick_key(keys: list[str], spec: TensorSpec) -> str:
    if spec.key is None:
        if len(keys) == 1:
            return keys[0]
        what = "no tensors" if not keys else f"{len(keys)} tensors"
        raise TensorFileError(f"{spec.path} holds {what}; name one as {spec.path}:KEY "
                              f"(available: {', '.join(keys) or 'none'})")
    if spec.key not in keys:
        raise TensorFileError(f"{spec.path}: no tensor {spec.key!r}; available: {', '.join(keys) or 'none'}")
    return spec.key


# --- .npy ----------------------------------------------------------------------------------------------------
def _npy_header(path: pathlib.Path) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, data offset) of a .npy file, with its size checked exactly."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(f)
            else:
                raise TensorFileError(f"{path}: unsupported .npy format version {version}")
            offset = f.tell()
    except TensorFileError:
        raise
    except (ValueError, EOFError, OSError, SyntaxError) as e:
        raise TensorFileError(f"{path}: not a readable .npy file ({e})") from None
    if dtype.hasobject:
        raise TensorFileError(f"{path}: object arrays are refused (they would need pickle)")
    expected = offset + math.prod(shape) * dtype.itemsize
    actual = path.stat().st_size
    if actual != expected:
        state = "truncated" if actual < expected else "has trailing bytes"
        raise TensorFileError(f"{path}: {state}: header says {shape} {dtype} = {expected} bytes in all, "
                              f"file has {actual}")
    return shape, fortran, dtype, offset


def _load_npy(path: pathlib.Path) -> np.ndarray:
    _npy_header(path)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise TensorFileError(f"{path}: {e}") from None


# --- .npz ----------------------------------------------------------------------------------------------------
_NPZ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError)


def _npz_keys(path: pathlib.Path) -> list[str]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return list(z.files)
    except _NPZ_ERRORS as e:
        raise TensorFileError(f"{path}: not a readable .npz file ({e})") from None


def _load_npz(spec: TensorSpec) -> np.ndarray:
    key = _pick_key(_npz_keys(spec.path), spec)
    try:
        with np.load(spec.path, allow_pickle=False) as z:
            arr = z[key]
    except _NPZ_ERRORS as e:
        if "allow_pickle" in str(e):
            raise TensorFileError(f"{spec.path}:{key}: object arrays are refused (they would need pickle)") from None
        raise TensorFileError(f"{spec.path}:{key}: corrupt or truncated member ({e})") from None
    if not isinstance(arr, np.ndarray):
        raise TensorFileError(f"{spec.path}:{key}: member is not an .npy array")
    return arr


# --- .safetensors --------------------------------------------------------------------------------------------
def _safetensors_index(path: pathlib.Path) -> tuple[int, dict[str, dict]]:
    """(data start, header entries) after the safetensors library has validated the file."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            lib = {k: (f.get_slice(k).get_dtype(), tuple(f.get_slice(k).get_shape())) for k in f.keys()}
    except Exception as e:  # the library raises SafetensorError (an Exception subclass) and OSError
        raise TensorFileError(f"{path}: not a readable .safetensors file ({e})") from None
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    for k, (dt, shape) in lib.items():
        entry = header[k]
        if entry["dtype"] != dt or tuple(entry["shape"]) != shape:
            raise TensorFileError(f"{path}:{k}: header disagrees with the safetensors library")
    return 8 + n, header


@dataclass(frozen=True)
class _Located:
    """Where one tensor's bytes lie in its file (.npy, .safetensors and raw files hold them contiguously)."""
    path: pathlib.Path
    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int
    fortran: bool = False

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows start:stop along axis 0, memory-mapped read-only (C order only; zero bytes: an empty array)."""
        shape = (stop - start, *self.shape[1:])
        row_bytes = math.prod(self.shape[1:]) * self.dtype.itemsize
        if math.prod(shape) == 0:
            return np.empty(shape, self.dtype)
        return np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset + start * row_bytes, shape=shape)

    def whole(self) -> np.ndarray:
        if math.prod(self.shape) == 0 or not self.shape:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(math.prod(self.shape) * self.dtype.itemsize)
            return np.frombuffer(data, dtype=self.dtype).reshape(self.shape).copy()
        return np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset, shape=self.shape,
                         order="F" if self.fortran else "C")


def _safetensors_located(spec: TensorSpec) -> _Located:
    start, header = _safetensors_index(spec.path)
    key = _pick_key(sorted(header), spec)
    entry = header[key]
    dt = _ST_DTYPES.get(entry["dtype"])
    if dt is None:
        raise TensorFileError(f"{spec.path}:{key}: safetensors dtype {entry['dtype']} is not supported "
                              f"(supported: {', '.join(_ST_DTYPES)})")
    shape = tuple(entry["shape"])
    begin, end = entry["data_offsets"]
    if end - begin != math.prod(shape) * dt.itemsize:
        raise TensorFileError(f"{spec.path}:{key}: {end - begin} data bytes for {shape} {entry['dtype']}")
    return _Located(spec.path, dt, shape, start + begin)


def _raw_located(spec: TensorSpec, dtype, shape) -> _Located:
    if dtype is None or shape is None:
        raise TensorFileError(f"{spec.path}: a raw file needs dtype= and shape= (it records neither)")
    dt, shape = _resolve_dtype(dtype, "dtype"), _shape(shape)
    _check_numeric(dt, str(spec.path))
    expected, actual = math.prod(shape) * dt.itemsize, spec.path.stat().st_size
    if actual != expected:
        raise TensorFileError(f"{spec.path}: shape {shape} of {dt} needs exactly {expected} bytes, "
                              f"file has {actual}")
    return _Located(spec.path, dt, shape, 0)


def _locate(s: TensorSpec, dtype, shape) -> _Located | None:
    """The byte location of a .npy / .safetensors / raw tensor (None for .npz, whose members are zipped)."""
    if s.kind == "raw":
        return _raw_located(s, dtype, shape)
    if s.kind == "npy":
        npy_shape, fortran, dt, offset = _npy_header(s.path)
        return _Located(s.path, dt, npy_shape, offset, fortran)
    if s.kind == "safetensors":
        return _safetensors_located(s)
    return None


def _where(s: TensorSpec) -> str:
    return str(s.path) + (f":{s.key}" if s.key else "")


# --- public readers ------------------------------------------------------------------------------------------
def read_tensor(spec, dtype=None, shape=None, input_dtype: str | None = None) -> np.ndarray:
    """Read one tensor fully into memory.

    ``spec``: ``file.npy``, ``file.npz[:key]``, ``file.safetensors[:key]`` or raw ``file.bin``. ``dtype`` and
    ``shape``: required for raw files (the element type and shape of the bytes); for the other kinds an
    assertion on what is stored. ``input_dtype``: ``"bfloat16"``, ``"float16"`` or ``"float32"`` reinterprets a
    same-width integer array as that type. Raises :class:`TensorFileError` on any mismatch or damage.
    """
    s = parse_spec(spec)
    if s.kind == "raw":
        return _finish(np.array(_raw_located(s, dtype, shape).whole()), _where(s), None, None, input_dtype)
    if s.kind == "npy":
        arr = _load_npy(s.path)
    elif s.kind == "npz":
        arr = _load_npz(s)
    else:
        arr = np.array(_safetensors_located(s).whole())
    return _finish(arr, _where(s), dtype, shape, input_dtype)


def open_tensor(spec, dtype=None, shape=None, input_dtype: str | None = None) -> np.ndarray:
    """Like :func:`read_tensor`, but .npy, raw and .safetensors tensors come back as read-only memory maps
    (nothing is read until used). .npz members live inside a zip and are read into memory.

    To stream a tensor larger than memory, pass the spec to :func:`iter_row_chunks` rather than slicing one
    big map: pages touched through a single map stay counted against the process until the map is dropped.
    """
    s = parse_spec(spec)
    loc = _locate(s, dtype, shape)
    if loc is None:
        return _finish(_load_npz(s), _where(s), dtype, shape, input_dtype)
    if s.kind == "raw":
        dtype = shape = None  # they described the bytes; nothing stored to assert against
    return _finish(loc.whole(), _where(s), dtype, shape, input_dtype)


def list_tensors(path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Key -> (shape, dtype name) of every tensor in a .npy, .npz or .safetensors file."""
    s = parse_spec(path)
    if s.key is not None:
        raise TensorFileError(f"{path}: list_tensors takes a file, not file:key")
    if s.kind == "raw":
        raise TensorFileError(f"{s.path}: a raw file records no tensors; read it with dtype= and shape=")
    if s.kind == "npy":
        shape, _, dt, _ = _npy_header(s.path)
        return {"": (shape, str(dt))}
    if s.kind == "npz":
        out = {}
        try:
            with zipfile.ZipFile(s.path) as zf:
                for k in _npz_keys(s.path):
                    with zf.open(k + ".npy") as m:
                        version = np.lib.format.read_magic(m)
                        read = {(1, 0): np.lib.format.read_array_header_1_0,
                                (2, 0): np.lib.format.read_array_header_2_0}[version]
                        shape, _, dt = read(m)
                    out[k] = (shape, str(dt))
        except (*_NPZ_ERRORS, SyntaxError) as e:
            raise TensorFileError(f"{s.path}: not a readable .npz file ({e})") from None
        return out
    _, header = _safetensors_index(s.path)
    return {k: (tuple(v["shape"]), v["dtype"]) for k, v in sorted(header.items())}


def iter_row_chunks(source, *, max_bytes: int = 64 << 20, row_multiple: int = 1, dtype=None, shape=None,
                    input_dtype: str | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, rows)`` pieces of a tensor along axis 0, each at most ``max_bytes`` (stored bytes).

    ``source``: a numpy array (pieces are views of it), or a tensor spec as for :func:`read_tensor` (with its
    ``dtype`` / ``shape`` / ``input_dtype``). For a .npy (C order), .safetensors or raw spec every piece is its own
    read-only memory map, so resident memory stays about ``max_bytes`` for any file size as long as the caller
    drops each piece; an .npz member or a Fortran-ordered .npy is read whole first.
    ``row_multiple``: every piece but the last holds a multiple of this many rows (a block or tile height); a
    piece never holds fewer, even if that exceeds ``max_bytes``.
    """
    for name, v in (("max_bytes", max_bytes), ("row_multiple", row_multiple)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if isinstance(source, np.ndarray):
        if (dtype, shape, input_dtype) != (None, None, None):
            raise ValueError("dtype, shape and input_dtype apply to a spec, not to an array")
        array, loc = source, None
    else:
        array = open_tensor(source, dtype, shape, input_dtype)
        loc = _locate(parse_spec(source), dtype, shape)
        if loc is None or loc.fortran:
            array, loc = np.array(array), None
    if array.ndim == 0:
        raise ValueError("a 0-d tensor has no rows to iterate")
    row_bytes = max(1, array.itemsize * math.prod(array.shape[1:]))
    step = max(row_multiple, (max_bytes // row_bytes) // row_multiple * row_multiple)
    for start in range(0, array.shape[0], step):
        stop = min(start + step, array.shape[0])
        if loc is None:
            yield start, array[start:stop]
        else:
            yield start, _finish(loc.rows(start, stop), str(loc.path), None, None, input_dtype)


# --- writers -------------------------------------------------------------------------------------------------
def _atomic_write(path: pathlib.Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: readers never see a partial file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _writable(name: str, a, *, ml_ok: bool) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"tensor {name!r} must be a numpy array, got {type(a).__name__}")
    if not _is_numeric(a.dtype):
        raise ValueError(f"tensor {name!r}: dtype {a.dtype} cannot be written (real numeric types only)")
    if not ml_ok and a.dtype in _ML_DTYPES.values():
        raise ValueError(f"tensor {name!r}: .npy/.npz cannot record {a.dtype}; write .view(np.uint"
                         f"{8 * a.itemsize}) and read back with input_dtype=..., or use .safetensors")
    return a if a.flags.c_contiguous else a.copy(order="C")  # (np.ascontiguousarray would make 0-d 1-d)


def write_tensors(path, tensors: Mapping[str, np.ndarray], *, metadata: Mapping[str, str] | None = None) -> None:
    """Write several named tensors to ``path``: ``.npz`` (uncompressed, np.savez) or ``.safetensors`` (with
    optional string ``metadata``), chosen by the suffix. The file appears atomically."""
    path = pathlib.Path(path)
    kind = _KINDS.get(path.suffix.lower())
    if kind not in ("npz", "safetensors"):
        raise ValueError(f"write_tensors writes .npz or .safetensors, got {path.name!r} (use write_tensor for "
                         f".npy and raw files)")
    if not isinstance(tensors, Mapping) or not tensors:
        raise ValueError("tensors must be a non-empty mapping of name -> numpy array")
    for k in tensors:
        if not isinstance(k, str) or not k:
            raise ValueError(f"tensor names must be non-empty strings, got {k!r}")
    if kind == "npz":
        if metadata:
            raise ValueError(".npz files cannot hold metadata; use .safetensors")
        arrays = {k: _writable(k, v, ml_ok=False) for k, v in tensors.items()}
        _atomic_write(path, lambda f, _tmp: np.savez(f, **arrays))
        return
    from safetensors.numpy import save_file

    st_types = set(_ST_DTYPES.values())
    arrays = {}
    for k, v in tensors.items():
        a = _writable(k, v, ml_ok=True)
        if a.dtype.newbyteorder("<") not in st_types:
            raise ValueError(f"tensor {k!r}: dtype {a.dtype} has no safetensors name")
        arrays[k] = a
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ValueError("safetensors metadata must map strings to strings")
    _atomic_write(path, lambda _f, tmp: save_file(arrays, tmp, metadata=dict(metadata) if metadata else None))


def write_tensor(path, array: np.ndarray) -> None:
    """Write one tensor: ``.npy`` (np.save; no ml_dtypes types) or raw ``.bin``/``.raw`` (C-order bytes in the
    array's own byte order, nothing else). The file appears atomically."""
    path = pathlib.Path(path)
    kind = _KINDS.get(path.suffix.lower())
    if kind == "npy":
        a = _writable("array", array, ml_ok=False)
        _atomic_write(path, lambda f, _tmp: np.save(f, a, allow_pickle=False))
    elif kind == "raw":
        a = _writable("array", array, ml_ok=True)
        _atomic_write(path, lambda f, _tmp: f.write(a.tobytes()))
    else:
        raise ValueError(f"write_tensor writes .npy or raw .bin/.raw, got {path.name!r} (use write_tensors for "
                         f".npz and .safetensors)")
