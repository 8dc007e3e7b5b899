"""Compare a dump (a kernel's codes, scales, global scale or dequantized values) with fp4ref, and say why each
mismatch happened.

Two entry points, one per kind of dump:

- :func:`check_cast`: element codes of ``fp4ref.encode(x, fmt, rounding, **policies)``.
- :func:`check_quantized`: codes, block scales and global scale of ``fp4ref.quantize.quantize(x, recipe)`` (or
  the vendor's dequantized values instead).

Both return a :class:`CheckReport`: counts, the first mismatches with their block context, and a diagnosis
that puts every mismatch in exactly one class of :data:`CLASSES`. A class is never guessed from how a number
looks. It is decided either by what the input is (a NaN input, a zero, an overflow) or by re-computing the
mismatching elements and blocks under the alternative semantics and finding the vendor's bytes there:

- ``nibble_order`` / ``scale_layout``: reading the codes with the other nibble order (or the scales in the
  other layout) matches clearly better over the whole tensor (at most half the mismatches); the mismatches
  that disappear that way get the class, the rest are classified under the better reading.
- ``global_scale_convention``: the vendor's global scale is the reciprocal of fp4ref's (or the other NVFP4
  convention's value), or quantizing the block with the reciprocal global scale reproduces it.
- ``nan_encoding`` (both sides NaN, other bits), ``nan_policy`` (the element or its block holds a NaN input),
  ``saturation_vs_nan`` (one side ±max, the other NaN/Inf; or an infinite input), ``signed_zero`` (both sides
  zero, other sign): decided by the input and the codes; the alternative policy that reproduces the vendor is
  named as the hint.
- ``scale_binade``: the block (its scale and every element) is reproduced by another power-of-two scale rule
  (FLOOR, CEIL, EVEN, RCEIL; exponent from bit fields or a float32 log2), or the vendor's scale is exactly
  twice or half fp4ref's.
- ``scale_floor``: the block is reproduced by another lower clamp of the block scale (None, 2^-6, the scale
  format's smallest positive value).
- ``accumulation_order``: the recipe has a Hadamard transform, and the block's transformed values are ones that
  a valid float32 accumulation order can round differently (:func:`fp4ref.hadamard.accumulation_tolerance`),
  or the other transform model reproduces the block.
- ``double_rounding``: quantizing from the input first rounded to float32/bfloat16/float16, or another float
  expression order of the scale or of the element (each step rounded into float32), reproduces it.
- ``tie_direction``: the element is an exact tie (nearest-away and nearest-zero give different codes) and the
  vendor's code is the other nearest mode's.
- ``sr_lane_mapping``: stochastic rounding with the other random-bit lane mapping reproduces it.
- ``other``: none of the above; a hint names any single option that reproduces it.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator

import ml_dtypes
import numpy as np

from . import blocks as _blocks
from . import cast as _cast
from . import formats as _formats
from . import packing as _packing
from . import rounding as _R
from .kernels.compare import count_differ

__all__ = ["CLASSES", "CAUSES", "Mismatch", "CheckReport", "check_cast", "check_quantized", "values_to_codes",
           "CheckInputError", "TensorRef"]

CLASSES = ("nibble_order", "scale_layout", "global_scale_convention", "nan_encoding", "nan_policy",
           "saturation_vs_nan", "signed_zero", "scale_binade", "scale_floor", "accumulation_order",
           "double_rounding", "tie_direction", "sr_lane_mapping", "other")

CAUSES = {
    "nibble_order": "packed FP4 nibbles in the other order: element 2k sits in the other half of byte k",
    "scale_layout": "block scales stored in the other layout (linear row-major vs 128x4 swizzled)",
    "global_scale_convention": "the tensor scale is stored or applied inverted (encode factor vs decode factor)",
    "nan_encoding": "both sides are NaN, with other bits (NaN sign or canonical NaN code)",
    "nan_policy": "a NaN input (or a NaN in its block) is encoded under another NaN policy",
    "saturation_vs_nan": "overflow or an infinite input: one side saturates to ±max, the other gives NaN/Inf",
    "signed_zero": "zero with the other sign (-0.0 kept vs flushed to +0)",
    "scale_binade": "block scale one binade off: another scale rule (FLOOR/CEIL/EVEN/RCEIL) or a float32 log2 "
                    "exponent",
    "scale_floor": "block scale clamped at another floor (E4M3 subnormal/zero scales allowed vs 2^-6)",
    "accumulation_order": "Hadamard-transformed values that a valid float32 accumulation order rounds "
                          "differently",
    "double_rounding": "rounded twice: the input or an intermediate (scale or scaled element) was rounded to "
                       "float32/bfloat16 before the final rounding",
    "tie_direction": "an exact tie rounded the other way (nearest-even vs nearest-away vs nearest-zero)",
    "sr_lane_mapping": "stochastic rounding with the random bits assigned to other lanes",
    "other": "not explained by any of the named alternatives",
}

_NEAREST = ("nearest-even", "nearest-away", "nearest-zero")
_BF16 = np.dtype(ml_dtypes.bfloat16)
# Inputs first rounded to float32: a float64 cast through float32, as ml_dtypes does (semantics.md D-18). Narrower
# types are left out: rounding to bfloat16 or float16 collapses inputs next to a tie onto it, so it "reproduces"
# other rounding modes and tie-break biases by accident.
_NARROWER = {np.dtype(np.float64): (np.dtype(np.float32),)}
INVALID = 0xFFFF  # a vendor value that is no code of the format (values_to_codes)
# What an alternative that cannot run raises: an option combination the pipeline refuses (ValueError/TypeError,
# CastError), or an arithmetic error inside a kernel, which Numba re-raises as SystemError.
_RUN_ERRORS = (ValueError, TypeError, ArithmeticError, SystemError, _cast.CastError)


class CheckInputError(ValueError):
    """The dump cannot be compared as described (shapes, layouts, options): a usage error, never a mismatch."""


# --- results ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mismatch:
    """One mismatching item.

    kind: "code" | "value" | "scale" | "global_scale". index: position in x (code/value), in the linear scale
    array (scale), () for the global scale. input: the input element, or the block's amax |x| (scale), or None.
    expected / got: {"code": int | None, "bits": str | None, "value": float | None}. block: for code/value
    mismatches of block formats {"index", "amax", "expected_scale", "got_scale"} (scales as expected/got).
    cls: its class; hint: the alternative option that reproduces it, if one does.
    """
    kind: str
    index: tuple
    input: float | None
    input_hex: str | None
    expected: dict
    got: dict
    block: dict | None
    cls: str
    hint: str | None

    def to_dict(self) -> dict:
        return {"kind": self.kind, "index": list(self.index), "input": _jsonable(self.input),
                "input_hex": self.input_hex, "expected": _jsonable(self.expected), "got": _jsonable(self.got),
                "block": _jsonable(self.block), "class": self.cls, "hint": self.hint}


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(w) for k, w in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(w) for w in v]
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else repr(f)
    if isinstance(v, np.integer):
        return int(v)
    return v


@dataclass(frozen=True)
class CheckReport:
    """The outcome of a check. ``mismatches`` counts every mismatching item (codes or values, scales, the
    global scale); ``classes`` puts each of them in one class (the counts add up to ``mismatches``)."""
    what: str
    options: dict
    compared: int
    scales_compared: int
    code_mismatches: int
    scale_mismatches: int
    global_scale: dict | None
    classes: dict
    hints: dict
    examples: tuple
    notes: tuple = ()
    values: bool = False

    @property
    def mismatches(self) -> int:
        gs = int(bool(self.global_scale) and not self.global_scale["match"])
        return self.code_mismatches + self.scale_mismatches + gs

    @property
    def match(self) -> bool:
        return self.mismatches == 0

    def to_dict(self) -> dict:
        """The JSON report: ``match``, ``compared``, ``mismatches``, ``classes`` and the details."""
        return {"match": self.match, "compared": self.compared, "mismatches": self.mismatches,
                "classes": dict(self.classes), "what": self.what, "options": _jsonable(self.options),
                "scales_compared": self.scales_compared,
                "code_mismatches" if not self.values else "value_mismatches": self.code_mismatches,
                "scale_mismatches": self.scale_mismatches, "global_scale": _jsonable(self.global_scale),
                "causes": {c: CAUSES[c] for c in self.classes},
                "hints": {c: [{"alternative": a, "reproduces": n, "of": m} for a, n, m in h]
                          for c, h in self.hints.items()},
                "examples": [m.to_dict() for m in self.examples], "notes": list(self.notes)}

    def format(self, limit: int | None = None) -> str:
        """The text report: summary, the first ``limit`` mismatches (default: all kept), diagnosis."""
        unit = "values" if self.values else "codes"
        lines = [f"fp4ref check: {self.what}",
                 f"compared: {self.compared} elements"
                 + (f", {self.scales_compared} block scales" if self.scales_compared else "")
                 + (", 1 global scale" if self.global_scale else ""),
                 f"mismatching: {self.code_mismatches} {unit}"
                 + (f", {self.scale_mismatches} scales" if self.scales_compared else "")
                 + (f", global scale {'ok' if self.global_scale['match'] else 'differs'}" if self.global_scale
                    else ""),
                 f"result: {'PASS (bit-exact)' if self.match else 'FAIL'}"]
        if self.global_scale and not self.global_scale["match"]:
            g = self.global_scale
            lines.append(f"global scale: expected {g['expected']!r}, got {g['got']!r} ({g['class']})")
        ex = list(self.examples)
        if limit is not None:
            ex = [m for m in ex if m.kind != "scale"][:limit] + [m for m in ex if m.kind == "scale"][:limit]
        if ex:
            n_s = sum(m.kind == "scale" for m in ex)
            head = f"first {len(ex) - n_s} {'value' if self.values else 'code'} mismatches" if len(ex) > n_s else ""
            head += (" and " if head and n_s else "") + (f"first {n_s} scale mismatches" if n_s else "")
            lines += ["", head + ":"]
            lines += ["  " + _format_example(m) for m in ex]
        if self.classes:
            lines += ["", "diagnosis:"]
            w = max(len(c) for c in self.classes)
            for c, n in sorted(self.classes.items(), key=lambda kv: CLASSES.index(kv[0])):
                lines.append(f"  {c:<{w}}  {n:>8}  {CAUSES[c]}")
                for alt, k, m in self.hints.get(c, [])[:3]:
                    lines.append(f"  {'':<{w}}  {'':>8}    reproduced by {alt} ({k} of {m}"
                                 + (" examined)" if m != n else ")"))
        for note in self.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _side(d: dict) -> str:
    if d.get("code") is None and d.get("value") is None:
        return "-"
    parts = []
    if d.get("code") is not None:
        parts.append(d["code_hex"] + (f" {d['bits']}" if d.get("bits") else ""))
    if d.get("value") is not None or "code" not in d or d.get("code") is not None:
        parts.append(f"({d['value']!r})" if d.get("value") is not None else "(not a code of the format)")
    return " ".join(parts)


def _format_example(m: Mismatch) -> str:
    idx = "[" + ", ".join(map(str, m.index)) + "]"
    head = f"{m.kind:<6} {idx:<14}"
    inp = ""
    if m.input is not None:
        what = "amax" if m.kind == "scale" else "input"
        inp = f" {what} {m.input!r}" + (f" [{m.input_hex}]" if m.input_hex else "")
    s = f"{head}{inp}  expected {_side(m.expected)}  got {_side(m.got)}"
    if m.block:
        b = m.block
        s += (f"  | block [{', '.join(map(str, b['index']))}] amax {b['amax']!r} scale expected "
              f"{_side(b['expected_scale'])} got {_side(b['got_scale'])}")
    s += f"  -> {m.cls}" + (f" ({m.hint})" if m.hint else "")
    return s


# --- small helpers ---------------------------------------------------------------------------------------------
def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Observations equal: integer codes as integers; float values bit-for-bit up to the NaN payload."""
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        a = np.asarray(a, np.float64)
        b = np.asarray(b, np.float64)
        with np.errstate(invalid="ignore"):
            return ((a == b) & (np.signbit(a) == np.signbit(b))) | (np.isnan(a) & np.isnan(b))
    return a == b


