import click
import ml_dtypes
import numpy as np

from fp4ref import hadamard as H
from fp4ref import io

_OUT = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16, "float16": np.float16}


@click.command("hadamard")
@click.argument("input_spec", metavar="INPUT")
@click.option("--size", type=int, required=True, help="block length n (a power of two)")
@click.option("--signs", default=None, help="sign mask, bit i set = sign -1 (e.g. 0xD7E8, TE's wgrad RHT)")
@click.option("--seed", type=int, default=None, help="signs from this seed (fp4ref.hadamard.sign_vector)")
@click.option("--axis", type=int, default=-1, show_default=True)
@click.option("--inverse", is_flag=True)
@click.option("--out-dtype", type=click.Choice(list(_OUT)), default="float32", show_default=True)
@click.option("--mode", type=click.Choice(list(H.MODES)), default="exact", show_default=True,
              help="exact: once-rounded exact result; te: TransformerEngine's fp32-accumulation model")
@click.option("--input-dtype", default=None, help="reinterpret integer bits as bfloat16/float16/float32")
@click.option("--dtype", default=None, help="raw input: element dtype")
@click.option("--shape", default=None, help="raw input: shape, e.g. 64,128")
@click.option("--out", "out_path", required=True, help="output file (.npy, .npz, .safetensors)")
def hadamard_cmd(input_spec, size, signs, seed, axis, inverse, out_dtype, mode, input_dtype, dtype, shape,
                 out_path):
    """Block (random) Hadamard transform of INPUT along an axis, rounded once to --out-dtype."""
    try:
        shp = tuple(int(s) for s in shape.split(",")) if shape else None
        x = io.read_tensor(input_spec, dtype=dtype, shape=shp, input_dtype=input_dtype)
        if signs is not None and seed is not None:
            raise click.UsageError("give --signs or --seed, not both")
        sv = None
        if signs is not None:
            sv = H.sign_vector(size, mask=int(signs, 0))
        elif seed is not None:
            sv = H.sign_vector(size, seed=seed, blocks=x.size // size)
        y = H.hadamard(x, size, axis=axis, signs=sv, inverse=inverse, out_dtype=_OUT[out_dtype], mode=mode)
        if out_path.endswith((".npz", ".safetensors")):
            io.write_tensors(out_path, {"y": y if out_dtype != "bfloat16" or out_path.endswith(".safetensors")
                                        else y.view(np.uint16)})
        else:
            io.write_tensor(out_path, y.view(np.uint16) if out_dtype == "bfloat16" else y)
    except (ValueError, TypeError) as e:
        raise click.UsageError(str(e))
    click.echo(f"wrote {out_path}: {y.shape} {out_dtype}" + (" (bfloat16 stored as uint16 bits)"
                                                              if out_dtype == "bfloat16" and
                                                              not out_path.endswith(".safetensors") else ""))
