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
- ``.memh``: ``$readmemh`` files (cast and scale vectors; not for float64 inputs): one memory word per case,
  the input bits and the expected bits concatenated (a cast word carries the expected code of every rounding
  mode), fields separated by ``_`` (which ``$readmemh`` ignores), ``//`` comments.
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
    """One file, one word per case: the input bits, then the expected code under each mode (in options order)."""
    o = v.options
    x = v.arrays["x"]
    xd = x.dtype.itemsize * 2
    cd = _code_digits(o["format_bits"])
    xs = _hex(bits_of(x), xd)
    exp = [_hex(v.arrays[f"expected_{tok}"], cd) for tok in o["modes"]]
    fields = [f"input[{4 * xd - 1}:0]"] + [f"{tok}[{4 * cd - 1}:0]" for tok in o["modes"]]
    lines = _cast_header(v, version, "//")
    lines.append(f"// word = {{{', '.join(fields)}}} ({4 * xd + 4 * cd * len(exp)} bits), {x.size} words; modes: "
                 + ", ".join(f"{t}={m}" for t, m in o["mode_names"].items()))
    fam = v.arrays["family"]
    for k, name in enumerate(v.families):
        idx = np.flatnonzero(fam == k)
        lines.append(f"// family {name} ({idx.size})")
        lines += ["_".join([xs[i]] + [e[i] for e in exp]) for i in idx]
    return {"all": "\n".join(lines) + "\n"}


# --- scale and block vectors ------------------------------------------------------------------------------------
def _f32_hex(v) -> str:
    return format(int(np.float32(v).view(np.uint32)), "08X")


def _recipe_header(v: Vector, version: str, comment: str) -> list[str]:
    o = v.options
    lines = [f"{comment} fp4ref {version} conformance vector {v.name}",
             f"{comment} recipe {o['recipe']}: elements {o['elem']}, scales {o['scale_fmt']}, {o['layout']} blocks "
             f"{'x'.join(map(str, o['tile']))}, input {o['input_dtype']}",
             f"{comment} options: " + json.dumps(o["recipe_options"], sort_keys=True)]
    if o.get("global_amax") is not None:
        lines.append(f"{comment} global amax (an input): {o['global_amax']!r} = float32 {_f32_hex(o['global_amax'])}")
    return lines


def _scale_digits(o) -> int:
    return o["scale_bits"] // 4


def _scale_words(scales: np.ndarray, o) -> list[str]:
    if o["scale_fmt"] == "fp32":
        return _hex(scales.astype(np.float32).view(np.uint32), 8)
    return _hex(scales, 2)


def _scale_hex(v: Vector, version: str) -> str:
    o = v.options
    a = v.arrays["amax"]
    ad = a.dtype.itemsize * 2
    cd = _code_digits(o["elem_bits"])
    xs, ss, cs = _hex(bits_of(a), ad), _scale_words(v.arrays["scale"], o), _hex(v.arrays["code"], cd)
    opt = f"ga={_f32_hex(o['global_amax'])}" if o.get("global_amax") is not None else "-"
    lines = _recipe_header(v, version, "#")
    if "global_scale" in v.arrays:
        lines.append(f"# expected global scale ({o['global_scale_convention']}): float32 "
                     f"{_f32_hex(v.arrays['global_scale'][0])}")
    lines.append(f"# line: <amax bits, {ad} hex digits: a one-spike block, the spike first, the rest 0> <options> "
                 f"<expected scale, {_scale_digits(o)} hex digits> <expected code of the spike, {cd} hex digit"
                 f"{'s' if cd > 1 else ''}>")
    fam = v.arrays["family"]
    for k, name in enumerate(v.families):
        idx = np.flatnonzero(fam == k)
        lines.append(f"# {name} ({idx.size} cases)")
        lines += [f"{xs[i]} {opt} {ss[i]} {cs[i]}" for i in idx]
    return "\n".join(lines) + "\n"


def _scale_memh(v: Vector, version: str) -> dict[str, str]:
    o = v.options
    a = v.arrays["amax"]
    ad = a.dtype.itemsize * 2
    cd = _code_digits(o["elem_bits"])
    sd = _scale_digits(o)
    xs, ss, cs = _hex(bits_of(a), ad), _scale_words(v.arrays["scale"], o), _hex(v.arrays["code"], cd)
    lines = _recipe_header(v, version, "//")
    lines.append(f"// word = {{amax[{4 * ad - 1}:0], scale[{4 * sd - 1}:0], spike_code[{4 * cd - 1}:0]}}, "
                 f"{a.size} words")
    fam = v.arrays["family"]
    for k, name in enumerate(v.families):
        idx = np.flatnonzero(fam == k)
        lines.append(f"// family {name} ({idx.size})")
        lines += [f"{xs[i]}_{ss[i]}_{cs[i]}" for i in idx]
    return {"scale": "\n".join(lines) + "\n"}


