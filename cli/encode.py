import click
import numpy as np

import fp4ref
from fp4ref import formats as F

from ._args import DTYPES, input_bits, parse_values, policies, policy_options


@click.command("encode", context_settings={"ignore_unknown_options": True})
@policy_options
@click.option("--dtype", "dtype", type=click.Choice(list(DTYPES)), default="float64", show_default=True,
              help="the typed values are first rounded (RNE) to this input dtype")
@click.option("--rbits", default=None,
              help="stochastic rounding: comma-separated random integers, one per value (with --lanes: packed "
                   "32-bit words, one per group of lanes)")
@click.option("--rbits-width", type=int, default=None, help="stochastic rounding: random bits per element")
@click.option("--lanes", default=None, help="stochastic rounding: lane map of packed --rbits words or Philox words "
                                            "(see fp4ref.stochastic.LANE_MAPS)")
@click.option("--seed", type=int, default=None, help="stochastic rounding: Philox4x32-10 bits from this seed")
@click.option("--offset", type=int, default=0, show_default=True, help="Philox offset (with --seed)")
@click.option("--subsequence", type=int, default=0, show_default=True, help="Philox subsequence (with --seed)")
@click.option("--offset-unit", type=click.Choice(["word", "block"]), default="word", show_default=True,
              help="Philox offset unit: curand words or TransformerEngine's 128-bit blocks")
@click.argument("values", nargs=-1, required=True, type=click.UNPROCESSED)
def encode_cmd(fmt, rounding, overflow, nan, neg_zero, negative, zero, dtype, rbits, rbits_width, lanes, seed,
               offset, subsequence, offset_unit, values):
    """Encode VALUES (decimal, nan, inf, hex float) and print code, bits and value."""
    try:
        f = F.get(fmt)
        x = parse_values(values, dtype)
        kw = policies(overflow, nan, neg_zero, negative, zero)
        if rbits is not None and seed is not None:
            raise ValueError("give either --rbits or --seed (Philox bits), not both")
        if rbits is not None:
            kw["rbits"] = np.array([int(t, 0) for t in rbits.split(",")], np.uint64)
        if seed is not None:
            from fp4ref.stochastic import PhiloxBits
            kw["rbits"] = PhiloxBits(seed, offset, subsequence, offset_unit)
        if rbits_width is not None:
            kw["rbits_width"] = rbits_width
        if lanes is not None:
            kw["lanes"] = lanes
        codes = fp4ref.encode(x, f, rounding, **kw)
    except (ValueError, TypeError) as e:
        raise click.UsageError(str(e))
    width = (f.bits + 3) // 4
    for xi, bits, c in zip(x, input_bits(x), codes):
        click.echo(f"{float(xi)!r:>24} [{bits}] → 0x{int(c):0{width}X} {int(c):0{f.bits}b}  "
                   f"{float(f.values[c])!r}")


@click.command("decode", context_settings={"ignore_unknown_options": True})
@click.option("--format", "-f", "fmt", required=True)
@click.argument("codes", nargs=-1, required=True)
def decode_cmd(fmt, codes):
    """Decode CODES (decimal or 0x hex) to exact values."""
    try:
        f = F.get(fmt)
        c = np.array([int(t, 0) for t in codes], np.int64)
        vals = fp4ref.decode(c, f, np.float64)
    except (ValueError, TypeError) as e:
        raise click.UsageError(str(e))
    width = (f.bits + 3) // 4
    for ci, v in zip(c, vals):
        click.echo(f"0x{int(ci):0{width}X} {int(ci):0{f.bits}b}  {float(v)!r}")
