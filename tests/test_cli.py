"""The command line: each command parses, calls the library and prints; bad input exits 2 with a clear error."""
import numpy as np
from click.testing import CliRunner

import fp4ref
from fp4ref.cli.main import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_formats_table_lists_every_format():
    r = run("formats")
    assert r.exit_code == 0
    for f in fp4ref.formats.names():
        assert f"\n{f} " in r.output


def test_formats_values_lists_every_code():
    r = run("formats", "e2m1", "--values")
    assert r.exit_code == 0 and "0x7  0111  6.0" in r.output and "0xF  1111  -6.0" in r.output


def test_encode_prints_code_bits_and_value_for_negative_and_special_inputs():
    r = run("encode", "--format", "e2m1", "--rounding", "nearest-even", "0.75", "1.25", "-0.0", "nan")
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert "→ 0x2 0010  1.0" in lines[0] and "→ 0x8 1000  -0.0" in lines[2] and "→ 0x7 0111  6.0" in lines[3]


def test_explain_shows_neighbours_tie_and_rule():
    r = run("explain", "2.5", "--format", "e2m1")
    assert r.exit_code == 0
    assert "tie: yes" in r.output and "even" in r.output and "0x4 = 2.0" in r.output


def test_decode_prints_values():
    r = run("decode", "--format", "e8m0", "0x00", "0xFF")
    assert r.exit_code == 0 and "5.877471754111438e-39" in r.output and "nan" in r.output


def test_unknown_format_exits_2_and_lists_valid_names():
    r = run("encode", "--format", "e9m9", "1.0")
    assert r.exit_code == 2 and "valid formats" in r.output


def test_bad_number_exits_2():
    r = run("encode", "--format", "e2m1", "one")
    assert r.exit_code == 2 and "not a number" in r.output


def test_hadamard_writes_the_transform(tmp_path):
    x = np.arange(32, dtype=np.float32).reshape(2, 16)
    np.save(tmp_path / "x.npy", x)
    r = run("hadamard", tmp_path / "x.npy", "--size", 16, "--signs", "0xD7E8", "--out", tmp_path / "y.npy")
    assert r.exit_code == 0, r.output
    y = np.load(tmp_path / "y.npy")
    expect = fp4ref.hadamard.hadamard(x, 16, signs=fp4ref.hadamard.sign_vector(16, mask=0xD7E8))
    np.testing.assert_array_equal(y, expect)


def test_hadamard_bad_size_exits_2(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 16), np.float32))
    r = run("hadamard", tmp_path / "x.npy", "--size", 12, "--out", tmp_path / "y.npy")
    assert r.exit_code == 2 and "power of two" in r.output