def _block_rows(x: np.ndarray, codes: np.ndarray, o) -> list[tuple[list[int], list[int]]]:
    """(input bits, codes) of every block of a family tensor, blocks in row-major tile order, elements in
    row-major order inside a tile; blocks cut short by the end of a row (ragged) are shorter."""
    tr, tc = o["tile"]
    xb = bits_of(x)
    if o["layout"] == "flat":
        return [(list(xb.reshape(-1)[i:i + tc]), list(codes.reshape(-1)[i:i + tc]))
                for i in range(0, x.size, tc)]
    R, C = x.shape
    out = []
    for r0 in range(0, R, tr):
        for c0 in range(0, C, tc):
            out.append((list(xb[r0:r0 + tr, c0:c0 + tc].reshape(-1)), list(codes[r0:r0 + tr, c0:c0 + tc].reshape(-1))))
    return out


def _block_hex(v: Vector, version: str) -> str:
    o = v.options
    cd = _code_digits(o["elem_bits"])
    lines = _recipe_header(v, version, "#")
    lines.append("# line (one block): <input bits of the block's elements, row-major within a tile> <options: "
                 "family inputs such as pad=, ga=, or -> <expected scale> <expected codes, "
                 f"{cd} hex digit{'s' if cd > 1 else ''} each, concatenated>")
    for name in v.families:
        x = v.arrays[f"{name}.x"]
        codes = v.arrays[f"{name}.codes"]
        scales = v.arrays[f"{name}.scales"]
        if o["layout"] == "2d" and o["recipe_options"].get("tile_scales") == "rows":
            scales = scales[:: o["tile"][0], :]
        sw = _scale_words(scales.reshape(-1), o)
        ov = o.get("family_overrides", {}).get(name, {})
        opt = ",".join(f"ga={_f32_hex(val)}" if k == "global_amax" else f"{k}={val}"
                       for k, val in sorted(ov.items())) or "-"
        xd = x.dtype.itemsize * 2
        rows = _block_rows(x, codes, o)
        lines.append(f"# family {name}: tensor {'x'.join(map(str, x.shape))}, {len(rows)} blocks")
        if f"{name}.global_scale" in v.arrays:
            lines.append(f"# global scale ({o['global_scale_convention']}): float32 "
                         f"{_f32_hex(v.arrays[f'{name}.global_scale'][0])}")
        for (xb, cb), s in zip(rows, sw):
            lines.append(" ".join(format(int(b), f"0{xd}X") for b in xb) + f" {opt} {s} "
                         + "".join(format(int(c), f"0{cd}X") for c in cb))
    return "\n".join(lines) + "\n"


# --- stochastic rounding vectors ---------------------------------------------------------------------------------
def _sr_columns(v: Vector):
    o = v.options
    x = v.arrays["x"]
    xd, rd, cd = x.dtype.itemsize * 2, (o["rbits_width"] + 3) // 4, _code_digits(o["format_bits"])
    return (xd, rd, cd), _hex(bits_of(x), xd), _hex(v.arrays["rbits"], rd), _hex(v.arrays["expected"], cd)


def _sr_header(v: Vector, version: str, comment: str) -> list[str]:
    o = v.options
    pol = " ".join(f"{k}={v2}" for k, v2 in o["resolved_policies"].items())
    return [f"{comment} fp4ref {version} conformance vector {v.name}",
            f"{comment} element format {o['format']}, input {o['input_dtype']}, rounding {o['rounding']} with "
            f"{o['rbits_width']} random bits per element; policies: {pol}"]


def _sr_hex(v: Vector, version: str) -> str:
    (xd, rd, cd), xs, rs, es = _sr_columns(v)
    lines = _sr_header(v, version, "#")
    lines.append(f"# line: <input bits, {xd} hex digits> r=<random bits, {rd} hex digits> <expected code, {cd} hex "
                 f"digit{'s' if cd > 1 else ''}>")
    fam = v.arrays["family"]
    for k, name in enumerate(v.families):
        idx = np.flatnonzero(fam == k)
        lines.append(f"# {name} ({idx.size} cases)")
        lines += [f"{xs[i]} r={rs[i]} {es[i]}" for i in idx]
    return "\n".join(lines) + "\n"


