"""Which configuration produced a dump: search formats, recipes and their options for the ones that reproduce the
vendor's bytes exactly, or else the closest ones with their mismatch classes.

Element casts (:func:`identify_cast`): every format whose code range holds the codes is tried with every
deterministic rounding mode and every overflow, NaN, signed-zero, negative and zero policy. The options act on
disjoint kinds of input (finite values, overflow, NaN, ±0, negatives, zero), so a coordinate search finds the
best value of each: every value of one option is counted with the others held, twice over. Values that give the
same count are ones the dump does not tell apart (reported as ``equivalent``).

Block quantization (:func:`identify_quantized`): every registered recipe (and axis) whose block grid fits the
scales is quantized and counted (codes + scales + global scale; both nibble orders and scale layouts where the
dump's reading is not given). The best few are refined by a greedy search over the same alternative options that
:mod:`fp4ref.check` classifies with (scale rules and exponents, scale floors, float expression orders, rounding,
NaN/overflow/zero policies), one change at a time, while the count drops.

The search runs on a sample (the first rows, about ``sample`` elements); every configuration reported as exact or
closest is then checked on the whole dump with :mod:`fp4ref.check`, whose report says whether it is exact.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from . import cast as _cast
from . import check as _check
from . import formats as _formats
from . import rounding as _R

__all__ = ["Candidate", "Identification", "identify_cast", "identify_quantized"]


@dataclass(frozen=True)
class Candidate:
    """One configuration: a format with cast options, or a recipe (and axis) with option overrides.

    mismatches: on the search sample; report: the full check (for the reported candidates). equivalent: option
    -> the values that reproduce the dump equally well (the dump holds no input that tells them apart).
    Reading options (nibble_order, scale_layout) are the dump reading the candidate was found with.
    """
    kind: str
    name: str
    options: dict
    mismatches: int
    compared: int
    reading: dict = field(default_factory=dict)
    equivalent: dict = field(default_factory=dict)
    report: object = None

    @property
    def exact(self) -> bool:
        return self.report.match if self.report is not None else self.mismatches == 0

    def args(self) -> list[str]:
        """The ``fp4ref check`` options that select this configuration."""
        out = ["--format", self.name] if self.kind == "cast" else ["--recipe", self.name]
        for k, v in self.options.items():
            if self.kind == "cast" or k in ("rounding", "overflow", "nan", "neg_zero"):
                out += [f"--{k.replace('_', '-')}", str(v)]
            elif k == "axis":
                out += ["--axis", str(v)]
            else:
                out += ["-o", f"{k}={v!r}" if not isinstance(v, str) else f"{k}={v}"]
        for k, v in self.reading.items():
            if (k, v) not in (("nibble_order", "low"), ("scale_layout", "linear")):
                out += [f"--{k.replace('_', '-')}", str(v)]
        return out

    def describe(self) -> str:
        opts = " ".join(self.args()[2:])
        return self.name + (f" {opts}" if opts else "")

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "name": self.name, "options": _check._jsonable(self.options),
             "reading": dict(self.reading), "mismatches_in_sample": self.mismatches, "compared_in_sample":
             self.compared, "equivalent": _check._jsonable(self.equivalent), "check_args": self.args()}
        if self.report is not None:
            d["check"] = self.report.to_dict()
            d["exact"] = self.report.match
        return d


@dataclass(frozen=True)
class Identification:
    """exact: the configurations that reproduce the whole dump; closest: the best others (with their checks)."""
    exact: tuple
    closest: tuple
    searched: int
    sample: int

    def to_dict(self) -> dict:
        return {"exact": [c.to_dict() for c in self.exact], "closest": [c.to_dict() for c in self.closest],
                "searched": self.searched, "sample_elements": self.sample}

    def format(self) -> str:
        lines = [f"searched {self.searched} configurations on {self.sample} elements"]
        if self.exact:
            lines.append(f"exact matches ({len(self.exact)}):")
            for c in self.exact:
                lines.append(f"  {c.describe()}")
                for k, vals in c.equivalent.items():
                    lines.append(f"      equally: {k} in {{{', '.join(map(str, vals))}}}")
        else:
            lines.append("no configuration reproduces the dump exactly; closest:")
        for i, c in enumerate(self.closest, 1):
            r = c.report
            classes = ", ".join(f"{k} {n}" for k, n in r.classes.items()) if r is not None else ""
            n = r.mismatches if r is not None else c.mismatches
            lines.append(f"  {i}. {c.describe()}: {n} mismatches" + (f" ({classes})" if classes else ""))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


# --- element casts ---------------------------------------------------------------------------------------------
def _cast_option_values(f) -> list[tuple[str, list]]:
    """Each cast option and the values it can take for format f (defaults first)."""
    groups = [("rounding", list(_R.MODES))]
    groups.append(("overflow", [o for o in ("saturate", "nan", "inf")
                                if o == "saturate" or (o == "nan" and f.has_nan) or (o == "inf" and f.has_inf)]))
    nan = _R.nan_name(None, f)
    pols = _R.NAN_POLICIES_WITH_NAN if f.has_nan else _R.NAN_POLICIES_NO_NAN
    groups.append(("nan", [nan] + [p for p in pols if p not in (nan, "raise")]))
    groups.append(("neg_zero", list(_R.NEG_ZERO)))
    if not f.signed:
        groups.append(("negative", [v for v in _R.NEGATIVE if v != "raise"]))
    if not f.has_zero:
        groups.append(("zero", [v for v in _R.ZERO if v != "raise"]))
        groups.append(("e8m0_subnormal", list(_R.E8M0_SUBNORMAL)))
    return groups


def _sample_rows(a: np.ndarray, n_elems: int, multiple: int = 1) -> int:
    """Rows of a (along axis 0) that hold about n_elems elements, a multiple of ``multiple``."""
    if a.ndim == 0:
        return 1
    per_row = max(1, int(np.prod(a.shape[1:])))
    rows = max(multiple, (max(1, n_elems // per_row) // multiple) * multiple)
    return min(a.shape[0], rows)


def _readings_codes(f, x_shape, codes, packed, nibble_order):
    """[(reading dict, unpacked codes)] for the dump's possible readings."""
    is_packed = _check._detect_packed(f, x_shape, codes.shape, packed)
    orders = [nibble_order] if nibble_order else (["low", "high"] if is_packed else ["low"])
    out = []
    for o in orders:
        got = _check._unpacked_codes(codes, f, x_shape, o, is_packed)
        out.append(({"nibble_order": o} if is_packed else {}, got))
    return out


