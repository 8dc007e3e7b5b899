import click

from fp4ref import formats as F


def _num(v):
    return "-" if v is None else f"{v:.6g}"


@click.command("formats")
@click.argument("name", required=False)
@click.option("--values", is_flag=True, help="list every code with its bits and value")
def formats_cmd(name, values):
    """The table of formats, or one format's details."""
    try:
        fmts = [F.get(name)] if name else F.all_formats()
    except ValueError as e:
        raise click.UsageError(str(e))
    if not values:
        click.echo(f"{'name':<14}{'bits':>5}{'E':>3}{'M':>3}{'bias':>6}{'max':>14}{'min normal':>13}"
                   f"{'min subnorm':>13}  specials / description")
        for f in fmts:
            em = (f.ebits, f.mbits) if f.kind == "float" else ("-", "-")
            bias = f.bias if f.kind == "float" else "-"
            click.echo(f"{f.name:<14}{f.bits:>5}{em[0]:>3}{em[1]:>3}{bias:>6}{_num(f.max):>14}"
                       f"{_num(f.min_normal):>13}{_num(f.min_subnormal):>13}  {f.specials}; {f.description}")
        return
    for f in fmts:
        click.echo(f"{f.name}: {f.description} [{f.source}]")
        width = (f.bits + 3) // 4
        for c in range(f.n_codes):
            click.echo(f"  0x{c:0{width}X}  {c:0{f.bits}b}  {float(f.values[c])!r}")
