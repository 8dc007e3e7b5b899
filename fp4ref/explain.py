"""Why a value encodes to the code it does: neighbours, distances, tie, and the rule that decided."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from . import formats as _formats
from . import rounding as R
from .exact.cast import exact_encode, exact_neighbours


@dataclass(frozen=True)
class Explanation:
    value: float | Fraction
    format: str
    rounding: str
    code: int | None
    lower: tuple[Fraction, int | None] | None   # (value, code); code None = beyond max (overflow)
    upper: tuple[Fraction, int | None] | None
    tie: bool
    rule: str

    def __str__(self) -> str:
        f = _formats.get(self.format)
        width = (f.bits + 3) // 4

        def show(n):
            if n is None:
                return "-"
            v, c = n
            tag = "beyond max (overflow)" if c is None else f"code 0x{c:0{width}X}"
            return f"{float(v)!r} ({tag}), distance {float(abs(Fraction(self.value) - v))!r}"
        code = "error (policy raise)" if self.code is None else \
            f"0x{self.code:0{width}X} = {float(f.values[self.code])!r}"
        return "\n".join([
            f"{self.value!r} → {self.format} with {self.rounding}: {code}",
            f"  lower neighbour: {show(self.lower)}",
            f"  upper neighbour: {show(self.upper)}",
            f"  tie: {'yes' if self.tie else 'no'}",
            f"  rule: {self.rule}",
        ])


_RULES = {
    "nearest-even": "nearest; a tie goes to the neighbour whose code is even",
    "nearest-away": "nearest; a tie goes away from zero",
    "nearest-zero": "nearest; a tie goes toward zero",
    "toward-zero": "the neighbour nearer zero",
    "toward-positive": "the upper neighbour",
    "toward-negative": "the lower neighbour",
    "odd": "exact, else the neighbour whose code is odd",
}


def explain(x, fmt, rounding="nearest-even", **policies) -> Explanation:
    """Explain the encoding of one value (exact arithmetic; the policies as in :func:`fp4ref.encode`)."""
    f = _formats.get(fmt)
    mode = R.mode_name(rounding)
    code = exact_encode(x, f, mode, **policies)
    xf = float(x) if not isinstance(x, Fraction) else x
    if isinstance(xf, float) and (xf != xf or xf in (float("inf"), float("-inf")) or xf == 0):
        special = "NaN" if xf != xf else ("zero" if xf == 0 else "infinite")
        return Explanation(xf, f.name, mode, code, None, None, False,
                           f"{special} input: decided by the format's {special} policy, not by rounding")
    lower, upper, tie = exact_neighbours(Fraction(xf), f)
    rule = "exactly representable" if lower == upper else _RULES[mode]
    if lower != upper and (lower[1] is None or upper[1] is None):
        rule += f"; beyond max the overflow policy applies ({policies.get('overflow', 'saturate')})"
    return Explanation(xf, f.name, mode, code, lower, upper, tie, rule)