def identify_cast(x, codes=None, *, values=None, formats=None, packed=None, nibble_order=None,
                  sample: int = 1 << 18, top: int = 3) -> Identification:
    """Find the element formats and cast options that reproduce ``codes`` (or decoded ``values``) from ``x``."""
    x = _cast.as_float_array(x)
    if (codes is None) == (values is None):
        raise _check.CheckInputError("give exactly one of codes= or values=")
    rows = _sample_rows(x, sample)
    xs = x[:rows] if x.ndim else x
    cands = [_formats.get(n) for n in formats] if formats else _formats.all_formats()
    results = []
    searched = 0
    for f in cands:
        if values is not None:
            v = np.asarray(values)
            if v.shape != x.shape:
                raise _check.CheckInputError(f"values shape {v.shape} differs from x's shape {x.shape}")
            readings = [({}, _check.values_to_codes(v[:rows] if v.ndim else v, f))]
        else:
            c = np.asarray(codes)
            if c.dtype.kind not in "ui":
                raise _check.CheckInputError(f"codes must be an unsigned integer array, got dtype {c.dtype}")
            try:
                readings = _readings_codes(f, x.shape, c[:rows] if c.ndim else c, packed, nibble_order)
            except _check.CheckInputError:
                continue
        for reading, got in readings:
            opts, count, equiv, n = _coordinate_search(xs, got, f)
            searched += n
            results.append(Candidate("cast", f.name, opts, count, xs.size, reading, equiv))
    results.sort(key=lambda c: (c.mismatches, len(c.options)))
    return _finish_cast(x, codes, values, results, top, searched, xs.size, packed)


