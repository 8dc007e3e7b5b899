"""The file formats of a vector, all written from the same :class:`~conformance.catalogue.Vector`.

- ``.npz``: one ``.npy`` entry per array plus ``meta`` (a 0-d bytes array holding the vector's JSON
  description, UTF-8: ``json.loads(z["meta"].item())``). Written here, not with ``np.savez``: the zip entries have a fixed date (1980-01-01), fixed
  permissions and no compression, and the ``.npy`` headers are built by hand (format 1.0), so the bytes depend
  on nothing but the arrays. ``np.load(path, allow_pickle=False)`` reads it. bfloat16 inputs are stored as
  their uint16 bit patterns (``.npy`` cannot name bfloat16); ``meta["x_storage"]`` says so.
- ``.safetensors``: the same arrays through the ``safetensors`` library (bfloat16 as ``BF16``), the JSON
  description in the header's ``__metadata__["fp4ref"]``.
- ``.hex``: text, one case per line, TestFloat style: input bits, options, expected output bits (formats in
  vectors/README.md and in each file's ``#`` header).
- ``.memh``: ``$readmemh`` files (not for float64 inputs), one per rounding mode (or recipe), one memory word per case: the input bits
  and the expected bits concatenated (fields separated by ``_``, which ``$readmemh`` ignores), ``//`` comments.
"""
from __future__ import annotations

import io
import json
import struct
import zipfile

import numpy as np
from safetensors.numpy import save as _st_save

from .catalogue import Vector
from .inputs import DTYPES, bits_of

__all__ = ["npz_bytes", "safetensors_bytes", "hex_text", "memh_texts", "files_of", "description"]

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _npy_bytes(a: np.ndarray) -> bytes:
    """An .npy (format 1.0) file: magic, header dict padded to a multiple of 64 bytes, C-order data."""
    a = a if a.flags.c_contiguous else a.copy(order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    descr = np.lib.format.dtype_to_descr(a.dtype)
    header = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, tuple(int(d) for d in a.shape))
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * (pad % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + a.tobytes()


def _storable(name: str, a: np.ndarray) -> np.ndarray:
    """.npy cannot name bfloat16: store its bit patterns."""
    if a.dtype == DTYPES["bf16"]:
        return bits_of(a)
    return a


def description(v: Vector, version: str) -> dict:
    """The JSON description written into every file of the vector."""
    d = {"vector": v.name, "kind": v.kind, "fp4ref_version": version, "options": v.options,
         "families": list(v.families), "legend": v.legend, "arrays": {k: {"dtype": _dtype_name(a), "shape": list(a.shape)}
                                                   for k, a in v.arrays.items()}}
    if any(a.dtype == DTYPES["bf16"] for a in v.arrays.values()):
        d["x_storage"] = "npz: bfloat16 arrays are stored as uint16 bit patterns; safetensors: BF16"
    return d


def _dtype_name(a: np.ndarray) -> str:
    return "bfloat16" if a.dtype == DTYPES["bf16"] else a.dtype.name


def _json(d) -> str:
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def npz_bytes(v: Vector, version: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        entries = [(k, _storable(k, a)) for k, a in v.arrays.items()]
        entries.append(("meta", np.array(_json(description(v, version)).encode())))
        for k, a in entries:
            info = zipfile.ZipInfo(f"{k}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            z.writestr(info, _npy_bytes(a))
    return buf.getvalue()


def safetensors_bytes(v: Vector, version: str) -> bytes:
    arrays = {k: np.ascontiguousarray(a) for k, a in v.arrays.items()}
    return _st_save(arrays, metadata={"fp4ref": _json(description(v, version))})


def _hex(bits: np.ndarray, digits: int) -> list[str]:
    return [format(int(b), f"0{digits}X") for b in bits]


def _code_digits(fmt_bits: int) -> int:
    return (fmt_bits + 3) // 4


# --- cast vectors ----------------------------------------------------------------------------------------------
def _cast_header(v: Vector, version: str, comment: str) -> list[str]:
    o = v.options
    pol = " ".join(f"{k}={v2}" for k, v2 in o["resolved_policies"].items())
    return [f"{comment} fp4ref {version} conformance vector {v.name}",
            f"{comment} element format {o['format']} ({o['format_bits']}-bit codes), input {o['input_dtype']}",
            f"{comment} policies: {pol}"]


def _cast_hex(v: Vector, version: str) -> str:
    o = v.options
    x = v.arrays["x"]
    xd = x.dtype.itemsize * 2
    cd = _code_digits(o["format_bits"])
    xs = _hex(bits_of(x), xd)
    lines = _cast_header(v, version, "#")
    lines += [f"# line: <input bits, {xd} hex digits> <rounding mode> <expected code, {cd} hex digit"
              f"{'s' if cd > 1 else ''}>",
              "# modes: " + ", ".join(f"{t}={m}" for t, m in o["mode_names"].items())]
    fam = v.arrays["family"]
    for tok in o["modes"]:
        exp = _hex(v.arrays[f"expected_{tok}"], cd)
        for k, name in enumerate(v.families):
            idx = np.flatnonzero(fam == k)
            lines.append(f"# {tok} {name} ({idx.size} cases)")
            lines += [f"{xs[i]} {tok} {exp[i]}" for i in idx]
    return "\n".join(lines) + "\n"


def _cast_memh(v: Vector, version: str) -> dict[str, str]:
    o = v.options
    x = v.arrays["x"]
    xd = x.dtype.itemsize * 2
    cd = _code_digits(o["format_bits"])
    xs = _hex(bits_of(x), xd)
    fam = v.arrays["family"]
    out = {}
    for tok in o["modes"]:
        exp = _hex(v.arrays[f"expected_{tok}"], cd)
        lines = _cast_header(v, version, "//")
        lines.append(f"// rounding {o['mode_names'][tok]}; word = {{input[{4 * xd - 1}:0], expected[{4 * cd - 1}:0]}}"
                     f", {x.size} words")
        for k, name in enumerate(v.families):
            idx = np.flatnonzero(fam == k)
            lines.append(f"// family {name} ({idx.size})")
            lines += [f"{xs[i]}_{exp[i]}" for i in idx]
        out[tok] = "\n".join(lines) + "\n"
    return out


_HEX = {"cast": _cast_hex}
_MEMH = {"cast": _cast_memh}


def hex_text(v: Vector, version: str) -> str:
    return _HEX[v.kind](v, version)


def memh_texts(v: Vector, version: str) -> dict[str, str]:
    return _MEMH[v.kind](v, version)


def files_of(v: Vector, version: str) -> dict[str, bytes]:
    """Relative path → bytes of every file of the vector."""
    kind, stem = v.name.split("/", 1)
    out = {f"{kind}/{stem}.npz": npz_bytes(v, version),
           f"{kind}/{stem}.safetensors": safetensors_bytes(v, version),
           f"{kind}/{stem}.hex": hex_text(v, version).encode()}
    if v.options.get("input_dtype") != "float64":  # no RTL takes float64 inputs
        for label, text in memh_texts(v, version).items():
            out[f"{kind}/memh/{stem}.{label}.memh"] = text.encode()
    return out
