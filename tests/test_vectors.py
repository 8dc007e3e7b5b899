"""Tests for the committed level-1 vectors (vectors/): they regenerate byte for byte, verify against their
manifest, stay small, cover every family, and `fp4ref vectors check` reports what the implementations do.
"""
from __future__ import annotations

import hashlib
import json
import pathlib
import shutil

import ml_dtypes
import numpy as np
import pytest
from click.testing import CliRunner

from fp4ref.cli.vectors import vectors_cmd
from fp4ref.conformance.catalogue import families
from fp4ref.conformance.check import check_directory, resolve_impl
from fp4ref.conformance.generate import generate
from fp4ref.conformance.manifest import verify

ROOT = pathlib.Path(__file__).parent.parent / "vectors"
MANIFEST = json.loads((ROOT / "MANIFEST.json").read_text())


def _sha(p: pathlib.Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_level1_regenerates_byte_for_byte(tmp_path):
    generate(1, tmp_path)
    assert (tmp_path / "MANIFEST.json").read_bytes() == (ROOT / "MANIFEST.json").read_bytes()
    made = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert made == sorted(["MANIFEST.json", *MANIFEST["files"]])
    for rel, e in MANIFEST["files"].items():
        assert _sha(tmp_path / rel) == e["sha256"], rel


def test_committed_vectors_verify_clean():
    r = verify(ROOT)
    assert r.clean, r.summary()
    assert len(r.ok) == len(MANIFEST["files"])


def test_level1_stays_small():
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    assert total <= 10 * 2 ** 20, total


def test_every_level1_family_is_in_a_vector_and_reaches_its_targets():
    seen = set()
    for name, v in MANIFEST["vectors"].items():
        for fam, c in v["families"].items():
            seen.add((v["kind"], fam))
            for t in c["targets"]:
                assert any(c["reached"].get(alt) for alt in t.split("|")), (name, fam, t)
    want = {(f.kind, f.name) for f in families() if 1 in f.levels}
    assert want <= seen, want - seen


def test_every_file_of_a_vector_is_listed_with_its_format():
    for name, v in MANIFEST["vectors"].items():
        for rel in v["files"]:
            assert MANIFEST["files"][rel]["vector"] == name
            assert rel.rsplit(".", 1)[1] == MANIFEST["files"][rel]["format"]


def test_verify_reports_changed_missing_and_unlisted_files(tmp_path):
    d = tmp_path / "v"
    generate(1, d, only="cast/e2m1-f32-nan-zero")
    assert verify(d).clean
    npz = d / "cast/e2m1-f32-nan-zero.npz"
    data = bytearray(npz.read_bytes())
    data[-5] ^= 1
    npz.write_bytes(bytes(data))
    (d / "cast/e2m1-f32-nan-zero.hex").unlink()
    (d / "cast/extra.hex").write_text("3F800000 rne 2\n")
    r = verify(d)
    assert [c.split(":")[0] for c in r.changed] == ["cast/e2m1-f32-nan-zero.npz"]
    assert r.missing == ("cast/e2m1-f32-nan-zero.hex",)
    assert r.unlisted == ("cast/extra.hex",)
    assert not r.clean


def test_generate_removes_only_files_of_its_previous_manifest(tmp_path):
    d = tmp_path / "v"
    generate(1, d, only="cast/e2m1-f32-nan-zero")
    (d / "notes.txt").write_text("mine")
    generate(1, d, only="cast/e2m1-f32-nan-ml_dtypes")
    assert not (d / "cast/e2m1-f32-nan-zero.npz").exists()
    assert (d / "cast/e2m1-f32-nan-ml_dtypes.npz").exists() and (d / "notes.txt").exists()


# --- the CLI ---------------------------------------------------------------------------------------------------
def test_cli_list_shows_families_with_coverage():
    out = CliRunner().invoke(vectors_cmd, ["list", "--dir", str(ROOT), "--kind", "cast"])
    assert out.exit_code == 0, out.output
    assert "cast/ties" in out.output and "targets: tie, tie-overflow, underflow" in out.output
    assert "reached:" in out.output


def test_cli_verify_exit_codes(tmp_path):
    r = CliRunner()
    assert r.invoke(vectors_cmd, ["verify", str(ROOT)]).exit_code == 0
    d = tmp_path / "v"
    shutil.copytree(ROOT / "cast", d / "cast")
    shutil.copy(ROOT / "MANIFEST.json", d)
    res = r.invoke(vectors_cmd, ["verify", str(d)])
    assert res.exit_code == 1 and "missing" in res.output


def test_cli_generate_and_check_with_fp4ref_itself_pass(tmp_path):
    r = CliRunner()
    res = r.invoke(vectors_cmd, ["generate", "--level", "1", "--out", str(tmp_path), "--only", "cast/e2m1", "-q"])
    assert res.exit_code == 0, res.output
    res = r.invoke(vectors_cmd, ["check", str(tmp_path), "--impl", "fp4ref"])
    assert res.exit_code == 0, res.output
    assert ", 0 with mismatches" in res.output


def test_cli_check_rejects_an_unknown_implementation():
    res = CliRunner().invoke(vectors_cmd, ["check", str(ROOT), "--impl", "nope"])
    assert res.exit_code == 2 and "unknown implementation" in res.output


# --- what ml_dtypes does on the vectors (a named regression per known divergence) -------------------------------
@pytest.fixture(scope="module")
def ml_results():
    return check_directory(ROOT, resolve_impl("ml_dtypes"), only="cast/", modes=("rne",))


def _groups(results, vector):
    return {r.family: r for r in results if r.vector == vector and r.skipped is None}


def test_ml_dtypes_matches_its_own_policy_vectors(ml_results):
    # ml_dtypes' NaN → 0x8/0x0 (D-4) is the policy nan="ml_dtypes"; its E4M3 overflow → NaN (D-7) is overflow="nan"
    for v in ("cast/e2m1-f32-nan-ml_dtypes", "cast/e2m3-f32-nan-ml_dtypes", "cast/e4m3-f32-overflow-nan"):
        g = _groups(ml_results, v)
        assert g and all(r.passed for r in g.values()), (v, {f: r.classes for f, r in g.items() if not r.passed})


def test_ml_dtypes_differs_from_the_ptx_default_only_at_nan(ml_results):
    g = _groups(ml_results, "cast/e2m1-f32")
    bad = {f: dict(r.classes) for f, r in g.items() if not r.passed}
    assert bad == {"specials": {"nan": 5}}


def test_ml_dtypes_e8m0_rounds_every_tie_up(ml_results):
    # D-9: ml_dtypes' E8M0 ties go up (fp4ref's nearest-even follows gfloat: even biased exponent)
    g = _groups(ml_results, "cast/e8m0-f32")
    assert dict(g["ties"].classes).get("tie", 0) >= 120
    assert all(got > exp for _, exp, got in g["ties"].examples)


def test_ml_dtypes_float64_inputs_round_through_float32_before_0_7(ml_results):
    # D-18: ml_dtypes up to 0.6 gives 1.25 + 2^-40 → float32 1.25 → 1.0; its exact value rounds to 1.5, as
    # ml_dtypes 0.7 (which converts float64 directly) gives
    g = _groups(ml_results, "cast/e2m1-f64")
    if tuple(int(p) for p in ml_dtypes.__version__.split(".")[:2]) >= (0, 7):
        assert g["double-rounding"].passed and g["double-rounding"].mismatches == 0
    else:
        assert dict(g["double-rounding"].classes) == {"double-rounding": g["double-rounding"].mismatches}
        assert g["double-rounding"].mismatches > 0


def test_check_skips_casts_an_implementation_does_not_have(ml_results):
    skipped = [r for r in ml_results if r.skipped]
    assert any(r.vector.startswith("cast/mxint8") for r in skipped)


def test_check_rejects_outputs_of_the_wrong_size(tmp_path):
    def short(x, fmt, rounding, policies):
        return np.zeros(1, np.uint8)
    with pytest.raises(ValueError, match="returned 1 codes"):
        check_directory(ROOT, short, only="cast/e2m1-f32-nan-zero", modes=("rne",))