def _encode_or_none(xs, f, opts):
    try:
        return _cast.encode(xs, f, opts.get("rounding", "nearest-even"),
                            **{k: v for k, v in opts.items() if k != "rounding"})
    except _check._RUN_ERRORS:
        return None


def _coordinate_search(xs, got, f):
    groups = _cast_option_values(f)
    cur = {k: vals[0] for k, vals in groups}
    tried = 0
    best = None
    equiv = {}
    for _ in range(2):
        for k, vals in groups:
            counts = {}
            for v in vals:
                c = _encode_or_none(xs, f, {**cur, k: v})
                tried += 1
                if c is not None:
                    counts[v] = int((~_check._same(c, got)).sum())
            if not counts:
                continue
            m = min(counts.values())
            keep = [v for v in vals if counts.get(v) == m]
            cur[k] = cur[k] if cur[k] in keep else keep[0]
            equiv[k] = keep
            best = m
    defaults = {k: vals[0] for k, vals in groups}
    opts = {k: v for k, v in cur.items() if v != defaults[k]}
    eq = {k: v for k, v in equiv.items() if len(v) > 1}
    return opts, (best if best is not None else xs.size), eq, tried


def _finish_cast(x, codes, values, results, top, searched, sample, packed) -> Identification:
    exact, closest = [], []
    for c in results:
        if len(exact) >= top and c.mismatches > 0:
            break
        if c.mismatches > 0 and (exact or len(closest) >= top):
            continue
        rep = _check.check_cast(x, codes, c.name, c.options.get("rounding", "nearest-even"), values=values,
                                packed=packed, nibble_order=c.reading.get("nibble_order", "low"),
                                **{k: v for k, v in c.options.items() if k != "rounding"})
        c = replace(c, report=rep)
        (exact if rep.match else closest).append(c)
    return Identification(tuple(exact[:top]), tuple(closest[:top]) if not exact else (), searched, sample)


# --- block quantization ----------------------------------------------------------------------------------------
@dataclass
class _Dump:
    """A sample of the dump in one reading: the first rows of x, codes, linear scales, and the global scale."""
    x: np.ndarray
    got: np.ndarray | None
    scales: np.ndarray | None
    values: np.ndarray | None
    gs: float | None
    reading: dict


def _fits(rec, axis, x, codes, scales, values, packed):
    """The block layout of recipe rec along axis fits the dump's shapes (None if not)."""
    from .check import _BlockLayout, _read_scales
    try:
        lay = _BlockLayout(rec, x.shape, axis)
    except ValueError:
        return None
    if values is not None:
        return lay
    ef = _formats.get(rec.elem)
    try:
        _check._detect_packed(ef, x.shape, codes.shape, packed)
    except _check.CheckInputError:
        return None
    sf = None if rec.scale_fmt == "fp32" else _formats.get(rec.scale_fmt)
    for layout in _check.SCALE_LAYOUTS:
        try:
            _read_scales(scales, lay.geo.scale_shape, layout, sf)
            return lay
        except _check.CheckInputError:
            continue
    return None


