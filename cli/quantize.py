"""`fp4ref quantize`, `fp4ref dequantize` and `fp4ref recipes`: thin wrappers over fp4ref.quantize."""
import json

import click
import numpy as np

from ._args import DTYPES


def _option_value(text: str):
    """A --set value: JSON (numbers, null, true/false, [lists] → tuples), else the bare string."""
    try:
        v = json.loads(text)
    except json.JSONDecodeError:
        return text
    return tuple(v) if isinstance(v, list) else v


def _overrides(pairs) -> dict:
    out = {}
    for p in pairs:
        if "=" not in p:
            raise click.BadParameter(f"--set takes NAME=VALUE, got {p!r}")
        k, v = p.split("=", 1)
        out[k.strip().replace("-", "_")] = _option_value(v.strip())
    return out


@click.command("quantize")
@click.argument("input_spec", metavar="INPUT")
@click.option("--recipe", "-r", default="ocp-mxfp4", show_default=True, help="a recipe name (`fp4ref recipes`)")
@click.option("--out", "-o", required=True, help="output file: .npz or .safetensors")
@click.option("--axis", type=int, default=-1, show_default=True, help="the blocked axis (1-D blocks)")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
              help="override one recipe option, e.g. --set block=16 --set scale_rule=ceil (JSON values)")
@click.option("--global-amax", type=float, default=None, help="a calibrated tensor amax for the tensor scale")
@click.option("--input-dtype", type=click.Choice(["bfloat16", "float16", "float32"]), default=None,
              help="reinterpret a stored integer array of the same width as this float type")
def quantize_cmd(input_spec, recipe, out, axis, sets, global_amax, input_dtype):
    """Quantize the tensor INPUT (file.npy, file.npz[:key], file.safetensors[:key]) with a recipe.

    Writes codes (uint8, unpacked), scales (uint8 codes, linear block-grid layout), global_scale (if any) and
    the options that produced them (meta).
    """
    from fp4ref import io
    from fp4ref.quantize import quantize

    try:
        x = io.open_tensor(input_spec, input_dtype=input_dtype)
        q = quantize(x, recipe, axis=axis, global_amax=global_amax, **_overrides(sets))
        _write(q, out)
    except (ValueError, TypeError) as e:
        raise click.UsageError(str(e))
    click.echo(f"{out}: {q.recipe.name} {q.shape} {q.dtype} → codes {q.codes.shape}, scales {q.scales.shape}"
               + (f", global_scale {float(q.global_scale)!r} ({q.global_scale_convention})"
                  if q.global_scale is not None else ""))


def _write(q, out: str) -> None:
    from fp4ref import io
    if out.lower().endswith(".safetensors"):
        tensors = {"codes": q.codes, "scales": q.scales}
        if q.global_scale is not None:
            tensors["global_scale"] = np.asarray([q.global_scale])
        io.write_tensors(out, tensors, metadata={"fp4ref": json.dumps(q.meta())})
    elif out.lower().endswith(".npz"):
        q.save(out)
    else:
        raise ValueError(f"--out must end in .npz or .safetensors, got {out!r}")


def _read(path: str):
    from fp4ref import io
    from fp4ref.quantize import QuantizedTensor
    from fp4ref.recipes import Recipe

    if path.lower().endswith(".npz"):
        return QuantizedTensor.load(path)
    if path.lower().endswith(".safetensors"):
        from safetensors import safe_open
        with safe_open(path, framework="numpy") as f:
            meta = json.loads((f.metadata() or {}).get("fp4ref", "null") or "null")
        if meta is None:
            raise ValueError(f"{path} has no fp4ref metadata (write it with `fp4ref quantize`)")
        gs = io.read_tensor(f"{path}:global_scale")[0] if "global_scale" in io.list_tensors(path) else None
        return QuantizedTensor(codes=io.read_tensor(f"{path}:codes"), scales=io.read_tensor(f"{path}:scales"),
                               global_scale=gs, global_scale_convention=meta["global_scale_convention"],
                               recipe=Recipe.from_dict(meta["recipe"]), axis=int(meta["axis"]),
                               shape=tuple(meta["shape"]), dtype=meta["dtype"])
    raise ValueError(f"expected a .npz or .safetensors written by `fp4ref quantize`, got {path!r}")


@click.command("dequantize")
@click.argument("input_path", metavar="QUANTIZED")
@click.option("--out", "-o", required=True, help="output tensor file (.npy, .npz, .safetensors)")
@click.option("--dtype", type=click.Choice(list(DTYPES)), default="float32", show_default=True)
def dequantize_cmd(input_path, out, dtype):
    """Dequantize a file written by `fp4ref quantize` (code × scale × tensor decode factor, one rounding)."""
    from fp4ref import io
    from fp4ref.quantize import dequantize

    try:
        q = _read(input_path)
        x = dequantize(q, DTYPES[dtype])
        if out.lower().endswith(".npy"):
            io.write_tensor(out, x)
        else:
            io.write_tensors(out, {"x": x})
    except (ValueError, TypeError) as e:
        raise click.UsageError(str(e))
    click.echo(f"{out}: {x.shape} {x.dtype}")


@click.command("recipes")
@click.argument("name", required=False)
def recipes_cmd(name):
    """List the named recipes, or show every option and the source of one."""
    from fp4ref import recipes

    if name is None:
        click.echo(recipes.table())
        return
    try:
        r = recipes.get(name)
    except ValueError as e:
        raise click.UsageError(str(e))
    click.echo(f"{r.name}: {r.summary}")
    for k, v in r.options().items():
        click.echo(f"  {k:<16} {v!r}")
    click.echo(f"source: {r.source}")
    if r.notes:
        click.echo(f"notes: {r.notes}")