def _differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """~_same(a, b) (one pass for integer codes)."""
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        return ~_same(a, b)
    return a != b


def _hex_bits(v, dtype: np.dtype) -> str:
    dtype = np.dtype(dtype)
    u = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[dtype.itemsize]
    return f"0x{int(np.asarray(v, dtype).reshape(1).view(u)[0]):0{2 * dtype.itemsize}X}"


def _code_side(fmt, code) -> dict:
    if code is None:
        return {"code": None, "bits": None, "value": None}
    code = int(code)
    width = (fmt.bits + 3) // 4
    if 0 <= code < fmt.n_codes:
        return {"code": code, "code_hex": f"0x{code:0{width}X}", "bits": f"{code:0{fmt.bits}b}",
                "value": float(fmt.values[code])}
    shown = "invalid" if code == INVALID else f"0x{code:0{width}X}"
    return {"code": code, "code_hex": shown, "bits": None, "value": None}


def _value_side(v) -> dict:
    return {"code": None, "bits": None, "value": float(v)}


def _kinds(fmt, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(is NaN or Inf or not a code, is zero, is ±max, sign bit) of integer codes of fmt."""
    c = np.asarray(codes, np.int64)
    valid = (c >= 0) & (c < fmt.n_codes)
    vals = np.where(valid, fmt.values[np.where(valid, c, 0)], np.nan)
    special = ~np.isfinite(vals)
    zero = vals == 0
    with np.errstate(invalid="ignore"):
        top = (np.abs(vals) == fmt.max) | (np.abs(vals) == fmt.max_neg)
    sign = np.where(valid, (c & fmt.sign_bit) != 0, False) if fmt.signed else np.zeros(c.shape, bool)
    return special, zero, top, sign


def values_to_codes(values, fmt) -> np.ndarray:
    """Exact codes (uint16) of values in ``fmt``: -0.0 is the negative-zero code, NaN the format's NaN with the
    value's sign, ±Inf the Inf codes; a value that is no code of the format (off the grid, NaN/Inf without
    such codes) is :data:`INVALID` (0xFFFF)."""
    f = _formats.get(fmt)
    v = np.asarray(values, np.float64)
    table = np.asarray(f.values[:f.n_codes], np.float64)
    codes = np.arange(f.n_codes)
    keep = np.isfinite(table)
    tbits = table[keep].view(np.uint64)
    order = np.argsort(tbits)
    tbits, tcodes = tbits[order], codes[keep][order]
    vb = v.reshape(-1).view(np.uint64)
    pos = np.clip(np.searchsorted(tbits, vb), 0, max(0, tbits.size - 1))
    hit = tbits[pos] == vb if tbits.size else np.zeros(vb.shape, bool)
    out = np.where(hit, tcodes[pos], INVALID).astype(np.uint16)
    flat = v.reshape(-1)
    neg = np.signbit(flat)
    if f.has_nan:
        nan = np.isnan(flat)
        out[nan] = np.where(neg[nan] & f.signed, f.nan_code | f.sign_bit, f.nan_code)
    if f.has_inf:
        inf = np.isinf(flat)
        out[inf] = np.where(neg[inf] & f.signed, f.inf_code | f.sign_bit, f.inf_code)
    return out.reshape(v.shape)


# --- accumulation of per-chunk results -------------------------------------------------------------------------
@dataclass
class _Part:
    """What one chunk contributes (kept per chunk so that a chunk can be re-classified)."""
    compared: int = 0
    scales_compared: int = 0
    code_mm: int = 0
    scale_mm: int = 0
    code_mm_alt: int = 0    # mismatches under the other nibble order (None-equivalent when not applicable)
    scale_mm_alt: int = 0
    classes: Counter = field(default_factory=Counter)
    hints: dict = field(default_factory=dict)       # class -> Counter(alternative label -> reproduced)
    examined: Counter = field(default_factory=Counter)  # class -> mismatches the hint alternatives examined
    examples: list = field(default_factory=list)
    choice: tuple = (False, False)


def _add_hint(part: _Part, cls: str, hint: str | None, n: int = 1):
    if hint and n:
        part.hints.setdefault(cls, Counter())[hint] += n


# --- alternatives ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Alt:
    """One alternative semantics: options that replace the checked ones, and what reproducing means.

    cls: the class a mismatch reproduced by it gets, or None for a hint only (the class then comes from the
    input). level: "block" (the whole block, scale and elements, must be reproduced and its scale must
    mismatch), "element" (the element, with its block's scale equal to the vendor's), or "both".
    family: which observation class it can serve as the hint for. tie: only exact ties count.
    """
    label: str
    cls: str | None
    over: dict
    level: str = "element"
    family: str | None = None
    cast: object = None
    tie: bool = False


def _fmt_opt(k, v) -> str:
    if isinstance(v, float) and v == v and v != 0 and math.frexp(v)[0] == 0.5:
        e = math.frexp(v)[1] - 1
        return f"{k}=2^{e}"
    return f"{k}={v}"


def _label(over: dict, cast=None) -> str:
    parts = [_fmt_opt(k, v) for k, v in over.items()]
    if cast is not None:
        parts.insert(0, f"input rounded to {np.dtype(cast).name} first")
    return ", ".join(parts)


# --- element casts ---------------------------------------------------------------------------------------------

def _cast_alternatives(fmt, opts: dict, x_dtype) -> list[_Alt]:
    alts: list[_Alt] = []
    rounding = opts["rounding"]
    stochastic = isinstance(rounding, str) and rounding.lower().startswith("stochastic")
    own = None if stochastic else _R.mode_name(rounding)
    if own in _NEAREST:
        for r in _NEAREST:
            if r != own:
                alts.append(_Alt(f"rounding={r}", "tie_direction", {"rounding": r}, tie=True))
    for t in _NARROWER.get(np.dtype(x_dtype), ()):
        alts.append(_Alt(_label({}, t), "double_rounding", {}, cast=t))
    if stochastic and opts.get("lanes") is not None:
        from . import stochastic as _SR
        own = _SR.lane_map(opts["lanes"]).name
        for name, m in _SR.LANE_MAPS.items():
            if name != own and m.group == _SR.lane_map(own).group:
                alts.append(_Alt(f"lanes={name}", "sr_lane_mapping", {"lanes": name}))
    # hints for the classes that the input decides
    pols = _R.NAN_POLICIES_WITH_NAN if fmt.has_nan else _R.NAN_POLICIES_NO_NAN
    own_nan = _R.nan_name(opts.get("nan"), fmt)
    for p in pols:
        if p not in (own_nan, "raise"):
            alts.append(_Alt(f"nan={p}", None, {"nan": p}, family="nan"))
    own_ovf = _R.overflow_name(opts.get("overflow", "saturate"), fmt)
    for o in ("saturate", "nan", "inf"):
        if o != own_ovf and ((o == "nan" and fmt.has_nan) or (o == "inf" and fmt.has_inf) or o == "saturate"):
            alts.append(_Alt(f"overflow={o}", None, {"overflow": o}, family="saturation_vs_nan"))
    nz = _R.neg_zero_name(opts.get("neg_zero", "keep"))
    alts.append(_Alt(f"neg_zero={'positive' if nz == 'keep' else 'keep'}", None,
                     {"neg_zero": "positive" if nz == "keep" else "keep"}, family="signed_zero"))
    if not fmt.has_zero:
        for z in ("nan", "min"):
            if z != _R.zero_name(opts.get("zero"), fmt) and (z != "nan" or fmt.has_nan):
                alts.append(_Alt(f"zero={z}", None, {"zero": z}, family="other"))
        for v in _R.E8M0_SUBNORMAL:
            if v != opts.get("e8m0_subnormal", "round"):
                alts.append(_Alt(f"e8m0_subnormal={v}", None, {"e8m0_subnormal": v}, family="other"))
    if not fmt.signed:
        own_neg = _R.negative_name(opts.get("negative"), fmt)
        for v in _R.NEGATIVE:
            if v not in (own_neg, "raise"):
                alts.append(_Alt(f"negative={v}", None, {"negative": v}, family="other"))
    if not stochastic:
        for r in _R.MODES:
            if r != own and r not in _NEAREST:
                alts.append(_Alt(f"rounding={r}", None, {"rounding": r}, family="other"))
    return alts


_CID = {c: i for i, c in enumerate(CLASSES)}
_NONE = -1  # no class (yet)


def _observe_classes(fmt, x, exp, got, values_mode=False) -> np.ndarray:
    """Class ids (int8) that the input and the two sides decide, _NONE where they decide none; 1-D arrays."""
    xf = np.asarray(x, np.float64)
    if values_mode:
        e = np.asarray(exp, np.float64)
        g = np.asarray(got, np.float64)
        enan, gnan = np.isnan(e), np.isnan(g)
        sat = np.isfinite(e) != np.isfinite(g)
        ez, gz = e == 0, g == 0
    else:
        es, ez, et, _ = _kinds(fmt, exp)
        gs, gz, gt, _ = _kinds(fmt, got)
        enan = es & ~_is_inf_code(fmt, exp)
        gnan = gs & ~_is_inf_code(fmt, got)
        sat = (es & gt) | (gs & et)
    out = np.full(np.shape(exp), _NONE, dtype=np.int8)
    out[enan & gnan] = _CID["nan_encoding"]
    out[(out == _NONE) & np.isnan(xf)] = _CID["nan_policy"]
    out[(out == _NONE) & (sat | np.isinf(xf))] = _CID["saturation_vs_nan"]
    out[(out == _NONE) & ez & gz] = _CID["signed_zero"]
    return out


def _family_ids(alt) -> tuple:
    """The class ids whose mismatches an alternative may explain: unclassified ones (a class alternative or an
    'other' hint), or those of its family (a hint for an input-decided class)."""
    if alt.cls is not None or alt.family == "other":
        return (_NONE,)
    if alt.family == "nan":
        return (_CID["nan_policy"], _CID["nan_encoding"])
    return (_CID[alt.family],)


def _in(a: np.ndarray, ids: tuple) -> np.ndarray:
    out = a == ids[0]
    for i in ids[1:]:
        out |= a == i
    return out


def _is_inf_code(fmt, codes) -> np.ndarray:
    c = np.asarray(codes, np.int64)
    valid = (c >= 0) & (c < fmt.n_codes)
    return valid & np.isinf(fmt.values[np.where(valid, c, 0)])


def _cast_encode(x, fmt, opts, rbits=None, over=None, cast=None):
    """fp4ref.encode with the check's options and overrides. For stochastic rounding ``rbits`` is either the
    vendor's rbits as given (with opts' lanes) or a dict {lane map name or None: per-element integers}."""
    o = dict(opts)
    if over:
        o.update(over)
    if cast is not None:
        x = np.asarray(x).astype(cast)
    rounding = o.pop("rounding")
    stochastic = isinstance(rounding, str) and rounding.lower().startswith("stochastic")
    kw = {k: v for k, v in o.items() if v is not None and (stochastic or k not in ("rbits_width", "lanes"))}
    if stochastic:
        if isinstance(rbits, dict):
            lanes = kw.pop("lanes", None)
            kw["rbits"] = rbits[lanes]
            if lanes is not None:
                from . import stochastic as _SR
                kw["rbits_width"] = _SR.lane_map(lanes).width
        else:
            kw["rbits"] = rbits
    return _cast.encode(x, fmt, rounding, **kw)


def _element_rbits(rb, opts, alts, shape) -> dict | None:
    """{lanes: per-element random integers (x's shape)} for the own lane map and every alternative's."""
    if rb is None:
        return None
    names = {opts.get("lanes")} | {a.over["lanes"] for a in alts if "lanes" in a.over}
    if opts.get("lanes") is None:
        return {None: np.asarray(rb).reshape(shape)}
    from . import stochastic as _SR
    return {n: _SR.unpack_words(rb, n).reshape(shape) for n in names}


def _pick(rbits: dict | None, sel) -> dict | None:
    return None if rbits is None else {k: v.reshape(-1)[sel] for k, v in rbits.items()}


_HINT_SAMPLE = 4096  # mismatches (casts) or units (blocks) per chunk that the hint-only alternatives examine


def _classify_cast(part: _Part, fmt, opts, alts, x, exp, got, rbits, idx_of, max_examples, values_mode):
    """Classify the mismatching elements x/exp/got (1-D arrays of the mismatches)."""
    n = x.size
    cls = _observe_classes(fmt, x, exp, got, values_mode)
    first = np.full(n, -1, np.int16)      # the first alternative that reproduces each mismatch (examples)
    labels = [a.label for a in alts]

    def attempt(alt, sel):
        rb = _pick(rbits, sel)
        try:
            a = _cast_encode(x[sel], fmt, opts, rb, alt.over, alt.cast)
        except _RUN_ERRORS:
            return None
        ok = _same(_decode_for(fmt, a) if values_mode else a, got[sel])
        if alt.tie and ok.any():
            other = "nearest-zero" if alt.over["rounding"] == "nearest-away" else "nearest-away"
            ok &= a != _cast_encode(x[sel], fmt, opts, rb, {"rounding": other})
        return ok

    # An overflow of a finite input that a class alternative reproduces (a tie at the overflow boundary, an
    # input rounded to float32 first) is explained more precisely by that alternative.
    finite_sat = (cls == _CID["saturation_vs_nan"]) & np.isfinite(np.asarray(x, np.float64))
    for ai, alt in enumerate(alts):          # class alternatives: the first that reproduces decides
        if alt.cls is None:
            continue
        sel = np.nonzero((cls == _NONE) | (finite_sat & (first < 0)))[0]
        ok = attempt(alt, sel) if sel.size else None
        if ok is not None and ok.any():
            cls[sel[ok]] = _CID[alt.cls]
            first[sel[ok]] = ai
            _add_hint(part, alt.cls, alt.label, int(ok.sum()))
    cls[cls == _NONE] = _CID["other"]
    part.classes.update(Counter(CLASSES[c] for c in cls.tolist()))
    sampled = {}
    for ai, alt in enumerate(alts):          # hint alternatives: every one that reproduces is counted
        if alt.cls is not None:
            continue
        ids = (_CID["other"],) if alt.family == "other" else _family_ids(alt)
        sel = sampled.get(ids)
        if sel is None:
            sel = sampled[ids] = np.nonzero(_in(cls, ids))[0][:_HINT_SAMPLE]
            part.examined.update(Counter(CLASSES[c] for c in cls[sel].tolist()))
        ok = attempt(alt, sel) if sel.size else None
        if ok is None or not ok.any():
            continue
        hit = sel[ok]
        first[hit[first[hit] < 0]] = ai
        for c, k in Counter(cls[hit].tolist()).items():
            _add_hint(part, CLASSES[c], alt.label, k)
    for i in range(min(n, max(0, max_examples - len(part.examples)))):
        g, e = got[i], exp[i]
        part.examples.append(Mismatch(
            kind="value" if values_mode else "code", index=idx_of(i), input=float(x[i]),
            input_hex=_hex_bits(x[i], x.dtype),
            expected=_value_side(e) if values_mode else _code_side(fmt, e),
            got=_value_side(g) if values_mode else _code_side(fmt, g), block=None, cls=CLASSES[cls[i]],
            hint=labels[first[i]] if first[i] >= 0 else None))
    return cls


def _decode_for(fmt, codes):
    return np.asarray(_cast.decode(codes, fmt, np.float64))


def _swap_pairs(c: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(c.reshape(*c.shape[:-1], -1, 2)[..., ::-1]).reshape(c.shape)


def _unpacked_codes(codes: np.ndarray, fmt, shape, nibble_order, packed) -> np.ndarray:
    """The element codes of a chunk, unpacked along the last axis when packed."""
    if packed:
        return _packing.unpack(np.asarray(codes), fmt, shape[-1], nibble_order=nibble_order)
    return np.asarray(codes)


def _detect_packed(fmt, x_shape, codes_shape, packed) -> bool:
    """Whether the codes are packed (auto from the shapes when ``packed`` is None)."""
    x_shape, codes_shape = tuple(x_shape), tuple(codes_shape)
    if packed is None:
        if codes_shape == x_shape:
            return False
        if fmt.bits in (4, 6) and len(x_shape) >= 1 and codes_shape == (*x_shape[:-1],
                                                                       _packing.packed_length(x_shape[-1], fmt)):
            return True
        raise CheckInputError(f"codes shape {codes_shape} fits neither x's shape {x_shape} (unpacked) nor "
                              f"{(*x_shape[:-1], _packing.packed_length(x_shape[-1], fmt)) if x_shape else ()} "
                              f"({fmt.name} packed along the last axis)")
    if packed:
        if fmt.bits not in (4, 6):
            raise CheckInputError(f"packed codes are defined for 4- and 6-bit formats, not {fmt.name}")
        want = (*x_shape[:-1], _packing.packed_length(x_shape[-1], fmt))
        if codes_shape != want:
            raise CheckInputError(f"packed codes must have shape {want} for x of shape {x_shape}, got {codes_shape}")
        return True
    if codes_shape != x_shape:
        raise CheckInputError(f"codes shape {codes_shape} differs from x's shape {x_shape}")
    return False


# --- row chunks of several aligned tensors ---------------------------------------------------------------------
@dataclass(frozen=True)
class TensorRef:
    """A tensor in a file (an :mod:`fp4ref.io` spec and its read options). The checks read it in row chunks,
    each its own memory map, so resident memory stays bounded for any file size."""
    spec: str
    dtype: object = None
    shape: object = None
    input_dtype: str | None = None

    def open(self) -> np.ndarray:
        from . import io as _io
        return _io.open_tensor(self.spec, self.dtype, self.shape, self.input_dtype)


def _arr(a):
    """An array (a memory map for a TensorRef) for shapes, dtypes and whole-tensor use."""
    if a is None or isinstance(a, np.ndarray):
        return a
    if isinstance(a, TensorRef):
        return a.open()
    return np.asarray(a)


class _Tensors:
    """Aligned row chunks (along axis 0) of x and of the tensors that share its rows: numpy arrays (pieces are
    views) or TensorRef's (each piece its own bounded memory map, :func:`fp4ref.io.iter_row_chunks`)."""

    def __init__(self, members: dict, rows: int):
        self.members = {k: v for k, v in members.items() if v is not None}
        self.rows = rows

    def chunks(self, step: int) -> Iterator[tuple[int, dict]]:
        from . import io as _io
        iters = {}
        for name, m in self.members.items():
            if isinstance(m, TensorRef):
                a = m.open()
                row_bytes = max(1, a.dtype.itemsize * int(np.prod(a.shape[1:])))
                del a
                kw = {"input_dtype": m.input_dtype}
                if _io.parse_spec(m.spec).kind == "raw":
                    kw.update(dtype=m.dtype, shape=m.shape)
                iters[name] = _io.iter_row_chunks(m.spec, max_bytes=step * row_bytes, row_multiple=step, **kw)
            else:
                iters[name] = _array_rows(m, self.rows, step)
        for start in range(0, max(self.rows, 1), step):
            out = {}
            for name, it in iters.items():
                s, piece = next(it)
                if s != start:
                    raise AssertionError(f"row chunks out of step: {name} at {s}, expected {start}")
                out[name] = piece
            yield start, out


class _Whole:
    """The tensors as one piece (no chunking)."""

    def __init__(self, members: dict):
        self.members = {k: _arr(v) for k, v in members.items() if v is not None}

    def chunks(self, step: int):
        yield 0, dict(self.members)


def _array_rows(a: np.ndarray, rows: int, step: int):
    for s in range(0, max(rows, 1), step):
        yield s, a[s:s + step]


def _as_tensors(x, x_arr, **others) -> _Tensors:
    if x_arr.ndim == 0:
        return _Whole({"x": x_arr.reshape(1), **{k: _arr(v) for k, v in others.items()}})
    return _Tensors({"x": x, **others}, x_arr.shape[0])


def _row_step(x, chunk_bytes: int, multiple: int = 1) -> int:
    row_bytes = max(1, x.dtype.itemsize * int(np.prod(x.shape[1:])) if x.ndim else x.dtype.itemsize)
    return max(multiple, (chunk_bytes // row_bytes) // multiple * multiple)


def check_cast(x, codes=None, fmt="e2m1", rounding="nearest-even", *, values=None, packed=None,
               nibble_order="low", rbits=None, max_examples: int = 10, chunk_bytes: int = 64 << 20,
               progress: Callable[[int, int], None] | None = None, **policies) -> CheckReport:
    """Compare element codes (or values) with ``fp4ref.encode(x, fmt, rounding, **policies)``.

    x: float64/float32/float16/bfloat16 array (a memory map is read in row chunks of about ``chunk_bytes``).
    codes: uint8 codes, unpacked (x's shape) or FP4/FP6 packed along the last axis (``packed``: None = from
    the shapes; ``nibble_order``: "low" | "high"). values: the vendor's decoded values instead of codes.
    policies: those of :func:`fp4ref.encode` (overflow, nan, neg_zero, negative, zero, e8m0_subnormal,
    rbits_width, lanes). progress(rows_done, rows_total) is called after each chunk.
    """
    f = _formats.get(fmt)
    if (codes is None) == (values is None):
        raise CheckInputError("give exactly one of codes= or values=")
    refs = {"x": x, "codes": codes, "values": values, "rbits": rbits}
    xa, ca, va, ra = _arr(x), _arr(codes), _arr(values), _arr(rbits)
    xa = _cast.as_float_array(xa, "x")
    opts = {"rounding": rounding, **{k: v for k, v in policies.items() if v is not None}}
    try:  # the options themselves: a usage error before any data is read
        _cast_encode(np.zeros(0, xa.dtype), f, opts, np.zeros(0, np.uint64))
    except (ValueError, TypeError) as e:
        raise CheckInputError(str(e)) from None
    is_packed = False
    if va is not None:
        if va.shape != xa.shape:
            raise CheckInputError(f"values shape {va.shape} differs from x's shape {xa.shape}")
    else:
        if ca.dtype.kind not in "ui":
            raise CheckInputError(f"codes must be an unsigned integer array (uint8), got dtype {ca.dtype}")
        is_packed = _detect_packed(f, xa.shape, ca.shape, packed)
        if nibble_order not in _packing.NIBBLE_ORDERS:
            raise CheckInputError(f"nibble_order must be 'low' or 'high', got {nibble_order!r}")
    swap_ok = va is None and f.bits == 4 and xa.ndim >= 1 and xa.shape[-1] % 2 == 0 and xa.shape[-1] > 0
    alts = _cast_alternatives(f, opts, xa.dtype)
    if xa.ndim < 2 or (ra is not None and ra.shape[:1] != xa.shape[:1]):
        src, step = _Whole(refs), max(1, xa.shape[0] if xa.ndim else 1)
    else:
        src, step = _as_tensors(x, xa, codes=codes, values=values, rbits=rbits), _row_step(xa, chunk_bytes)
    return _run_cast(src, step, f, opts, alts, xa, is_packed, nibble_order, swap_ok, va is not None,
                     max_examples, progress)


def _run_cast(src, step, f, opts, alts, x_like, is_packed, nibble_order, swap_ok, values_mode, max_examples,
              progress) -> CheckReport:
    shape = tuple(x_like.shape) if x_like.ndim else (1,)
    parts: dict[int, _Part] = {}

    def one_chunk(start, ch, use_swap):
        part = _Part()
        xc = _cast.as_float_array(ch["x"])
        rb = ch.get("rbits")
        exp = _cast_encode(xc, f, opts, rb)
        rb_elem = _element_rbits(rb, opts, alts, xc.shape)
        if values_mode:
            got = np.asarray(ch["values"], np.float64)
            exp = _decode_for(f, exp)
        else:
            got = _unpacked_codes(ch["codes"], f, xc.shape, nibble_order, is_packed)
        part.compared = xc.size
        mm = ~_same(exp, got)
        part.code_mm = int(mm.sum())
        alt_got = None
        if swap_ok:
            alt_got = _swap_pairs(got)
            part.code_mm_alt = int((~_same(exp, alt_got)).sum())
        else:
            part.code_mm_alt = part.code_mm
        choose = use_swap if use_swap is not None else (swap_ok and 2 * part.code_mm_alt < part.code_mm)
        part.choice = (bool(choose), False)
        if part.code_mm:
            base_got = alt_got if choose else got
            flat_mm = np.nonzero(mm.reshape(-1))[0]
            interp = np.zeros(flat_mm.size, bool)
            if choose:
                interp = _same(exp.reshape(-1)[flat_mm], base_got.reshape(-1)[flat_mm])
                part.classes["nibble_order"] += int(interp.sum())
                _add_hint(part, "nibble_order", f"nibble_order={'high' if nibble_order == 'low' else 'low'}",
                          int(interp.sum()))
            sel = flat_mm[~interp]
            xs = xc.reshape(-1)[sel]
            rbs = None if rb_elem is None else {k: v.reshape(-1)[sel] for k, v in rb_elem.items()}

            def idx_of(i, sel=sel):
                ix = np.unravel_index(sel[i], xc.shape)
                return (int(ix[0]) + start,) + tuple(int(v) for v in ix[1:])
            if choose:
                for i in np.nonzero(interp)[0][:max(0, max_examples)]:
                    pos = flat_mm[i]
                    ix = np.unravel_index(pos, xc.shape)
                    part.examples.append(Mismatch(
                        "code", (int(ix[0]) + start,) + tuple(int(v) for v in ix[1:]), float(xc.reshape(-1)[pos]),
                        _hex_bits(xc.reshape(-1)[pos], xc.dtype), _code_side(f, exp.reshape(-1)[pos]),
                        _code_side(f, got.reshape(-1)[pos]), None, "nibble_order", None))
            if sel.size:
                _classify_cast(part, f, opts, alts, xs, exp.reshape(-1)[sel], base_got.reshape(-1)[sel], rbs,
                               idx_of, max_examples, values_mode)
        return part

    total_rows = shape[0]
    for start, ch in src.chunks(step):
        parts[start] = one_chunk(start, ch, None)
        if progress:
            progress(min(start + step, total_rows), total_rows)
    total, total_alt = sum(p.code_mm for p in parts.values()), sum(p.code_mm_alt for p in parts.values())
    use_swap = swap_ok and 2 * total_alt < total
    redo = [s for s, p in parts.items() if p.code_mm and p.choice[0] != use_swap]
    if redo:
        for start, ch in src.chunks(step):
            if start in redo:
                parts[start] = one_chunk(start, ch, use_swap)
    notes = []
    if use_swap:
        notes.append(f"the codes read with nibble_order={'high' if nibble_order == 'low' else 'low'} leave "
                     f"{total_alt} of {total} mismatches")
    label = f"cast to {f.name}, " + ", ".join(f"{k}={v}" for k, v in opts.items() if v is not None)
    return _report(parts, label, {"format": f.name, **{k: v for k, v in opts.items() if v is not None}},
                   max_examples, None, notes, values_mode)


def _report(parts: dict, what, options, max_examples, gs, notes, values_mode) -> CheckReport:
    classes, hints, examined = Counter(), {}, Counter()
    code_ex, scale_ex = [], []
    for start in sorted(parts):
        p = parts[start]
        classes.update(p.classes)
        examined.update(p.examined)
        for c, h in p.hints.items():
            hints.setdefault(c, Counter()).update(h)
        for m in p.examples:
            (scale_ex if m.kind == "scale" else code_ex).append(m)
    if gs and not gs["match"]:
        classes[gs["class"]] += 1
        if gs.get("hint"):
            hints.setdefault(gs["class"], Counter())[gs["hint"]] += 1
    code_ex.sort(key=lambda m: m.index)
    scale_ex.sort(key=lambda m: m.index)
    examples = tuple(code_ex[:max_examples] + scale_ex[:max_examples])
    ordered = {c: classes[c] for c in CLASSES if classes.get(c)}
    hint_lists = {c: [(a, n, examined.get(c) or ordered[c]) for a, n in hints[c].most_common()]
                  for c in ordered if c in hints}
    return CheckReport(
        what=what, options=options, compared=sum(p.compared for p in parts.values()),
        scales_compared=sum(p.scales_compared for p in parts.values()),
        code_mismatches=sum(p.code_mm for p in parts.values()),
        scale_mismatches=sum(p.scale_mm for p in parts.values()), global_scale=gs, classes=ordered,
        hints=hint_lists, examples=examples, notes=tuple(notes), values=values_mode)


# --- block quantization ----------------------------------------------------------------------------------------
def _recipe_alternatives(rec, x_dtype) -> list[_Alt]:
    """The alternatives tried on mismatching blocks, in priority order."""
    from . import scaling as _S
    alts: list[_Alt] = []
    pow2_rules = ("floor", "ceil", "even", "rceil")
    sf = None if rec.scale_fmt == "fp32" else _formats.get(rec.scale_fmt)
    if rec.tensor_scale is not None:
        alts.append(_Alt("the reciprocal global scale", "global_scale_convention", {"_invert_gs": True},
                         level="block"))
    if sf is not None and sf.mbits == 0 and sf.kind == "float" and rec.scale_rule in pow2_rules:
        for rule in pow2_rules:
            for exp in ("bits", "log2-f32"):
                if (rule, exp) == (rec.scale_rule, rec.exponent):
                    continue
                over = {"scale_rule": rule, "exponent": exp}
                if rule == "rceil" and rec.scale_rule != "rceil":
                    over["scale_expr"] = "amax/m"
                elif rule != "rceil" and rec.scale_expr != "exact":
                    over["scale_expr"] = "exact"
                alts.append(_Alt(_label(over), "scale_binade", over, level="block"))
    ratio = rec.scale_rule in ("nvfp4", "ratio", "rceil", "paper")
    if ratio and sf is not None and rec.exponent == "bits":
        # the rounding of the scale quantity into the scale format: one binade for E8M0, one ulp otherwise
        own = rec.scale_rounding or {"rceil": "toward-positive", "paper": "toward-positive"}.get(rec.scale_rule,
                                                                                                 "nearest-even")
        binade = sf.mbits == 0
        for sr in ("nearest-even", "nearest-away", "toward-positive", "toward-negative", "toward-zero"):
            if sr != own:
                over = {"scale_rounding": sr} | ({"scale_rule": "ratio"} if rec.scale_rule == "rceil" else {})
                alts.append(_Alt(_label(over), "scale_binade" if binade else None, over, level="block",
                                 family=None if binade else "other"))
    if ratio and sf is not None:
        for fl in (None, 2.0 ** -6, "min-positive"):
            if fl != rec.scale_floor:
                alts.append(_Alt(_label({"scale_floor": fl}), "scale_floor", {"scale_floor": fl}, level="block"))
    if rec.transform is not None:
        kind, size, signs, out, mode = rec.transform
        other = "te" if mode == "exact" else "exact"
        alts.append(_Alt(f"transform mode={other}", "accumulation_order",
                         {"transform": (kind, size, signs, out, other)}, level="both"))
    for t in _NARROWER.get(np.dtype(x_dtype), ()):
        alts.append(_Alt(_label({}, t), "double_rounding", {}, level="both", cast=t))
    if ratio and rec.scale_rule != "paper":
        for se in _S.SCALE_EXPRS:
            if se not in (rec.scale_expr, "(m/amax)*D"):
                alts.append(_Alt(_label({"scale_expr": se}), "double_rounding", {"scale_expr": se}, level="block"))
    for ee in _S.ELEM_EXPRS:
        if ee not in (rec.elem_expr, "(x/D)*s"):
            alts.append(_Alt(_label({"elem_expr": ee}), "double_rounding", {"elem_expr": ee}))
    for ar in _S.ARITH:
        if ar != rec.arith:
            alts.append(_Alt(_label({"arith": ar}), "double_rounding", {"arith": ar}, level="both"))
    stochastic = isinstance(rec.rounding, str) and rec.rounding.lower().startswith("stochastic")
    if not stochastic and _R.mode_name(rec.rounding) in _NEAREST:
        for r in _NEAREST:
            if r != _R.mode_name(rec.rounding):
                alts.append(_Alt(f"rounding={r}", "tie_direction", {"rounding": r}, tie=True))
    # hints for the input-decided classes (and for "other")
    ef = _formats.get(rec.elem)
    for p in (_R.NAN_POLICIES_WITH_NAN if ef.has_nan else _R.NAN_POLICIES_NO_NAN):
        if p != "raise" and p != rec.nan:
            alts.append(_Alt(f"nan={p}", None, {"nan": p}, level="both", family="nan"))
    hint_opts = (("amax_nan", ("propagate", "ignore"), "nan"), ("scale_nan", ("nan", "max", "min"), "nan"),
                 ("nan_sign", ("canonical", "x86"), "nan"),
                 ("overflow", ("saturate", "nan", "inf"), "saturation_vs_nan"),
                 ("scale_overflow", ("saturate", "nan"), "saturation_vs_nan"),
                 ("scale_inf", ("nan", "max", "exponent-field"), "saturation_vs_nan"),
                 ("neg_zero", ("keep", "positive"), "signed_zero"))
    for key, choices, fam in hint_opts:
        for v in choices:
            if v != getattr(rec, key):
                alts.append(_Alt(f"{key}={v}", None, {key: v}, level="both", family=fam))
    if not stochastic:
        for r in _R.MODES:
            if r != _R.mode_name(rec.rounding) and r not in _NEAREST:
                alts.append(_Alt(f"rounding={r}", None, {"rounding": r}, family="other"))
    for key, choices in (("subnormals", ("keep", "flush")),
                         ("e8m0_arith", ("exact", "bits-min-normal", "bits-inf", "rcp0-one"))):
        for v in choices:
            if v != getattr(rec, key):
                alts.append(_Alt(f"{key}={v}", None, {key: v}, level="both", family="other"))
    return alts


class _BlockLayout:
    """Index bookkeeping between x (and its linear scale array) and the kernel view (B, R, C) of one chunk."""

    def __init__(self, rec, shape, axis):
        self.geo = _blocks.geometry(shape, axis, rec.blocks, rec.block, pad=rec.pad, tile_scales=rec.tile_scales)
        g = self.geo
        self.shape = tuple(shape)
        self.B, self.R, self.C = g.view
        self.tr, self.tc = g.tile
        _, self.nr, self.nc = g.grid
        self.rows_scales = g.layout == "2d" and g.tile_scales == "rows"
        self.sr = self.tr if self.rows_scales else 1

    def x_view(self, a):
        return self.geo.view_of(np.asarray(a))

    def scale_view(self, s):
        """The linear scale array as (B, rows, nc): one row per tile row (per x row for 'rows' tile scales)."""
        g = self.geo
        s = np.asarray(s)
        if g.layout == "1d":
            return np.moveaxis(s, g.axis, -1).reshape(self.B, self.R, self.nc)
        return s.reshape(self.B, self.R if self.rows_scales else self.nr, self.nc)

    def x_index(self, b, r, c) -> tuple:
        g = self.geo
        if g.layout == "1d":
            other = [d for i, d in enumerate(self.shape) if i != g.axis]
            ix = [int(v) for v in np.unravel_index(r, other)] if other else []
            ix.insert(g.axis, int(c))
            return tuple(ix)
        return tuple(int(v) for v in np.unravel_index((b * self.R + r) * self.C + c, self.shape))

    def scale_index(self, b, srow, j) -> tuple:
        """Index in the linear scale array of scale-view entry (b, srow, j)."""
        g = self.geo
        if g.layout == "1d":
            other = [d for i, d in enumerate(self.shape) if i != g.axis]
            ix = [int(v) for v in np.unravel_index(srow, other)] if other else []
            ix.insert(g.axis, int(j))
            return tuple(ix)
        rows = self.R if self.rows_scales else self.nr
        return tuple(int(v) for v in np.unravel_index((b * rows + srow) * self.nc + j, g.scale_shape))


def _per_block(a: np.ndarray, nc: int, tc: int, fill: bool, op) -> np.ndarray:
    """(k, h, C) bool → (k, nc): ``op`` (np.any / np.all) over each block's elements."""
    k, h, C = a.shape
    if nc * tc != C:
        a = np.concatenate([a, np.full((k, h, nc * tc - C), fill)], axis=2)
    return op(a.reshape(k, h, nc, tc), axis=(1, 3))


def _to_elems(blk: np.ndarray, h: int, tc: int, C: int) -> np.ndarray:
    """(k, nc) → (k, h, C): each block's value on its elements."""
    return np.repeat(np.repeat(blk[:, None, :], h, axis=1), tc, axis=2)[:, :, :C]


@dataclass
class _QCtx:
    rec: object
    axis: int
    elem: object
    scale_fmt: object
    global_amax: float | None
    vendor_gs: object               # explicit global scale (the vendor's) to check the rest under, or None
    expected_gs: object             # the recipe's stored global scale (for the reciprocal alternative)
    values_dtype: object            # None: codes mode
    alts: list
    max_examples: int
    tensor_nan: bool = False        # a NaN input reaches the tensor scale: every block depends on a NaN


def _quantize(ctx: _QCtx, x, rbits=None, over=None, cast=None, axis=None):
    """quantize() under the check's tensor scale, with option overrides: (codes or values, scales)."""
    from .quantize import dequantize, quantize
    over = dict(over or {})
    invert = over.pop("_invert_gs", False)
    rec = ctx.rec
    if cast is not None:
        x = np.asarray(x).astype(cast)
    kw = {}
    if rec.tensor_scale is not None:
        if invert:
            kw["global_scale"] = float(np.float32(1.0) / np.float32(ctx.expected_gs))
        elif ctx.vendor_gs is not None:
            kw["global_scale"] = ctx.vendor_gs
        elif rec.global_scale is None:
            kw["global_amax"] = ctx.global_amax
    if rbits is not None:
        kw["rbits"] = rbits
    q = quantize(x, rec, ctx.axis if axis is None else axis, **kw, **over)
    if ctx.values_dtype is not None:
        return np.asarray(dequantize(q, ctx.values_dtype)), q.scales
    return q.codes, q.scales


@dataclass
class _Group:
    """Gathered units of one chunk (single tiles, or whole lines where a transform crosses tiles): k units of
    h rows and W columns of the kernel view, with what the vendor gave for them."""
    xs: np.ndarray          # (k, h, W) input
    got: np.ndarray         # (k, h, W) vendor codes / values (the chosen reading)
    gsc: np.ndarray | None  # (k, sr, nb) vendor scales (the chosen reading); nb blocks per unit
    count_e: np.ndarray     # (k, h, W) mismatches as given (the ones counted)
    count_s: np.ndarray | None
    rbits: np.ndarray | None
    bb: np.ndarray          # (k,) batch index
    tt: np.ndarray          # (k,) tile row
    jj: np.ndarray          # (k,) first block column


def _per_tile(rec, lay: _BlockLayout) -> bool:
    """Whether a single tile can be re-quantized alone (a transform no wider than a block, dividing it)."""
    if rec.transform is None:
        return True
    size = int(rec.transform[1])
    return lay.tc % size == 0


def _gather(lay: _BlockLayout, per_tile, x_v, got_v, cnt_v, gsc_v, cnts_v, rb_v, tiles):
    """Yield _Group's of the flagged tiles (B, nr, nc) bool, grouped by unit shape."""
    tr, tc = lay.tr, lay.tc
    if per_tile:
        sel_b, sel_t, sel_j = np.nonzero(tiles)
    else:
        sel_b, sel_t = np.nonzero(tiles.any(axis=2))
        sel_j = np.zeros(sel_b.size, np.int64)
    heights = np.minimum(tr, lay.R - sel_t * tr)
    widths = np.minimum(tc, lay.C - sel_j * tc) if per_tile else np.full(sel_b.size, lay.C)
    for h, w in sorted(set(zip(heights.tolist(), widths.tolist()))):
        pick = (heights == h) & (widths == w)
        bb, tt, jj = sel_b[pick], sel_t[pick], sel_j[pick]
        rows = (tt[:, None] * tr + np.arange(h)[None, :])[:, :, None]          # (k, h, 1)
        cols = (jj[:, None] * tc + np.arange(w)[None, :])[:, None, :]          # (k, 1, w)
        b3 = bb[:, None, None]
        if gsc_v is not None:
            nb = 1 if per_tile else lay.nc
            srows = rows if lay.rows_scales else tt[:, None, None]
            scols = (jj[:, None] + np.arange(nb)[None, :])[:, None, :]
            gsc, cnts = gsc_v[b3, srows, scols], cnts_v[b3, srows, scols]
        else:
            gsc = cnts = None
        yield _Group(xs=x_v[b3, rows, cols], got=got_v[b3, rows, cols], gsc=gsc, count_e=cnt_v[b3, rows, cols],
                     count_s=cnts, rbits=None if rb_v is None else rb_v[b3, rows, cols], bb=bb, tt=tt, jj=jj)


def _lines(a):
    """(k, h, W) gathered units as the array quantize() takes (2-D for one-row units)."""
    return None if a is None else (a[:, 0, :] if a.shape[1] == 1 else a)


def _classify_group(part: _Part, ctx: _QCtx, lay: _BlockLayout, offsets, g: _Group):
    k, h, W = g.xs.shape
    tc = lay.tc
    nb = -(-W // tc)
    values_mode = ctx.values_dtype is not None

    def run(over=None, cast=None, units=None):
        u = slice(None) if units is None else units
        n = k if units is None else int(np.count_nonzero(units))
        c, s = _quantize(ctx, _lines(g.xs[u]), _lines(None if g.rbits is None else g.rbits[u]), over, cast,
                         axis=-1)
        return np.asarray(c).reshape(n, h, W), np.asarray(s).reshape(n, -1, nb)

    exp, esc = run()
    mm_e = ~_same(exp, g.got) & g.count_e
    mm_s = (~_same(esc, g.gsc) & g.count_s) if g.gsc is not None else np.zeros((k, 1, nb), bool)
    blk_mm_s = mm_s.any(axis=1)                                              # (k, nb)
    xf = g.xs.astype(np.float64)
    blk_nan = _per_block(np.isnan(xf), nb, tc, False, np.any) | ctx.tensor_nan
    blk_inf = _per_block(np.isinf(xf), nb, tc, False, np.any)
    # --- classes the input decides ----------------------------------------------------------------------------
    ecls = np.full(mm_e.shape, _NONE, np.int8)
    scls = np.full(mm_s.shape, _NONE, np.int8)
    ehint = np.full(mm_e.shape, -1, np.int16)
    shint = np.full(mm_s.shape, -1, np.int16)
    nanp, satp = _CID["nan_policy"], _CID["saturation_vs_nan"]
    if mm_e.any():
        ii = np.nonzero(mm_e)
        oc = _observe_classes(ctx.elem, g.xs[ii], exp[ii], g.got[ii], values_mode)
        bj = ii[2] // tc
        oc = np.where((oc == _NONE) & blk_nan[ii[0], bj], nanp, oc)
        ecls[ii] = np.where((oc == _NONE) & blk_inf[ii[0], bj], satp, oc)
    if mm_s.any():
        ii = np.nonzero(mm_s)
        if ctx.scale_fmt is not None:
            oc = _observe_classes(ctx.scale_fmt, np.zeros(ii[0].size), esc[ii], g.gsc[ii])
            oc = np.where(oc == _CID["signed_zero"], _NONE, oc)
        else:
            oc = np.full(ii[0].size, _NONE, np.int8)
        oc = np.where((oc == _NONE) & blk_nan[ii[0], ii[2]], nanp, oc)
        scls[ii] = np.where((oc == _NONE) & blk_inf[ii[0], ii[2]], satp, oc)
    # --- class alternatives, in priority order, each on the units that still hold a mismatch it may explain ---
    # (an overflow without an infinite input that a class alternative reproduces is explained by it)
    labels = [a.label for a in ctx.alts]
    e_sat = (ecls == satp) & ~_to_elems(blk_inf, h, tc, W)
    s_sat = (scls == satp) & ~np.repeat(blk_inf[:, None, :], mm_s.shape[1], axis=1)
    for ai, alt in enumerate(ctx.alts):
        if alt.cls is None:
            continue
        e_open = mm_e & ((ecls == _NONE) | (e_sat & (ehint < 0)))
        s_open = mm_s & ((scls == _NONE) | (s_sat & (shint < 0)))
        e_units, s_units = e_open.any(axis=(1, 2)), s_open.any(axis=(1, 2))
        units = {"block": e_units if values_mode else s_units, "element": e_units}.get(alt.level, e_units | s_units)
        if not units.any():
            continue
        try:
            ac, asc = run(alt.over, alt.cast, units)
        except _RUN_ERRORS:
            continue
        rep_e = _same(ac, g.got[units])
        if g.gsc is not None:
            rep_s = _same(asc, g.gsc[units]).all(axis=1)                     # (n, nb)
            scale_issue = blk_mm_s[units]
        else:
            rep_s = np.ones((asc.shape[0], nb), bool)
            scale_issue = ~_same(asc, esc[units]).all(axis=1)                # values: the alternative moves it
        eo, so = e_open[units], s_open[units]
        e_hit = np.zeros(eo.shape, bool)
        s_hit = np.zeros(so.shape, bool)
        if alt.level in ("block", "both"):
            # the block is reproduced: its scale, and every element but those already explained otherwise
            explained = mm_e[units] & (ecls[units] != _NONE) & ~eo
            whole = rep_s & _per_block(rep_e | explained, nb, tc, True, np.all) & scale_issue
            whole &= _per_block(eo, nb, tc, False, np.any) | so.any(axis=1)
            e_hit |= _to_elems(whole, h, tc, W) & eo
            s_hit |= np.repeat(whole[:, None, :], so.shape[1], axis=1) & so
        if alt.level in ("element", "both"):
            hit = eo & ~e_hit & rep_e & _to_elems(rep_s, h, tc, W)
            if alt.tie and hit.any():
                other = "nearest-zero" if alt.over["rounding"] == "nearest-away" else "nearest-away"
                hit &= ~_same(ac, run({"rounding": other}, None, units)[0])
            e_hit |= hit
        idx = np.nonzero(units)[0]
        n_hit = 0
        for cls_arr, hint_arr, hit in ((ecls, ehint, e_hit), (scls, shint, s_hit)):
            if hit.any():
                sub_c, sub_h = cls_arr[idx], hint_arr[idx]
                sub_c[hit], sub_h[hit] = _CID[alt.cls], ai
                cls_arr[idx], hint_arr[idx] = sub_c, sub_h
                n_hit += int(hit.sum())
        _add_hint(part, alt.cls, alt.label, n_hit)
    # a scale exactly one binade off that no named rule reproduces is still one binade off
    if mm_s.any() and ctx.scale_fmt is not None:
        ii = np.nonzero(mm_s & (scls == _NONE))
        if ii[0].size:
            with np.errstate(all="ignore"):
                r = _decode_or_nan(ctx.scale_fmt, g.gsc[ii]) / _decode_or_nan(ctx.scale_fmt, esc[ii])
            one = (r == 2.0) | (r == 0.5)
            scls[tuple(a[one] for a in ii)] = _CID["scale_binade"]
    ecls[mm_e & (ecls == _NONE)] = _CID["other"]
    scls[mm_s & (scls == _NONE)] = _CID["other"]
    part.classes.update(Counter(CLASSES[c] for c in ecls[mm_e].tolist()))
    part.classes.update(Counter(CLASSES[c] for c in scls[mm_s].tolist()))
    # --- hint alternatives: each that reproduces a mismatch of its family is counted (on a sample of units) ---
    sampled = {}
    for ai, alt in enumerate(ctx.alts):
        if alt.cls is not None:
            continue
        ids = (_CID["other"],) if alt.family == "other" else _family_ids(alt)
        if ids not in sampled:
            units = (mm_e & _in(ecls, ids)).any(axis=(1, 2)) | (mm_s & _in(scls, ids)).any(axis=(1, 2))
            units &= np.cumsum(units) <= _HINT_SAMPLE
            sampled[ids] = units
            for arr, mm in ((ecls, mm_e), (scls, mm_s)):
                part.examined.update(Counter(CLASSES[c] for c in arr[units][mm[units] & _in(arr[units], ids)].tolist()))
        units = sampled[ids]
        if not units.any():
            continue
        try:
            ac, asc = run(alt.over, alt.cast, units)
        except _RUN_ERRORS:
            continue
        idx = np.nonzero(units)[0]
        pairs = [(ecls, ehint, mm_e, _same(ac, g.got[units]))]
        if g.gsc is not None:
            pairs.append((scls, shint, mm_s, _same(asc, g.gsc[units])))
        for cls_arr, hint_arr, mm, rep in pairs:
            sub_c, sub_h = cls_arr[idx], hint_arr[idx]
            hit = mm[idx] & _in(sub_c, ids) & rep
            if not hit.any():
                continue
            sub_h[hit & (sub_h < 0)] = ai
            hint_arr[idx] = sub_h
            for c, k in Counter(sub_c[hit].tolist()).items():
                _add_hint(part, CLASSES[c], alt.label, k)
    _block_examples(part, ctx, lay, offsets, g, exp, esc, mm_e, mm_s, ecls, ehint, scls, shint, labels)


def _decode_or_nan(fmt, codes) -> np.ndarray:
    c = np.asarray(codes, np.int64)
    valid = (c >= 0) & (c < fmt.n_codes)
    return np.where(valid, fmt.values[np.where(valid, c, 0)], np.nan)


def _block_examples(part, ctx, lay, offsets, g, exp, esc, mm_e, mm_s, ecls, ehint, scls, shint, labels):
    limit = ctx.max_examples
    values_mode = ctx.values_dtype is not None
    ef, sf = ctx.elem, ctx.scale_fmt
    tc = lay.tc
    x_off, s_off = offsets

    def scale_side(s):
        if s is None:
            return {"code": None, "bits": None, "value": None}
        return _value_side(s) if sf is None else _code_side(sf, s)

    def elem_side(v):
        return _value_side(v) if values_mode else _code_side(ef, v)

    def amax(kk, j):  # j: block within the unit
        blk = g.xs[kk, :, j * tc:(j + 1) * tc].astype(np.float64)
        return float(np.max(np.abs(blk))) if blk.size else 0.0

    def shift(ix, off):
        return (ix[0] + off,) + tuple(ix[1:]) if ix else ix

    def srow_of(kk, r):
        t = int(g.tt[kk])
        return t * lay.tr + r if lay.rows_scales else t

    n_code = sum(1 for m in part.examples if m.kind != "scale")
    for kk, r, c in zip(*np.nonzero(mm_e)):
        if n_code >= limit:
            break
        b, j = int(g.bb[kk]), int(c // tc)
        rs = min(r, esc.shape[1] - 1)
        j0 = int(g.jj[kk])
        ctxb = {"index": shift(lay.scale_index(b, srow_of(kk, rs), j0 + j), s_off), "amax": amax(kk, j),
                "expected_scale": scale_side(esc[kk, rs, j]),
                "got_scale": scale_side(None if g.gsc is None else g.gsc[kk, rs, j])}
        xv = g.xs[kk, r, c]
        part.examples.append(Mismatch(
            "value" if values_mode else "code",
            shift(lay.x_index(b, int(g.tt[kk]) * lay.tr + r, j0 * tc + c), x_off),
            float(xv), _hex_bits(xv, g.xs.dtype), elem_side(exp[kk, r, c]), elem_side(g.got[kk, r, c]), ctxb,
            CLASSES[ecls[kk, r, c]], labels[ehint[kk, r, c]] if ehint[kk, r, c] >= 0 else None))
        n_code += 1
    n_scale = sum(1 for m in part.examples if m.kind == "scale")
    for kk, r, j in zip(*np.nonzero(mm_s)):
        if n_scale >= limit:
            break
        b = int(g.bb[kk])
        part.examples.append(Mismatch(
            "scale", shift(lay.scale_index(b, srow_of(kk, r), int(g.jj[kk]) + int(j)), s_off), amax(kk, int(j)),
            None,
            scale_side(esc[kk, r, j]), scale_side(g.gsc[kk, r, j]), None, CLASSES[scls[kk, r, j]],
            labels[shint[kk, r, j]] if shint[kk, r, j] >= 0 else None))
        n_scale += 1


def _row_multiple(lay: _BlockLayout, ndim: int) -> int | None:
    """Chunks of x along axis 0 must hold a multiple of this many rows so that no block is cut (None: the
    blocks cross axis 0 and the tensor is checked whole)."""
    g = lay.geo
    if ndim < 2:
        return None
    if g.layout == "1d":
        return 1 if g.axis != 0 else None
    if g.layout == "2d":
        return 1 if ndim >= 3 else lay.tr
    return None


def _scale_rows(lay: _BlockLayout, ndim: int, rows: int) -> int:
    """Rows of the linear scale array that ``rows`` rows of x map to."""
    if lay.geo.layout == "2d" and ndim == 2 and not lay.rows_scales:
        return -(-rows // lay.tr)
    return rows


def _scale_matrix(shape) -> tuple[int, int]:
    """The (rows, cols) matrix that a linear scale array is swizzled as: leading dimensions flattened."""
    if len(shape) == 1:
        return 1, int(shape[0])
    return int(np.prod(shape[:-1])), int(shape[-1])


SCALE_LAYOUTS = ("linear", "swizzled")


def _read_scales(scales, scale_shape, layout, sf):
    """(scales in the linear layout as given, the other layout's reading or None, its name)."""
    s = np.asarray(scales)
    if layout not in SCALE_LAYOUTS:
        raise CheckInputError(f"scale_layout must be one of {', '.join(map(repr, SCALE_LAYOUTS))}; got {layout!r}")
    n_lin = int(np.prod(scale_shape))
    if sf is None:
        if s.size != n_lin:
            raise CheckInputError(f"scales hold {s.size} values; the recipe's block grid has shape {scale_shape}")
        return s.astype(np.float32).reshape(scale_shape), None, ""
    if s.dtype != np.uint8:
        if s.dtype.itemsize != 1:
            raise CheckInputError(f"scales must be uint8 codes (or an 8-bit float type), got dtype {s.dtype}")
        s = s.view(np.uint8)
    rows, cols = _scale_matrix(scale_shape)
    n_swz = _packing.swizzled_size(rows, cols)
    if layout == "linear":
        if s.size != n_lin:
            hint = "" if s.size != n_swz else \
                "; its size fits the swizzled layout: pass scale_layout='swizzled' (--scale-layout swizzled)"
            raise CheckInputError(f"scales hold {s.size} codes; the recipe's block grid {scale_shape} has {n_lin}"
                                  f"{hint}")
        other = None
        if s.size == n_swz:
            other = _packing.unswizzle_scales(s.reshape(-1), rows, cols).reshape(scale_shape)
        return s.reshape(scale_shape), other, "swizzled"
    if s.size != n_swz:
        hint = "" if s.size != n_lin else \
            "; its size fits the linear layout: pass scale_layout='linear' (--scale-layout linear)"
        raise CheckInputError(f"swizzled scales of a {rows}x{cols} scale matrix hold {n_swz} bytes, got {s.size}"
                              f"{hint}")
    lin = _packing.unswizzle_scales(s.reshape(-1), rows, cols).reshape(scale_shape)
    return lin, (s.reshape(scale_shape) if s.size == n_lin else None), "linear"


def check_quantized(x, codes=None, scales=None, recipe="ocp-mxfp4", *, global_scale=None, values=None,
                    axis: int = -1, rbits=None, packed=None, nibble_order="low", scale_layout="linear",
                    max_examples: int = 10, chunk_bytes: int = 64 << 20,
                    progress: Callable[[int, int], None] | None = None, **overrides) -> CheckReport:
    """Compare a block-quantized dump with ``fp4ref.quantize.quantize(x, recipe, axis, **overrides)``.

    codes: element codes, unpacked (x's shape) or packed along the last axis (``packed``: None = from the
    shapes; ``nibble_order`` "low" | "high"). scales: block scale codes, ``scale_layout`` "linear" (the recipe's
    block grid in C order, any shape of that size) or "swizzled" (the 128x4 tiles of
    :func:`fp4ref.packing.swizzle_scales`, the linear array taken as a matrix with its leading dimensions
    flattened). global_scale: the vendor's stored tensor scale (in the recipe's convention). values: the
    vendor's dequantized values instead of codes and scales. rbits: explicit random bits (x's shape) for a
    stochastic recipe. Every other keyword overrides a recipe option.

    The global scale is compared with the recipe's (from x's amax). When it differs and is neither inverted nor
    the other NVFP4 convention, the codes and scales are checked under the vendor's global scale (a note says
    so). x is read in row chunks of about ``chunk_bytes`` where the blocks allow it.
    """
    from . import recipes as _recipes
    from . import scaling as _S
    rec = _recipes.get(recipe)
    if overrides:
        known = set(rec.to_dict()) - {"name", *rec._PROVENANCE}
        bad = sorted(set(overrides) - known)
        if bad:
            raise CheckInputError(f"unknown option(s) {', '.join(bad)}; options: {', '.join(sorted(known))}")
        rec = replace(rec, **overrides)
    refs = {"x": x, "codes": codes, "values": values, "rbits": rbits}
    x, codes, values, rbits = _arr(x), _arr(codes), _arr(values), _arr(rbits)
    x = _cast.as_float_array(x, "x")
    if values is None and codes is None:
        raise CheckInputError("give codes= (with scales=) or values=")
    if values is not None and (codes is not None or scales is not None):
        raise CheckInputError("values= replaces codes= and scales=; give one or the other")
    ef = _formats.get(rec.elem)
    sf = None if rec.scale_fmt == "fp32" else _formats.get(rec.scale_fmt)
    try:
        lay_full = _BlockLayout(rec, x.shape, axis)
    except ValueError as e:
        raise CheckInputError(str(e)) from None
    values_mode = values is not None
    lin = other = None
    other_name = ""
    vdt = None
    is_packed = False
    if values_mode:
        if values.shape != x.shape:
            raise CheckInputError(f"values shape {values.shape} differs from x's shape {x.shape}")
        vdt = values.dtype if values.dtype in (np.float32, np.float64, np.float16, _BF16) else np.dtype(np.float64)
    else:
        if codes.dtype.kind not in "ui":
            raise CheckInputError(f"codes must be an unsigned integer array (uint8), got dtype {codes.dtype}")
        is_packed = _detect_packed(ef, x.shape, codes.shape, packed)
        if nibble_order not in _packing.NIBBLE_ORDERS:
            raise CheckInputError(f"nibble_order must be 'low' or 'high', got {nibble_order!r}")
        if scales is None:
            raise CheckInputError(f"recipe {rec.name!r} has block scales: give scales= (or values=)")
        lin, other, other_name = _read_scales(scales, lay_full.geo.scale_shape, scale_layout, sf)
    mult = _row_multiple(lay_full, x.ndim)
    notes = []
    if rec.tensor_scale is not None and rec.global_scale is not None and global_scale is not None:
        # a recipe's fixed global scale (JAX's BlockScaleConfig.global_scale) is a parameter: use the dump's
        g = float(np.asarray(global_scale, np.float64).reshape(-1)[0])
        if not _same(np.array([g]), np.array([float(rec.global_scale)]))[0]:
            notes.append(f"the recipe's fixed global scale {rec.global_scale!r} is replaced by the dump's {g!r}")
            rec = replace(rec, global_scale=g)
    gamax, expected_gs = None, None
    if rec.tensor_scale is not None:
        if rec.global_scale is None:
            gamax = _global_amax(refs["x"], x, rec, axis, mult, chunk_bytes)
        ts = _S.tensor_scale(rec.tensor_scale, gamax if gamax is not None else float("nan"), elem=rec.elem,
                             scale_fmt=rec.scale_fmt, global_scale=rec.global_scale)
        expected_gs = ts.stored
    elif global_scale is not None:
        if np.size(global_scale) == 1 and float(np.asarray(global_scale, np.float64).reshape(-1)[0]) == 1.0:
            global_scale = None   # a unit tensor scale is no tensor scale
        else:
            raise CheckInputError(f"recipe {rec.name!r} has no tensor scale; global_scale= does not apply")
    gs_report, vendor_gs = None, None
    if global_scale is not None:
        if np.size(global_scale) != 1:
            raise CheckInputError(f"global_scale must hold one number, got shape {np.shape(global_scale)}")
        got = float(np.asarray(global_scale, np.float64).reshape(-1)[0])
        exp = float(expected_gs)
        same = bool(_same(np.array([exp]), np.array([got]))[0])
        cls = hint = None
        if not same:
            inv = float(np.float32(1.0) / np.float32(exp)) if exp else float("nan")
            alt_conv = _other_convention(rec, gamax)
            if alt_conv is not None and got == alt_conv[0]:
                cls, hint = "global_scale_convention", f"tensor_scale={alt_conv[1]}"
            elif got == inv:
                cls, hint = "global_scale_convention", "the reciprocal of the expected global scale"
            elif got * exp and abs(got * exp - 1.0) < 2.0 ** -6:
                # the reciprocal computed in another precision or order (e.g. amax/2688 in bfloat16): the codes
                # and scales are checked under the reciprocal of the vendor's value
                cls, hint = "global_scale_convention", "about the reciprocal (rounded otherwise)"
                vendor_gs = float(np.float32(1.0) / np.float32(got))
                notes.append(f"the global scale {got!r} is about the reciprocal of the expected {exp!r}; codes and "
                             f"scales are checked under its reciprocal {vendor_gs!r}")
            else:
                cls, vendor_gs = "other", got
                notes.append(f"the global scale differs ({got!r} vs {exp!r}); codes and scales are checked under "
                             "the vendor's global scale")
        gs_report = {"expected": exp, "got": got, "match": same, "class": cls, "hint": hint}
    ctx = _QCtx(rec=rec, axis=axis, elem=ef, scale_fmt=sf, global_amax=gamax, vendor_gs=vendor_gs,
                expected_gs=expected_gs, values_dtype=vdt, alts=_recipe_alternatives(rec, x.dtype),
                max_examples=max_examples, tensor_nan=gamax is not None and gamax != gamax)
    swap_ok = not values_mode and ef.bits == 4 and x.ndim >= 1 and x.shape[-1] % 2 == 0 and x.shape[-1] > 0
    total_rows = x.shape[0] if x.ndim else 1
    rb = rbits
    if rb is not None and rb.shape != x.shape:
        raise CheckInputError(f"rbits must have x's shape {x.shape}, got {rb.shape}")
    if mult is None:
        src, step = _Whole({"x": x, "codes": codes, "values": values, "rbits": rb}), max(1, total_rows)
    else:
        src = _as_tensors(refs["x"], x, codes=refs["codes"], values=refs["values"], rbits=refs["rbits"])
        step = _row_step(x, chunk_bytes, mult)
    parts: dict[int, _Part] = {}

    def one(start, ch, choice):
        xc = _cast.as_float_array(ch["x"])
        s0 = _scale_rows(lay_full, x.ndim, start) if mult is not None else 0
        return _quant_chunk(ctx, start, s0, xc, ch, is_packed, nibble_order, lin, other, swap_ok, choice,
                            whole=mult is None, lay_full=lay_full)

    for start, ch in src.chunks(step):
        parts[start] = one(start, ch, None)
        if progress:
            progress(min(start + step, total_rows), total_rows)
    tot, tot_alt = sum(p.code_mm for p in parts.values()), sum(p.code_mm_alt for p in parts.values())
    stot, stot_alt = sum(p.scale_mm for p in parts.values()), sum(p.scale_mm_alt for p in parts.values())
    choice = (swap_ok and 2 * tot_alt < tot, other is not None and 2 * stot_alt < stot)
    redo = {s for s, p in parts.items() if (p.code_mm or p.scale_mm) and p.choice != choice}
    if redo:
        for start, ch in src.chunks(step):
            if start in redo:
                parts[start] = one(start, ch, choice)
    if choice[0]:
        notes.append(f"read with nibble_order={'high' if nibble_order == 'low' else 'low'}, {tot_alt} of the {tot} "
                     f"code mismatches remain")
    if choice[1]:
        notes.append(f"read in the {other_name} layout, {stot_alt} of the {stot} scale mismatches remain")
    opts = {"recipe": rec.name, **overrides, "axis": axis}
    what = f"recipe {rec.name}" + "".join(f", {k}={v}" for k, v in overrides.items())
    return _report(parts, what, opts, max_examples, gs_report, notes, values_mode)


def _other_convention(rec, amax):
    """(stored value, name) of the other NVFP4 tensor-scale convention for this amax, where one applies."""
    from . import scaling as _S
    kind = {"nvfp4-encode": "nvfp4-decode", "nvfp4-encode-ref": "nvfp4-decode",
            "nvfp4-decode": "nvfp4-encode"}.get(rec.tensor_scale)
    if kind is None or amax is None:
        return None
    return float(_S.tensor_scale(kind, amax, elem=rec.elem, scale_fmt=rec.scale_fmt).stored), kind


def _global_amax(x_ref, x, rec, axis, mult, chunk_bytes) -> float:
    """The tensor amax of the recipe's tensor scale, over row chunks where the blocks allow."""
    from .quantize import tensor_amax
    if mult is None:
        return tensor_amax(x, rec, axis)
    m = 0.0
    step = _row_step(x, chunk_bytes, mult)
    for _, ch in _Tensors({"x": x_ref}, x.shape[0]).chunks(step):
        a = tensor_amax(_cast.as_float_array(ch["x"]), rec, axis)
        if a != a:
            return float("nan")
        m = max(m, a)
    return m


def _quant_chunk(ctx: _QCtx, start, s0, xc, ch, is_packed, nibble_order, lin, other, swap_ok, choice, whole,
                 lay_full) -> _Part:
    part = _Part()
    values_mode = ctx.values_dtype is not None
    lay = _BlockLayout(ctx.rec, xc.shape, ctx.axis)
    rb = ch.get("rbits")
    exp, esc = _quantize(ctx, xc, rb)
    part.compared = xc.size
    if values_mode:
        got, got_alt = np.asarray(ch["values"]), None
    else:
        got = _unpacked_codes(ch["codes"], ctx.elem, xc.shape, nibble_order, is_packed)
    if exp.dtype == got.dtype == np.uint8 and exp.shape == got.shape:
        part.code_mm = int(count_differ(np.ascontiguousarray(exp).reshape(-1),
                                        np.ascontiguousarray(got).reshape(-1)))
        mm = _differ(exp, got) if part.code_mm else np.zeros(exp.shape, bool)
    else:
        mm = _differ(exp, got)
        part.code_mm = int(np.count_nonzero(mm))
    # the other nibble order is only looked at where there is something for it to explain
    got_alt = _swap_pairs(got) if not values_mode and swap_ok and (part.code_mm or (choice and choice[0])) \
        else None
    part.code_mm_alt = part.code_mm if got_alt is None else int((~_same(exp, got_alt)).sum())
    gsc = gsc_alt = smm = None
    if lin is not None:
        n_s = esc.shape[0] if esc.ndim else 1
        gsc = lin if whole else lin[s0:s0 + n_s]
        gsc_alt = None if other is None else (other if whole else other[s0:s0 + n_s])
        smm = _differ(esc, gsc)
        part.scales_compared = int(np.size(esc))
        part.scale_mm = int(np.count_nonzero(smm))
        part.scale_mm_alt = part.scale_mm if gsc_alt is None or not part.scale_mm \
            else int((~_same(esc, gsc_alt)).sum())
    if choice is None:
        choice = (got_alt is not None and 2 * part.code_mm_alt < part.code_mm,
                  gsc_alt is not None and 2 * part.scale_mm_alt < part.scale_mm)
    part.choice = choice
    if not part.code_mm and not part.scale_mm:
        return part
    use_got = got_alt if choice[0] else got
    e_detail = mm
    if choice[0]:
        e_detail = mm & ~_same(exp, use_got)
        explained = mm & ~e_detail
        n = int(explained.sum())
        part.classes["nibble_order"] += n
        _add_hint(part, "nibble_order", f"nibble_order={'high' if nibble_order == 'low' else 'low'}", n)
        _interp_examples(part, ctx, explained, xc, exp, got, start)
    s_detail, use_sc = smm, gsc
    if smm is not None and choice[1]:
        use_sc = gsc_alt
        s_detail = smm & ~_same(esc, use_sc)
        n = int((smm & ~s_detail).sum())
        part.classes["scale_layout"] += n
        _add_hint(part, "scale_layout", "the other scale layout", n)
    if not e_detail.any() and (s_detail is None or not s_detail.any()):
        return part
    x_v, got_v, cnt_v = lay.x_view(xc), lay.x_view(use_got), lay.x_view(e_detail)
    tiles = _tiles_with(cnt_v, lay)
    gsc_v = cnts_v = None
    if s_detail is not None:
        gsc_v, cnts_v = lay.scale_view(use_sc), lay.scale_view(s_detail)
        tiles |= _group_any_3(cnts_v, lay.sr, lay.nr) if lay.rows_scales else cnts_v
    rb_v = None if rb is None else lay.x_view(rb)
    for grp in _gather(lay, _per_tile(ctx.rec, lay), x_v, got_v, cnt_v, gsc_v, cnts_v, rb_v, tiles):
        _classify_group(part, ctx, lay, (start, s0), grp)
    return part


def _tiles_with(mask_v: np.ndarray, lay: _BlockLayout) -> np.ndarray:
    """(B, R, C) bool → (B, nr, nc): tiles holding a True."""
    B, R, C = mask_v.shape
    tr, tc, nr, nc = lay.tr, lay.tc, lay.nr, lay.nc
    if (nr * tr, nc * tc) != (R, C):
        full = np.zeros((B, nr * tr, nc * tc), bool)
        full[:, :R, :C] = mask_v
        mask_v = full
    return mask_v.reshape(B, nr, tr, nc, tc).any(axis=(2, 4))


def _group_any_3(mask: np.ndarray, per: int, n: int) -> np.ndarray:
    """(B, R', nc) bool → (B, n, nc): any within each group of ``per`` rows."""
    B, R, nc = mask.shape
    if n * per != R:
        mask = np.concatenate([mask, np.zeros((B, n * per - R, nc), bool)], axis=1)
    return mask.reshape(B, n, per, nc).any(axis=2)


def _interp_examples(part, ctx, mask, xc, exp, got, start):
    n = sum(1 for m in part.examples if m.kind != "scale")
    for pos in np.nonzero(mask.reshape(-1))[0][:max(0, ctx.max_examples - n)]:
        ix = np.unravel_index(pos, xc.shape)
        part.examples.append(Mismatch(
            "code", (int(ix[0]) + start,) + tuple(int(v) for v in ix[1:]), float(xc.reshape(-1)[pos]),
            _hex_bits(xc.reshape(-1)[pos], xc.dtype), _code_side(ctx.elem, exp.reshape(-1)[pos]),
            _code_side(ctx.elem, got.reshape(-1)[pos]), None, "nibble_order", None))