def _dumps(rec, axis, lay, x, codes, scales, values, gs, packed, nibble_order, scale_layout, sample):
    """The dump's samples in every reading the search should try."""
    mult = _check._row_multiple(lay, x.ndim)
    rows = _sample_rows(x, sample, mult) if mult is not None else (x.shape[0] if x.ndim else 1)
    xs = x[:rows]
    if values is not None:
        yield _Dump(xs, None, None, np.asarray(values)[:rows], gs, {})
        return
    ef = _formats.get(rec.elem)
    sf = None if rec.scale_fmt == "fp32" else _formats.get(rec.scale_fmt)
    c = np.asarray(codes)
    is_packed = _check._detect_packed(ef, x.shape, c.shape, packed)
    orders = [nibble_order] if nibble_order else (["low", "high"] if is_packed else ["low"])
    layouts = [scale_layout] if scale_layout else list(_check.SCALE_LAYOUTS)
    srows = _check._scale_rows(lay, x.ndim, rows) if mult is not None else None
    for layout in layouts:
        try:
            lin, _, _ = _check._read_scales(scales, lay.geo.scale_shape, layout, sf)
        except _check.CheckInputError:
            continue
        s = lin if srows is None else lin[:srows]
        for o in orders:
            got = _check._unpacked_codes(c[:rows], ef, xs.shape, o, is_packed)
            reading = ({"nibble_order": o} if is_packed else {}) | ({"scale_layout": layout} if scales is not None
                                                                    else {})
            yield _Dump(xs, got, s, None, gs, reading)


def _count(rec, axis, d: _Dump, gamax) -> int | None:
    """Mismatches of recipe rec on a sample (codes + scales + the global scale), None if rec cannot run."""
    from .quantize import dequantize, quantize
    from . import scaling as _S
    kw = {}
    n = 0
    try:
        if rec.tensor_scale is not None and rec.global_scale is None:
            kw["global_amax"] = gamax
            if d.gs is not None:
                exp = _S.tensor_scale(rec.tensor_scale, gamax, elem=rec.elem, scale_fmt=rec.scale_fmt).stored
                if not _check._same(np.array([float(exp)]), np.array([d.gs]))[0]:
                    n += 1
                    kw = {"global_scale": d.gs}
        elif d.gs is not None and rec.tensor_scale is None and d.gs != 1.0:
            return None
        elif d.gs is not None and rec.tensor_scale is not None:  # a fixed global scale: the dump's is used
            kw["global_scale"] = d.gs
        q = quantize(d.x, rec, axis, **kw)
    except _check._RUN_ERRORS:
        return None
    if d.values is not None:
        vdt = d.values.dtype if d.values.dtype.kind == "f" else np.float64
        return n + int((~_check._same(dequantize(q, vdt), d.values)).sum())
    n += int((~_check._same(q.codes, d.got)).sum())
    if d.scales is not None:
        if np.shape(q.scales) != np.shape(d.scales):
            return None
        n += int((~_check._same(np.asarray(q.scales), d.scales)).sum())
    return n


def _override_candidates(rec, x_dtype) -> list[dict]:
    """Single-option changes worth trying from a recipe (the check's alternatives, as plain overrides)."""
    out = []
    for alt in _check._recipe_alternatives(rec, x_dtype):
        if alt.cast is not None or "_invert_gs" in alt.over:
            continue
        out.append(dict(alt.over))
    return out


