"""The generator: build every vector of a level, write its files and the manifest.

``generate(level, out)`` is what ``fp4ref vectors generate --level N --out DIR`` runs. The output depends only
on the level and the fp4ref version: fixed seeds, a fixed target order, no timestamps, byte-stable writers.
Files listed in a previous MANIFEST.json of ``out`` that this run does not produce are removed (the generator
never touches other files).
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile

import numba

import fp4ref

from . import decisions as D
from .catalogue import families
from .levels import targets
from .writers import files_of

__all__ = ["generate", "build_vectors", "manifest_bytes", "MANIFEST"]

MANIFEST = "MANIFEST.json"
_BUILDERS = {}


def _builder(kind: str):
    if not _BUILDERS:
        from . import block_cases, cast_cases, packing_cases, sr_cases
        _BUILDERS.update(cast=cast_cases.build_vector, scale=block_cases.build_scale_vector,
                         block=block_cases.build_block_vector, sr=sr_cases.build_sr_vector,
                         packing=packing_cases.build_packing_vector)
    return _BUILDERS[kind]


def _kind_of(target) -> str:
    return target.name.split("/", 1)[0]


def _cases(v) -> int:
    if v.kind == "cast":
        return int(v.arrays["x"].shape[0])
    if v.kind == "scale":
        return int(v.arrays["amax"].shape[0])
    if v.kind == "sr":
        return int(v.arrays["x"].shape[0])
    return sum(c["cases"] for c in v.coverage.values())


def build_vectors(level: int, only: str | None = None):
    """The level's vectors in order (``only``: a prefix of vector names, e.g. 'cast/e2m1')."""
    for t in targets(level):
        if only is not None and not t.name.startswith(only):
            continue
        yield _builder(_kind_of(t))(t, level)


def _decision_docs() -> dict:
    from .packing_cases import PACKING_DECISION_DOC
    from .sr_cases import SR_DECISION_DOC
    return {"cast": dict(D.DECISION_DOC), "scale": dict(D.BLOCK_DECISION_DOC), "block": dict(D.BLOCK_DECISION_DOC),
            "sr": dict(SR_DECISION_DOC), "packing": dict(PACKING_DECISION_DOC)}


def _family_docs(level: int) -> dict:
    out: dict = {}
    for f in families():
        if level in f.levels:
            out.setdefault(f.kind, {})[f.name] = {"doc": f.doc, "decisions": list(f.decisions)}
    return out


def manifest_bytes(m: dict) -> bytes:
    """JSON with sorted keys, one line per entry of the top-level tables (diff-friendly, compact)."""
    def dump(v):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    keys = sorted(m)
    lines = ["{"]
    for i, k in enumerate(keys):
        end = "," if i < len(keys) - 1 else ""
        v = m[k]
        if isinstance(v, dict) and v:
            sub = sorted(v)
            lines.append(f" {dump(k)}: {{")
            lines += [f"  {dump(sk)}: {dump(v[sk])}{',' if j < len(sub) - 1 else ''}" for j, sk in enumerate(sub)]
            lines.append(" }" + end)
        else:
            lines.append(f" {dump(k)}: {dump(v)}{end}")
    lines.append("}")
    return ("\n".join(lines) + "\n").encode()


def _write(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def generate(level: int, out, *, only: str | None = None, progress=None) -> dict:
    """Write the level's vectors and MANIFEST.json under ``out``; returns the manifest."""
    # The vectors are small arrays: starting Numba's worker threads for each call costs more than it saves.
    prev = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return _generate(level, out, only, progress)
    finally:
        numba.set_num_threads(prev)


def _generate(level: int, out, only, progress) -> dict:
    out = pathlib.Path(out)
    version = fp4ref.__version__
    old = out / MANIFEST
    previous = set()
    if old.exists():
        previous = set(json.loads(old.read_text()).get("files", {}))
    vectors, files = {}, {}
    coverage: dict = {}
    for v in build_vectors(level, only):
        if progress:
            progress(v.name)
        written = files_of(v, version)
        for rel, data in written.items():
            _write(out / rel, data)
            files[rel] = {"vector": v.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                          "format": _file_format(rel)}
        vectors[v.name] = {"kind": v.kind, "options": v.options, "cases": _cases(v), "files": sorted(written),
                           "families": v.coverage}
        tot = coverage.setdefault(v.kind, {})
        for fam in v.coverage.values():
            for d, c in fam["reached"].items():
                tot[d] = tot.get(d, 0) + c
    for rel in sorted(previous - set(files)):
        p = out / rel
        if p.exists():
            p.unlink()
    m = {"fp4ref_version": version, "level": level, "generator": f"fp4ref vectors generate --level {level}",
         "seed": f"{_seed():#x}", "decisions": _decision_docs(), "families": _family_docs(level),
         "coverage": coverage, "vectors": vectors, "files": files}
    if only is not None:
        m["only"] = only
    _write(out / MANIFEST, manifest_bytes(m))
    return m


def _seed() -> int:
    from .inputs import SEED
    return SEED


def _file_format(rel: str) -> str:
    return rel.rsplit(".", 1)[1]
