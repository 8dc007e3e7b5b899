"""Argument parsing shared by the commands: values typed on the command line, and policy options."""
import click
import ml_dtypes
import numpy as np

DTYPES = {"float64": np.float64, "float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def parse_value(text: str) -> float:
    """A decimal, 'nan'/'-nan'/'inf', or a C99 hex float (0x1.8p+1)."""
    t = text.strip().lower()
    try:
        if t.lstrip("+-").startswith("0x"):
            return float.fromhex(t)
        return float(t)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a number (decimal, nan, inf or hex float like 0x1.8p+1)")


def parse_values(texts, dtype: str) -> np.ndarray:
    """Typed values rounded (RNE, by NumPy) to the input dtype; the cast then starts from that exact value."""
    return np.array([parse_value(t) for t in texts], np.float64).astype(DTYPES[dtype])


def policy_options(f):
    """The cast policies as click options (names and values as in fp4ref.encode)."""
    for opt in reversed([
        click.option("--format", "-f", "fmt", required=True, help="format name (see `fp4ref formats`)"),
        click.option("--rounding", "-r", default="nearest-even", show_default=True, help="rounding mode"),
        click.option("--overflow", default="saturate", show_default=True, help="saturate | nan | inf"),
        click.option("--nan", default=None, help="NaN policy (default: the format's; see fp4ref.encode)"),
        click.option("--neg-zero", default="keep", show_default=True, help="keep | positive"),
        click.option("--negative", default=None, help="unsigned formats: nan | raise"),
        click.option("--zero", default=None, help="formats without zero (e8m0): nan | min | raise"),
    ]):
        f = opt(f)
    return f


def policies(overflow, nan, neg_zero, negative, zero) -> dict:
    return dict(overflow=overflow, nan=nan, neg_zero=neg_zero, negative=negative, zero=zero)


def input_bits(a: np.ndarray) -> list[str]:
    width = a.dtype.itemsize * 2
    u = a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])
    return [f"0x{int(b):0{width}X}" for b in u]