def identify_quantized(x, codes=None, scales=None, *, global_scale=None, values=None, recipes=None, axis=None,
                       packed=None, nibble_order=None, scale_layout=None, sample: int = 1 << 16, top: int = 3,
                       refine: int = 3) -> Identification:
    """Find the recipes (and option overrides) that reproduce a block-quantized dump.

    recipes: names to try (default every registered recipe); axis: the blocked axis (default: each axis whose
    block grid fits the scales). nibble_order / scale_layout: the dump's reading if known (default: both tried).
    refine: how many of the best recipes the option search starts from.
    """
    from . import recipes as _recipes
    from .quantize import tensor_amax
    x = _cast.as_float_array(x)
    if values is None and (codes is None or scales is None):
        raise _check.CheckInputError("give codes= and scales= (or values=)")
    gs = None
    if global_scale is not None:
        if np.size(global_scale) != 1:
            raise _check.CheckInputError(f"global_scale must hold one number, got shape {np.shape(global_scale)}")
        gs = float(np.asarray(global_scale, np.float64).reshape(-1)[0])
    codes = None if codes is None else np.asarray(codes)
    names = list(recipes) if recipes else _recipes.names()
    axes = [axis] if axis is not None else sorted({-1, 0} if x.ndim > 1 else {-1})
    scored = []
    searched = 0
    amax_cache = {}

    def gamax_of(rec, ax):
        if rec.tensor_scale is None or rec.global_scale is not None:
            return None
        key = (rec.transform, rec.blocks, rec.block, rec.amax_nan, rec.zero_amax, rec.pad, rec.pad_amax, ax)
        if key not in amax_cache:
            amax_cache[key] = tensor_amax(x, rec, ax)
        return amax_cache[key]

    for name in names:
        base = _recipes.get(name)
        # 2-D tiles store one scale per tile or one per row (TransformerEngine): the dump's shape tells which
        layouts = [{}] + ([{"tile_scales": t} for t in ("grid", "rows") if t != base.tile_scales]
                          if base.blocks == "2d" else [])
        for ax in axes:
            for over in layouts:
                rec = replace(base, **over)
                lay = _fits(rec, ax, x, codes, scales, values, packed)
                if lay is None:
                    continue
                for d in _dumps(rec, ax, lay, x, codes, scales, values, gs, packed, nibble_order, scale_layout,
                                sample):
                    searched += 1
                    n = _count(rec, ax, d, gamax_of(rec, ax))
                    if n is not None:
                        scored.append((n, name, ax, over, d))
                break           # the first tile-scale layout whose grid fits the dump
    scored.sort(key=lambda t: t[0])
    # refine the best recipes (distinct names) one option at a time
    refined = []
    seen = set()
    for n, name, ax, over, d in scored:
        if len(seen) >= refine or n == 0:
            if n == 0:
                refined.append((n, name, ax, over, d))
            continue
        if (name, ax, tuple(d.reading.items())) in seen:
            continue
        seen.add((name, ax, tuple(d.reading.items())))
        base = _recipes.get(name)
        cur, cur_n = dict(over), n
        for _ in range(4):
            rec = replace(base, **cur)
            best = None
            for ov in _override_candidates(rec, x.dtype):
                trial = {**cur, **ov}
                try:
                    r2 = replace(base, **trial)
                except TypeError:
                    continue
                searched += 1
                m = _count(r2, ax, d, gamax_of(r2, ax))
                if m is not None and m < cur_n and (best is None or m < best[0]):
                    best = (m, trial)
            if best is None:
                break
            cur_n, cur = best
            if cur_n == 0:
                break
        refined.append((cur_n, name, ax, {k: v for k, v in cur.items() if getattr(base, k) != v}, d))
    refined.sort(key=lambda t: (t[0], len(t[3])))
    sample_n = refined[0][4].x.size if refined else 0
    exact, closest = [], []
    done = set()
    for n, name, ax, over, d in refined:
        key = (name, ax, tuple(sorted((k, repr(v)) for k, v in over.items())), tuple(d.reading.items()))
        if key in done:
            continue
        done.add(key)
        if n > 0 and (exact or len(closest) >= top):
            continue
        if n == 0 and len(exact) >= top:
            continue
        rep = _check.check_quantized(
            x, codes, scales, name, global_scale=global_scale, values=values, axis=ax, packed=packed,
            nibble_order=d.reading.get("nibble_order", "low"), scale_layout=d.reading.get("scale_layout", "linear"),
            **over)
        opts = dict(over)
        if ax != -1:
            opts["axis"] = ax
        c = Candidate("quantize", name, opts, n, d.x.size, d.reading, {}, rep)
        (exact if rep.match else closest).append(c)
    return Identification(tuple(exact), tuple(closest[:top]) if not exact else (), searched, sample_n)
