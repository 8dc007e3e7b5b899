"""Packing and scale-layout families: FP4 nibble order, FP6 groups, and 128x4 swizzled scales (round trips).

``packing/fp4``: every pair of E2M1 codes packed into one byte under both nibble orders, and odd-length rows
completed with a pad code. ``packing/fp6``: groups of four FP6 codes (every code in every position) packed into
three bytes, LSB-first and MSB-first. ``packing/swizzle``: block-scale matrices of shapes that are whole 128x4
tiles and shapes that are not; the expected bytes are the swizzled buffer, and each scale's byte offset is also
listed, so a test bench can check its address generator and its round trip (un-swizzling the buffer gives the
matrix back). Expected bytes come from :mod:`fp4ref.packing`; tests/test_conformance.py re-derives them from
the byte arithmetic and the offset formula of docs/semantics.md D-16.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fp4ref import packing as P

from .catalogue import Family, Vector, check_family, register

__all__ = ["PackingTarget", "build_packing_vector", "PACKING_DECISION_DOC", "PACKING_DECISIONS"]

PACKING_DECISION_DOC = {
    "nibble-order": "two codes share a byte: which one sits in the low nibble",
    "pad-code": "the row's length is not a whole number of packing groups: a pad code completes the last group",
    "fp6-straddle": "a 6-bit code straddles a byte boundary",
    "tile-full": "the scale matrix is a whole number of 128x4 tiles",
    "tile-pad-rows": "the scale matrix's rows are not a multiple of 128 (padded rows in the last tile row)",
    "tile-pad-cols": "the scale matrix's columns are not a multiple of 4 (padded columns)",
    "multi-tile": "more than one tile: tiles are stored row-major, 512 bytes each",
}
PACKING_DECISIONS = tuple(PACKING_DECISION_DOC)
_PBIT = {n: 1 << i for i, n in enumerate(PACKING_DECISIONS)}

SWIZZLE_SHAPES = ((1, 1), (3, 2), (33, 5), (128, 4), (129, 4), (128, 9), (200, 7))


@dataclass(frozen=True)
class PackingTarget:
    what: str   # "fp4" | "fp6" | "swizzle"

    @property
    def name(self) -> str:
        return f"packing/{self.what}"


for _n, _d, _doc in (
        ("fp4-pairs", ("nibble-order",), "every pair of E2M1 codes (256 rows of two)"),
        ("fp4-odd", ("pad-code",), "rows of 1, 3 and 7 codes completed with pad code 0"),
        ("fp6-groups", ("fp6-straddle",), "groups of four FP6 codes, every code in every position"),
        ("fp6-odd", ("pad-code",), "rows of 1, 2, 3, 5 and 7 codes completed with pad code 0"),
        ("swizzle-shapes", ("tile-full", "tile-pad-rows", "tile-pad-cols", "multi-tile"),
         "scale matrices " + ", ".join(f"{r}x{c}" for r, c in SWIZZLE_SHAPES) + ", every scale distinct mod 256"),
):
    register(Family(kind="packing", name=_n, decisions=_d, doc=_doc, build=None))


def _pattern(n: int, seed: int) -> np.ndarray:
    return ((np.arange(n) * 73 + seed * 31 + 11) % 256).astype(np.uint8)


def build_packing_vector(t: PackingTarget, level: int) -> Vector:
    arrays, coverage, names = {}, {}, []

    def add(fam, reached, expected, targets, cases):
        check_family(t.name, fam, expected, reached, targets)
        names.append(fam)
        coverage[fam] = {"cases": int(cases), "targets": list(targets), "reached": reached}

    if t.what == "fp4":
        a, b = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
        pairs = np.stack([a.ravel(), b.ravel()], axis=1).astype(np.uint8)
        arrays["fp4-pairs.codes"] = pairs
        arrays["fp4-pairs.packed_low"] = P.pack_fp4(pairs, "low")
        arrays["fp4-pairs.packed_high"] = P.pack_fp4(pairs, "high")
        add("fp4-pairs", {"nibble-order": 256}, {"low": arrays["fp4-pairs.packed_low"]}, ("nibble-order",), 256)
        for n in (1, 3, 7):
            codes = (np.arange(n) * 5 + 3).astype(np.uint8) % 16
            arrays[f"fp4-odd.codes_{n}"] = codes
            arrays[f"fp4-odd.packed_low_{n}"] = P.pack_fp4(codes, "low", pad=0)
            arrays[f"fp4-odd.packed_high_{n}"] = P.pack_fp4(codes, "high", pad=0)
        add("fp4-odd", {"pad-code": 3}, {"low": np.concatenate([arrays[f"fp4-odd.packed_low_{n}"]
                                                                 for n in (1, 3, 7)])}, ("pad-code",), 3)
    elif t.what == "fp6":
        base = np.arange(64, dtype=np.uint8)
        groups = np.stack([np.roll(base, 17 * k) for k in range(4)], axis=1)  # every code in every position
        arrays["fp6-groups.codes"] = groups
        arrays["fp6-groups.packed_lsb"] = P.pack_fp6(groups, "lsb-first")
        arrays["fp6-groups.packed_msb"] = P.pack_fp6(groups, "msb-first")
        add("fp6-groups", {"fp6-straddle": 64}, {"lsb": arrays["fp6-groups.packed_lsb"]}, ("fp6-straddle",), 64)
        for n in (1, 2, 3, 5, 7):
            codes = (np.arange(n) * 23 + 5).astype(np.uint8) % 64
            arrays[f"fp6-odd.codes_{n}"] = codes
            arrays[f"fp6-odd.packed_lsb_{n}"] = P.pack_fp6(codes, "lsb-first", pad=0)
            arrays[f"fp6-odd.packed_msb_{n}"] = P.pack_fp6(codes, "msb-first", pad=0)
        add("fp6-odd", {"pad-code": 5}, {"lsb": np.concatenate([arrays[f"fp6-odd.packed_lsb_{n}"]
                                                                 for n in (1, 2, 3, 5, 7)])}, ("pad-code",), 5)
    elif t.what == "swizzle":
        reached = {}
        allbuf = []
        for i, (r, c) in enumerate(SWIZZLE_SHAPES):
            s = _pattern(r * c, i).reshape(r, c)
            buf = P.swizzle_scales(s)
            assert (P.unswizzle_scales(buf, r, c) == s).all()
            rr, cc = np.meshgrid(np.arange(r), np.arange(c), indexing="ij")
            arrays[f"swizzle-shapes.scales_{r}x{c}"] = s
            arrays[f"swizzle-shapes.swizzled_{r}x{c}"] = buf
            arrays[f"swizzle-shapes.offsets_{r}x{c}"] = P.swizzled_offset(rr, cc, c).astype(np.int32)
            for name, hit in (("tile-full", r % 128 == 0 and c % 4 == 0), ("tile-pad-rows", r % 128 != 0),
                              ("tile-pad-cols", c % 4 != 0), ("multi-tile", buf.size > 512)):
                if hit:
                    reached[name] = reached.get(name, 0) + 1
            allbuf.append(buf)
        add("swizzle-shapes", reached, {"buffers": np.concatenate(allbuf)},
            ("tile-full", "tile-pad-rows", "tile-pad-cols", "multi-tile"), sum(r * c for r, c in SWIZZLE_SHAPES))
    else:
        raise ValueError(f"unknown packing target {t.what!r}; valid: fp4, fp6, swizzle")
    options = {"what": t.what, "nibble_orders": list(P.NIBBLE_ORDERS), "fp6_layouts": list(P.FP6_LAYOUTS),
               "swizzle_pad_value": 0}
    legend = {"packed_low/high": "pack_fp4 nibble_order low (element 2k in bits 3:0) / high",
              "packed_lsb/msb": "pack_fp6 fp6_layout lsb-first / msb-first",
              "swizzled_RxC": "swizzle_scales of scales_RxC (128x4 tiles, pad 0)",
              "offsets_RxC": "byte offset of scale [r, c] in the swizzled buffer"}
    return Vector(name=t.name, kind="packing", options=options, families=tuple(names), arrays=arrays,
                  coverage=coverage, legend=legend)
