"""`fp4ref check` and `fp4ref identify`: compare a kernel's dump with fp4ref, or find the configuration that
produced it. Exit codes: 0 bit-exact (identify: an exact configuration found), 1 mismatch (none found), 2 usage or
input error."""
import ast
import json
import math
import sys

import click
import numpy as np

from fp4ref import io
from fp4ref.check import CheckInputError, TensorRef, check_cast, check_quantized
from fp4ref.identify import identify_cast, identify_quantized

_BIT_TYPES = ["bfloat16", "float16", "float32"]


class InputError(click.ClickException):
    """A file or its contents cannot be used as described: exit status 2, like a usage error."""
    exit_code = 2

    def show(self, file=None):
        click.echo(f"fp4ref: error: {self.format_message()}", err=True)


def _shape(text):
    if text is None:
        return None
    try:
        return tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a shape (e.g. 128,64)")


def _ref(spec, dtype=None, shape=None, input_dtype=None, like=None, what="tensor"):
    """A TensorRef for a spec. A raw file without --dtype/--shape is read as uint8 codes whose count decides the
    shape: ``like`` (x's shape) or, packed, its last axis halved."""
    if spec is None:
        return None
    s = io.parse_spec(spec)
    if s.kind == "raw" and shape is None:
        if like is None:
            raise InputError(f"{spec}: a raw {what} needs --dtype and --shape")
        n = s.path.stat().st_size
        packed = (*like[:-1], -(-like[-1] // 2)) if like else like
        if n == math.prod(like):
            shape = like
        elif like and n == math.prod(packed):
            shape = packed
        else:
            raise InputError(f"{spec}: {n} bytes fit neither {like} codes nor {packed} packed FP4 codes")
        dtype = dtype or "uint8"
    return TensorRef(spec, dtype, shape, input_dtype)


def _whole(spec, dtype="uint8"):
    """Read a small tensor (scales, a global scale) whole; a raw file is 1-D of ``dtype``."""
    s = io.parse_spec(spec)
    if s.kind == "raw":
        size = s.path.stat().st_size // np.dtype(dtype).itemsize
        return io.read_tensor(spec, dtype=dtype, shape=(size,))
    return io.read_tensor(spec)


def _global_scale(text):
    if text is None:
        return None
    try:
        return float.fromhex(text) if text.strip().lower().lstrip("+-").startswith("0x") else float(text)
    except ValueError:
        return _whole(text, "float32")


def _literal(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _overrides(options):
    out = {}
    for o in options:
        key, sep, value = o.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{o!r} is not KEY=VALUE", param_hint="--option")
        out[key.strip().replace("-", "_")] = _literal(value.strip())
    return out


def _progress(quiet):
    if quiet or not sys.stderr.isatty():
        return None

    def show(done, total):
        click.echo(f"\rfp4ref: {done}/{total} rows ({100 * done // max(total, 1)}%)", err=True, nl=done >= total)
    return show


def _input_options(f):
    for opt in reversed([
        click.option("--input", "-i", "input_spec", required=True, metavar="X",
                     help="input tensor: file.npy | file.npz:key | file.safetensors:key | raw file"),
        click.option("--input-dtype", type=click.Choice(_BIT_TYPES), default=None,
                     help="reinterpret the input's integer bits as this type (bfloat16 dumped as uint16)"),
        click.option("--dtype", default=None, help="raw input: the stored dtype (e.g. float32, uint16)"),
        click.option("--shape", default=None, help="raw input: its shape, e.g. 128,64"),
        click.option("--codes", "-c", "codes_spec", default=None, metavar="C",
                     help="element codes: unpacked (x's shape) or packed two FP4 codes per byte"),
        click.option("--values", "values_spec", default=None, metavar="V",
                     help="the vendor's dequantized values instead of codes (and scales)"),
        click.option("--values-dtype", type=click.Choice(_BIT_TYPES), default=None,
                     help="reinterpret the values' integer bits as this type"),
        click.option("--scales", "-s", "scales_spec", default=None, metavar="S", help="block scale codes (uint8)"),
        click.option("--global-scale", "-g", default=None, metavar="G",
                     help="the vendor's tensor scale: a number or a tensor file"),
        click.option("--axis", type=int, default=None, help="blocked axis (default -1)"),
        click.option("--packed/--unpacked", default=None, help="codes packed or not (default: from the shapes)"),
        click.option("--json", "json_path", default=None, metavar="REPORT",
                     help="also write the report as JSON (- : only JSON, on stdout)"),
        click.option("--quiet", "-q", is_flag=True, help="no progress line"),
    ]):
        f = opt(f)
    return f


def _read_inputs(input_spec, input_dtype, dtype, shape, codes_spec, values_spec, values_dtype, scales_spec,
                 global_scale):
    x = TensorRef(input_spec, dtype, _shape(shape), input_dtype)
    x_shape = tuple(x.open().shape)
    codes = _ref(codes_spec, like=x_shape, what="codes file")
    raw_values = values_spec is not None and io.parse_spec(values_spec).kind == "raw"
    values = _ref(values_spec, dtype=dtype if raw_values else None, shape=x_shape if raw_values else None,
                  input_dtype=values_dtype)
    scales = _whole(scales_spec) if scales_spec else None
    return x, codes, values, scales, _global_scale(global_scale)


def _finish(report_dict, json_path):
    if json_path:
        text = json.dumps(report_dict, indent=2)
        if json_path == "-":
            click.echo(text)
        else:
            with open(json_path, "w") as fh:
                fh.write(text + "\n")


@click.command("check", context_settings={"show_default": True})
@_input_options
@click.option("--format", "-f", "fmt", default=None, help="element cast: the format (see `fp4ref formats`)")
@click.option("--recipe", "-R", default=None, help="block quantization: the recipe (see `fp4ref recipes`)")
@click.option("--rounding", "-r", default=None, help="rounding mode (cast default nearest-even; recipe: its own)")
@click.option("--overflow", default=None, help="saturate | nan | inf")
@click.option("--nan", default=None, help="NaN policy (see fp4ref.encode)")
@click.option("--neg-zero", default=None, help="keep | positive")
@click.option("--negative", default=None, help="unsigned formats: nan | abs | raise")
@click.option("--zero", default=None, help="formats without zero (e8m0): nan | min | raise")
@click.option("--e8m0-subnormal", default=None, help="e8m0: round | up")
@click.option("--rbits", "rbits_spec", default=None, metavar="R", help="stochastic rounding: the random bits")
@click.option("--rbits-width", type=int, default=None, help="stochastic rounding: random bits per element")
@click.option("--lanes", default=None, help="stochastic rounding: lane map of packed 32-bit rbits words")
@click.option("--nibble-order", type=click.Choice(["low", "high"]), default="low",
              help="packed FP4: which nibble holds element 0")
@click.option("--scale-layout", type=click.Choice(["linear", "swizzled"]), default="linear",
              help="block scales: the grid in C order, or cuBLAS 128x4 tiles")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="override a recipe option (repeatable), e.g. -o scale_rule=rceil")
@click.option("--examples", "-n", type=int, default=10, help="mismatches to show (and keep in JSON)")
def check_cmd(input_spec, input_dtype, dtype, shape, codes_spec, values_spec, values_dtype, scales_spec,
              global_scale, axis, packed, json_path, quiet, fmt, recipe, rounding, overflow, nan, neg_zero, negative,
              zero, e8m0_subnormal, rbits_spec, rbits_width, lanes, nibble_order, scale_layout, options, examples):
    """Compare a dump (codes, scales, global scale, or values) with fp4ref and diagnose every mismatch.

    \b
    Element casts:       fp4ref check --format e2m1 --input X --codes C [--rounding ...] [--nan ...]
    Block quantization:  fp4ref check --recipe te-nvfp4 --input X --codes C --scales S [--global-scale G]
    """
    if (fmt is None) == (recipe is None):
        raise click.UsageError("give --format (element cast) or --recipe (block quantization)")
    if (codes_spec is None) == (values_spec is None):
        raise click.UsageError("give --codes or --values")
    try:
        x, codes, values, scales, gs = _read_inputs(input_spec, input_dtype, dtype, shape, codes_spec, values_spec,
                                                   values_dtype, scales_spec, global_scale)
        rbits = _ref(rbits_spec, what="rbits file") if rbits_spec else None
        policies = {"overflow": overflow, "nan": nan, "neg_zero": neg_zero}
        if fmt is not None:
            if scales is not None or gs is not None or options:
                raise click.UsageError("--scales, --global-scale and --option belong to --recipe")
            report = check_cast(x, codes, fmt, rounding or "nearest-even", values=values, packed=packed,
                                nibble_order=nibble_order, rbits=rbits, max_examples=examples,
                                progress=_progress(quiet), negative=negative, zero=zero,
                                e8m0_subnormal=e8m0_subnormal, rbits_width=rbits_width, lanes=lanes, **policies)
        else:
            if negative or zero or e8m0_subnormal or rbits_width or lanes:
                raise click.UsageError("--negative, --zero, --e8m0-subnormal, --rbits-width and --lanes belong to "
                                       "--format (element casts)")
            over = {k: v for k, v in {"rounding": rounding, **policies}.items() if v is not None}
            over.update(_overrides(options))
            report = check_quantized(x, codes, scales, recipe, global_scale=gs, values=values,
                                     axis=-1 if axis is None else axis, rbits=rbits, packed=packed,
                                     nibble_order=nibble_order, scale_layout=scale_layout, max_examples=examples,
                                     progress=_progress(quiet), **over)
    except (io.TensorFileError, CheckInputError) as e:
        raise InputError(str(e))
    except (ValueError, TypeError) as e:
        raise click.UsageError(str(e))
    if json_path != "-":
        click.echo(report.format())
    _finish(report.to_dict(), json_path)
    sys.exit(0 if report.match else 1)


@click.command("identify", context_settings={"show_default": True})
@_input_options
@click.option("--format", "-f", "formats", multiple=True, help="element cast: only these formats (repeatable)")
@click.option("--recipe", "-R", "recipes", multiple=True, help="only these recipes (repeatable)")
@click.option("--blocks", is_flag=True, help="--values come from block quantization (search recipes)")
@click.option("--nibble-order", type=click.Choice(["low", "high"]), default=None,
              help="packed FP4 reading (default: both tried)")
@click.option("--scale-layout", type=click.Choice(["linear", "swizzled"]), default=None,
              help="scale reading (default: both tried)")
@click.option("--top", type=int, default=3, help="closest configurations to show when none is exact")
@click.option("--sample", type=int, default=1 << 16, help="elements the search runs on (then verified on all)")
def identify_cmd(input_spec, input_dtype, dtype, shape, codes_spec, values_spec, values_dtype, scales_spec,
                 global_scale, axis, packed, json_path, quiet, formats, recipes, blocks, nibble_order, scale_layout,
                 top, sample):
    """Search formats, recipes and options for the configurations that reproduce a dump exactly.

    \b
    fp4ref identify --input X --codes C                 (element casts)
    fp4ref identify --input X --codes C --scales S      (block quantization)
    """
    if (codes_spec is None) == (values_spec is None):
        raise click.UsageError("give --codes or --values")
    try:
        x, codes, values, scales, gs = _read_inputs(input_spec, input_dtype, dtype, shape, codes_spec, values_spec,
                                                   values_dtype, scales_spec, global_scale)
        xa = x.open()
        ca = None if codes is None else codes.open()
        va = None if values is None else values.open()
        if scales is not None or recipes or blocks or gs is not None:
            result = identify_quantized(xa, ca, scales, global_scale=gs, values=va, recipes=recipes or None,
                                        axis=axis, packed=packed, nibble_order=nibble_order,
                                        scale_layout=scale_layout, sample=sample, top=top)
        else:
            result = identify_cast(xa, ca, values=va, formats=formats or None, packed=packed,
                                   nibble_order=nibble_order, sample=sample, top=top)
    except (io.TensorFileError, CheckInputError) as e:
        raise InputError(str(e))
    except (ValueError, TypeError) as e:
        raise click.UsageError(str(e))
    if json_path != "-":
        click.echo(result.format())
    base = ["fp4ref", "check", "--input", input_spec]
    for flag, val in (("--input-dtype", input_dtype), ("--dtype", dtype), ("--shape", shape),
                      ("--codes", codes_spec), ("--values", values_spec), ("--values-dtype", values_dtype),
                      ("--scales", scales_spec), ("--global-scale", global_scale)):
        if val is not None:
            base += [flag, val]
    best = (result.exact or result.closest)[:1]
    for c in best:
        if json_path != "-":
            click.echo("reproduce: " + " ".join(_quote(a) for a in base + c.args()))
    _finish(result.to_dict(), json_path)
    sys.exit(0 if result.exact else 1)


def _quote(a: str) -> str:
    return a if all(ch.isalnum() or ch in "-_.=:/,+" for ch in a) else "'" + a.replace("'", "'\\''") + "'"
