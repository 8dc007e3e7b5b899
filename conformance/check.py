"""Run an implementation on the vectors of a directory and compare its outputs with the expected ones.

Like :mod:`conformance.manifest`, this side re-computes nothing from the generator: it reads the inputs and
expected outputs from the ``.npz`` files listed in MANIFEST.json, calls the implementation, and reports, per
vector, rounding mode and family, the number of cases and mismatches. A mismatch is classified by the decisions
its case reaches (the ``decisions`` bitmask stored with every case: "nan", "tie", "above-max", ...), so a
report reads "ml_dtypes: cast/e2m1-f32 rne specials: 2/10 differ, all at nan".

An implementation is a callable ``impl(x, fmt, rounding, policies) -> codes | None``: ``x`` the inputs in their
dtype (bfloat16 as ``ml_dtypes.bfloat16``), ``fmt`` the element format name, ``rounding`` the fp4ref mode name,
``policies`` the vector's policies (``options.resolved_policies``: overflow, nan, neg_zero, ...); it returns
uint8 codes (the format's code in the low bits) or None where it has no such cast. An implementation with fixed
policies ignores ``policies`` and shows up as mismatches at the decisions its policies govern (nan, inf,
above-max, ...), which is the point.
"""
from __future__ import annotations

import importlib
import json
import pathlib
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable

import ml_dtypes
import numpy as np

from .manifest import load_manifest

__all__ = ["CaseResult", "check_directory", "load_npz", "resolve_impl", "BUILTIN_IMPLS", "summarize"]


@dataclass(frozen=True)
class CaseResult:
    """One (vector, mode, family): cases, mismatches, the decisions of the mismatching cases (name → count), and
    the first few mismatches as (input bits hex, expected code, got code). ``skipped`` says why nothing ran."""
    vector: str
    mode: str
    family: str
    cases: int
    mismatches: int
    classes: tuple = ()
    examples: tuple = ()
    skipped: str | None = None

    @property
    def passed(self) -> bool:
        return self.skipped is None and self.mismatches == 0


