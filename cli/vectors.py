"""`fp4ref vectors`: generate, list, verify and check the conformance vectors (fp4ref.conformance)."""
import pathlib

import click


@click.group("vectors")
def vectors_cmd():
    """Golden vectors: generate them, list the case families, verify a directory, check an implementation."""


@vectors_cmd.command("generate")
@click.option("--level", type=click.IntRange(1, 2), default=1, show_default=True,
              help="1: small, every family (the committed vectors/); 2: large, on demand")
@click.option("--out", "out", type=click.Path(file_okay=False), required=True, help="output directory")
@click.option("--only", default=None, help="only vectors whose name starts with this (e.g. cast/e2m1)")
@click.option("--quiet", "-q", is_flag=True, help="do not print each vector's name")
def generate_cmd(level, out, only, quiet):
    """Write the level's vectors (.npz, .safetensors, .hex, .memh) and MANIFEST.json under OUT."""
    from fp4ref.conformance.generate import generate
    m = generate(level, out, only=only, progress=None if quiet else (lambda n: click.echo(n, err=True)))
    total = sum(f["bytes"] for f in m["files"].values())
    click.echo(f"{len(m['vectors'])} vectors, {len(m['files'])} files, {total} bytes in {out}")


@vectors_cmd.command("list")
@click.option("--kind", default=None, help="only this kind of family (cast, block, sr, hadamard, packing)")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="a vector directory: also print each family's coverage from its MANIFEST.json")
@click.option("--vectors", "show_vectors", is_flag=True, help="list the vectors of --dir instead")
def list_cmd(kind, directory, show_vectors):
    """The case families: what each holds and which decisions it targets (and reached, with --dir)."""
    from fp4ref.conformance.catalogue import families
    from fp4ref.conformance.manifest import family_coverage, load_manifest
    m = load_manifest(directory) if directory else None
    if show_vectors:
        if m is None:
            raise click.UsageError("--vectors needs --dir")
        for name, v in m["vectors"].items():
            if kind is None or v["kind"] == kind:
                click.echo(f"{name:<40} {v['cases'] if v['cases'] is not None else '':>7}  "
                           f"{', '.join(v['families'])}")
        return
    cov = family_coverage(m) if m else {}
    try:
        fams = families(kind)
    except ValueError as e:
        raise click.UsageError(str(e))
    for f in fams:
        click.echo(f"{f.kind}/{f.name} (levels {', '.join(map(str, f.levels))}): {f.doc}")
        click.echo(f"    targets: {', '.join(f.decisions)}")
        c = cov.get(f.kind, {}).get(f.name)
        if c:
            reached = ", ".join(f"{d} {n}" for d, n in sorted(c["reached"].items(), key=lambda kv: -kv[1]))
            click.echo(f"    in {c['vectors']} vectors, {c['cases']} cases; reached: {reached}")


@vectors_cmd.command("verify")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
def verify_cmd(directory):
    """Check DIRECTORY's files against its MANIFEST.json (sizes, SHA-256, missing and unlisted files)."""
    from fp4ref.conformance.manifest import verify
    try:
        r = verify(directory)
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e))
    click.echo(r.summary())
    if not r.clean:
        raise SystemExit(1)


@vectors_cmd.command("check")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--impl", required=True,
              help="fp4ref | ml_dtypes | module:function (impl(x, fmt, rounding, policies) -> uint8 codes or None)")
@click.option("--only", default=None, help="only vectors whose name starts with this")
@click.option("--mode", "modes", multiple=True, help="only these rounding modes (token or name; repeatable)")
@click.option("--all", "show_all", is_flag=True, help="print passing (vector, mode, family) groups too")
def check_cmd(directory, impl, only, modes, show_all):
    """Run an implementation on DIRECTORY's cast vectors; per vector, mode and family: pass, or how many cases
    differ and at which decisions (nan, tie, above-max, ...)."""
    from fp4ref.conformance.check import check_directory, resolve_impl, summarize
    try:
        fn = resolve_impl(impl)
    except (ValueError, ImportError) as e:
        raise click.UsageError(str(e))
    results = check_directory(pathlib.Path(directory), fn, only=only, modes=modes or None)
    click.echo(summarize(results, show_passing=show_all))
    if any(not r.passed and r.skipped is None for r in results):
        raise SystemExit(1)
