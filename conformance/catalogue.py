"""The case catalogue: families of inputs, each aimed at decisions the semantics make, and the vectors built
from them.

A *family* is a rule that builds the inputs probing one group of decisions (every tie, every amax at 2^k, ...)
for a given target (an element format and input dtype, or a block recipe). A *vector* is one target with all of
its families: the inputs, the expected outputs under each rounding mode or recipe, and the coverage record of
which decisions each family reached. The generator refuses a family whose expected outputs are all one code or
which never reaches a decision it targets (:class:`DegenerateFamily`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["Family", "Vector", "DegenerateFamily", "register", "families", "get_family", "KINDS"]

KINDS = ("cast", "scale", "block", "sr", "packing")


class DegenerateFamily(ValueError):
    """A family whose vector would test nothing: one output code only, or a target decision never reached."""


@dataclass(frozen=True)
class Family:
    """name: unique within its kind; decisions: every decision it can target (the builder says which apply to
    a given target); doc: what the inputs are; build: the kind's builder (see the kind's module)."""
    kind: str
    name: str
    decisions: tuple[str, ...]
    doc: str
    build: Callable = field(repr=False, compare=False)
    levels: tuple[int, ...] = (1, 2)


@dataclass(frozen=True, eq=False)
class Vector:
    """One target's cases. ``arrays`` are written as they are (insertion order = file order); ``coverage`` maps
    family → {"cases", "targets", "reached": {decision: count}}; ``options`` is the JSON-able target (format,
    dtype, policies, modes or recipe); ``legend`` names what integer arrays encode (decision bit names)."""
    name: str
    kind: str
    options: dict
    families: tuple[str, ...]
    arrays: dict
    coverage: dict
    legend: dict = field(default_factory=dict)

    @property
    def stem(self) -> str:
        return self.name.split("/", 1)[1]


_FAMILIES: dict[tuple[str, str], Family] = {}


def register(f: Family) -> Family:
    if f.kind not in KINDS:
        raise ValueError(f"family kind {f.kind!r} is not one of {', '.join(KINDS)}")
    key = (f.kind, f.name)
    if key in _FAMILIES:
        raise ValueError(f"family {f.kind}/{f.name} already registered")
    _FAMILIES[key] = f
    return f


def families(kind: str | None = None) -> list[Family]:
    """Registered families (of one kind, or all), in registration order."""
    _load_all()
    return [f for f in _FAMILIES.values() if kind is None or f.kind == kind]


def get_family(kind: str, name: str) -> Family:
    _load_all()
    try:
        return _FAMILIES[(kind, name)]
    except KeyError:
        names = ", ".join(n for k, n in _FAMILIES if k == kind)
        raise ValueError(f"unknown {kind} family {name!r}; valid: {names}") from None


def _load_all() -> None:
    from . import block_cases, cast_cases, packing_cases, sr_cases  # noqa: F401  (register their families)


def check_family(vector_name: str, family: str, expected: dict, reached: dict, targets) -> None:
    """Refuse a degenerate family: all outputs one code under some mode/recipe, or a target never reached."""
    for label, codes in expected.items():
        c = np.asarray(codes)
        if c.size and (c == c.reshape(-1)[0]).all():
            raise DegenerateFamily(f"{vector_name}: family {family!r} gives only code {int(c.reshape(-1)[0])} "
                                   f"under {label}")
    # a target "a|b|c" is reached when any of its alternatives is (recipes differ in how they clamp)
    missing = [d for d in targets if not any(reached.get(alt) for alt in d.split("|"))]
    if missing:
        raise DegenerateFamily(f"{vector_name}: family {family!r} never reaches {', '.join(missing)}")
