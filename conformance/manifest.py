"""The verifier of a vector directory: its files against its MANIFEST.json.

This module re-computes nothing: it imports nothing of the generator (families, levels, fp4ref's encoders). It
reads the manifest, hashes every file it lists and reports files missing, changed (size or SHA-256) or present
but unlisted. ``fp4ref vectors verify DIR`` prints the report and exits non-zero when it is not clean.
"""
from __future__ import annotations

import hashlib
import json
import pathlib
from dataclasses import dataclass, field

__all__ = ["VerifyReport", "verify", "load_manifest", "family_coverage", "MANIFEST"]

MANIFEST = "MANIFEST.json"
_NOT_VECTORS = {MANIFEST, "README.md"}


@dataclass(frozen=True)
class VerifyReport:
    """ok: files listed and unchanged; missing/changed/unlisted: relative paths (changed with the reason)."""
    directory: str
    version: str
    level: int
    ok: tuple = ()
    missing: tuple = ()
    changed: tuple = ()
    unlisted: tuple = ()
    bytes: int = 0

    @property
    def clean(self) -> bool:
        return not (self.missing or self.changed or self.unlisted)

    def summary(self) -> str:
        lines = [f"{self.directory}: level {self.level} vectors of fp4ref {self.version}: {len(self.ok)} files "
                 f"verified ({self.bytes} bytes)"]
        for what, items in (("missing", self.missing), ("changed", self.changed), ("unlisted", self.unlisted)):
            if items:
                lines.append(f"{len(items)} {what}:")
                lines += [f"  {i}" for i in items]
        lines.append("OK" if self.clean else "FAILED")
        return "\n".join(lines)


def load_manifest(directory) -> dict:
    d = pathlib.Path(directory)
    p = d / MANIFEST
    if not p.is_file():
        raise FileNotFoundError(f"{p} does not exist: not a vector directory (fp4ref vectors generate writes one)")
    try:
        m = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{p} is not valid JSON: {e}") from None
    for key in ("files", "fp4ref_version", "level"):
        if key not in m:
            raise ValueError(f"{p} has no {key!r} entry: not an fp4ref vector manifest")
    return m


def _sha256(p: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(directory) -> VerifyReport:
    """Check every file of ``directory`` against its MANIFEST.json (sizes and SHA-256, nothing re-computed)."""
    d = pathlib.Path(directory)
    m = load_manifest(d)
    ok, missing, changed = [], [], []
    total = 0
    for rel, entry in sorted(m["files"].items()):
        p = d / rel
        if not p.is_file():
            missing.append(rel)
            continue
        size = p.stat().st_size
        if size != entry["bytes"]:
            changed.append(f"{rel}: {size} bytes, manifest says {entry['bytes']}")
            continue
        digest = _sha256(p)
        if digest != entry["sha256"]:
            changed.append(f"{rel}: sha256 {digest}, manifest says {entry['sha256']}")
            continue
        ok.append(rel)
        total += size
    listed = set(m["files"])
    unlisted = sorted(str(p.relative_to(d)) for p in d.rglob("*")
                      if p.is_file() and str(p.relative_to(d)) not in listed and p.name not in _NOT_VECTORS
                      and not p.name.startswith("."))
    return VerifyReport(directory=str(d), version=m["fp4ref_version"], level=m["level"], ok=tuple(ok),
                        missing=tuple(missing), changed=tuple(changed), unlisted=tuple(unlisted), bytes=total)


def family_coverage(m: dict) -> dict:
    """kind → family → {"vectors", "cases", "reached": {decision: cases}} summed over the manifest's vectors."""
    out: dict = {}
    for v in m.get("vectors", {}).values():
        for fam, c in v["families"].items():
            e = out.setdefault(v["kind"], {}).setdefault(fam, {"vectors": 0, "cases": 0, "reached": {}})
            e["vectors"] += 1
            e["cases"] += c["cases"]
            for d, n in c["reached"].items():
                e["reached"][d] = e["reached"].get(d, 0) + n
    return out
