"""Assertions for other projects' test suites: fp4ref as the oracle of a kernel's output.

Each assertion runs :mod:`fp4ref.check` and, on any mismatch, raises an ``AssertionError`` whose message is the
check's report: counts, the first mismatches with their inputs and block context, and the diagnosis (classes
with their causes and the option that reproduces the kernel). pytest prints it as it is.

    from fp4ref.testing import assert_quantized_equal
    codes, scales = my_kernel(x)                       # packed FP4 codes, E8M0 scales
    assert_quantized_equal((codes, scales), x, "ocp-mxfp4")
"""
from __future__ import annotations

import numpy as np

from .check import CheckReport, check_cast, check_quantized

__all__ = ["assert_codes_equal", "assert_quantized_equal"]

__tracebackhide__ = True  # pytest: show the assertion's message, not these frames


def _fail(report: CheckReport, max_examples: int):
    lines = [f"{report.mismatches} mismatch(es) against fp4ref ({report.what})", "", report.format(max_examples)]
    raise AssertionError("\n".join(lines))


def assert_codes_equal(codes, x, fmt, rounding="nearest-even", *, values=None, packed=None, nibble_order="low",
                       rbits=None, max_examples: int = 10, **policies) -> CheckReport:
    """Assert that ``codes`` are ``fp4ref.encode(x, fmt, rounding, **policies)``.

    codes: uint8 codes, unpacked (x's shape) or FP4 packed along the last axis (``nibble_order``). Pass
    ``codes=None, values=...`` to compare decoded values instead. policies and rbits as in :func:`fp4ref.encode`.
    Returns the (matching) report.
    """
    __tracebackhide__ = True
    report = check_cast(np.asarray(x), None if codes is None else np.asarray(codes), fmt, rounding,
                        values=None if values is None else np.asarray(values), packed=packed,
                        nibble_order=nibble_order, rbits=rbits, max_examples=max_examples, **policies)
    if not report.match:
        _fail(report, max_examples)
    return report


def _parts(actual):
    """(codes, scales, global_scale, values) from a QuantizedTensor-like object, a tuple or a float array."""
    if isinstance(actual, np.ndarray):
        if actual.dtype.kind == "f":
            return None, None, None, actual
        raise TypeError("a bare array is taken as dequantized values and must be float; pass (codes, scales) for "
                        "codes")
    if isinstance(actual, tuple):
        if len(actual) not in (2, 3):
            raise TypeError(f"actual must be (codes, scales) or (codes, scales, global_scale), got {len(actual)} "
                            "items")
        return actual[0], actual[1], actual[2] if len(actual) == 3 else None, None
    if hasattr(actual, "codes") and hasattr(actual, "scales"):
        return actual.codes, actual.scales, getattr(actual, "global_scale", None), None
    raise TypeError(f"actual must be a (codes, scales[, global_scale]) tuple, an object with .codes/.scales, or "
                    f"a float array of dequantized values; got {type(actual).__name__}")


def assert_quantized_equal(actual, x, recipe="ocp-mxfp4", *, axis: int = -1, rbits=None, packed=None,
                           nibble_order="low", scale_layout="linear", max_examples: int = 10,
                           **overrides) -> CheckReport:
    """Assert that a kernel's block quantization of ``x`` equals ``fp4ref.quantize.quantize(x, recipe, ...)``.

    actual: ``(codes, scales)`` or ``(codes, scales, global_scale)``, an object with ``codes``/``scales``
    (and ``global_scale``) attributes, or a float array of dequantized values. codes may be FP4-packed
    (``nibble_order``); scales linear (the block grid) or ``scale_layout="swizzled"``. overrides: recipe
    options. Returns the (matching) report.
    """
    __tracebackhide__ = True
    codes, scales, gs, values = _parts(actual)
    report = check_quantized(
        np.asarray(x), None if codes is None else np.asarray(codes), None if scales is None else np.asarray(scales),
        recipe, global_scale=None if gs is None else np.asarray(gs), values=values, axis=axis, rbits=rbits,
        packed=packed, nibble_order=nibble_order, scale_layout=scale_layout, max_examples=max_examples, **overrides)
    if not report.match:
        _fail(report, max_examples)
    return report
