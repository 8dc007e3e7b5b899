"""fp4ref.identify: finds the configuration that produced a dump (real vendor captures and ml_dtypes run here),
or the closest ones with their classes; the command line prints the check that reproduces it."""
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
from click.testing import CliRunner

from fp4ref import packing
from fp4ref.cli.check import identify_cmd
from fp4ref.identify import identify_cast, identify_quantized
from fp4ref.quantize import quantize

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(Path(__file__).parent / "vendors"))
import _common  # noqa: E402


def _load(name):
    return _common.load(DATA / f"vendor_{name}.npz")


def test_identify_cast_finds_ml_dtypes_float32_e2m1_policy_by_running_ml_dtypes():
    x = np.concatenate([np.linspace(-8, 8, 321, dtype=np.float32), [np.nan, -np.nan, np.inf, -0.0]])
    vendor = x.astype(ml_dtypes.float4_e2m1fn).view(np.uint8)
    r = identify_cast(x, vendor, formats=["e2m1", "e4m3"])
    assert [c.name for c in r.exact] == ["e2m1"] and r.exact[0].options == {"nan": "ml_dtypes"}
    assert r.exact[0].report.match


def test_identify_cast_reports_closest_with_double_rounding_for_ml_dtypes_float64():
    x = np.array([1.25 + 2.0 ** -40, 0.75, 3.0, -2.5 - 2.0 ** -33, 5.5, 0.1])
    vendor = x.astype(np.float32).astype(ml_dtypes.float4_e2m1fn).view(np.uint8)  # ml_dtypes <= 0.6's path (D-18)
    r = identify_cast(x, vendor, formats=["e2m1"])
    assert not r.exact and r.closest[0].report.classes == {"double_rounding": 2}


def test_identify_cast_torch_cuda_e4m3_capture_needs_overflow_nan():
    a, _ = _load("torch_cuda_cast_e4m3_from_f32")
    r = identify_cast(a["x"], a["codes"], formats=["e4m3", "e5m2"])
    assert r.exact[0].name == "e4m3" and r.exact[0].options == {"overflow": "nan"}
    assert r.exact[0].equivalent.get("nan") == ["nan", "ones"]          # the capture's NaNs carry no payload


def test_identify_quantized_finds_the_torchao_rceil_recipe_from_its_capture():
    a, _ = _load("torchao_cpu_mxfp4_rceil_mx_suite_f32")
    r = identify_quantized(a["x"], a["codes"], a["scales"], recipes=["ocp-mxfp4", "torchao-mxfp4-floor",
                                                                     "torchao-mxfp4-rceil"])
    assert r.exact and r.exact[0].name == "torchao-mxfp4-rceil" and r.exact[0].options == {}


def test_identify_quantized_refines_options_from_a_near_recipe():
    x = np.random.default_rng(4).standard_normal((8, 128)).astype(np.float32) * 5
    x[:, :8] = [0.25, 1.25, 2.5, 5.0, -0.75, -5.0, 3.5, 0.0]      # ties in the first block of every row
    v = quantize(x, "ocp-mxfp4", rounding="nearest-away", scale_rule="ceil")
    r = identify_quantized(x, packing.pack_fp4(v.codes), v.scales, recipes=["ocp-mxfp4"])
    assert r.exact and r.exact[0].options == {"rounding": "nearest-away", "scale_rule": "ceil"}


def test_identify_quantized_without_exact_match_gives_the_closest_with_classes():
    a, _ = _load("microxcaling_fp4_e2m1_nearest_mx_suite_f32")
    r = identify_quantized(a["x"], a["codes"], a["scales"], recipes=["ocp-mxfp4"], top=1)
    assert not r.exact and len(r.closest) == 1
    c = r.closest[0]
    assert c.options["rounding"] == "nearest-away" and "saturation_vs_nan" in c.report.classes


def test_cli_identify_prints_the_reproducing_check_and_exits_0(tmp_path):
    x = np.random.default_rng(5).standard_normal((16, 64)).astype(np.float32)
    q = quantize(x, "te-nvfp4")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "c.npy", packing.pack_fp4(q.codes, "high"))
    np.save(tmp_path / "s.npy", q.scales)
    r = CliRunner().invoke(identify_cmd, ["-i", str(tmp_path / "x.npy"), "-c", str(tmp_path / "c.npy"), "-s",
                                          str(tmp_path / "s.npy"), "-R", "te-nvfp4", "-R", "ocp-mxfp4"])
    assert r.exit_code == 0, r.output
    assert "te-nvfp4 --nibble-order high" in r.output and "reproduce: fp4ref check --input" in r.output
