"""Element and scale formats as data.

One frozen :class:`Format` per format; every bit-level function takes a Format as an argument (as gfloat's
``FormatInfo``). Numbers and sources: OCP Microscaling Formats (MX) v1.0 (2023), §5 tables; PTX ISA 8.7+
(``cvt`` with ``.e2m1x2/.e2m3x2/.e3m2x2/.ue8m0x2``); NVIDIA NVFP4 (UE4M3 scales as in TransformerEngine);
UE5M3 variants as listed in docs/semantics.md.

Layouts:
- ``kind="float"``: sign (if ``signed``), ``ebits`` exponent bits, ``mbits`` mantissa bits. Exponent field 0 is
  subnormal when ``subnormals`` (else it is an ordinary binade, as E8M0's 2^-127). Codes above ``max_code`` in
  magnitude are the specials (NaN, Inf) or unused.
- ``kind="int"``: two's complement integer ``n`` times ``2**-frac_bits`` (MXINT8 is n/64; INT4 is n).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

__all__ = ["Format", "get", "names", "all_formats", "register"]


@dataclass(frozen=True)
class Format:
    name: str
    kind: str                     # "float" | "int"
    bits: int                     # storage bits of one code
    ebits: int = 0
    mbits: int = 0
    bias: int = 0
    signed: bool = True
    subnormals: bool = True
    has_zero: bool = True
    max_code: int = 0             # largest finite code of magnitude (sign bit clear)
    nan_code: int | None = None   # canonical positive NaN code, None if the format has no NaN
    inf_code: int | None = None   # +Inf code, None if the format has no Inf
    frac_bits: int = 0            # kind="int": value = n * 2**-frac_bits
    int_min_used: bool = False    # kind="int": whether the most negative code (e.g. 0x80 = -2.0) is produced
    code_limit: int | None = None # largest valid code (None: every code of `bits` bits); larger codes are invalid
    aliases: tuple[str, ...] = ()
    description: str = ""
    source: str = ""
    values: np.ndarray = field(default=None, repr=False, compare=False)  # decode table (float64, 2**bits)

    # --- derived numbers -------------------------------------------------------------------------------------
    @property
    def emin(self) -> int:
        """Exponent of the smallest normal binade (float kinds)."""
        return 1 - self.bias if self.subnormals else -self.bias

    @property
    def sign_bit(self) -> int:
        return (1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> float:
        return float(self.values[self.max_code])

    @property
    def max_neg(self) -> float:
        """Largest magnitude of a negative finite value (differs from max for MXINT8 with -2.0 in use)."""
        if not self.signed:
            return 0.0
        if self.kind == "int" and self.int_min_used:
            return float(2 ** (self.bits - 1)) * 2.0 ** -self.frac_bits
        return self.max

    @property
    def min_normal(self) -> float:
        if self.kind == "int":
            return 2.0 ** -self.frac_bits
        return 2.0 ** self.emin

    @property
    def min_subnormal(self) -> float | None:
        if self.kind == "int":
            return 2.0 ** -self.frac_bits
        if not self.subnormals:
            return None
        return 2.0 ** (self.emin - self.mbits)

    @property
    def emax(self) -> int:
        """Exponent of the largest binade holding a finite value (OCP MX 'emax_elem' for the FLOOR rule)."""
        if self.kind == "int":
            return int(np.floor(np.log2(self.max)))
        return int(np.frexp(self.max)[1]) - 1

    @property
    def n_codes(self) -> int:
        """Number of valid codes (UE4M3 stores 8 bits but only 0x00-0x7F are codes)."""
        return (self.code_limit + 1) if self.code_limit is not None else (1 << self.bits)

    @property
    def has_nan(self) -> bool:
        return self.nan_code is not None

    @property
    def has_inf(self) -> bool:
        return self.inf_code is not None

    @property
    def specials(self) -> str:
        parts = []
        if self.nan_code is not None:
            nans = [c for c in range(self.n_codes) if np.isnan(self.values[c])]
            parts.append("NaN " + ",".join(f"0x{c:0{(self.bits + 3) // 4}X}" for c in nans))
        if self.inf_code is not None:
            parts.append(f"Inf 0x{self.inf_code:02X}")
        if not self.has_zero:
            parts.append("no zero")
        return "; ".join(parts) or "none"

    def exact_value(self, code: int) -> Fraction | None:
        """The exact value of ``code`` as a Fraction (None for NaN/Inf/unused codes).

        Computed from the bit fields alone, independently of the float decode table, so tests can hold the two
        side by side.
        """
        code = int(code)
        if not 0 <= code < self.n_codes:
            raise ValueError(f"code {code} out of range for {self.name} (0..{self.n_codes - 1})")
        if self.kind == "int":
            n = code - (1 << self.bits) if code & self.sign_bit else code
            if n == -(1 << (self.bits - 1)) and not self.int_min_used:
                return None
            return Fraction(n, 1 << self.frac_bits)
        neg = bool(code & self.sign_bit)
        mag = code & ~self.sign_bit & ((1 << self.bits) - 1)
        if mag > self.max_code:
            return None
        e_field = mag >> self.mbits
        m_field = mag & ((1 << self.mbits) - 1)
        if e_field == 0 and self.subnormals:
            v = Fraction(m_field, 1 << self.mbits) * Fraction(2) ** (1 - self.bias)
        else:
            v = (1 + Fraction(m_field, 1 << self.mbits)) * Fraction(2) ** (e_field - self.bias)
        return -v if neg else v


def _decode_table(f: Format) -> np.ndarray:
    n = 1 << f.bits
    out = np.empty(f.n_codes, dtype=np.float64)
    for code in range(f.n_codes):
        if f.kind == "int":
            v = f.exact_value(code)
            out[code] = np.nan if v is None else float(v)
            continue
        mag = code & ~f.sign_bit & (n - 1)
        sign = -1.0 if code & f.sign_bit else 1.0
        if f.inf_code is not None and mag == f.inf_code:
            out[code] = sign * np.inf
        elif mag > f.max_code:
            out[code] = np.nan
        else:
            e_field, m_field = mag >> f.mbits, mag & ((1 << f.mbits) - 1)
            if e_field == 0 and f.subnormals:
                out[code] = sign * np.ldexp(float(m_field), 1 - f.bias - f.mbits)
            else:
                out[code] = sign * np.ldexp(float((1 << f.mbits) + m_field), e_field - f.bias - f.mbits)
    out.setflags(write=False)
    return out


_REGISTRY: dict[str, Format] = {}
_ORDER: list[str] = []


def register(f: Format) -> Format:
    """Add a format to the registry (its decode table is derived from the fields)."""
    f = Format(**{**f.__dict__, "values": None})
    object.__setattr__(f, "values", _decode_table(f))
    for key in (f.name, *f.aliases):
        k = key.lower()
        if k in _REGISTRY:
            raise ValueError(f"format name {key!r} already registered")
        _REGISTRY[k] = f
    _ORDER.append(f.name)
    return f


def get(name: str | Format) -> Format:
    """Look a format up by name or alias (case-insensitive); a Format passes through."""
    if isinstance(name, Format):
        return name
    if not isinstance(name, str):
        raise TypeError(f"fmt must be a format name or Format, got {type(name).__name__}")
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; valid formats: {', '.join(names())}") from None


def names() -> list[str]:
    return list(_ORDER)


def all_formats() -> list[Format]:
    return [_REGISTRY[n.lower()] for n in _ORDER]


def _float(name, bits, ebits, mbits, bias, max_code, *, signed=True, nan_code=None, inf_code=None,
           subnormals=True, has_zero=True, code_limit=None, aliases=(), description="", source=""):
    return register(Format(name=name, kind="float", bits=bits, ebits=ebits, mbits=mbits, bias=bias,
                           signed=signed, subnormals=subnormals, has_zero=has_zero, max_code=max_code,
                           code_limit=code_limit,
                           nan_code=nan_code, inf_code=inf_code, aliases=aliases, description=description,
                           source=source))


_OCP = "OCP Microscaling Formats (MX) v1.0, §5.3"

E2M1 = _float("e2m1", 4, 2, 1, 1, 0x7, aliases=("fp4", "float4_e2m1fn", "mxfp4"),
              description="FP4: ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}; no Inf, no NaN", source=_OCP + ".3")
E2M3 = _float("e2m3", 6, 2, 3, 1, 0x1F, aliases=("fp6_e2m3", "float6_e2m3fn"),
              description="FP6, max 7.5; no Inf, no NaN", source=_OCP + ".3")
E3M2 = _float("e3m2", 6, 3, 2, 3, 0x1F, aliases=("fp6_e3m2", "float6_e3m2fn"),
              description="FP6, max 28; no Inf, no NaN", source=_OCP + ".3")
E4M3 = _float("e4m3", 8, 4, 3, 7, 0x7E, nan_code=0x7F, aliases=("e4m3fn", "float8_e4m3fn", "fp8_e4m3"),
              description="FP8 E4M3 (fn): max 448, NaN S.1111.111, no Inf", source=_OCP + ".2")
E5M2 = _float("e5m2", 8, 5, 2, 15, 0x7B, nan_code=0x7E, inf_code=0x7C, aliases=("float8_e5m2", "fp8_e5m2"),
              description="FP8 E5M2: IEEE-like, max 57344, ±Inf, NaN (canonical quiet NaN 0x7E)", source=_OCP + ".2")
E1M2 = _float("e1m2", 4, 1, 2, 0, 0x7, aliases=("fp4_e1m2",),
              description="4-bit uniform grid ±{0, 0.5, ..., 3.5} (1 exponent bit with subnormals, IEEE bias 0)",
              source="arXiv 2606.20381 (uniform 4-bit alternatives to E2M1)")
E8M0 = _float("e8m0", 8, 8, 0, 127, 0xFE, signed=False, nan_code=0xFF, subnormals=False, has_zero=False,
              aliases=("ue8m0", "float8_e8m0fnu"),
              description="MX scale: 2^(code-127), code 0 = 2^-127, 0xFF NaN; no sign, no zero",
              source=_OCP + ".1 (E8M0)")
UE4M3 = _float("ue4m3", 8, 4, 3, 7, 0x7E, signed=False, nan_code=0x7F, code_limit=0x7F,
               aliases=("nvfp4-scale",),
               description="NVFP4 block scale: E4M3 with sign bit 0 (codes 0x00-0x7F), max 448, 0x7F NaN",
               source="NVIDIA NVFP4 (TransformerEngine transformer_engine/common/cast/nvfp4/)")
UE5M3_61440 = _float("ue5m3-61440", 8, 5, 3, 15, 0xF7, signed=False, nan_code=0xFF, inf_code=0xF8,
                     aliases=("ue5m3-ieee",),
                     description="UE5M3 with the all-ones exponent reserved (IEEE-like: 0xF8 Inf, 0xF9-0xFF NaN), "
                                 "max 61440",
                     source="arXiv 2609.02846")
UE5M3_114688 = _float("ue5m3-114688", 8, 5, 3, 15, 0xFE, signed=False, nan_code=0xFF,
                      aliases=("ue5m3", "ue5m3-fn"),
                      description="UE5M3 with only 0xFF NaN, max 114688",
                      source="TransformerEngine PR #3325; AMD aiter")
UE5M3_122880 = _float("ue5m3-122880", 8, 5, 3, 15, 0xFF, signed=False,
                      aliases=("ue5m3-finite",),
                      description="UE5M3 with every code finite, max 122880, no NaN",
                      source="docs/semantics.md (all-codes-finite reading)")
E4M3_SCALE = _float("e4m3-scale", 8, 4, 3, 7, 0x7E, nan_code=0x7F, aliases=("e4m3-signed-scale",),
                    description="signed E4M3 used as a block scale by the FP4 design-space simulator",
                    source="Hu, Luschi & Balanca 2025 simulator (gfloat format_info_ocp_e4m3)")
E5M2_SCALE = _float("e5m2-scale", 8, 5, 2, 15, 0x7B, nan_code=0x7E, inf_code=0x7C, aliases=("e5m2-signed-scale",),
                    description="signed E5M2 used as a block scale by the FP4 design-space simulator",
                    source="Hu, Luschi & Balanca 2025 simulator (gfloat format_info_ocp_e5m2)")


def _int(name, bits, frac_bits, int_min_used, aliases=(), description="", source=""):
    return register(Format(name=name, kind="int", bits=bits, frac_bits=frac_bits, int_min_used=int_min_used,
                           max_code=(1 << (bits - 1)) - 1, aliases=aliases, description=description, source=source))


MXINT8 = _int("mxint8", 8, 6, False, aliases=("int8-mx",),
              description="MXINT8: two's complement n/64, symmetric ±127/64 (0x80 = -2.0 never produced)",
              source=_OCP + ".4; microxcaling (symmetric)")
MXINT8_M2 = _int("mxint8-m2", 8, 6, True, aliases=("mxint8-asym",),
                 description="MXINT8 with -2.0 (0x80) in use: range [-2, 127/64]",
                 source="gfloat format_info_ocp_int8")
INT4 = _int("int4", 4, 0, False, aliases=("int4-sym",),
            description="INT4: integers ±7 (0x8 = -8 never produced)", source="arXiv 2606.20381")
INT4_M8 = _int("int4-m8", 4, 0, True, aliases=("int4-asym",),
               description="INT4 with -8 (0x8) in use: range [-8, 7]", source="two's complement INT4")