def load_npz(path) -> tuple[dict, dict]:
    """(arrays, description) of a vector .npz; bfloat16 inputs come back as ml_dtypes.bfloat16."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "meta"}
        meta = json.loads(z["meta"].item())
    for k, info in meta["arrays"].items():
        if info["dtype"] == "bfloat16":
            arrays[k] = arrays[k].view(ml_dtypes.bfloat16)
    return arrays, meta


def _bit_names(meta) -> list[str]:
    return meta.get("legend", {}).get("decisions", {}).get("bits", [])


def _classes(masks: np.ndarray, names: list[str]) -> tuple:
    c = Counter()
    for m in masks:
        hit = [n for i, n in enumerate(names) if int(m) >> i & 1]
        # the most specific decision names the class: specials first, then geometry
        c[_primary(hit)] += 1
    return tuple(sorted(c.items(), key=lambda kv: -kv[1]))


_ORDER = ("nan", "inf", "neg-zero", "zero", "negative", "double-rounding", "tie-overflow", "far-overflow",
          "above-max", "tie", "underflow", "input-subnormal", "near-tie-below", "near-tie-above", "near-exact",
          "subnormal-output", "exact", "inexact")


def _primary(hit: list[str]) -> str:
    for n in _ORDER:
        if n in hit:
            return n
    return hit[0] if hit else "unclassified"


def _check_cast(name: str, arrays: dict, meta: dict, impl: Callable, modes: Iterable[str] | None):
    opts = meta["options"]
    x = arrays["x"]
    fam = arrays["family"]
    masks = arrays["decisions"]
    names = _bit_names(meta)
    width = 2 * x.dtype.itemsize
    xb = np.ascontiguousarray(x).view({2: np.uint16, 4: np.uint32, 8: np.uint64}[x.dtype.itemsize])
    for tok in opts["modes"]:
        mode = opts["mode_names"][tok]
        if modes is not None and tok not in modes and mode not in modes:
            continue
        exp = arrays[f"expected_{tok}"]
        try:
            got = impl(x, opts["format"], mode, dict(opts["resolved_policies"]))
        except NotImplementedError as e:
            got, why = None, str(e) or "not implemented"
        else:
            why = "no such cast in this implementation"
        if got is None:
            for k, f in enumerate(meta["families"]):
                yield CaseResult(name, tok, f, int((fam == k).sum()), 0, skipped=why)
            continue
        got = np.asarray(got).reshape(-1).astype(np.int64)
        if got.shape != exp.shape:
            raise ValueError(f"{name} {tok}: the implementation returned {got.size} codes for {exp.size} inputs")
        bad = got != exp
        for k, f in enumerate(meta["families"]):
            sel = fam == k
            idx = np.flatnonzero(sel & bad)
            ex = tuple((format(int(xb[i]), f"0{width}X"), int(exp[i]), int(got[i])) for i in idx[:4])
            yield CaseResult(name, tok, f, int(sel.sum()), int(idx.size), _classes(masks[idx], names), ex)


def check_directory(directory, impl: Callable, *, only: str | None = None, modes=None) -> list[CaseResult]:
    """Run ``impl`` on every cast vector of ``directory`` (``only``: a vector-name prefix; ``modes``: mode tokens
    or names to run) and return one :class:`CaseResult` per (vector, mode, family)."""
    d = pathlib.Path(directory)
    m = load_manifest(d)
    out = []
    for rel, entry in sorted(m["files"].items()):
        if entry["format"] != "npz" or (only and not entry["vector"].startswith(only)):
            continue
        arrays, meta = load_npz(d / rel)
        if meta["kind"] == "cast":
            out += list(_check_cast(entry["vector"], arrays, meta, impl, modes))
    return out


def summarize(results: list[CaseResult], *, show_passing: bool = False) -> str:
    """A plain-text table: one line per (vector, mode, family) that failed (or every line), then totals."""
    lines = []
    for r in results:
        if r.skipped is not None:
            continue
        if r.passed and not show_passing:
            continue
        status = "pass" if r.passed else \
            f"{r.mismatches}/{r.cases} differ: " + ", ".join(f"{cls} {n}" for cls, n in r.classes)
        lines.append(f"{r.vector:<36} {r.mode:<4} {r.family:<16} {status}")
        for bits, e, g in r.examples[:2]:
            lines.append(f"{'':<36} {'':<4} {'':<16}   input {bits}: expected {e:#x}, got {g:#x}")
    ran = [r for r in results if r.skipped is None]
    cases = sum(r.cases for r in ran)
    bad = sum(r.mismatches for r in ran)
    fails = sum(1 for r in ran if not r.passed)
    skipped = sum(1 for r in results if r.skipped is not None)
    cls = Counter()
    for r in ran:
        for c, n in r.classes:
            cls[c] += n
    lines.append(f"{len(ran)} (vector, mode, family) groups run, {fails} with mismatches; {cases} cases, "
                 f"{bad} mismatches" + (f" ({', '.join(f'{c}: {n}' for c, n in cls.most_common())})" if bad else "")
                 + (f"; {skipped} groups skipped (no such cast)" if skipped else ""))
    return "\n".join(lines)


# --- implementations -------------------------------------------------------------------------------------------
def _fp4ref_impl(x, fmt, rounding, policies):
    """fp4ref.encode under the vector's policies."""
    import fp4ref
    return fp4ref.encode(x, fmt, rounding, **policies)


_ML = {"e2m1": "float4_e2m1fn", "e2m3": "float6_e2m3fn", "e3m2": "float6_e3m2fn", "e4m3": "float8_e4m3fn",
       "e5m2": "float8_e5m2", "e8m0": "float8_e8m0fnu"}


def _ml_dtypes_impl(x, fmt, rounding, policies):
    """ml_dtypes ``astype`` (round-to-nearest-even only; its own NaN/overflow policies)."""
    if rounding != "nearest-even" or fmt not in _ML or not hasattr(ml_dtypes, _ML[fmt]):
        return None
    with np.errstate(all="ignore"):
        return np.asarray(x).astype(getattr(ml_dtypes, _ML[fmt])).view(np.uint8)


BUILTIN_IMPLS = {"fp4ref": _fp4ref_impl, "ml_dtypes": _ml_dtypes_impl}


def resolve_impl(spec: str) -> Callable:
    """A built-in implementation name (fp4ref, ml_dtypes) or ``module:function`` (imported): a callable
    ``impl(x, fmt, rounding, policies) -> uint8 codes | None``."""
    if spec in BUILTIN_IMPLS:
        return BUILTIN_IMPLS[spec]
    if ":" not in spec:
        raise ValueError(f"unknown implementation {spec!r}: use one of {', '.join(BUILTIN_IMPLS)} or "
                         f"module:function")
    mod, attr = spec.split(":", 1)
    fn = getattr(importlib.import_module(mod), attr, None)
    if not callable(fn):
        raise ValueError(f"{spec}: {mod} has no callable {attr!r}")
    return fn