def _sr_memh(v: Vector, version: str) -> dict[str, str]:
    (xd, rd, cd), xs, rs, es = _sr_columns(v)
    lines = _sr_header(v, version, "//")
    lines.append(f"// word = {{input[{4 * xd - 1}:0], rbits[{4 * rd - 1}:0], expected[{4 * cd - 1}:0]}}, "
                 f"{len(xs)} words")
    fam = v.arrays["family"]
    for k, name in enumerate(v.families):
        idx = np.flatnonzero(fam == k)
        lines.append(f"// family {name} ({idx.size})")
        lines += [f"{xs[i]}_{rs[i]}_{es[i]}" for i in idx]
    return {"sr": "\n".join(lines) + "\n"}


# --- packing vectors ---------------------------------------------------------------------------------------------
def _packing_hex(v: Vector, version: str) -> str:
    a = v.arrays
    lines = [f"# fp4ref {version} conformance vector {v.name}"]
    w = v.options["what"]
    if w == "fp4":
        lines.append("# line: <codes, one hex digit each, element 0 first> <nibble order> <packed bytes>")
        for fam, rows in (("fp4-pairs", [(a["fp4-pairs.codes"][i], a["fp4-pairs.packed_low"][i],
                                           a["fp4-pairs.packed_high"][i]) for i in range(256)]),
                          ("fp4-odd", [(a[f"fp4-odd.codes_{n}"], a[f"fp4-odd.packed_low_{n}"],
                                        a[f"fp4-odd.packed_high_{n}"]) for n in (1, 3, 7)])):
            lines.append(f"# {fam}" + (" (odd lengths: pad code 0)" if fam == "fp4-odd" else ""))
            for codes, lo, hi in rows:
                c = "".join(format(int(k), "X") for k in codes)
                lines.append(f"{c} low {''.join(format(int(b), '02X') for b in lo)}")
                lines.append(f"{c} high {''.join(format(int(b), '02X') for b in hi)}")
    elif w == "fp6":
        lines.append("# line: <codes, two hex digits each, '.'-separated, element 0 first> <layout> <packed bytes>")
        for fam, rows in (("fp6-groups", [(a["fp6-groups.codes"][i], a["fp6-groups.packed_lsb"][i],
                                            a["fp6-groups.packed_msb"][i]) for i in range(64)]),
                          ("fp6-odd", [(a[f"fp6-odd.codes_{n}"], a[f"fp6-odd.packed_lsb_{n}"],
                                        a[f"fp6-odd.packed_msb_{n}"]) for n in (1, 2, 3, 5, 7)])):
            lines.append(f"# {fam}" + (" (lengths not a multiple of 4: pad code 0)" if fam == "fp6-odd" else ""))
            for codes, lsb, msb in rows:
                c = ".".join(format(int(k), "02X") for k in codes)
                lines.append(f"{c} lsb-first {''.join(format(int(b), '02X') for b in lsb)}")
                lines.append(f"{c} msb-first {''.join(format(int(b), '02X') for b in msb)}")
    else:
        lines.append("# line: <row r, decimal> <column c, decimal> <scale byte> <matrix rows>x<cols> <expected byte "
                     "offset of scale [r, c] in the 128x4-swizzled buffer, hex>; bytes not listed are padding (0)")
        for key in [k for k in a if k.startswith("swizzle-shapes.scales_")]:
            shape = key.split("_", 1)[1]
            s, off = a[key], a[f"swizzle-shapes.offsets_{shape}"]
            lines.append(f"# {shape}: {a[f'swizzle-shapes.swizzled_{shape}'].size} bytes")
            for r in range(s.shape[0]):
                for c in range(s.shape[1]):
                    lines.append(f"{r} {c} {int(s[r, c]):02X} {shape} {int(off[r, c]):08X}")
    return "\n".join(lines) + "\n"


_HEX = {"cast": _cast_hex, "scale": _scale_hex, "block": _block_hex, "sr": _sr_hex, "packing": _packing_hex}
_MEMH = {"cast": _cast_memh, "scale": _scale_memh, "block": lambda v, version: {}, "sr": _sr_memh,
         "packing": lambda v, version: {}}


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
            out[f"{kind}/memh/{stem}.memh"] = text.encode()
    return out
